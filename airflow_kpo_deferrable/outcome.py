"""What happened to a pod, decided from its JSON status and the clock alone (no I/O: ``now`` is passed in).

Why: the trigger and the operator's non-deferrable wait must reach the same verdict from the same state, and these
rules are where the provider goes wrong (sidecar hangs, pull errors reported as a generic error, Unschedulable and
OOMKilled never named). Keeping them pure makes every rule a table row in a unit test.

Facts it handles:

* The base container's end decides: terminated with 0 is success even while a sidecar keeps the pod Running, and
  terminated non-zero is a failure with the kubelet's reason (OOMKilled, Error, StartError...) and exit code.
* A pod-level reason (Evicted, DeadlineExceeded) outranks the containers' exit codes: the kubelet kills the
  containers *because* of it. Phase Unknown means the node stopped reporting (NodeLost).
* A pod being deleted (``deletionTimestamp``) that has not succeeded is DELETED: its containers die of SIGTERM, and
  their exit codes would otherwise read as the task's own failure.
* Pull errors that cannot heal (InvalidImageName, ErrImageNeverPull, ImagePullBackOff) fail at once; ErrImagePull and
  config errors (a Secret or ConfigMap created a bit later fixes them) fail only when the startup time is up.
* The statuses watched are slim (no ``spec``), so the restart policy is unknown: a base container in
  CrashLoopBackOff is judged failed once ``restartCount`` reaches ``CRASH_LOOP_RESTARTS`` (3). CrashLoopBackOff only
  happens under restartPolicy Always/OnFailure, so this never fires for the default ``Never``.
* Clocks: the schedule deadline is absolute; startup is counted from the PodScheduled condition's
  ``lastTransitionTime`` (``startTime`` if missing); the execution deadline fires in any non-final state, even for a
  pod never seen (empty status), for which no other clock applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    DELETED = "deleted"
    ERROR = "error"


ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
INVALID_IMAGE_NAME = "InvalidImageName"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
CREATE_CONTAINER_ERROR = "CreateContainerError"
UNSCHEDULABLE = "Unschedulable"
OOM_KILLED = "OOMKilled"
ERROR = "Error"
EVICTED = "Evicted"
DEADLINE_EXCEEDED = "DeadlineExceeded"
NODE_LOST = "NodeLost"
START_ERROR = "StartError"
CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
SCHEDULE_TIMEOUT = "ScheduleTimeout"
STARTUP_TIMEOUT = "StartupTimeout"
EXECUTION_TIMEOUT = "ExecutionTimeout"

CRASH_LOOP_RESTARTS = 3
# Waiting reasons that no retry will cure: fail as soon as they are seen.
HOPELESS_WAITING = frozenset({INVALID_IMAGE_NAME, ERR_IMAGE_NEVER_PULL, IMAGE_PULL_BACK_OFF})
# Waiting reasons that may clear up (registry hiccup, Secret created late): fail with them when startup time is up.
STARTUP_WAITING = frozenset(
    {ERR_IMAGE_PULL, CREATE_CONTAINER_CONFIG_ERROR, CREATE_CONTAINER_ERROR, CRASH_LOOP_BACK_OFF}
)


@dataclass(frozen=True)
class PodResult:
    """The verdict on a pod; ``container`` is the container the reason and exit code come from."""

    outcome: Outcome
    reason: str | None
    exit_code: int | None
    message: str | None
    container: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "reason": self.reason,
            "exit_code": self.exit_code,
            "message": self.message,
            "container": self.container,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PodResult:
        """Inverse of ``to_dict``; other keys (a trigger event's ``pod_name``, ``namespace``) are ignored."""
        return cls(
            outcome=Outcome(data["outcome"]),
            reason=data.get("reason"),
            exit_code=data.get("exit_code"),
            message=data.get("message"),
            container=data.get("container"),
        )


@dataclass(frozen=True)
class Deadlines:
    """``schedule``/``execution`` are absolute; startup is relative to the moment the pod was scheduled."""

    schedule: datetime | None
    startup_timeout_seconds: float | None
    execution: datetime | None


@dataclass(frozen=True)
class _View:
    """The facts of a pod status the rules read."""

    known: bool
    phase: str | None
    reason: str | None
    message: str | None
    deleting: bool
    statuses: list[dict[str, Any]]  # init containers first, then containers
    base: dict[str, Any] | None
    scheduled_at: datetime | None
    scheduled: bool
    unschedulable: dict[str, Any] | None
    base_started: bool


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return _aware(datetime.fromisoformat(text))
    except ValueError:
        return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _view(pod: dict[str, Any], base_container: str) -> _View:
    status = pod.get("status") or {}
    statuses = list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])
    base = next((s for s in status.get("containerStatuses") or [] if s.get("name") == base_container), None)
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    scheduled_condition = conditions.get("PodScheduled") or {}
    phase = status.get("phase")
    if base is not None:
        base_started = bool(
            {"running", "terminated"} & set(base.get("state") or {})
            or (base.get("lastState") or {}).get("terminated")
            or base.get("restartCount")
        )
    else:
        base_started = phase in ("Running", "Succeeded", "Failed")
    # startTime is written by the kubelet, so a pod that has one is on a node whatever its conditions say.
    scheduled = scheduled_condition.get("status") == "True" or base_started or bool(status.get("startTime"))
    unschedulable = scheduled_condition if scheduled_condition.get("reason") == UNSCHEDULABLE else None
    scheduled_at = (
        _time(scheduled_condition.get("lastTransitionTime")) if scheduled_condition.get("status") == "True" else None
    )
    return _View(
        known=bool(status),
        phase=phase,
        reason=status.get("reason"),
        message=status.get("message"),
        deleting=bool((pod.get("metadata") or {}).get("deletionTimestamp")),
        statuses=statuses,
        base=base,
        scheduled_at=scheduled_at or _time(status.get("startTime")),
        scheduled=scheduled,
        unschedulable=None if scheduled else unschedulable,
        base_started=base_started,
    )


