"""Pod status → outcome rules, on statuses shaped like a 1.32 kubelet writes them; deadlines; next_check; messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_kpo_deferrable.outcome import Deadlines, Outcome, PodResult, describe, evaluate, next_check

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
NONE = Deadlines(schedule=None, startup_timeout_seconds=None, execution=None)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ts(seconds: float) -> str:
    return at(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def waiting(reason: str, message: str | None = None) -> dict[str, Any]:
    return {"waiting": {"reason": reason} | ({"message": message} if message else {})}


def running(since: float = 2) -> dict[str, Any]:
    return {"running": {"startedAt": ts(since)}}


def terminated(code: int, reason: str, message: str | None = None) -> dict[str, Any]:
    state = {
        "exitCode": code,
        "reason": reason,
        "startedAt": ts(2),
        "finishedAt": ts(8),
        "containerID": "containerd://4f1c0a9e",
    }
    return {"terminated": state | ({"message": message} if message else {})}


def container(name: str, state: dict[str, Any], restarts: int = 0, last: dict[str, Any] | None = None) -> dict:
    status = {
        "name": name,
        "state": state,
        "lastState": last or {},
        "ready": "running" in state,
        "restartCount": restarts,
        "image": "docker.io/library/python:3.12-slim",
        "imageID": "docker.io/library/python@sha256:" + "ab" * 32,
        "started": "running" in state,
    }
    if "waiting" not in state:
        status["containerID"] = "containerd://4f1c0a9e"
    return status


def condition(kind: str, status: str, reason: str | None = None, message: str | None = None, at: float = 0) -> dict:
    result = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": ts(at)}
    return result | ({"reason": reason} if reason else {}) | ({"message": message} if message else {})


def pod(
    phase: str,
    containers: list[dict],
    init: list[dict] | None = None,
    reason: str | None = None,
    message: str | None = None,
    deleting: bool = False,
    scheduled_at: float = 0,
) -> dict[str, Any]:
    """A scheduled pod's status with the conditions and fields a kubelet writes."""
    ready = all(c["ready"] for c in containers)
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            condition("PodReadyToStartContainers", "True", at=1),
            condition("Initialized", "True", at=1),
            condition("Ready", "True" if ready else "False", None if ready else "ContainersNotReady", at=1),
            condition("ContainersReady", "True" if ready else "False", None if ready else "ContainersNotReady", at=1),
            condition("PodScheduled", "True", at=scheduled_at),
        ],
        "hostIP": "10.0.0.5",
        "hostIPs": [{"ip": "10.0.0.5"}],
        "podIP": "10.244.1.7",
        "podIPs": [{"ip": "10.244.1.7"}],
        "startTime": ts(scheduled_at + 0.5),
        "qosClass": "BestEffort",
        "containerStatuses": containers,
    }
    if init is not None:
        status["initContainerStatuses"] = init
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    metadata = {"name": "task-abc123", "namespace": "default", "uid": "6d1b", "resourceVersion": "812"}
    if deleting:
        metadata["deletionTimestamp"] = ts(40)
    return {"metadata": metadata, "status": status}


def created() -> dict[str, Any]:
    """A pod the scheduler has not looked at yet."""
    return {
        "metadata": {"name": "task-abc123", "uid": "6d1b"},
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }


UNSCHEDULABLE_MESSAGE = (
    "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
    "2 Insufficient memory. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
    "2 No preemption victims found for incoming pod."
)


def unschedulable() -> dict[str, Any]:
    return {
        "metadata": {"name": "task-abc123", "uid": "6d1b"},
        "status": {
            "phase": "Pending",
            "conditions": [condition("PodScheduled", "False", "Unschedulable", UNSCHEDULABLE_MESSAGE)],
            "qosClass": "Burstable",
        },
    }


PULL_MESSAGE = 'Back-off pulling image "ghcr.io/acme/nope:1"'
CONFIG_MESSAGE = 'secret "db-credentials" not found'
START_MESSAGE = (
    "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: "
    'unable to start container process: exec: "pythn": executable file not found in $PATH: unknown'
)
SIDECAR = container("istio-proxy", running(1))

