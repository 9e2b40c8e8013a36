"""Fixtures and helpers shared by the emulator tests: an in-thread emulator (process runtime), a sync client, polling."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import kubernetes
import pytest
from kubernetes.client import CoreV1Api, V1Pod

from airflow_kpo_deferrable.emulator import Emulator

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator.in_thread(
        runtime="process", kubeconfig_path=tmp_path / "kubeconfig", workdir=tmp_path / "node"
    ) as emu:
        yield emu


@pytest.fixture
def api(emulator: Emulator) -> Iterator[CoreV1Api]:
    client = kubernetes.config.new_client_from_config(config_file=str(emulator.kubeconfig_path))
    yield CoreV1Api(client)
    client.close()


def wait_for(
    api: CoreV1Api, name: str, check: Callable[[V1Pod], bool], timeout: float = 10, namespace: str = "default"
) -> V1Pod:
    """Poll the pod until ``check`` accepts it; AssertionError with its last status after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        current = api.read_namespaced_pod(name, namespace)
        if check(current):
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"pod {name} never got there; last status: {current.status}")
        time.sleep(0.03)
