"""The provider's XCom sidecar contract runs for real on the process runtime, through the official clients.

The contract (apache-airflow-providers-cncf-kubernetes ``utils/xcom_sidecar.py``, ``utils/pod_manager.py``): an
emptyDir ``xcom`` at ``/airflow/xcom`` in the base container and in ``airflow-xcom-sidecar`` (alpine, a shell that
sleeps until SIGINT); once the base container ends, ``cat`` the result over exec in the sidecar, then exec ``/bin/sh``
and write the kill command to its stdin; the sidecar exits 0 and the pod ends.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from kubernetes.client import (
    CoreV1Api,
    V1Container,
    V1EmptyDirVolumeSource,
    V1ObjectMeta,
    V1Pod,
    V1PodSpec,
    V1Volume,
    V1VolumeMount,
)
from kubernetes.stream import stream
from kubernetes_asyncio import client as async_client
from kubernetes_asyncio.config import load_kube_config
from kubernetes_asyncio.stream import WsApiClient
from kubernetes_asyncio.stream.ws_client import ERROR_CHANNEL, STDOUT_CHANNEL

from airflow_kpo_deferrable.emulator import Emulator
from tests.support.emulator import host_pids, wait_for

pytestmark = pytest.mark.timeout(90)

SIDECAR = "airflow-xcom-sidecar"
READ = ("if [ -s /airflow/xcom/return.json ]; then cat /airflow/xcom/return.json; "
        "else echo __airflow_xcom_result_empty__; fi")
KILL = "kill -2 $(pgrep -u $(id -u) -f 'sh')\n"


def xcom_pod(name: str, script: str) -> V1Pod:
    mount = V1VolumeMount(name="xcom", mount_path="/airflow/xcom")
    return V1Pod(
        metadata=V1ObjectMeta(name=name),
        spec=V1PodSpec(
            restart_policy="Never",
            volumes=[V1Volume(name="xcom", empty_dir=V1EmptyDirVolumeSource())],
            containers=[
                V1Container(name="base", image="busybox:1.36", command=["sh", "-c", script], volume_mounts=[mount]),
                V1Container(name=SIDECAR, image="alpine:3.24.2", volume_mounts=[mount],
                            command=["sh", "-c", 'trap "exit 0" INT; while true; do sleep 1; done;']),
            ],
        ),
    )


def state_of(pod: V1Pod, container: str) -> object:
    return next(s for s in pod.status.container_statuses if s.name == container).state


def read_result(api: CoreV1Api, name: str) -> str:
    """As the provider reads it: unpreloaded (a preloaded JSON answer comes back as a Python repr), to the end."""
    response = stream(api.connect_get_namespaced_pod_exec, name, "default", container=SIDECAR,
                      command=["/bin/sh", "-c", READ], stdin=False, stdout=True, stderr=True, tty=False,
                      _preload_content=False)
    try:
        response.run_forever(timeout=10)
        assert not response.peek_stderr(), response.read_stderr()
        return response.read_all()
    finally:
        response.close()


def kill_sidecar(api: CoreV1Api, name: str) -> None:
    """The provider's way: an interactive ``/bin/sh`` in the sidecar, the kill written to its stdin."""
    response = stream(api.connect_get_namespaced_pod_exec, name, "default", container=SIDECAR, command=["/bin/sh"],
                      stdin=True, stdout=True, stderr=True, tty=False, _preload_content=False)
    try:
        response.write_stdin(KILL)
        deadline = time.monotonic() + 10
        while response.is_open() and time.monotonic() < deadline:
            response.update(timeout=0.2)
            assert not response.peek_stderr(), response.read_stderr()
    finally:
        response.close()


@pytest.fixture
def sentinel() -> Iterator[str]:
    marker = f"kpo-sentinel-{uuid.uuid4().hex}"
    process = subprocess.Popen(["sh", "-c", "sleep 300; :", marker])
    yield marker
    process.kill()
    process.wait()


async def read_result_async(emulator: Emulator, name: str) -> str:
    """Over kubernetes_asyncio's WsApiClient, frames read one by one (preloaded, a JSON answer becomes a repr)."""
    client = WsApiClient()
    await load_kube_config(config_file=str(emulator.kubeconfig_path), client_configuration=client.configuration)
    out, status = b"", None
    try:
        core = async_client.CoreV1Api(api_client=client)
        connecting = await core.connect_get_namespaced_pod_exec(
            name, "default", container=SIDECAR, command=["/bin/sh", "-c", READ], stderr=True, stdin=False,
            stdout=True, tty=False, _preload_content=False)
        async with connecting as socket:
            async for message in socket:
                channel, data = message.data[0], message.data[1:]
                if channel == STDOUT_CHANNEL:
                    out += data
                elif channel == ERROR_CHANNEL:
                    status = WsApiClient.parse_error_data(data)
    finally:
        await client.close()
    assert status == 0
    return out.decode()


async def test_result_read_over_exec_then_the_sidecar_killed(
    api: CoreV1Api, emulator: Emulator, sentinel: str
) -> None:
    value = {"rows": 3, "names": ["a", "b"], "nested": {"ok": True}}
    write = f"echo '{json.dumps(value)}' > /airflow/xcom/return.json"
    api.create_namespaced_pod("default", xcom_pod("xcom", write))
    api.create_namespaced_pod("default", xcom_pod("bystander", "sleep 0.1"))  # another pod's sidecar
    done = wait_for(api, "xcom", lambda p: p.status.container_statuses is not None
                    and state_of(p, "base").terminated is not None and state_of(p, SIDECAR).running is not None,
                    timeout=20)
    assert state_of(done, "base").terminated.exit_code == 0
    assert state_of(done, SIDECAR).running is not None  # the sidecar holds the pod open
    assert done.status.phase == "Running"
    assert json.loads(read_result(api, "xcom")) == value
    assert json.loads(await read_result_async(emulator, "xcom")) == value
    wait_for(api, "bystander", lambda p: p.status.container_statuses is not None
             and state_of(p, SIDECAR).running is not None and state_of(p, "base").terminated is not None)
    kill_sidecar(api, "xcom")
    finished = wait_for(api, "xcom", lambda p: p.status.phase == "Succeeded", timeout=20)
    assert state_of(finished, SIDECAR).terminated.exit_code == 0  # its trap: exit 0 on SIGINT
    bystander = api.read_namespaced_pod("bystander", "default")
    assert (bystander.status.phase, state_of(bystander, SIDECAR).running is not None) == ("Running", True)
    assert host_pids(sentinel), "the sidecar's kill reached a host process"


def test_a_base_container_that_failed_without_a_result(api: CoreV1Api) -> None:
    api.create_namespaced_pod("default", xcom_pod("broken", "echo failing >&2; exit 3"))
    wait_for(api, "broken", lambda p: p.status.container_statuses is not None
             and state_of(p, "base").terminated is not None and state_of(p, SIDECAR).running is not None, timeout=20)
    assert read_result(api, "broken") == "__airflow_xcom_result_empty__\n"
    kill_sidecar(api, "broken")
    finished = wait_for(api, "broken", lambda p: p.status.phase == "Failed", timeout=20)
    assert state_of(finished, "base").terminated.exit_code == 3