# (id, pod, expected (outcome, reason, exit_code, container) or None)
STATE_CASES = [
    ("succeeded", pod("Succeeded", [container("base", terminated(0, "Completed"))]), ("succeeded", None, 0, "base")),
    (
        "base done, sidecar still running",
        pod("Running", [container("base", terminated(0, "Completed")), SIDECAR]),
        ("succeeded", None, 0, "base"),
    ),
    ("exit 1", pod("Failed", [container("base", terminated(1, "Error"))]), ("failed", "Error", 1, "base")),
    ("oom", pod("Failed", [container("base", terminated(137, "OOMKilled"))]), ("failed", "OOMKilled", 137, "base")),
    (
        "start error",
        pod("Failed", [container("base", terminated(128, "StartError", START_MESSAGE))]),
        ("failed", "StartError", 128, "base"),
    ),
    (
        "base failed, sidecar still running",
        pod("Running", [container("base", terminated(2, "Error")), SIDECAR]),
        ("failed", "Error", 2, "base"),
    ),
    (
        "evicted",
        pod(
            "Failed",
            [container("base", terminated(137, "Error"))],
            reason="Evicted",
            message="The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki.",
        ),
        ("failed", "Evicted", 137, "base"),
    ),
    (
        "active deadline, containers not killed yet",
        pod(
            "Failed",
            [container("base", running())],
            reason="DeadlineExceeded",
            message="Pod was active on the node longer than the specified deadline",
        ),
        ("failed", "DeadlineExceeded", None, None),
    ),
    (
        "node lost",
        pod("Unknown", [container("base", running())], reason="NodeLost"),
        ("failed", "NodeLost", None, None),
    ),
    (
        "init container failed",
        pod(
            "Failed",
            [container("base", waiting("PodInitializing"))],
            init=[container("fetch-data", terminated(3, "Error"))],
        ),
        ("failed", "Error", 3, "fetch-data"),
    ),
    (
        "invalid image name",
        pod("Pending", [container("base", waiting("InvalidImageName", 'couldn\'t parse image name "Py"'))]),
        ("failed", "InvalidImageName", None, "base"),
    ),
    (
        "never pull",
        pod("Pending", [container("base", waiting("ErrImageNeverPull", "not present with pull policy of Never"))]),
        ("failed", "ErrImageNeverPull", None, "base"),
    ),
    (
        "pull back-off in an init container",
        pod(
            "Pending",
            [container("base", waiting("PodInitializing"))],
            init=[container("fetch-data", waiting("ImagePullBackOff", PULL_MESSAGE))],
        ),
        ("failed", "ImagePullBackOff", None, "fetch-data"),
    ),
    ("pull error, startup time left", pod("Pending", [container("base", waiting("ErrImagePull", "not found"))]), None),
    (
        "config error, startup time left",
        pod("Pending", [container("base", waiting("CreateContainerConfigError"))]),
        None,
    ),
    (
        "crash loop, 2 restarts",
        pod("Running", [container("base", waiting("CrashLoopBackOff"), 2, terminated(1, "Error"))]),
        None,
    ),
    (
        "crash loop, 3 restarts",
        pod("Running", [container("base", waiting("CrashLoopBackOff", "back-off 40s"), 3, terminated(1, "Error"))]),
        ("failed", "CrashLoopBackOff", 1, "base"),
    ),
    ("running", pod("Running", [container("base", running()), SIDECAR]), None),
    ("creating", pod("Pending", [container("base", waiting("ContainerCreating"))]), None),
    (
        "deleted while running",
        pod("Running", [container("base", running())], deleting=True),
        ("deleted", None, None, None),
    ),
    (
        "deleted, killed by SIGTERM",
        pod("Failed", [container("base", terminated(143, "Error"))], deleting=True),
        ("deleted", None, 143, "base"),
    ),
    (
        "succeeded then deleted",
        pod("Succeeded", [container("base", terminated(0, "Completed"))], deleting=True),
        ("succeeded", None, 0, "base"),
    ),
    ("unseen pod", {"metadata": {}, "status": {}}, None),
    ("unschedulable, no deadline", unschedulable(), None),
]


@pytest.mark.parametrize(("state", "expected"), [c[1:] for c in STATE_CASES], ids=[c[0] for c in STATE_CASES])
def test_state_alone(state: dict, expected: tuple | None) -> None:
    result = evaluate(state, "base", NONE, at(10))
    if expected is None:
        assert result is None
    else:
        assert result is not None
        assert (result.outcome.value, result.reason, result.exit_code, result.container) == expected


def test_failure_messages_come_from_the_kubelet() -> None:
    start = evaluate(pod("Failed", [container("base", terminated(128, "StartError", START_MESSAGE))]), "base", NONE, T0)
    assert start is not None and start.message == START_MESSAGE
    init = [container("fetch-data", waiting("ImagePullBackOff", PULL_MESSAGE))]
    pull = evaluate(pod("Pending", [container("base", waiting("PodInitializing"))], init=init), "base", NONE, T0)
    assert pull is not None and pull.message == PULL_MESSAGE
    deleted = evaluate(pod("Failed", [container("base", terminated(143, "Error"))], deleting=True), "base", NONE, T0)
    assert deleted is not None and "143" in (deleted.message or "")


