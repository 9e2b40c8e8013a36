"""``pods/exec`` over WebSocket with the clients people use: ``kubernetes.stream``, kubernetes_asyncio, kubectl."""

from __future__ import annotations

import json
import os
import subprocess
import time

import kubernetes
import pytest
from kubernetes.client import CoreV1Api
from kubernetes.stream import stream
from kubernetes_asyncio import client as async_client
from kubernetes_asyncio.config import load_kube_config
from kubernetes_asyncio.stream import WsApiClient

from airflow_kpo_deferrable.emulator import Emulator
from tests.support.emulator import needs_kubectl, wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def workload(api: CoreV1Api) -> str:
    """A running pod whose container wrote a file into its working directory and has its own env."""
    body = {
        "metadata": {"name": "workload"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "base",
                    "image": "busybox:1.36",
                    "command": ["sh", "-c", 'echo "{\\"answer\\": 42}" > result.json; sleep 30'],
                    "env": [{"name": "ROLE", "value": "worker"}],
                }
            ],
        },
    }
    api.create_namespaced_pod("default", body)
    wait_for(api, "workload", lambda p: p.status.phase == "Running")
    return "workload"


def exec_stream(api: CoreV1Api, name: str, command: list[str], **kwargs: object) -> object:
    options = {"stderr": True, "stdin": False, "stdout": True, "tty": False} | kwargs
    return stream(api.connect_get_namespaced_pod_exec, name, "default", command=command, **options)


def collect(response: object, timeout: float = 5) -> tuple[str, str]:
    out, err = [], []
    deadline = time.monotonic() + timeout
    while response.is_open() and time.monotonic() < deadline:
        response.update(timeout=0.2)
        out.append(response.read_stdout())
        err.append(response.read_stderr())
    # reading one channel may have consumed the last frames of the other (and the close): read both once more
    return "".join(out) + response.read_stdout(), "".join(err) + response.read_stderr()


def test_stream_stdout_stderr_and_return_code(api: CoreV1Api, workload: str) -> None:
    response = exec_stream(api, workload, ["sh", "-c", "echo out; echo err >&2; exit 3"], _preload_content=False)
    out, err = collect(response)
    assert (out, err) == ("out\n", "err\n")
    assert response.returncode == 3
    response.close()


def test_stream_sees_the_container_env_and_files(api: CoreV1Api, workload: str) -> None:
    # The container writes its file right after starting.
    probe = ["sh", "-c", "cat result.json 2>/dev/null || true"]
    wait_for(api, workload, lambda p: '"answer"' in exec_stream(api, workload, probe), timeout=30)
    output = exec_stream(api, workload, ["sh", "-c", "cat result.json; echo role=$ROLE"])
    assert output == '{"answer": 42}\nrole=worker\n'
    response = exec_stream(api, workload, ["true"], _preload_content=False)
    collect(response)
    assert response.returncode == 0


def test_stream_stdin_and_v5_close(api: CoreV1Api, workload: str) -> None:
    response = exec_stream(api, workload, ["sh", "-c", "cat; echo done"], stdin=True, _preload_content=False)
    response.write_stdin("piped text\n")
    response.close_channel(0)  # v5: the client closes stdin, cat sees EOF
    out, _ = collect(response)
    assert out == "piped text\ndone\n"
    assert response.returncode == 0


def test_command_that_cannot_run_is_an_internal_error(api: CoreV1Api, workload: str) -> None:
    response = exec_stream(api, workload, ["no-such-tool"], _preload_content=False)
    collect(response)
    status = json.loads(response.read_channel(3))
    assert (status["status"], status["reason"], status["code"]) == ("Failure", "InternalError", 500)
    assert 'exec: "no-such-tool": executable file not found in $PATH: unknown' in status["message"]


def test_exec_into_a_finished_container_is_refused(api: CoreV1Api) -> None:
    body = {
        "metadata": {"name": "done"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox", "command": ["true"]}]},
    }
    api.create_namespaced_pod("default", body)
    wait_for(api, "done", lambda p: p.status.phase == "Succeeded")
    with pytest.raises(kubernetes.client.ApiException) as refused:
        exec_stream(api, "done", ["true"])
    # the client reports a failed handshake in the reason text
    assert "Handshake status 400" in refused.value.reason
    assert 'container not found (\\"base\\")' in refused.value.reason


async def test_kubernetes_asyncio_ws_client(api: CoreV1Api, emulator: Emulator, workload: str) -> None:
    client = WsApiClient()
    await load_kube_config(config_file=str(emulator.kubeconfig_path), client_configuration=client.configuration)
    try:
        core = async_client.CoreV1Api(api_client=client)
        output = await core.connect_get_namespaced_pod_exec(
            workload,
            "default",
            command=["sh", "-c", "echo from-asyncio"],
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
        )
    finally:
        await client.close()
    assert output == "from-asyncio\n"


def kubectl(emulator: Emulator, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(emulator.kubeconfig_path)}
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env, input=stdin, timeout=20)


@needs_kubectl
def test_kubectl_exec_over_websocket(emulator: Emulator, workload: str) -> None:
    # the emulator speaks no SPDY, so these only work over kubectl's WebSocket (v5) path
    result = kubectl(emulator, "exec", workload, "--", "sh", "-c", "echo hi; echo oops >&2; exit 2")
    assert result.returncode == 2
    assert result.stdout == "hi\n"
    assert "oops" in result.stderr and "command terminated with exit code 2" in result.stderr
    piped = kubectl(emulator, "exec", "-i", workload, "--", "sh", "-c", "tr a-z A-Z", stdin="quiet words\n")
    assert (piped.returncode, piped.stdout) == (0, "QUIET WORDS\n"), piped.stderr