def _terminated(container: dict[str, Any] | None) -> dict[str, Any] | None:
    return ((container or {}).get("state") or {}).get("terminated")


def _waiting(container: dict[str, Any]) -> dict[str, Any]:
    return (container.get("state") or {}).get("waiting") or {}


def _exit(container: dict[str, Any], terminated: dict[str, Any], outcome: Outcome = Outcome.FAILED) -> PodResult:
    code = terminated.get("exitCode")
    reason = terminated.get("reason") or (ERROR if code else None)
    if outcome is Outcome.SUCCEEDED:
        reason = None
    return PodResult(outcome, reason, code, terminated.get("message"), container.get("name"))


def _final(view: _View) -> PodResult | None:
    """The verdict the state alone gives, whatever the clock says; None while the pod may still end well."""
    base_end = _terminated(view.base)
    if view.base is not None and base_end is not None and base_end.get("exitCode") == 0:
        return _exit(view.base, base_end, Outcome.SUCCEEDED)
    code = base_end.get("exitCode") if base_end else None
    container = view.base.get("name") if base_end and view.base else None
    if view.phase == "Succeeded":
        return PodResult(Outcome.SUCCEEDED, None, code, None, container)
    if view.phase == "Failed" and view.reason:
        return PodResult(Outcome.FAILED, view.reason, code, view.message, container)
    if view.phase == "Unknown":
        message = view.message or "the pod's node stopped reporting its state"
        return PodResult(Outcome.FAILED, NODE_LOST, code, message, container)
    if view.deleting:
        message = "the pod was deleted before its base container finished"
        if base_end:
            message += f" (it had exited with code {code}, {base_end.get('reason') or 'no reason'})"
        return PodResult(Outcome.DELETED, None, code, message, container)
    if view.base is not None and base_end is not None:
        return _exit(view.base, base_end)
    if view.phase == "Failed":
        for status in view.statuses:
            ended = _terminated(status)
            if ended and ended.get("exitCode"):
                return _exit(status, ended)
        return PodResult(Outcome.FAILED, None, None, view.message, None)
    for status in view.statuses:
        waiting = _waiting(status)
        if waiting.get("reason") in HOPELESS_WAITING:
            return PodResult(Outcome.FAILED, waiting["reason"], None, waiting.get("message"), status.get("name"))
    base = view.base or {}
    if _waiting(base).get("reason") == CRASH_LOOP_BACK_OFF and (base.get("restartCount") or 0) >= CRASH_LOOP_RESTARTS:
        last = (base.get("lastState") or {}).get("terminated") or {}
        message = last.get("message") or _waiting(base).get("message")
        return PodResult(Outcome.FAILED, CRASH_LOOP_BACK_OFF, last.get("exitCode"), message, base.get("name"))
    return None


def _startup_deadline(view: _View, deadlines: Deadlines) -> datetime | None:
    if view.base_started or not view.scheduled or view.scheduled_at is None:
        return None
    if deadlines.startup_timeout_seconds is None:
        return None
    return view.scheduled_at + timedelta(seconds=deadlines.startup_timeout_seconds)


def _clocked(view: _View, deadlines: Deadlines, now: datetime) -> PodResult | None:
    """The verdict of a deadline that has passed, for a pod not yet ended."""
    if deadlines.execution is not None and now >= _aware(deadlines.execution):
        message = f"execution_timeout ran out at {_aware(deadlines.execution).isoformat()} (pod phase {view.phase})"
        return PodResult(Outcome.TIMEOUT, EXECUTION_TIMEOUT, None, message, None)
    if not view.known:
        return None
    if not view.scheduled:
        if deadlines.schedule is None or now < _aware(deadlines.schedule):
            return None
        if view.unschedulable is not None:
            return PodResult(Outcome.FAILED, UNSCHEDULABLE, None, view.unschedulable.get("message"), None)
        message = f"the pod was not scheduled by {_aware(deadlines.schedule).isoformat()}"
        return PodResult(Outcome.TIMEOUT, SCHEDULE_TIMEOUT, None, message, None)
    startup = _startup_deadline(view, deadlines)
    if startup is None or now < startup:
        return None
    for status in view.statuses:
        waiting = _waiting(status)
        if waiting.get("reason") in STARTUP_WAITING:
            return PodResult(Outcome.FAILED, waiting["reason"], None, waiting.get("message"), status.get("name"))
    message = f"the base container had not started {deadlines.startup_timeout_seconds:g}s after scheduling"
    waiting = _waiting(view.base) if view.base else {}
    if waiting.get("reason"):
        message += f" (waiting: {waiting['reason']})"
    return PodResult(Outcome.TIMEOUT, STARTUP_TIMEOUT, None, message, None)


