"""An in-loop emulator (scripted runtime, ``async_emulator``'s) for trigger and watcher tests, and pods our selector
matches."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_kpo_deferrable.emulator import Emulator, scenario
from airflow_kpo_deferrable.hooks.kubernetes import ClusterTarget, async_core_v1
from airflow_kpo_deferrable.podspec import MANAGED_BY_LABEL, MANAGED_BY_VALUE
from tests.support.async_emulator import emulator

__all__ = ["create_pod", "emulator", "scenario", "target", "watch_opened"]


@pytest.fixture
def target(emulator: Emulator) -> ClusterTarget:
    return ClusterTarget(conn_id=None, config_file=str(emulator.kubeconfig_path))


async def create_pod(
    target: ClusterTarget,
    name: str,
    *,
    annotations: dict[str, str] | None = None,
    containers: list[str] = ("base",),
    namespace: str = "default",
) -> dict[str, Any]:
    """Create a pod carrying our managed-by label, as the operator would; returns its metadata."""
    api = await async_core_v1(target)
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE}, "annotations": annotations or {}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": c, "image": "busybox"} for c in containers]},
    }
    pod = await api.create_namespaced_pod(namespace, body)
    return {"name": pod.metadata.name, "uid": pod.metadata.uid}


async def watch_opened(emulator: Emulator, timeout: float = 30) -> None:
    """Return once a pod watch has reached the emulator (since its counters were last reset)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while emulator.counters().get("watch pods", 0) < 1:
        if loop.time() > deadline:
            raise AssertionError(f"no pod watch opened within {timeout:.0f}s; requests: {emulator.counters()}")
        await asyncio.sleep(0.02)
