"""``python -m airflow_kpo_deferrable.emulator`` as a separate process, and the ``k8s_emulator`` pytest fixtures."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import kubernetes
import pytest
from kubernetes.client import CoreV1Api, V1Pod

from airflow_kpo_deferrable.emulator import Emulator, scenario
from tests.support.emulator import wait_for

pytestmark = pytest.mark.timeout(60)

COMMAND = [sys.executable, "-m", "airflow_kpo_deferrable.emulator"]


def first_line(process: subprocess.Popen[str], timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no ready line within {timeout} s") from None


def pod(name: str, **values: object) -> dict:
    return {
        "metadata": {"name": name, "annotations": scenario(**values)},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox:1.36"}]},
    }


def finished(p: V1Pod) -> bool:
    return p.status.phase in ("Succeeded", "Failed")


def test_serves_tls_with_a_kubeconfig_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [*COMMAND, "--port", "0", "--kubeconfig", str(kubeconfig), "--tls", "--runtime", "scripted"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        ready = first_line(process, timeout=30)
        assert ready.startswith("ready https://127.0.0.1:") and ready.endswith("\n"), ready
        url = ready.split()[1]
        client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        try:
            assert client.configuration.host == url and client.configuration.verify_ssl
            api = CoreV1Api(client)
            api.create_namespaced_pod("default", pod("from-cli", duration=0.2, start_delay=0.05, log_lines=1))
            done = wait_for(api, "from-cli", finished)
            assert done.status.phase == "Succeeded"
            assert api.read_namespaced_pod_log("from-cli", "default") == "base line 1\n"
        finally:
            client.close()
        begun = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert time.monotonic() - begun < 30
        assert process.stdout.read() == ""  # "ready ..." is the only line on stdout
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--runtime", "docker"], "argument --runtime: invalid choice: 'docker' (choose from "),
        ([], "the following arguments are required: --kubeconfig"),
    ],
)
def test_bad_arguments_exit_non_zero_with_a_clear_message(tmp_path: Path, arguments: list[str], complaint: str) -> None:
    if "--runtime" in arguments:
        arguments = [*arguments, "--kubeconfig", str(tmp_path / "kubeconfig")]
    result = subprocess.run([*COMMAND, "--port", "0", *arguments], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stdout == ""
    assert complaint in result.stderr
    if "--runtime" in arguments:
        assert "'process', 'scripted', 'none'" in result.stderr
    assert not (tmp_path / "kubeconfig").exists()


def test_plugin_fixtures(k8s_emulator: Emulator, k8s_emulator_factory: Callable[..., Emulator]) -> None:
    assert k8s_emulator.url.startswith("http://") and k8s_emulator.kubeconfig_path.is_file()
    api = CoreV1Api(kubernetes.config.new_client_from_config(config_file=str(k8s_emulator.kubeconfig_path)))
    body = pod("plugged")
    body["spec"]["containers"][0]["command"] = ["sh", "-c", "echo from the plugin fixture"]
    api.create_namespaced_pod("default", body)
    assert wait_for(api, "plugged", finished).status.phase == "Succeeded"  # the process runtime ran it
    assert api.read_namespaced_pod_log("plugged", "default") == "from the plugin fixture\n"
    api.api_client.close()

    other = k8s_emulator_factory(runtime="scripted", tls=True)
    assert other.url.startswith("https://") and other.port != k8s_emulator.port
    other_api = CoreV1Api(kubernetes.config.new_client_from_config(config_file=str(other.kubeconfig_path)))
    assert [p.metadata.name for p in other_api.list_namespaced_pod("default").items] == []  # separate clusters
    other_api.api_client.close()