def evaluate(pod: dict[str, Any], base_container: str, deadlines: Deadlines, now: datetime) -> PodResult | None:
    """The pod's outcome, or None while it is still to be waited for.

    ``pod`` is the API's camelCase JSON (at least ``metadata`` and ``status``); an empty status means the pod has not
    been seen, and then only the execution deadline can end the wait.
    """
    view = _view(pod, base_container)
    return _final(view) or _clocked(view, deadlines, _aware(now))


def next_check(pod: dict[str, Any] | None, base_container: str, deadlines: Deadlines, now: datetime) -> datetime | None:
    """The earliest future moment at which ``evaluate`` could answer differently without a new pod state."""
    now = _aware(now)
    view = _view(pod or {}, base_container)
    candidates = [deadlines.execution]
    if view.known and not view.scheduled:
        candidates.append(deadlines.schedule)
    elif view.known:
        candidates.append(_startup_deadline(view, deadlines))
    future = [_aware(moment) for moment in candidates if moment is not None and _aware(moment) > now]
    return min(future, default=None)


_IMAGE_HINT = "check the image name and tag, that the registry is reachable and image_pull_secrets grant access"
_HINTS = {
    ERR_IMAGE_PULL: _IMAGE_HINT,
    IMAGE_PULL_BACK_OFF: _IMAGE_HINT,
    INVALID_IMAGE_NAME: "fix the image reference: [registry/]repository[:tag], repository in lowercase",
    ERR_IMAGE_NEVER_PULL: "image_pull_policy='Never' needs the image already on the node; use 'IfNotPresent'",
    CREATE_CONTAINER_CONFIG_ERROR: "a Secret or ConfigMap (or a key in it) used by env_vars/env_from/volumes is "
    "missing in the namespace: create it or fix the reference",
    CREATE_CONTAINER_ERROR: "the runtime could not create the container: check cmds, volume_mounts and "
    "container_security_context",
    UNSCHEDULABLE: "no node fits the pod: lower container_resources requests, or check node_selector, affinity and "
    "tolerations against the nodes' labels and taints; raise schedule_timeout_seconds if the cluster autoscales",
    OOM_KILLED: "the container used more memory than its limit: raise the memory limit in container_resources",
    START_ERROR: "the command could not be started: check that cmds names an executable present in the image",
    EVICTED: "the node ran short of resources: set container_resources requests close to the real usage",
    DEADLINE_EXCEEDED: "the pod ran longer than active_deadline_seconds: raise it",
    NODE_LOST: "the pod's node became unreachable; a retry runs the pod again on a healthy node",
    CRASH_LOOP_BACK_OFF: "the container keeps crashing and being restarted: see its logs; the template's "
    "restartPolicy makes Kubernetes restart it",
    SCHEDULE_TIMEOUT: "the pod waited too long for a node: raise schedule_timeout_seconds (it defaults to "
    "startup_timeout_seconds)",
    STARTUP_TIMEOUT: "the containers took too long to start (image pull, init containers): raise "
    "startup_timeout_seconds",
    EXECUTION_TIMEOUT: "the task ran longer than its execution_timeout: raise execution_timeout",
}
_VERBS = {
    Outcome.SUCCEEDED: "succeeded",
    Outcome.FAILED: "failed",
    Outcome.TIMEOUT: "timed out",
    Outcome.DELETED: "was deleted before it finished",
    Outcome.ERROR: "could not be watched",
}


def describe(result: PodResult, pod_name: str, namespace: str) -> str:
    """One human message: what happened to which pod, why, and what to change."""
    text = f"Pod {pod_name} in namespace {namespace} {_VERBS[result.outcome]} (outcome {result.outcome.value}"
    if result.reason:
        text += f", reason {result.reason}"
    if result.container:
        text += f", container {result.container}"
    if result.exit_code is not None:
        text += f", exit code {result.exit_code}"
    text += ")"
    if result.message:
        text += f": {result.message.strip()}"
    hint = _HINTS.get(result.reason or "")
    if hint is None and result.outcome is Outcome.FAILED and result.exit_code:
        hint = "the container's command exited with an error: see its log lines"
    if hint:
        text += f". Hint: {hint}"
    return text