def test_another_base_container_name() -> None:
    state = pod("Running", [container("main", terminated(0, "Completed")), container("base", running())])
    assert evaluate(state, "base", NONE, T0) is None
    result = evaluate(state, "main", NONE, T0)
    assert result is not None and result.outcome is Outcome.SUCCEEDED


def scheduled_waiting(reason: str, message: str | None = None) -> dict[str, Any]:
    return pod("Pending", [container("base", waiting(reason, message))], scheduled_at=5)


SCHEDULE = Deadlines(schedule=at(60), startup_timeout_seconds=None, execution=None)
STARTUP = Deadlines(schedule=at(60), startup_timeout_seconds=120, execution=None)
EXECUTION = Deadlines(schedule=at(60), startup_timeout_seconds=120, execution=at(600))
INIT_RUNNING = pod("Pending", [container("base", waiting("PodInitializing"))], [container("fetch", running())], None)

# (id, pod, deadlines, seconds after T0, expected (outcome, reason) or None)
CLOCK_CASES = [
    ("unschedulable before the deadline", unschedulable(), SCHEDULE, 59, None),
    ("unschedulable at the deadline", unschedulable(), SCHEDULE, 60, ("failed", "Unschedulable")),
    ("not looked at by the scheduler", created(), SCHEDULE, 61, ("timeout", "ScheduleTimeout")),
    ("no schedule deadline", unschedulable(), NONE, 10_000, None),
    ("scheduled late: no schedule timeout", scheduled_waiting("ContainerCreating"), SCHEDULE, 500, None),
    ("creating before startup deadline", scheduled_waiting("ContainerCreating"), STARTUP, 124, None),
    (
        "creating at startup deadline",
        scheduled_waiting("ContainerCreating"),
        STARTUP,
        125,
        ("timeout", "StartupTimeout"),
    ),
    ("init still running", INIT_RUNNING, STARTUP, 125, ("timeout", "StartupTimeout")),
    (
        "pull error at startup deadline",
        scheduled_waiting("ErrImagePull", "not found"),
        STARTUP,
        125,
        ("failed", "ErrImagePull"),
    ),
    (
        "missing secret at startup deadline",
        scheduled_waiting("CreateContainerConfigError", CONFIG_MESSAGE),
        STARTUP,
        125,
        ("failed", "CreateContainerConfigError"),
    ),
    ("no startup timeout", scheduled_waiting("ContainerCreating"), SCHEDULE, 10_000, None),
    ("running long after startup", pod("Running", [container("base", running())]), STARTUP, 10_000, None),
    ("running before execution deadline", pod("Running", [container("base", running())]), EXECUTION, 599, None),
    (
        "running at execution deadline",
        pod("Running", [container("base", running())]),
        EXECUTION,
        600,
        ("timeout", "ExecutionTimeout"),
    ),
    ("unschedulable at execution deadline", unschedulable(), EXECUTION, 600, ("timeout", "ExecutionTimeout")),
    ("unseen at execution deadline", {"metadata": {}, "status": {}}, EXECUTION, 600, ("timeout", "ExecutionTimeout")),
    ("unseen long after the other deadlines", {"metadata": {}, "status": {}}, EXECUTION, 599, None),
    (
        "finished before the deadline was noticed",
        pod("Succeeded", [container("base", terminated(0, "Completed"))]),
        EXECUTION,
        900,
        ("succeeded", None),
    ),
    (
        "naive deadlines are UTC",
        unschedulable(),
        Deadlines(schedule=at(60).replace(tzinfo=None), startup_timeout_seconds=None, execution=None),
        60,
        ("failed", "Unschedulable"),
    ),
]


@pytest.mark.parametrize(
    ("state", "deadlines", "seconds", "expected"), [c[1:] for c in CLOCK_CASES], ids=[c[0] for c in CLOCK_CASES]
)
def test_deadlines(state: dict, deadlines: Deadlines, seconds: float, expected: tuple | None) -> None:
    result = evaluate(state, "base", deadlines, at(seconds))
    assert (None if result is None else (result.outcome.value, result.reason)) == expected


def test_unschedulable_carries_the_scheduler_message() -> None:
    result = evaluate(unschedulable(), "base", SCHEDULE, at(60))
    assert result is not None and result.message == UNSCHEDULABLE_MESSAGE


def test_startup_counts_from_start_time_without_a_scheduled_condition() -> None:
    state = scheduled_waiting("ContainerCreating")
    del state["status"]["conditions"]
    state["status"]["startTime"] = ts(10)  # only startTime left: the clock runs from it
    assert evaluate(state, "base", STARTUP, at(129)) is None
    assert evaluate(state, "base", STARTUP, at(130)) is not None


