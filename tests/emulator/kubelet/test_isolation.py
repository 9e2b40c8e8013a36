"""Containers of the process runtime are isolated as on a node: own PID namespace (PID 1), own mounts, per-pod volumes.

A sentinel process on the host must survive every container and exec command that tries to see or signal it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
from kubernetes.client import CoreV1Api
from kubernetes.stream import stream

from airflow_kpo_deferrable.emulator import Emulator
from tests.support.emulator import host_pids, wait_for

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def sentinel() -> Iterator[str]:
    """A host process whose command line holds a unique word (and "sh", for ``pkill -f sh``)."""
    marker = f"kpo-sentinel-{uuid.uuid4().hex}"
    process = subprocess.Popen(["sh", "-c", "sleep 300; :", marker])
    yield marker
    assert process.poll() is None, "a container's command killed a host process"
    process.kill()
    process.wait()


def shell_pod(name: str, script: str, **container: object) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": "base", "image": "busybox", "command": ["sh", "-c", script], **container}]},
    }


def log(api: CoreV1Api, name: str, container: str = "base") -> str:
    return api.read_namespaced_pod_log(name, "default", container=container)


def split(marker: str) -> str:
    """A shell word for ``marker`` whose own command line does not contain it (so pkill -f cannot match itself)."""
    head, tail = marker[:6], marker[6:]
    return f'"{head}""{tail}"'


def finished(api: CoreV1Api, name: str, timeout: float = 20) -> kubernetes.client.V1Pod:
    return wait_for(api, name, lambda p: p.status.phase in ("Succeeded", "Failed"), timeout=timeout)


def exec_out(api: CoreV1Api, name: str, command: list[str], container: str = "base") -> str:
    return stream(api.connect_get_namespaced_pod_exec, name, "default", command=command, container=container,
                  stderr=True, stdin=False, stdout=True, tty=False)


def test_the_first_process_is_pid_1(api: CoreV1Api) -> None:
    api.create_namespaced_pod("default", shell_pod("pid", "echo $$$$"))  # "$$" is Kubernetes' escape for "$"
    assert finished(api, "pid").status.phase == "Succeeded"
    assert log(api, "pid") == "1\n"


def test_a_container_can_neither_see_nor_signal_the_host(api: CoreV1Api, sentinel: str) -> None:
    script = (
        "ps -e -o pid=,args=; echo ---; "
        f"pkill -f {split(sentinel)}; echo pkill-sentinel=$$?; pkill -f sh; kill -1 -1; kill -9 -1; echo survived"
    )
    api.create_namespaced_pod("default", shell_pod("hostile", script))
    done = finished(api, "hostile")
    listing, _, rest = log(api, "hostile").partition("---\n")
    pids = [line.split(None, 1) for line in listing.strip().splitlines()]
    assert [pid for pid, _ in pids] == ["1", "2"], listing  # the container's shell and ps: nothing else
    assert pids[0][1].startswith("sh -c ps -e") and pids[1][1].startswith("ps -e")
    assert sentinel not in listing
    assert "pkill-sentinel=1" in rest  # no such process in here
    # PID 1 ignores signals it has no handler for, as on a node: the last line it prints comes after every kill.
    # stdout and stderr are separate streams (as in a runtime's log), so the shell's "kill: No such process" lines
    # may land before or after it; only stdout's order is asserted.
    stdout = [line for line in rest.splitlines() if line and not line.startswith("sh: ")]
    assert stdout == ["pkill-sentinel=1", "survived"], rest
    assert done.status.phase == "Succeeded"
    assert host_pids(sentinel), "the sentinel died"


def test_exec_runs_inside_the_container_namespaces(api: CoreV1Api, sentinel: str) -> None:
    marker = f"inside-{uuid.uuid4().hex}"
    api.create_namespaced_pod("default", shell_pod("target", f"while true; do sleep 0.1; done; : {marker}"))
    wait_for(api, "target", lambda p: p.status.phase == "Running")
    listing = exec_out(api, "target", ["ps", "-e", "-o", "pid=,args="])
    rows = [line.split(None, 1) for line in listing.strip().splitlines()]
    assert rows[0] == ["1", f"sh -c while true; do sleep 0.1; done; : {marker}"], listing
    assert {args.split()[0] for _, args in rows} <= {"sh", "sleep", "ps"}, listing
    assert sentinel not in listing
    assert exec_out(api, "target", ["sh", "-c", f"pkill -f {split(sentinel)}; echo $?; kill -9 -1; echo alive"]) == (
        "1\nalive\n")
    assert host_pids(sentinel), "an exec command killed a host process"
    time.sleep(0.3)
    assert api.read_namespaced_pod("target", "default").status.phase == "Running"  # kill -1 never reaches PID 1


def xcom_pod(name: str, write: str) -> dict:
    """Two containers sharing an emptyDir at /airflow/xcom, as the provider's XCom sidecar pod does."""
    mount = [{"name": "xcom", "mountPath": "/airflow/xcom"}]
    return {
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [{"name": "xcom", "emptyDir": {}}],
            "containers": [
                {"name": "base", "image": "busybox", "volumeMounts": mount,
                 "command": ["sh", "-c", f"echo '{write}' > /airflow/xcom/return.json"]},
                {"name": "reader", "image": "alpine", "volumeMounts": mount,
                 "command": ["sh", "-c", "while [ ! -s /airflow/xcom/return.json ]; do sleep 0.05; done; "
                                         "cat /airflow/xcom/return.json; sleep 60"]},
            ],
        },
    }


