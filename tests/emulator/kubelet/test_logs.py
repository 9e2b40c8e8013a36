"""``pods/log`` through the real HTTP API: the official ``kubernetes`` client, raw requests and ``kubectl logs``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime
from typing import Any

import kubernetes
import pytest
from kubernetes.client import CoreV1Api, V1Pod

from airflow_kpo_deferrable.emulator import Emulator, scenario
from tests.support.emulator import needs_kubectl, wait_for

pytestmark = pytest.mark.timeout(60)


def scripted(name: str, containers: tuple[str, ...] = ("base",), restart: str = "Never", **values: Any) -> dict:
    """A pod whose containers have no command: the process runtime runs them from the scenario annotations."""
    return {
        "metadata": {"name": name, "annotations": scenario(**values)},
        "spec": {"restartPolicy": restart, "containers": [{"name": c, "image": "busybox:1.36"} for c in containers]},
    }


def running(name: str, command: list[str], restart: str = "Never") -> dict:
    return {
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": restart,
            "containers": [{"name": "base", "image": "busybox:1.36", "command": command}],
        },
    }


def finished(p: V1Pod) -> bool:
    return p.status.phase in ("Succeeded", "Failed")


def is_running(p: V1Pod) -> bool:
    return p.status.phase == "Running"


def raw_get(api: CoreV1Api, emulator: Emulator, path: str, **query: str) -> tuple[int, str]:
    """A GET with the client's credentials, for parameters the generated client does not offer (sinceTime)."""
    headers = {setting["key"]: setting["value"] for setting in api.api_client.configuration.auth_settings().values()}
    request = urllib.request.Request(f"{emulator.url}{path}?{urllib.parse.urlencode(query)}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def bad_request(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(kubernetes.client.ApiException) as error:
        call()
    return error.value.status, json.loads(error.value.body)["message"]


def test_follow_streams_lines_as_they_are_written(api: CoreV1Api) -> None:
    api.create_namespaced_pod(
        "default", scripted("chatty", duration=0.8, log_lines=5, log_interval=0.15, start_delay=0.05)
    )
    wait_for(api, "chatty", is_running)
    begun = time.monotonic()
    response = api.read_namespaced_pod_log("chatty", "default", follow=True, _preload_content=False)
    arrivals = []
    for line in response.stream(amt=None):
        arrivals.append((time.monotonic() - begun, line))
    response.release_conn()
    text = b"".join(chunk for _, chunk in arrivals).decode()
    assert text.splitlines() == [f"base line {n}" for n in range(1, 6)]
    assert arrivals[-1][0] - arrivals[0][0] > 0.3  # lines came as written, not all at the end
    assert wait_for(api, "chatty", finished, timeout=2).status.phase == "Succeeded"


def test_tail_timestamps_limit_and_since(api: CoreV1Api, emulator: Emulator) -> None:
    api.create_namespaced_pod("default", scripted("counted", duration=0.2, log_lines=10, log_interval=0.01))
    wait_for(api, "counted", finished)
    full = api.read_namespaced_pod_log("counted", "default")
    assert full.splitlines() == [f"base line {n}" for n in range(1, 11)]
    assert api.read_namespaced_pod_log("counted", "default", tail_lines=3) == "base line 8\nbase line 9\nbase line 10\n"
    assert api.read_namespaced_pod_log("counted", "default", tail_lines=0) == ""
    assert api.read_namespaced_pod_log("counted", "default", limit_bytes=15) == full[:15]
    stamped = api.read_namespaced_pod_log("counted", "default", timestamps=True).splitlines()
    stamps = [line.split(" ", 1)[0] for line in stamped]
    assert [line.split(" ", 1)[1] for line in stamped] == full.splitlines()
    assert all(len(stamp) == 30 and stamp.endswith("Z") for stamp in stamps)  # RFC 3339 with nanoseconds
    assert stamps == sorted(stamps)
    status, body = raw_get(api, emulator, "/api/v1/namespaces/default/pods/counted/log", sinceTime=stamps[6][:19] + "Z")
    assert status == 200 and body.splitlines()[-1] == "base line 10"
    future = datetime.fromisoformat(stamps[-1].replace("Z", "+00:00")).replace(microsecond=0)
    status, body = raw_get(
        api, emulator, "/api/v1/namespaces/default/pods/counted/log", sinceTime=f"{future.year + 1}-01-01T00:00:00Z"
    )
    assert (status, body) == (200, "")
    status, body = raw_get(
        api, emulator, "/api/v1/namespaces/default/pods/counted/log", sinceTime=stamps[0], sinceSeconds="5"
    )
    assert (
        status == 422 and "at most one of `sinceTime` or `sinceSeconds` may be specified" in json.loads(body)["message"]
    )
    assert api.read_namespaced_pod_log("counted", "default", since_seconds=60) == full


def test_since_seconds_drops_older_lines(api: CoreV1Api) -> None:
    api.create_namespaced_pod("default", running("aging", ["sh", "-c", "echo old; sleep 1.3; echo new; echo newer"]))
    wait_for(api, "aging", finished)
    assert api.read_namespaced_pod_log("aging", "default", since_seconds=1) == "new\nnewer\n"


def test_previous_instance_logs(api: CoreV1Api, emulator: Emulator) -> None:
    emulator.kubelet.timings.backoff_initial = 30  # stay in CrashLoopBackOff after the first crash
    count = 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo "run $n"; exit 1'
    api.create_namespaced_pod("default", running("again", ["sh", "-c", count], restart="OnFailure"))
    looping = wait_for(api, "again", lambda p: p.status.container_statuses[0].restart_count == 1)
    assert looping.status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff"
    assert api.read_namespaced_pod_log("again", "default", previous=True) == "run 1\n"
    assert api.read_namespaced_pod_log("again", "default") == "run 1\n"  # backing off: the last instance's log

    api.create_namespaced_pod("default", running("once", ["true"]))
    wait_for(api, "once", finished)
    status, message = bad_request(lambda: api.read_namespaced_pod_log("once", "default", previous=True))
    assert (status, message) == (400, 'previous terminated container "base" in pod "once" not found')


def test_container_choice_and_waiting_errors(api: CoreV1Api) -> None:
    multi = scripted("multi", ("a", "b"), duration=30)
    multi["spec"]["initContainers"] = [{"name": "init", "image": "busybox:1.36", "command": ["true"]}]
    api.create_namespaced_pod("default", multi)
    status, message = bad_request(lambda: api.read_namespaced_pod_log("multi", "default"))
    assert (status, message) == (400, "a container name must be specified for pod multi, choose one of: [init a b]")
    status, message = bad_request(lambda: api.read_namespaced_pod_log("multi", "default", container="nope"))
    assert (status, message) == (400, "container nope is not valid for pod multi")
    api.create_namespaced_pod("default", scripted("slow", duration=1, start_delay=30))
    wait_for(api, "slow", lambda p: bool(p.status.container_statuses))
    status, message = bad_request(lambda: api.read_namespaced_pod_log("slow", "default"))
    assert (status, message) == (400, 'container "base" in pod "slow" is waiting to start: ContainerCreating')
    api.create_namespaced_pod("default", scripted("pulling", failure="ErrImagePull"))
    wait_for(
        api,
        "pulling",
        lambda p: (
            p.status.container_statuses and p.status.container_statuses[0].state.waiting.reason == "ImagePullBackOff"
        ),
    )
    status, message = bad_request(lambda: api.read_namespaced_pod_log("pulling", "default"))
    assert (status, message) == (
        400,
        'container "base" in pod "pulling" is waiting to start: trying and failing to pull image',
    )
    status, _ = bad_request(lambda: api.read_namespaced_pod_log("ghost", "default"))
    assert status == 404


def test_long_lines_and_a_last_line_without_newline(api: CoreV1Api) -> None:
    program = "import sys; sys.stdout.write('x' * 40000 + '\\n' + 'tail'); sys.stdout.flush()"
    api.create_namespaced_pod("default", running("wide", [sys.executable, "-c", program]))
    wait_for(api, "wide", finished)
    assert api.read_namespaced_pod_log("wide", "default") == "x" * 40000 + "\ntail\n"


def test_large_log_streams_in_chunks(api: CoreV1Api) -> None:
    lines, size = 40_000, 250
    api.create_namespaced_pod(
        "default", scripted("bulky", duration=0, log_lines=lines, log_line_bytes=size, log_interval=0)
    )
    wait_for(api, "bulky", finished, timeout=20)
    response = api.read_namespaced_pod_log("bulky", "default", _preload_content=False)
    total = chunks = 0
    for chunk in response.stream(amt=256 * 1024):
        total += len(chunk)
        chunks += 1
    response.release_conn()
    assert total == lines * (size + 1)
    assert chunks > 1
    assert len(api.read_namespaced_pod_log("bulky", "default", limit_bytes=1000, tail_lines=100)) == 1000


def kubectl(emulator: Emulator, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(emulator.kubeconfig_path)}
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env, timeout=timeout)


@needs_kubectl
def test_kubectl_logs_follow(api: CoreV1Api, emulator: Emulator) -> None:
    api.create_namespaced_pod("default", scripted("followed", duration=0.6, log_lines=4, log_interval=0.1))
    wait_for(api, "followed", is_running)
    result = kubectl(emulator, "logs", "-f", "followed")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"base line {n}" for n in range(1, 5)]
    tail = kubectl(emulator, "logs", "--tail=1", "--timestamps", "followed")
    assert tail.returncode == 0, tail.stderr
    assert tail.stdout.endswith("Z base line 4\n")
    since = kubectl(emulator, "logs", "--since-time=2000-01-01T00:00:00Z", "followed")
    assert since.stdout.count("\n") == 4


@needs_kubectl
def test_kubectl_logs_error_message(api: CoreV1Api, emulator: Emulator) -> None:
    api.create_namespaced_pod("default", scripted("pair", ("a", "b"), duration=30))
    result = kubectl(emulator, "logs", "pair", "-c", "nope")
    assert result.returncode != 0
    assert "container nope is not valid for pod pair" in result.stderr
