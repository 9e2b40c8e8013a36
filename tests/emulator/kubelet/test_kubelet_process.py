"""The simulated kubelet with the process runtime, seen through the real API with the official ``kubernetes`` client.

Each pod runs real local processes; statuses, events and logs are read back over HTTP as the operator would.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client import CoreV1Api, V1Pod

from airflow_kpo_deferrable.emulator import Emulator
from tests.support.emulator import host_pids, wait_for

pytestmark = pytest.mark.timeout(60)


def container(command: list[str] | None = None, name: str = "base", image: str = "busybox:1.36", **extra: Any) -> dict:
    return {"name": name, "image": image, **({"command": command} if command else {}), **extra}


def pod(name: str, *containers: dict, restart: str = "Never", annotations: dict | None = None, **spec: Any) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"restartPolicy": restart, "containers": list(containers), **spec},
    }


def phase_is(*phases: str) -> Callable[[V1Pod], bool]:
    return lambda p: p.status.phase in phases


def waiting_reason(name: str, reason: str, init: bool = False) -> Callable[[V1Pod], bool]:
    def check(p: V1Pod) -> bool:
        statuses = (p.status.init_container_statuses if init else p.status.container_statuses) or []
        return any(s.name == name and s.state.waiting and s.state.waiting.reason == reason for s in statuses)

    return check


def events(api: CoreV1Api, name: str) -> list[tuple[str, str]]:
    items = api.list_namespaced_event("default", field_selector=f"involvedObject.name={name}").items
    return [(e.reason, e.message) for e in items]


def condition(p: V1Pod, kind: str) -> Any:
    return next(c for c in p.status.conditions if c.type == kind)


def test_process_runs_for_real_exit_code_log_and_duration(api: CoreV1Api) -> None:
    script = "echo out; echo err >&2; echo home=$HOME host=$HOSTNAME greeting=$GREETING; sleep 1.1; exit 3"
    env = [{"name": "WHO", "value": "kubelet"}, {"name": "GREETING", "value": "hello $(WHO)"}]
    api.create_namespaced_pod("default", pod("real", container(["sh", "-c", script], env=env)))
    begun = time.monotonic()
    running = wait_for(api, "real", phase_is("Running"))
    assert running.spec.node_name == "emulator-node"
    assert running.status.pod_ip and running.status.host_ip and running.status.start_time
    assert running.status.qos_class == "BestEffort"
    assert running.status.container_statuses[0].ready and running.status.container_statuses[0].started
    done = wait_for(api, "real", phase_is("Succeeded", "Failed"))
    assert time.monotonic() - begun >= 1.1
    state = done.status.container_statuses[0].state.terminated
    assert (done.status.phase, state.exit_code, state.reason) == ("Failed", 3, "Error")
    assert (state.finished_at - state.started_at).total_seconds() >= 1
    assert state.container_id.startswith("containerd://")
    assert condition(done, "Ready").reason == "PodFailed"
    log = api.read_namespaced_pod_log("real", "default")
    lines = sorted(log.splitlines())  # stdout and stderr are separate pipes: their order is not guaranteed
    assert lines[:2] == ["err", "home=" + lines[1].removeprefix("home=")] and lines[2] == "out"
    assert lines[1].endswith(" host=real greeting=hello kubelet")
    reasons = [reason for reason, _ in events(api, "real")]
    assert reasons[:1] == ["Scheduled"] and {"Pulled", "Created", "Started"} <= set(reasons)


def test_command_not_found_fails_like_containerd(api: CoreV1Api) -> None:
    api.create_namespaced_pod("default", pod("missing", container(["no-such-program", "--flag"])))
    done = wait_for(api, "missing", phase_is("Failed"))
    state = done.status.container_statuses[0].state.terminated
    assert (state.exit_code, state.reason) == (128, "StartError")
    assert state.message.startswith("failed to create containerd task: ")
    assert state.message.endswith('exec: "no-such-program": executable file not found in $PATH: unknown')
    assert ("Failed", f"Error: {state.message}") in events(api, "missing")


def test_image_and_config_failures_derived_from_the_spec(api: CoreV1Api) -> None:
    api.create_namespaced_pod("default", pod("upper", container(["true"], image="Busybox:1.36")))
    api.create_namespaced_pod("default", pod("nohost", container(["true"], image="registry.invalid/team/app:1")))
    secret_env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api-token", "key": "token"}}}]
    api.create_namespaced_pod("default", pod("noconfig", container(["true"], env=secret_env)))

    upper = wait_for(api, "upper", waiting_reason("base", "InvalidImageName"))
    assert (
        "repository name (library/Busybox) must be lowercase"
        in upper.status.container_statuses[0].state.waiting.message
    )
    assert upper.status.phase == "Pending"

    pulled = wait_for(api, "nohost", waiting_reason("base", "ErrImagePull"))
    assert "lookup registry.invalid: no such host" in pulled.status.container_statuses[0].state.waiting.message
    backing_off = wait_for(api, "nohost", waiting_reason("base", "ImagePullBackOff"))
    assert (
        backing_off.status.container_statuses[0].state.waiting.message
        == 'Back-off pulling image "registry.invalid/team/app:1"'
    )
    wait_for(api, "nohost", waiting_reason("base", "ErrImagePull"))  # it keeps cycling
    assert ("BackOff", 'Back-off pulling image "registry.invalid/team/app:1"') in events(api, "nohost")

    config = wait_for(api, "noconfig", waiting_reason("base", "CreateContainerConfigError"))
    assert config.status.container_statuses[0].state.waiting.message == 'secret "api-token" not found'
    assert config.status.phase == "Pending"


def test_unschedulable_from_requests_and_node_selector(api: CoreV1Api) -> None:
    huge = container(["true"], resources={"requests": {"cpu": "64", "memory": "1Gi"}})
    api.create_namespaced_pod("default", pod("huge", huge))
    api.create_namespaced_pod("default", pod("picky", container(["true"]), nodeSelector={"disktype": "ssd"}))
    huge_pod = wait_for(api, "huge", lambda p: bool(p.status.conditions))
    scheduled = condition(huge_pod, "PodScheduled")
    assert (scheduled.status, scheduled.reason) == ("False", "Unschedulable")
    assert scheduled.message.startswith("0/1 nodes are available: 1 Insufficient cpu.")
    assert huge_pod.spec.node_name is None and huge_pod.status.phase == "Pending"
    picky = condition(wait_for(api, "picky", lambda p: bool(p.status.conditions)), "PodScheduled")
    assert "didn't match Pod's node affinity/selector" in picky.message
    assert ("FailedScheduling", scheduled.message) in events(api, "huge")
    api.delete_namespaced_pod("huge", "default")  # never bound: goes at once
    with pytest.raises(kubernetes.client.ApiException) as gone:
        api.read_namespaced_pod("huge", "default")
    assert gone.value.status == 404


def test_oom_killed_annotation_kills_the_real_process(api: CoreV1Api) -> None:
    annotations = {"emulator.kpo.dev/failure": "OOMKilled", "emulator.kpo.dev/duration": "0.3"}
    api.create_namespaced_pod("default", pod("oom", container(["sleep", "30"]), annotations=annotations))
    begun = time.monotonic()
    done = wait_for(api, "oom", phase_is("Failed"), timeout=15)
    assert time.monotonic() - begun < 15  # killed, not the 30 s sleep ending
    state = done.status.container_statuses[0].state.terminated
    assert (state.exit_code, state.reason) == (137, "OOMKilled")


def test_eviction_on_demand(api: CoreV1Api, emulator: Emulator) -> None:
    api.create_namespaced_pod("default", pod("evictee", container(["sleep", "30"])))
    wait_for(api, "evictee", phase_is("Running"))
    emulator.call(emulator.kubelet.evict, "default", "evictee")
    done = wait_for(api, "evictee", lambda p: p.status.container_statuses[0].state.terminated is not None)
    assert (done.status.phase, done.status.reason) == ("Failed", "Evicted")
    assert done.status.message.startswith("The node was low on resource: memory.")
    assert condition(done, "DisruptionTarget").reason == "TerminationByKubelet"
    assert done.status.container_statuses[0].state.terminated.exit_code == 137
    assert ("Evicted", done.status.message) in events(api, "evictee")


def test_node_lost_on_demand(api: CoreV1Api, emulator: Emulator) -> None:
    api.create_namespaced_pod("default", pod("stranded", container(["sleep", "30"])))
    wait_for(api, "stranded", phase_is("Running"))
    emulator.call(emulator.kubelet.lose_node, "default", "stranded")
    lost = wait_for(api, "stranded", phase_is("Unknown"))
    assert lost.status.reason == "NodeLost"
    assert lost.status.message == "Node emulator-node which was running pod stranded is unresponsive"
    assert condition(lost, "Ready").status == "False"


def test_a_pod_on_a_lost_node_needs_a_force_delete(api: CoreV1Api, emulator: Emulator) -> None:
    api.create_namespaced_pod("default", pod("orphaned", container(["sleep", "30"])))
    wait_for(api, "orphaned", phase_is("Running"))
    emulator.call(emulator.kubelet.lose_node, "default", "orphaned")
    wait_for(api, "orphaned", phase_is("Unknown"))
    api.delete_namespaced_pod("orphaned", "default", grace_period_seconds=1)  # a normal delete: no kubelet confirms it
    pending = wait_for(api, "orphaned", lambda p: p.metadata.deletion_timestamp is not None)
    time.sleep(2)  # well past its grace period
    stuck = api.read_namespaced_pod("orphaned", "default")
    assert (stuck.status.phase, stuck.status.reason) == ("Unknown", "NodeLost")
    assert stuck.metadata.deletion_timestamp == pending.metadata.deletion_timestamp
    assert stuck.metadata.deletion_grace_period_seconds == 1
    api.delete_namespaced_pod("orphaned", "default", grace_period_seconds=0)  # force: the API server removes it
    with pytest.raises(kubernetes.client.ApiException) as gone:
        api.read_namespaced_pod("orphaned", "default")
    assert gone.value.status == 404


def test_active_deadline_kills_the_containers(api: CoreV1Api) -> None:
    slow = pod("late", container(["sleep", "30"]), activeDeadlineSeconds=1, terminationGracePeriodSeconds=1)
    api.create_namespaced_pod("default", slow)
    done = wait_for(api, "late", lambda p: p.status.container_statuses[0].state.terminated is not None)
    assert (done.status.phase, done.status.reason) == ("Failed", "DeadlineExceeded")
    assert done.status.message == "Pod was active on the node longer than the specified deadline"
    assert done.status.container_statuses[0].state.terminated.exit_code == 143  # sleep dies of SIGTERM
    assert ("Killing", "Stopping container base") in events(api, "late")


def test_init_containers_then_containers_with_a_native_sidecar(api: CoreV1Api) -> None:
    init = container(["sh", "-c", "echo prepared > shared.txt"], name="prepare")
    sidecar = container(["sleep", "30"], name="proxy", restartPolicy="Always")
    main = container(["sh", "-c", "sleep 0.3; cat shared.txt"])
    api.create_namespaced_pod("default", pod("layered", main, initContainers=[init, sidecar]))
    initializing = wait_for(api, "layered", lambda p: p.status.init_container_statuses is not None)
    assert initializing.status.phase == "Pending"
    assert initializing.status.container_statuses[0].state.waiting.reason == "PodInitializing"
    running = wait_for(api, "layered", lambda p: p.status.container_statuses[0].state.running is not None)
    prepare, proxy = running.status.init_container_statuses
    assert prepare.state.terminated.reason == "Completed"
    assert proxy.state.running is not None and proxy.ready
    assert condition(running, "Initialized").status == "True"
    done = wait_for(api, "layered", phase_is("Succeeded", "Failed"))
    assert done.status.phase == "Succeeded"  # the sidecar's SIGTERM exit does not count
    assert done.status.init_container_statuses[1].state.terminated is not None
    assert api.read_namespaced_pod_log("layered", "default", container="base") == "prepared\n"
    started = [message for reason, message in events(api, "layered") if reason == "Started"]
    assert started == ["Started container prepare", "Started container proxy", "Started container base"]


def test_failed_init_container_fails_the_pod(api: CoreV1Api) -> None:
    init = container(["sh", "-c", "exit 4"], name="prepare")
    api.create_namespaced_pod("default", pod("badinit", container(["true"]), initContainers=[init]))
    done = wait_for(api, "badinit", phase_is("Failed"))
    assert done.status.init_container_statuses[0].state.terminated.exit_code == 4
    assert done.status.container_statuses[0].state.waiting.reason == "PodInitializing"


def test_deletion_sends_sigterm_then_removes(api: CoreV1Api, tmp_path: Path) -> None:
    marker = tmp_path / "signals"
    script = f"trap 'echo TERM >> {marker}; exit 0' TERM; echo trapped; while true; do sleep 0.05; done"
    api.create_namespaced_pod("default", pod("graceful", container(["sh", "-c", script])))
    wait_for(api, "graceful", phase_is("Running"))
    wait_for(api, "graceful", lambda p: "trapped" in api.read_namespaced_pod_log("graceful", "default"))
    begun = time.monotonic()
    api.delete_namespaced_pod("graceful", "default", grace_period_seconds=30)
    with pytest.raises(kubernetes.client.ApiException):
        wait_for(api, "graceful", lambda p: False, timeout=15)
    assert time.monotonic() - begun < 15  # gone when the trap exited, well before the 30 s grace period
    assert marker.read_text() == "TERM\n"


def test_deletion_kills_after_the_grace_period(api: CoreV1Api) -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(30)"
    )
    api.create_namespaced_pod("default", pod("stubborn", container([sys.executable, "-c", stubborn])))
    wait_for(api, "stubborn", phase_is("Running"))
    wait_for(api, "stubborn", lambda p: "ready" in api.read_namespaced_pod_log("stubborn", "default"))
    begun = time.monotonic()
    api.delete_namespaced_pod("stubborn", "default", grace_period_seconds=1)
    marked = api.read_namespaced_pod("stubborn", "default")
    assert marked.metadata.deletion_timestamp is not None
    with pytest.raises(kubernetes.client.ApiException) as gone:
        wait_for(api, "stubborn", lambda p: False, timeout=15)
    assert gone.value.status == 404
    assert 0.9 < time.monotonic() - begun < 15  # after the 1 s grace period, long before the 30 s sleep ends


def test_restart_on_failure_backs_off(api: CoreV1Api, emulator: Emulator) -> None:
    api.create_namespaced_pod("default", pod("crashy", container(["sh", "-c", "exit 2"]), restart="OnFailure"))
    looping = wait_for(api, "crashy", waiting_reason("base", "CrashLoopBackOff"))
    status = looping.status.container_statuses[0]
    assert looping.status.phase == "Running"
    assert status.restart_count >= 1 and status.last_state.terminated.exit_code == 2
    assert status.state.waiting.message.startswith("back-off ")
    assert "restarting failed container=base pod=crashy_default(" in status.state.waiting.message
    again = wait_for(api, "crashy", lambda p: p.status.container_statuses[0].restart_count >= 2)
    assert isinstance(again.status.start_time, datetime)
    assert any(reason == "BackOff" for reason, _ in events(api, "crashy"))


def test_a_lost_node_freezes_the_status_while_its_processes_die_unseen(
    api: CoreV1Api, emulator: Emulator, tmp_path: Path
) -> None:
    marker = f"frozen-{uuid.uuid4().hex}"  # the container's PID 1 is 1 inside: find it on the host by its args
    api.create_namespaced_pod("default", pod("frozen", container(["sh", "-c", f"sleep 30; : {marker}"])))
    wait_for(api, "frozen", lambda p: phase_is("Running")(p) and bool(host_pids(marker)))
    pids = host_pids(marker)
    emulator.call(emulator.kubelet.lose_node, "default", "frozen")
    lost = wait_for(api, "frozen", phase_is("Unknown"))
    deadline = time.monotonic() + 10
    while host_pids(marker) and time.monotonic() < deadline:  # the node kills it, unseen
        time.sleep(0.05)
    assert not host_pids(marker), f"the container's processes {pids} outlived its lost node"
    time.sleep(0.3)  # what a reporting kill would write comes right after the exit
    now = api.read_namespaced_pod("frozen", "default")
    assert now.metadata.resource_version == lost.metadata.resource_version
    assert now.status.container_statuses[0].state.running is not None
    assert not [reason for reason, _ in events(api, "frozen") if reason == "Killing"]