def test_an_empty_dir_is_shared_within_a_pod_and_private_to_it(api: CoreV1Api) -> None:
    for name in ("left", "right"):
        api.create_namespaced_pod("default", xcom_pod(name, json.dumps({"pod": name})))
    for name in ("left", "right"):
        wait_for(api, name, lambda p: p.status.phase == "Running" and log(api, name, "reader") != "", timeout=20)
        assert json.loads(log(api, name, "reader")) == {"pod": name}
        assert json.loads(exec_out(api, name, ["cat", "/airflow/xcom/return.json"], "reader")) == {"pod": name}
    assert not Path("/airflow/xcom/return.json").exists(), "the volume was written on the host's own path"


def test_sub_path_and_read_only_mounts(api: CoreV1Api, tmp_path: Path) -> None:
    rw, ro = tmp_path / "rw", tmp_path / "ro"  # mount points the kubelet creates (empty) on the host
    body = {
        "metadata": {"name": "mounts"},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [{"name": "data", "emptyDir": {}}],
            "containers": [{
                "name": "base", "image": "busybox",
                "volumeMounts": [{"name": "data", "mountPath": str(rw), "subPath": "part"},
                                 {"name": "data", "mountPath": str(ro), "readOnly": True}],
                "command": ["sh", "-c", f"echo hi > {rw}/f && cat {ro}/part/f && "
                                        f"(echo no > {ro}/g) 2>/dev/null || echo read-only"],
            }],
        },
    }
    api.create_namespaced_pod("default", body)
    assert finished(api, "mounts").status.phase == "Succeeded"
    assert log(api, "mounts") == "hi\nread-only\n"
    assert list(rw.iterdir()) == list(ro.iterdir()) == [], "the mounts were visible outside the container"


def test_without_isolation_exec_and_volumes_are_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="airflow_kpo_deferrable.emulator")
    with Emulator.in_thread(runtime="process", isolation=False, kubeconfig_path=tmp_path / "kubeconfig",
                            workdir=tmp_path / "node") as emulator:
        client = kubernetes.config.new_client_from_config(config_file=str(emulator.kubeconfig_path))
        api = CoreV1Api(client)
        try:
            assert any("containers are NOT isolated (isolation turned off" in r.getMessage() for r in caplog.records)
            api.create_namespaced_pod("default", shell_pod("plain", "echo $$$$; sleep 30"))
            running = wait_for(api, "plain", lambda p: p.status.phase == "Running")
            assert running.status.phase == "Running"  # a plain container still runs, as a local process group
            with pytest.raises(kubernetes.client.ApiException) as refused:
                exec_out(api, "plain", ["true"])
            assert "Handshake status 500" in refused.value.reason
            assert "pods/exec is refused: the emulator's process runtime cannot isolate containers" in (
                refused.value.reason)
            api.create_namespaced_pod("default", xcom_pod("shared", "{}"))
            failed = wait_for(api, "shared", lambda p: p.status.phase == "Failed", timeout=20)
            terminated = failed.status.container_statuses[0].state.terminated
            assert (terminated.reason, terminated.exit_code) == ("StartError", 128)
            assert "a container with volumeMounts is refused" in terminated.message
        finally:
            client.close()


def test_isolation_is_logged_when_available(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="airflow_kpo_deferrable.emulator")
    with Emulator.in_thread(runtime="process", kubeconfig_path=tmp_path / "kubeconfig", workdir=tmp_path / "node"):
        pass
    assert any("each container runs in its own PID and mount namespace" in r.getMessage() for r in caplog.records)


def test_sigterm_to_a_pid_1_without_handler_ends_it_at_once(api: CoreV1Api) -> None:
    api.create_namespaced_pod("default", shell_pod("plain-sleep", "exec sleep 60"))
    wait_for(api, "plain-sleep", lambda p: p.status.phase == "Running")
    began = time.monotonic()
    api.delete_namespaced_pod("plain-sleep", "default", grace_period_seconds=30)
    deadline = time.monotonic() + 20
    while api.list_namespaced_pod("default", field_selector="metadata.name=plain-sleep").items:
        assert time.monotonic() < deadline, "the pod waited out its grace period"
        time.sleep(0.05)
    assert time.monotonic() - began < 15  # far below the 30 s grace period
