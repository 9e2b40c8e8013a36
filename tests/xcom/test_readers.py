"""``xcom.sync`` and ``xcom.aio`` against the emulator: real exec into the provider's sidecar, real pods ending."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes.client import CoreV1Api
from kubernetes_asyncio.config import load_kube_config
from kubernetes_asyncio.stream import WsApiClient

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.podspec.xcom import SIDECAR_NAME, add_xcom_sidecar
from airflow_kpo_deferrable.xcom import aio, sync
from airflow_kpo_deferrable.xcom.result import XComError
from tests.support.emulator import wait_for

pytestmark = pytest.mark.timeout(90)


def xcom_pod(name: str, script: str) -> dict[str, Any]:
    pod = {"metadata": {"name": name}, "spec": {"restartPolicy": "Never", "containers": [
        {"name": "base", "image": "busybox:1.36", "command": ["sh", "-c", script]}]}}
    add_xcom_sidecar(pod, "base")
    return pod


def state(pod: Any, container: str) -> Any:
    return next(s for s in pod.status.container_statuses or [] if s.name == container).state


def base_ended(api: CoreV1Api, name: str) -> Any:
    return wait_for(api, name, lambda p: p.status.container_statuses is not None
                    and state(p, "base").terminated is not None and state(p, SIDECAR_NAME).running is not None,
                    timeout=20)


@pytest.fixture
async def ws(emulator: Emulator) -> AsyncIterator[WsApiClient]:
    client = WsApiClient()
    await load_kube_config(config_file=str(emulator.kubeconfig_path), client_configuration=client.configuration)
    yield client
    await client.close()


VALUE = {"rows": 3, "names": ["a", "b"], "ok": True}


def test_sync_read_then_stop(api: CoreV1Api) -> None:
    api.create_namespaced_pod("default", xcom_pod("sync", f"echo '{json.dumps(VALUE)}' > /airflow/xcom/return.json"))
    base_ended(api, "sync")
    assert sync.read_result(api, "sync", "default") == VALUE
    assert sync.stop_sidecar(api, "sync", "default") is None
    done = wait_for(api, "sync", lambda p: p.status.phase == "Succeeded", timeout=20)
    assert state(done, SIDECAR_NAME).terminated.exit_code == 0


async def test_async_read_then_stop(api: CoreV1Api, ws: WsApiClient) -> None:
    api.create_namespaced_pod("default", xcom_pod("aio", f"echo '{json.dumps(VALUE)}' > /airflow/xcom/return.json"))
    base_ended(api, "aio")
    assert await aio.read_result(ws, "aio", "default") == VALUE
    assert await aio.stop_sidecar(ws, "aio", "default") is None
    wait_for(api, "aio", lambda p: p.status.phase == "Succeeded", timeout=20)


async def test_no_result_file_is_none_and_the_failed_pod_still_ends(api: CoreV1Api, ws: WsApiClient) -> None:
    api.create_namespaced_pod("default", xcom_pod("broken", "exit 3"))
    base_ended(api, "broken")
    assert sync.read_result(api, "broken", "default") is None
    assert await aio.read_result(ws, "broken", "default") is None
    assert sync.stop_sidecar(api, "broken", "default") is None
    done = wait_for(api, "broken", lambda p: p.status.phase == "Failed", timeout=20)
    assert state(done, "base").terminated.exit_code == 3


async def test_invalid_json_and_the_size_limit(api: CoreV1Api, ws: WsApiClient) -> None:
    api.create_namespaced_pod("default", xcom_pod("bad", "echo '{not json' > /airflow/xcom/return.json"))
    api.create_namespaced_pod("default", xcom_pod("big", "(printf '['; yes 1, | head -n 2000 | tr -d '\\n'; printf '1]') > /airflow/xcom/return.json"))
    base_ended(api, "bad")
    with pytest.raises(XComError, match="pod default/bad wrote invalid JSON"):
        sync.read_result(api, "bad", "default")
    with pytest.raises(XComError, match="pod default/bad wrote invalid JSON"):
        await aio.read_result(ws, "bad", "default")
    base_ended(api, "big")
    with pytest.raises(XComError, match="pod default/big wrote more than 1000 bytes"):
        sync.read_result(api, "big", "default", limit=1000)
    with pytest.raises(XComError, match="pod default/big wrote more than 1000 bytes"):
        await aio.read_result(ws, "big", "default", limit=1000)
    assert sync.read_result(api, "big", "default") == [1] * 2001


async def test_a_sidecar_that_is_not_running_is_a_clear_error(api: CoreV1Api, ws: WsApiClient) -> None:
    api.create_namespaced_pod("default", xcom_pod("stopped", "true"))
    base_ended(api, "stopped")
    assert sync.stop_sidecar(api, "stopped", "default") is None
    wait_for(api, "stopped", lambda p: p.status.phase == "Succeeded", timeout=20)
    with pytest.raises(XComError, match="pod default/stopped: the XCom result cannot be read: exec into "
                                        "airflow-xcom-sidecar was refused"):
        sync.read_result(api, "stopped", "default")
    with pytest.raises(XComError, match="pod default/stopped: the XCom result cannot be read"):
        await aio.read_result(ws, "stopped", "default")
    assert "refused" in (await aio.stop_sidecar(ws, "stopped", "default") or "")
