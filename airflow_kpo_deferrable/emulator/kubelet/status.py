"""The pod status the kubelet writes, as pure functions of what the node knows: ``render_status(...)``.

Why pure: phase and conditions are where the operator's outcome rules look, so they are tested with golden
input/output JSON pairs (``tests/emulator/kubelet/golden/*.json``), like kwok's stages, without running a pod.

Facts (kubelet 1.32):

* ``phase`` is the kubelet's ``getPhase``: a terminal phase set by an ending (eviction, deadline, node loss,
  deletion) wins; no ``startTime`` is Pending; init containers first (a native sidecar, an init container with
  ``restartPolicy: Always``, only has to have started; a failed one with restartPolicy Never fails the pod); then
  Pending until every container ran once; Running while one runs or with restartPolicy Always; Succeeded when all
  exited 0; Failed for a failure with restartPolicy Never, else Running (it will be restarted).
* Conditions keep their ``lastTransitionTime`` until their status changes. Order as the kubelet writes them:
  DisruptionTarget, PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled. Messages:
  ``containers with incomplete status: [a]``, ``containers with unready status: [b]``; reasons PodCompleted/PodFailed
  once terminal. On a lost node only Ready goes False, keeping the reason it had (the node controller's write).
* A container is ``ready`` and ``started`` exactly while it runs (no probes here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..rules import qos_class

CONDITION_ORDER = ("DisruptionTarget", "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                   "PodScheduled")
FINISHED = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Terminal:
    """A phase decided by an ending rather than by the containers, with the pod's ``reason``/``message``."""

    phase: str
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Progress:
    """How far the node got with the pod (everything status needs besides the spec and the containers)."""

    host_ip: str
    start_time: str | None = None
    pod_ip: str | None = None
    sandbox_ready: bool = False
    terminal: Terminal | None = None
    node_lost: bool = False


def is_running(record: dict[str, Any]) -> bool:
    return "running" in record["state"]


def exit_code(record: dict[str, Any]) -> int | None:
    """The code of the last exit, whether shown as state or (while backing off) as lastState."""
    terminated = record["state"].get("terminated") or (record.get("lastState") or {}).get("terminated")
    return None if terminated is None else terminated["exitCode"]


def sidecars(spec: dict[str, Any]) -> set[str]:
    return {c["name"] for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"}


def phase(spec: dict[str, Any], inits: list[dict], containers: list[dict], progress: Progress) -> str:
    if progress.terminal:
        return progress.terminal.phase
    if not progress.start_time:
        return "Pending"
    restart_policy = spec.get("restartPolicy", "Always")
    always = sidecars(spec)
    pending_init = False
    for record in inits:
        code = exit_code(record)
        if record["name"] in always:
            pending_init = pending_init or not record.get("containerID")
        elif is_running(record) or code is None:
            pending_init = True
        elif code != 0:
            if restart_policy == "Never":
                return "Failed"
            pending_init = True  # it will be retried
    if pending_init:
        return "Pending"
    running = sum(is_running(r) for r in containers + [r for r in inits if r["name"] in always])
    stopped = [exit_code(r) for r in containers if not is_running(r) and exit_code(r) is not None]
    if len(stopped) + running < len(containers):
        return "Pending"  # some container has not run yet
    if running or restart_policy == "Always":
        return "Running"
    if all(code == 0 for code in stopped):
        return "Succeeded"
    return "Failed" if restart_policy == "Never" else "Running"


def condition(
    kind: str, status: str, previous: dict[str, Any] | None, now: str, reason: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """One pod condition; it keeps ``previous``'s transition time while its status stays the same."""
    moment = previous["lastTransitionTime"] if previous and previous["status"] == status else now
    entry: dict[str, Any] = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": moment}
    if reason:
        entry["reason"] = reason
    if message:
        entry["message"] = message
    return entry


def conditions(
    spec: dict[str, Any], inits: list[dict], containers: list[dict], progress: Progress, pod_phase: str,
    previous: dict[str, dict], now: str,
) -> dict[str, dict]:
    """The conditions the kubelet owns, merged into ``previous`` (which holds the scheduler's and the evictor's)."""
    result = dict(previous)
    if not progress.start_time:
        return result

    def put(kind: str, status: str, reason: str | None = None, message: str | None = None) -> None:
        result[kind] = condition(kind, status, result.get(kind), now, reason, message)

    always = sidecars(spec)
    put("PodReadyToStartContainers", "True" if progress.sandbox_ready else "False")
    incomplete = [
        r["name"] for r in inits
        if (not r.get("containerID") if r["name"] in always else is_running(r) or exit_code(r) != 0)
    ]
    if pod_phase == "Succeeded" or not incomplete:
        put("Initialized", "True", "PodCompleted" if pod_phase == "Succeeded" and inits else None)
    else:
        put("Initialized", "False", "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(incomplete)}]")
    if pod_phase in FINISHED:
        ready: tuple[str, str | None, str | None] = ("False", "PodCompleted" if pod_phase == "Succeeded" else "PodFailed",
                                                     None)
    else:
        unready = [r["name"] for r in inits if r["name"] in always and not is_running(r)]
        unready += [r["name"] for r in containers if not is_running(r)]
        message = f"containers with unready status: [{' '.join(unready)}]"
        ready = ("False", "ContainersNotReady", message) if unready else ("True", None, None)
    put("ContainersReady", *ready)
    if progress.node_lost:
        old = result.get("Ready", {})
        put("Ready", "False", old.get("reason"), old.get("message"))
    else:
        put("Ready", *ready)
    return result


def container_status(record: dict[str, Any]) -> dict[str, Any]:
    """A ``containerStatuses`` entry from a container record (``ready``/``started`` while running)."""
    running = is_running(record)
    entry = {
        "name": record["name"],
        "state": record["state"],
        "lastState": record.get("lastState") or {},
        "ready": running,
        "restartCount": record.get("restartCount", 0),
        "image": record.get("image", ""),
        "imageID": record.get("imageID", ""),
        "started": running,
    }
    if record.get("containerID"):
        entry["containerID"] = record["containerID"]
    return entry


def render_status(
    spec: dict[str, Any], inits: list[dict], containers: list[dict], progress: Progress,
    previous_conditions: dict[str, dict], now: str,
) -> dict[str, Any]:
    """The whole ``status`` of a pod; ``status["conditions"]`` is also the ``previous_conditions`` of the next call."""
    pod_phase = phase(spec, inits, containers, progress)
    merged = conditions(spec, inits, containers, progress, pod_phase, previous_conditions, now)
    status: dict[str, Any] = {
        "phase": pod_phase,
        "conditions": [merged[kind] for kind in CONDITION_ORDER if kind in merged],
        "qosClass": qos_class(spec),
    }
    if progress.start_time:
        status |= {"hostIP": progress.host_ip, "hostIPs": [{"ip": progress.host_ip}], "startTime": progress.start_time}
        if progress.pod_ip:
            status |= {"podIP": progress.pod_ip, "podIPs": [{"ip": progress.pod_ip}]}
        if inits:
            status["initContainerStatuses"] = [container_status(r) for r in inits]
        status["containerStatuses"] = [container_status(r) for r in containers]
    if progress.terminal and progress.terminal.reason:
        status["reason"] = progress.terminal.reason
        status["message"] = progress.terminal.message
    return status