# (id, pod or None, deadlines, now seconds, expected seconds or None)
NEXT_CASES = [
    ("unseen: execution only", None, EXECUTION, 0, 600),
    ("unseen, no execution deadline", None, STARTUP, 0, None),
    ("unscheduled: schedule first", unschedulable(), EXECUTION, 0, 60),
    ("unscheduled after the schedule deadline: execution", unschedulable(), EXECUTION, 70, 600),
    ("scheduled, not started: startup", scheduled_waiting("ContainerCreating"), EXECUTION, 10, 125),
    ("scheduled, no startup timeout", scheduled_waiting("ContainerCreating"), SCHEDULE, 10, None),
    ("running: execution", pod("Running", [container("base", running())]), EXECUTION, 10, 600),
    ("running, no deadlines", pod("Running", [container("base", running())]), NONE, 10, None),
    ("all deadlines passed", pod("Running", [container("base", running())]), EXECUTION, 700, None),
]


@pytest.mark.parametrize(
    ("state", "deadlines", "now", "expected"), [c[1:] for c in NEXT_CASES], ids=[c[0] for c in NEXT_CASES]
)
def test_next_check(state: dict | None, deadlines: Deadlines, now: float, expected: float | None) -> None:
    assert next_check(state, "base", deadlines, at(now)) == (None if expected is None else at(expected))


@pytest.mark.parametrize(
    "state",
    [
        unschedulable(),
        created(),
        scheduled_waiting("ContainerCreating"),
        scheduled_waiting("ErrImagePull"),
        INIT_RUNNING,
    ],
)
def test_next_check_is_when_evaluate_changes_its_answer(state: dict) -> None:
    deadlines = Deadlines(schedule=at(60), startup_timeout_seconds=30, execution=at(600))
    now = at(1)
    while (wake := next_check(state, "base", deadlines, now)) is not None:
        assert evaluate(state, "base", deadlines, wake - timedelta(microseconds=1)) is None
        result = evaluate(state, "base", deadlines, wake)
        if result is not None:
            break
        now = wake
    assert result is not None


def test_result_round_trip_ignores_event_extras() -> None:
    result = PodResult(Outcome.FAILED, "OOMKilled", 137, "killed", "base")
    event = json.loads(json.dumps(result.to_dict())) | {"pod_name": "p", "namespace": "default"}
    assert event["outcome"] == "failed"
    assert PodResult.from_dict(event) == result
    assert PodResult.from_dict({"outcome": "succeeded"}) == PodResult(Outcome.SUCCEEDED, None, None, None, None)


# (reason, outcome, words the hint must contain)
HINT_CASES = [
    ("ErrImagePull", Outcome.FAILED, "image_pull_secrets"),
    ("ImagePullBackOff", Outcome.FAILED, "registry"),
    ("InvalidImageName", Outcome.FAILED, "image reference"),
    ("CreateContainerConfigError", Outcome.FAILED, "Secret or ConfigMap"),
    ("Unschedulable", Outcome.FAILED, "node_selector"),
    ("OOMKilled", Outcome.FAILED, "memory limit"),
    ("DeadlineExceeded", Outcome.FAILED, "active_deadline_seconds"),
    ("ScheduleTimeout", Outcome.TIMEOUT, "schedule_timeout_seconds"),
    ("StartupTimeout", Outcome.TIMEOUT, "startup_timeout_seconds"),
    ("ExecutionTimeout", Outcome.TIMEOUT, "execution_timeout"),
]


@pytest.mark.parametrize(("reason", "outcome", "hint"), HINT_CASES)
def test_describe_gives_a_hint(reason: str, outcome: Outcome, hint: str) -> None:
    text = describe(PodResult(outcome, reason, None, None, None), "etl-x1", "jobs")
    assert "etl-x1" in text and "jobs" in text and reason in text and outcome.value in text
    assert hint in text


def test_describe_names_everything_known() -> None:
    result = PodResult(Outcome.FAILED, "OOMKilled", 137, "memory cgroup out of memory", "base")
    text = describe(result, "etl-x1", "jobs")
    for part in ("etl-x1", "jobs", "failed", "OOMKilled", "137", "base", "memory cgroup out of memory"):
        assert part in text
    assert "\n" not in text
    plain = describe(PodResult(Outcome.FAILED, "Error", 3, None, "base"), "etl-x1", "jobs")
    assert "exit code 3" in plain and "log" in plain
    assert "deleted" in describe(PodResult(Outcome.DELETED, None, None, None, None), "etl-x1", "jobs")
