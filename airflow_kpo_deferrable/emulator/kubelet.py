"""The simulated scheduler + kubelet of the emulator's single node: moves each pod through real-looking states.

Why: the operator and its trigger judge a pod only by what the API shows (phase, conditions, container states,
events, logs), so the emulator must write what a real scheduler and kubelet (1.32) write, in the same order, for
success and for every failure the operator has to recognise.

What it writes, per pod (one coroutine per pod; container runtimes in ``runtime.py``):

* Scheduling: ``spec.nodeName`` and ``PodScheduled`` True (event ``Scheduled`` from default-scheduler), or
  ``PodScheduled`` False reason ``Unschedulable`` with the scheduler's ``0/1 nodes are available: ...`` message (event
  ``FailedScheduling``) when a nodeSelector/required node affinity does not match the node or cpu/memory requests
  exceed its allocatable. Pods bound to another node or for another ``schedulerName`` are left alone.
* Then ``startTime``, ``hostIP``, ``qosClass``, ``PodReadyToStartContainers`` (True once the "sandbox" exists, with
  ``podIP``), ``Initialized``, ``ContainersReady``, ``Ready`` with the kubelet's reasons and messages (``containers
  with unready status: [base]``, ``PodCompleted``/``PodFailed`` once terminal).
* Init containers one after another before the containers; an init container with ``restartPolicy: Always`` is a
  native sidecar: the next one starts once it runs, it keeps running (restarted if it dies) and is stopped after
  the containers end; it does not decide the phase.
* Container states: ``waiting`` (ContainerCreating, PodInitializing, ErrImagePull ↔ ImagePullBackOff,
  ErrImageNeverPull, InvalidImageName, CreateContainerConfigError — retried, so a ConfigMap created later helps —,
  CrashLoopBackOff), ``running``, ``terminated`` (exitCode, reason, message, startedAt, finishedAt, containerID),
  ``lastState``, ``restartCount``, ``ready``, ``started``; events Pulling/Pulled/Failed/BackOff/Created/Started/Killing.
* Phase like the kubelet's ``getPhase``: restartPolicy Never ends Succeeded/Failed; OnFailure restarts failed
  containers and Always every exited one, with a CrashLoopBackOff back-off that doubles from
  ``Timings.backoff_initial`` to ``Timings.backoff_max`` (10 s and 300 s on a real node, shortened for tests).
* ``spec.activeDeadlineSeconds`` (from startTime): phase Failed reason DeadlineExceeded, containers killed with the
  pod's grace period. Eviction (``evict``): phase Failed reason Evicted, condition DisruptionTarget, containers
  SIGKILLed. Node loss (``lose_node``): phase Unknown, reason NodeLost, Ready False, the status frozen; like a real
  lost node it never confirms a deletion afterwards (force-delete with grace 0). The pod-level scenario failures
  (annotation ``failure``: Evicted, NodeLost, DeadlineExceeded) fire half of ``duration`` (default 1 s) after the
  pod starts running, so always before its containers end.
* Deletion (the store sets deletionTimestamp): a Running pod's containers get SIGTERM (event Killing), SIGKILL after
  ``deletionGracePeriodSeconds``, are reported terminated (143/137, or their own exit code), the pod gets its
  terminal phase, then ``store.remove``; a Pending pod is killed and removed at once. A pod removed from the store
  (DELETED) has its processes killed and its directory (logs, files) deleted.

Status writes are coalesced: any number of changes in one loop iteration is one ``store.update``. The dicts of a
written status are never mutated afterwards (states and conditions are replaced, not edited), so they are handed to
the store without a copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import secrets
import shutil
import signal
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

from .podlog import ContainerLog, log_container_id, render, tail_offset
from .runtime import (
    ANNOTATION_PREFIX,
    ConfigError,
    Exit,
    Failure,
    Handle,
    InvalidImage,
    Launch,
    Scenario,
    ScenarioError,
    StartError,
    base_env,
    container_env,
    expand,
    make_runtime,
    parse_image,
    parse_quantity,
    pod_failure,
    pull_error,
    pull_policy,
    scenario_for,
    utcnow,
)
from .store import ApiError, Store

DEFAULT_NODE_IP = "10.0.0.10"
DEFAULT_ALLOCATABLE = {"cpu": "8", "memory": "32Gi", "pods": "10000"}
DEFAULT_EVICTION_MESSAGE = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki. "
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
EPOCH = "1970-01-01T00:00:00Z"  # startedAt of a container that failed to start, as containerd reports it
TERMINATION_MESSAGE_LINES = 80
TERMINATION_MESSAGE_BYTES = 2048


@dataclass
class Timings:
    """Delays of the simulated node, in seconds; real kubelet values in comments. Tests may shorten them further."""

    sandbox: float = 0.05  # sandbox creation before PodReadyToStartContainers (~1 s)
    backoff_initial: float = 0.2  # CrashLoopBackOff first delay (10 s)
    backoff_max: float = 3.0  # CrashLoopBackOff cap (300 s)
    image_backoff_initial: float = 0.3  # ImagePullBackOff first delay (10 s)
    image_backoff_max: float = 3.0  # (300 s)
    config_retry: float = 0.5  # CreateContainerConfigError re-check (each sync, ~10 s)
    terminated_hold: float = 0.05  # how long an exited container shows terminated before its restart


def rfc3339(moment: datetime | None = None) -> str:
    return (moment or utcnow()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_duration(seconds: float) -> str:
    """A duration as Go prints it (``500ms``, ``10s``, ``1m20s``), for back-off messages."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:g}s"
    return f"{int(minutes)}m{text}" if minutes else text


# -- scheduling (pure) ------------------------------------------------------------------------------------------------


def _expression_matches(expression: dict, labels: dict[str, str]) -> bool:
    key, operator, values = expression.get("key", ""), expression.get("operator", ""), expression.get("values") or []
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    if operator in ("Gt", "Lt") and key in labels and values:
        try:
            left, right = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return left > right if operator == "Gt" else left < right
    return False


def node_matches(spec: dict, node: dict) -> bool:
    """nodeSelector and required node affinity against the node's labels and name."""
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(key) != value for key, value in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return True
    fields = {"metadata.name": node["metadata"]["name"]}
    return any(
        all(_expression_matches(e, labels) for e in term.get("matchExpressions") or [])
        and all(_expression_matches(e, fields) for e in term.get("matchFields") or [])
        for term in terms
    )


def _container_request(container: dict, resource: str) -> Decimal:
    resources = container.get("resources") or {}
    value = (resources.get("requests") or {}).get(resource) or (resources.get("limits") or {}).get(resource)
    return parse_quantity(value) if value is not None else Decimal(0)


def pod_request(spec: dict, resource: str) -> Decimal:
    """What the scheduler counts: running containers and sidecars together, or the largest init container."""
    inits = spec.get("initContainers") or []
    sidecars = sum((_container_request(c, resource) for c in inits if c.get("restartPolicy") == "Always"), Decimal(0))
    regular = sum((_container_request(c, resource) for c in spec.get("containers") or []), Decimal(0))
    largest_init = max((_container_request(c, resource) for c in inits), default=Decimal(0))
    return max(regular + sidecars, largest_init)


def unschedulable_message(spec: dict, node: dict) -> str | None:
    """The default scheduler's FailedScheduling message for a one-node cluster, or None when the pod fits."""
    if not node_matches(spec, node):
        return (
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are "
            "available: 1 Preemption is not helpful for scheduling."
        )
    allocatable = node.get("status", {}).get("allocatable") or DEFAULT_ALLOCATABLE
    short = [r for r in ("cpu", "memory") if pod_request(spec, r) > parse_quantity(allocatable.get(r, "0"))]
    if not short:
        return None
    return insufficient_message(short)


def insufficient_message(resources: list[str]) -> str:
    reasons = ", ".join(f"1 Insufficient {r}" for r in resources)
    return (
        f"0/1 nodes are available: {reasons}. preemption: 0/1 nodes are available: 1 No preemption victims found for "
        "incoming pod."
    )


def qos_class(spec: dict) -> str:
    """BestEffort, Guaranteed or Burstable, from cpu/memory requests and limits of every container."""
    containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
    guaranteed, any_set = True, False
    for container in containers:
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        for resource in ("cpu", "memory"):
            request, limit = requests.get(resource), limits.get(resource)
            any_set = any_set or request is not None or limit is not None
            if limit is None or (request is not None and parse_quantity(request) != parse_quantity(limit)):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


# -- containers -------------------------------------------------------------------------------------------------------


@dataclass
class Slot:
    """One container of a pod: its current status fields and its live instance, if any."""

    spec: dict
    init: bool = False
    state: dict = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict = field(default_factory=dict)
    restart_count: int = 0
    image: str = ""
    image_id: str = ""
    container_id: str | None = None
    handle: Handle | None = None
    starting: asyncio.Future[Handle] | None = None
    started_at: str | None = None
    launch: Launch | None = None
    logs: dict[str, ContainerLog] = field(default_factory=dict)  # by containerID
    started_event: asyncio.Event = field(default_factory=asyncio.Event)  # set while an instance runs

    def __post_init__(self) -> None:
        self.image = self.spec.get("image", "")

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def sidecar(self) -> bool:
        return self.init and self.spec.get("restartPolicy") == "Always"

    @property
    def field_path(self) -> str:
        return f"spec.{'initContainers' if self.init else 'containers'}{{{self.name}}}"

    @property
    def is_running(self) -> bool:
        return "running" in self.state

    def exit_code(self) -> int | None:
        """The code of the last exit, whether shown as state or (while backing off) as lastState."""
        terminated = self.state.get("terminated") or self.last_state.get("terminated")
        return None if terminated is None else terminated["exitCode"]

    def wait(self, reason: str, message: str | None = None) -> None:
        self.state = {"waiting": {"reason": reason} | ({"message": message} if message else {})}

    def status(self) -> dict:
        entry = {
            "name": self.name,
            "state": self.state,
            "lastState": self.last_state,
            "ready": self.is_running,
            "restartCount": self.restart_count,
            "image": self.image,
            "imageID": self.image_id,
            "started": self.is_running,
        }
        if self.container_id:
            entry["containerID"] = self.container_id
        return entry


class PodGone(Exception):
    """The pod left the store (or was replaced by another with the same name)."""


class PodWorker:
    """Runs one pod on the node and writes its status; the kubelet calls its ``on_*`` methods for outside events."""

    def __init__(self, kubelet: Kubelet, pod: dict) -> None:
        self.kubelet = kubelet
        self.pod = pod
        meta, self.spec = pod["metadata"], pod.get("spec", {})
        self.namespace, self.name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.annotations: dict[str, str] = meta.get("annotations") or {}
        self.restart_policy = self.spec.get("restartPolicy", "Always")
        self.init_slots = [Slot(c, init=True) for c in self.spec.get("initContainers") or []]
        self.slots = [Slot(c) for c in self.spec.get("containers") or []]
        if self.init_slots:
            for slot in self.slots:
                slot.wait("PodInitializing")
            for slot in self.init_slots[1:]:
                slot.wait("PodInitializing")
        self.conditions: dict[str, dict] = {}
        self.start_time: str | None = None
        self.pod_ip: str | None = None
        self.sandbox_ready = False
        self.terminal: tuple[str, str | None, str | None] | None = None  # phase, reason, message
        self.ending: str | None = None  # evicted | deadline | lost | deleting | done
        self.directory = kubelet.workdir / "pods" / f"{self.namespace}_{self.name}_{self.uid}"
        self.main: asyncio.Task[None] | None = None
        self.ender: asyncio.Task[None] | None = None
        self.sidecar_tasks: list[asyncio.Task[None]] = []
        self.timers: list[asyncio.TimerHandle | asyncio.Task[None]] = []
        self.gone = False
        self._flush_pending = False
        self._events: dict[tuple[str, str, str], str] = {}

    @property
    def all_slots(self) -> list[Slot]:
        return self.init_slots + self.slots

    def slot(self, name: str) -> Slot | None:
        return next((s for s in self.all_slots if s.name == name), None)

    # -- status -------------------------------------------------------------------------------------------------------

    def phase(self) -> str:
        """The kubelet's ``getPhase``: init containers first, then the containers and the restart policy."""
        if self.terminal:
            return self.terminal[0]
        if not self.start_time:
            return "Pending"
        pending_init = False
        for slot in self.init_slots:
            code = slot.exit_code()
            if slot.sidecar:
                pending_init = pending_init or slot.container_id is None
            elif slot.is_running or code is None:
                pending_init = True
            elif code != 0:
                if self.restart_policy == "Never":
                    return "Failed"
                pending_init = True  # it will be retried
        if pending_init:
            return "Pending"
        running = sum(s.is_running for s in self.slots + [s for s in self.init_slots if s.sidecar])
        stopped = [s.exit_code() for s in self.slots if not s.is_running and s.exit_code() is not None]
        if len(stopped) + running < len(self.slots):
            return "Pending"  # some container has not run yet
        if running or self.restart_policy == "Always":
            return "Running"
        if all(code == 0 for code in stopped):
            return "Succeeded"
        return "Failed" if self.restart_policy == "Never" else "Running"

    def set_condition(self, kind: str, status: str, reason: str | None = None, message: str | None = None) -> None:
        old = self.conditions.get(kind)
        moment = old["lastTransitionTime"] if old and old["status"] == status else rfc3339()
        condition: dict[str, Any] = {
            "type": kind,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": moment,
        }
        if reason:
            condition["reason"] = reason
        if message:
            condition["message"] = message
        self.conditions[kind] = condition

    def refresh_conditions(self, phase: str) -> None:
        if not self.start_time:
            return
        self.set_condition("PodReadyToStartContainers", "True" if self.sandbox_ready else "False")
        incomplete = [
            s.name
            for s in self.init_slots
            if (s.container_id is None if s.sidecar else s.is_running or s.exit_code() != 0)
        ]
        if phase == "Succeeded" or not incomplete:
            self.set_condition(
                "Initialized", "True", "PodCompleted" if phase == "Succeeded" and self.init_slots else None
            )
        else:
            self.set_condition(
                "Initialized",
                "False",
                "ContainersNotInitialized",
                f"containers with incomplete status: [{' '.join(incomplete)}]",
            )
        if phase in ("Succeeded", "Failed"):
            reason = "PodCompleted" if phase == "Succeeded" else "PodFailed"
            ready: tuple[str, str | None, str | None] = ("False", reason, None)
        else:
            unready = [s.name for s in self.init_slots if s.sidecar and not s.is_running]
            unready += [s.name for s in self.slots if not s.is_running]
            message = f"containers with unready status: [{' '.join(unready)}]"
            ready = ("False", "ContainersNotReady", message) if unready else ("True", None, None)
        self.set_condition("ContainersReady", *ready)
        if self.ending == "lost":  # the node controller marks only Ready, keeping the reason it had
            old = self.conditions.get("Ready", {})
            self.set_condition("Ready", "False", old.get("reason"), old.get("message"))
        else:
            self.set_condition("Ready", *ready)

    def render_status(self) -> dict:
        phase = self.phase()
        self.refresh_conditions(phase)
        order = [
            "DisruptionTarget",
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled",
        ]
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": [self.conditions[kind] for kind in order if kind in self.conditions],
            "qosClass": qos_class(self.spec),
        }
        if self.start_time:
            host_ip = self.kubelet.host_ip
            status |= {"hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "startTime": self.start_time}
            if self.pod_ip:
                status |= {"podIP": self.pod_ip, "podIPs": [{"ip": self.pod_ip}]}
            if self.init_slots:
                status["initContainerStatuses"] = [s.status() for s in self.init_slots]
            status["containerStatuses"] = [s.status() for s in self.slots]
        if self.terminal and self.terminal[1]:
            status["reason"] = self.terminal[1]
            status["message"] = self.terminal[2]
        return status

    def changed(self) -> None:
        """Schedule one status write for everything changed in this loop iteration."""
        if not self._flush_pending and not self.gone:
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_pending = False
        if self.gone:
            return
        status = self.render_status()
        self._update(lambda pod: pod.__setitem__("status", status))

    def _update(self, mutate: Callable[[dict], None]) -> None:
        def guarded(pod: dict) -> None:
            if pod["metadata"].get("uid") != self.uid:
                raise PodGone
            mutate(pod)

        try:
            self.kubelet.store.update("pods", self.namespace, self.name, guarded)
        except (PodGone, ApiError) as error:
            if isinstance(error, ApiError) and error.code != 404:
                raise
            self.gone = True

    def event(
        self, reason: str, message: str, kind: str = "Normal", slot: Slot | None = None, component: str = "kubelet"
    ) -> None:
        """A v1 Event about the pod; a repeat of the same event bumps its count, as the event recorder does."""
        if self.gone:
            return
        field_path = slot.field_path if slot else ""
        key = (reason, message, field_path)
        now = rfc3339()
        store = self.kubelet.store
        if key in self._events:

            def bump(event: dict) -> None:
                event["count"] = event.get("count", 1) + 1
                event["lastTimestamp"] = now

            with contextlib.suppress(ApiError):
                store.update("events", self.namespace, self._events[key], bump)
                return
        involved = {"apiVersion": "v1", "kind": "Pod", "name": self.name, "namespace": self.namespace, "uid": self.uid}
        if field_path:
            involved["fieldPath"] = field_path
        host = self.kubelet.node_name if component == "kubelet" else ""
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": self.kubelet.event_name(self.name), "namespace": self.namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": component} | ({"host": host} if host else {}),
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host,
        }
        try:
            created = store.create("events", self.namespace, body)
        except ApiError:  # namespace going away: the event is lost, as on a real cluster
            return
        self._events[key] = created["metadata"]["name"]

    # -- the pod's life -------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.main = asyncio.create_task(self._guard(self.run()), name=f"pod {self.namespace}/{self.name}")

    async def _guard(self, work: Any) -> None:
        with contextlib.suppress(PodGone):
            await work

    async def run(self) -> None:
        if not self.schedule():
            return
        self.accept()
        await asyncio.sleep(self.kubelet.timings.sandbox)
        self.sandbox_ready = True
        self.pod_ip = self.kubelet.allocate_ip()
        self.changed()
        if await self.run_init_containers():
            policy = self.restart_policy
            await asyncio.gather(*(self.lifecycle(slot, policy) for slot in self.slots))
        await self.stop_sidecars()
        self.ending = "done"
        self.sandbox_ready = False
        self.cancel_timers()
        self.changed()

    def schedule(self) -> bool:
        """Bind to the node, or record why the default scheduler cannot."""
        if self.spec.get("nodeName"):  # bound at creation: no scheduler involved
            self.set_condition("PodScheduled", "True")
            return True
        message = unschedulable_message(self.spec, self.kubelet.node)
        if pod_failure(self.annotations) is Failure.UNSCHEDULABLE:
            message = insufficient_message(["cpu"])
        if message:
            self.set_condition("PodScheduled", "False", "Unschedulable", message)
            self.event("FailedScheduling", message, "Warning", component="default-scheduler")
            self.changed()
            return False
        self.set_condition("PodScheduled", "True")
        node_name = self.kubelet.node_name
        status = self.render_status()

        def bind(pod: dict) -> None:
            pod["spec"]["nodeName"] = node_name
            pod["status"] = status

        self._update(bind)
        if self.gone:
            raise PodGone
        message = f"Successfully assigned {self.namespace}/{self.name} to {node_name}"
        self.event("Scheduled", message, component="default-scheduler")
        return True

    def accept(self) -> None:
        """The kubelet admits the pod: start time, deadlines, containers waiting."""
        self.start_time = rfc3339()
        deadline = self.spec.get("activeDeadlineSeconds")
        loop = asyncio.get_running_loop()
        if deadline is not None:
            self.timers.append(loop.call_later(float(deadline), self.on_deadline))
        failure = pod_failure(self.annotations)
        if failure in (Failure.EVICTED, Failure.NODE_LOST, Failure.DEADLINE_EXCEEDED):
            self.timers.append(asyncio.create_task(self._fault_later(failure)))
        self.changed()

    async def _fault_later(self, failure: Failure) -> None:
        await asyncio.gather(*(slot.started_event.wait() for slot in self.slots))
        try:
            duration = float(self.annotations.get(ANNOTATION_PREFIX + "duration", 1.0))
        except ValueError:  # the containers report the bad annotation
            duration = 1.0
        await asyncio.sleep(duration / 2)
        if self.ending is not None:
            return
        if failure is Failure.EVICTED:
            self.on_evict(DEFAULT_EVICTION_MESSAGE)
        elif failure is Failure.NODE_LOST:
            self.on_node_lost()
        else:
            self.on_deadline()

    async def run_init_containers(self) -> bool:
        """Run init containers in order; False when one failed for good (restartPolicy Never)."""
        policy = "Never" if self.restart_policy == "Never" else "OnFailure"
        for slot in self.init_slots:
            slot.wait("ContainerCreating")
            self.changed()
            if slot.sidecar:
                self.sidecar_tasks.append(asyncio.create_task(self._guard(self.lifecycle(slot, "Always"))))
                await slot.started_event.wait()
            elif await self.lifecycle(slot, policy) != 0:
                return False
        for slot in self.slots:
            slot.wait("ContainerCreating")
        self.changed()
        return True

    async def stop_sidecars(self) -> None:
        for task in self.sidecar_tasks:
            task.cancel()
        sidecars = [s for s in reversed(self.init_slots) if s.sidecar]
        await self.kill(sidecars, self.grace_period(), record=True)

    def grace_period(self) -> float:
        return float(self.spec.get("terminationGracePeriodSeconds", 30))

    async def lifecycle(self, slot: Slot, policy: str) -> int:
        """Run instances of one container until the restart policy says stop; returns the last exit code."""
        timings = self.kubelet.timings
        delay = timings.backoff_initial
        while True:
            code = await self.run_instance(slot)
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                return code
            await asyncio.sleep(timings.terminated_hold)
            slot.last_state = {"terminated": slot.state["terminated"]}
            slot.restart_count += 1
            pod_ref = f"{self.name}_{self.namespace}({self.uid})"
            slot.wait(
                "CrashLoopBackOff",
                f"back-off {go_duration(delay)} restarting failed container={slot.name} pod={pod_ref}",
            )
            self.event(
                "BackOff",
                f"Back-off restarting failed container {slot.name} in pod {self.name}_{self.namespace}({self.uid})",
                "Warning",
                slot,
            )
            self.changed()
            await asyncio.sleep(delay)
            delay = min(delay * 2, timings.backoff_max)

    async def run_instance(self, slot: Slot) -> int:
        """Pull, configure, create and start one instance of the container, then wait for its exit."""
        try:
            scenario = scenario_for(self.annotations, slot.name, [s.name for s in self.all_slots])
        except ScenarioError as error:
            await self.wait_forever(slot, "CreateContainerConfigError", str(error))
        await self.pull(slot, scenario)
        env = await self.configure(slot, scenario)
        await asyncio.sleep(scenario.start_delay / 2)  # the other half went to the pull
        container_id = secrets.token_hex(32)
        log = ContainerLog(self.directory / "logs" / slot.name / f"{slot.restart_count}.log")
        slot.logs[f"containerd://{container_id}"] = log
        command = []
        if slot.spec.get("command"):  # without one, the image's entrypoint would run: unknown here
            command = [expand(part, env) for part in slot.spec["command"] + (slot.spec.get("args") or [])]
        launch = Launch(slot.name, command, env, self.working_dir(slot), log, scenario)
        slot.launch = launch
        self.event("Created", f"Created container: {slot.name}", slot=slot)
        slot.starting = asyncio.ensure_future(self.kubelet.runtime.start(launch))
        try:
            handle = await asyncio.shield(slot.starting)
        except StartError as error:
            slot.starting = None
            slot.container_id = f"containerd://{container_id}"
            finished = rfc3339()
            slot.state = {
                "terminated": {
                    "exitCode": 128,
                    "reason": "StartError",
                    "message": str(error),
                    "startedAt": EPOCH,
                    "finishedAt": finished,
                    "containerID": slot.container_id,
                }
            }
            self.event("Failed", f"Error: {error}", "Warning", slot)
            self.changed()
            return 128
        slot.starting = None
        slot.handle = handle
        slot.container_id = f"containerd://{container_id}"
        slot.started_at = rfc3339(handle.started_at)
        slot.state = {"running": {"startedAt": slot.started_at}}
        slot.started_event.set()
        self.event("Started", f"Started container {slot.name}", slot=slot)
        self.changed()
        exit = await handle.wait()
        self.record_exit(slot, exit)
        return exit.code

    def working_dir(self, slot: Slot) -> Path:
        wanted = slot.spec.get("workingDir")
        if wanted and Path(wanted).is_dir():
            return Path(wanted)
        (self.directory / "fs").mkdir(parents=True, exist_ok=True)
        return self.directory / "fs"

    def record_exit(self, slot: Slot, exit: Exit) -> None:
        slot.handle = None
        slot.started_event.clear()
        terminated: dict[str, Any] = {
            "exitCode": exit.code,
            "reason": exit.reason,
            "startedAt": slot.started_at,
            "finishedAt": rfc3339(exit.finished_at),
            "containerID": slot.container_id,
        }
        message = exit.message or self.termination_message(slot, exit)
        if message:
            terminated["message"] = message
        slot.state = {"terminated": terminated}
        self.changed()

    def termination_message(self, slot: Slot, exit: Exit) -> str | None:
        """``FallbackToLogsOnError``: the last lines of a failed container's log (80 lines, 2 KiB at most)."""
        if (
            exit.code == 0
            or slot.spec.get("terminationMessagePolicy") != "FallbackToLogsOnError"
            or slot.launch is None
        ):
            return None
        with slot.launch.log.path.open("rb") as file:
            file.seek(tail_offset(file, TERMINATION_MESSAGE_LINES))
            text = render(file.read(), timestamps=False)[-TERMINATION_MESSAGE_BYTES:]
        return text.decode("utf-8", "replace") or None

    async def wait_forever(self, slot: Slot, reason: str, message: str) -> NoReturn:
        """A waiting reason the container never leaves; only the pod's end (a cancellation) stops this."""
        slot.wait(reason, message)
        self.event(
            "Failed",
            f"Error: {message}" if reason == "CreateContainerConfigError" else f"Error: {reason}",
            "Warning",
            slot,
        )
        self.changed()
        while True:
            await asyncio.sleep(3600)

    async def pull(self, slot: Slot, scenario: Scenario) -> None:
        """Image checks and pull events; blocks for ever (retrying) when the image cannot be had."""
        image = slot.spec.get("image", "")
        try:
            ref = parse_image(image)
            if scenario.failure is Failure.INVALID_IMAGE_NAME:
                problem = f'couldn\'t parse image name "{image}": invalid reference format'
                raise InvalidImage(f'Failed to apply default image tag "{image}": {problem}')
        except InvalidImage as error:
            self.event("InspectFailed", str(error), "Warning", slot)
            await self.wait_forever(slot, "InvalidImageName", str(error))
        problem = pull_error(ref)
        if scenario.failure is Failure.ERR_IMAGE_PULL and problem is None:
            problem = f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": {ref}: not found'
        policy = pull_policy(slot.spec)
        if problem and policy == "Never":
            message = f'Container image "{image}" is not present with pull policy of Never'
            self.event("ErrImageNeverPull", message, "Warning", slot)
            await self.wait_forever(slot, "ErrImageNeverPull", message)
        if problem:
            await self.fail_pulling(slot, image, problem)
        if policy == "Always":
            self.event("Pulling", f'Pulling image "{image}"', slot=slot)
            began = time.monotonic()
            await asyncio.sleep(scenario.start_delay / 2)
            took = go_duration(time.monotonic() - began)
            size = 4_000_000 + zlib.crc32(str(ref).encode()) % 100_000_000
            self.event(
                "Pulled",
                f'Successfully pulled image "{image}" in {took} ({took} including waiting). Image size: {size} bytes.',
                slot=slot,
            )
        else:
            self.event("Pulled", f'Container image "{image}" already present on machine', slot=slot)
            await asyncio.sleep(scenario.start_delay / 2)
        slot.image = str(ref)
        digest = secrets.token_hex(32) if not slot.image_id else slot.image_id.rsplit(":", 1)[1]
        slot.image_id = f"{ref.domain}/{ref.path}@{ref.digest or 'sha256:' + digest}"

    async def fail_pulling(self, slot: Slot, image: str, problem: str) -> None:
        timings = self.kubelet.timings
        delay = timings.image_backoff_initial
        while True:
            self.event("Pulling", f'Pulling image "{image}"', slot=slot)
            slot.wait("ErrImagePull", problem)
            self.event("Failed", f'Failed to pull image "{image}": {problem}', "Warning", slot)
            self.event("Failed", "Error: ErrImagePull", "Warning", slot)
            self.changed()
            await asyncio.sleep(timings.image_backoff_initial)
            back_off = f'Back-off pulling image "{image}"'
            slot.wait("ImagePullBackOff", back_off)
            self.event("BackOff", back_off, slot=slot)
            self.event("Failed", "Error: ImagePullBackOff", "Warning", slot)
            self.changed()
            await asyncio.sleep(delay)
            delay = min(delay * 2, timings.image_backoff_max)

    async def configure(self, slot: Slot, scenario: Scenario) -> dict[str, str]:
        """The container's environment; waits in CreateContainerConfigError while a ConfigMap/Secret is missing."""
        if scenario.failure is Failure.CREATE_CONTAINER_CONFIG_ERROR:
            await self.wait_forever(slot, "CreateContainerConfigError", 'configmap "emulator-scenario" not found')
        while True:
            try:
                env = container_env(
                    self.pod,
                    slot.spec,
                    self.kubelet.lookup,
                    pod_ip=self.pod_ip or "",
                    host_ip=self.kubelet.host_ip,
                    allocatable=self.kubelet.allocatable,
                )
            except ConfigError as error:
                slot.wait("CreateContainerConfigError", str(error))
                self.event("Failed", f"Error: {error}", "Warning", slot)
                self.changed()
                await asyncio.sleep(self.kubelet.timings.config_retry)
                continue
            if slot.state.get("waiting", {}).get("reason") == "CreateContainerConfigError":
                slot.wait("ContainerCreating")
                self.changed()
            return base_env(self.name, self.directory / "fs") | env

    # -- endings ----------------------------------------------------------------------------------------------------

    def cancel_timers(self) -> None:
        for timer in self.timers:
            if timer is not asyncio.current_task():
                timer.cancel()
        self.timers.clear()

    def stop_running(self) -> None:
        """Stop the pod's own progress (lifecycles, back-offs, timers); the processes stay for the caller to kill."""
        self.cancel_timers()
        for task in [self.main, self.ender, *self.sidecar_tasks]:
            if task and task is not asyncio.current_task():
                task.cancel()

    def end(self, kind: str, reason: str, message: str, grace: float, *, disruption: bool = False) -> None:
        """Eviction or deadline: phase Failed with a reason now, then the containers are killed."""
        self.stop_running()
        self.ending = kind
        self.terminal = ("Failed", reason, message)
        self.sandbox_ready = False
        if disruption:
            self.set_condition("DisruptionTarget", "True", "TerminationByKubelet", message)
        self.event(reason, message, "Warning")
        self.changed()
        self.ender = asyncio.create_task(self._guard(self.kill(self.all_slots, grace, record=True)))

    def on_evict(self, message: str) -> None:
        self.end("evicted", "Evicted", message, 0, disruption=True)

    def on_deadline(self) -> None:
        if self.ending is None:  # a pod that already ended or is being deleted has no deadline left
            self.end("deadline", "DeadlineExceeded", DEADLINE_MESSAGE, self.grace_period())

    def on_node_lost(self) -> None:
        self.stop_running()
        self.ending = "lost"
        self.terminal = (
            "Unknown",
            "NodeLost",
            f"Node {self.kubelet.node_name} which was running pod {self.name} is unresponsive",
        )
        self.changed()
        self.ender = asyncio.create_task(self.kill(self.all_slots, 0, record=False))

    def on_deletion(self, grace: float) -> None:
        """The store marked the pod for deletion: graceful for a Running pod, at once for a Pending one."""
        if self.ending in ("deleting", "lost"):
            return
        graceful = self.phase() == "Running" and self.terminal is None
        self.stop_running()
        self.ending = "deleting"
        self.ender = asyncio.create_task(self._guard(self._delete(grace if graceful else 0, graceful)))

    async def _delete(self, grace: float, graceful: bool) -> None:
        await self.kill(self.all_slots, grace, record=graceful)
        if graceful:
            codes = [s.exit_code() for s in self.slots]
            self.terminal = ("Succeeded" if all(c == 0 for c in codes) else "Failed", None, None)
            self.sandbox_ready = False
            self.flush()
        self.kubelet.remove(self)

    async def kill(self, slots: list[Slot], grace: float, *, record: bool) -> None:
        """SIGTERM (SIGKILL when grace is 0) the live instances, SIGKILL what is left after ``grace`` seconds."""
        for slot in slots:
            if slot.starting is not None:
                with contextlib.suppress(StartError, asyncio.CancelledError):
                    slot.handle = await slot.starting
                slot.starting = None
        live = [s for s in slots if s.handle is not None]
        if not live:
            return
        for slot in live:
            if record:
                self.event("Killing", f"Stopping container {slot.name}", slot=slot)
            assert slot.handle is not None
            slot.handle.signal(signal.SIGTERM if grace > 0 else signal.SIGKILL)
        waits = {asyncio.ensure_future(s.handle.wait()): s for s in live if s.handle is not None}
        _, late = await asyncio.wait(waits, timeout=grace if grace > 0 else None)
        for task in late:
            handle = waits[task].handle
            if handle is not None:
                handle.signal(signal.SIGKILL)
        for task, slot in waits.items():
            exit = await task
            if record and slot.handle is not None:
                self.record_exit(slot, exit)
            slot.handle = None
        if record:
            self.changed()

    def tasks(self) -> list[asyncio.Task]:
        timers = [t for t in self.timers if isinstance(t, asyncio.Task)]
        return [t for t in (self.main, self.ender, *self.sidecar_tasks, *timers) if t is not None]

    def kill_now(self) -> None:
        """SIGKILL every live instance without reporting anything (pod removed, emulator stopping)."""
        self.gone = True
        self.stop_running()
        for slot in self.all_slots:
            if slot.handle is not None:
                slot.handle.signal(signal.SIGKILL)
            if slot.starting is not None:
                slot.starting.add_done_callback(_kill_started)

    async def wait_processes(self) -> None:
        for slot in self.all_slots:
            if slot.handle is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(slot.handle.wait(), 5)


def _kill_started(future: asyncio.Future[Handle]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().signal(signal.SIGKILL)


class Kubelet:
    """Scheduler and kubelet for one node: follows pod changes in the store and runs each pod it gets."""

    def __init__(
        self,
        store: Store,
        runtime: str = "process",
        node_name: str = "emulator-node",
        workdir: Path | None = None,
        *,
        timings: Timings | None = None,
    ) -> None:
        self.store = store
        self.runtime = make_runtime(runtime)
        self.node_name = node_name
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="kpo-emulator-")) if workdir is None else Path(workdir)
        self.timings = timings or Timings()
        self.node: dict = {
            "metadata": {"name": node_name, "labels": {"kubernetes.io/hostname": node_name}},
            "status": {"allocatable": DEFAULT_ALLOCATABLE},
        }
        self.host_ip = DEFAULT_NODE_IP
        self.workers: dict[str, PodWorker] = {}  # by uid
        self._by_name: dict[tuple[str, str], PodWorker] = {}
        self._queue: asyncio.Queue | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._ips = itertools.count()
        self._event_serial = itertools.count()

    @property
    def allocatable(self) -> dict[str, str]:
        status = self.node.get("status", {})
        return status.get("allocatable") or status.get("capacity") or DEFAULT_ALLOCATABLE

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(ApiError):
            self.node = self.store.get("nodes", None, self.node_name)
        addresses = self.node.get("status", {}).get("addresses") or []
        self.host_ip = next((a["address"] for a in addresses if a.get("type") == "InternalIP"), DEFAULT_NODE_IP)
        self._queue = self.store.subscribe()
        pods, _ = self.store.list("pods", None)
        for pod in pods:
            self.on_pod("ADDED", pod)
        self._consumer = asyncio.create_task(self._consume(), name="kubelet")

    async def stop(self) -> None:
        """Kill every process this kubelet started and stop following the store."""
        if self._consumer:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
        if self._queue is not None:
            self.store.unsubscribe(self._queue)
            self._queue = None
        workers = list(self.workers.values())
        tasks = [task for worker in workers for task in worker.tasks()]
        for worker in workers:
            worker.kill_now()
        await asyncio.gather(*tasks, return_exceptions=True)
        for worker in workers:
            await worker.wait_processes()
        self.workers.clear()
        self._by_name.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def _consume(self) -> None:
        assert self._queue is not None
        while True:
            change = await self._queue.get()
            if change.kind == "pods":
                self.on_pod(change.type, change.obj)

    def on_pod(self, kind: str, pod: dict) -> None:
        uid = pod["metadata"].get("uid", "")
        worker = self.workers.get(uid)
        if kind == "DELETED":
            if worker:
                worker.kill_now()
                self.forget(worker)
            return
        if worker is None:
            if kind == "ADDED" and self._is_ours(pod):
                self._adopt(copy.deepcopy(pod))
            return
        if pod["metadata"].get("deletionTimestamp"):
            worker.on_deletion(float(pod["metadata"].get("deletionGracePeriodSeconds") or 0))

    def _is_ours(self, pod: dict) -> bool:
        spec = pod.get("spec", {})
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return False
        if spec.get("nodeName"):
            return spec["nodeName"] == self.node_name
        return spec.get("schedulerName", "default-scheduler") == "default-scheduler"

    def _adopt(self, pod: dict) -> None:
        worker = PodWorker(self, pod)
        self.workers[worker.uid] = worker
        self._by_name[(worker.namespace, worker.name)] = worker
        if pod["metadata"].get("deletionTimestamp"):
            self.remove(worker)
            return
        worker.start()

    def remove(self, worker: PodWorker) -> None:
        """The kubelet is done with a deleted pod: take it out of the store (if it is still that pod)."""
        with contextlib.suppress(ApiError):
            if self.store.get("pods", worker.namespace, worker.name)["metadata"].get("uid") == worker.uid:
                self.store.remove("pods", worker.namespace, worker.name)
        self.forget(worker)

    def forget(self, worker: PodWorker) -> None:
        worker.gone = True
        self.workers.pop(worker.uid, None)
        if self._by_name.get((worker.namespace, worker.name)) is worker:
            del self._by_name[(worker.namespace, worker.name)]
        shutil.rmtree(worker.directory, ignore_errors=True)

    def lookup(self, kind: str, namespace: str, name: str) -> dict | None:
        try:
            return self.store.get(kind, namespace, name)
        except ApiError as error:
            if error.code == 404:
                return None
            raise
        except (KeyError, ValueError):  # a store without this kind: nothing of it exists
            return None

    def allocate_ip(self) -> str:
        number = next(self._ips)
        return f"10.244.{number // 250}.{number % 250 + 2}"

    def event_name(self, pod_name: str) -> str:
        """``<pod>.<hex>`` like the event recorder (it uses the time in ns; a serial keeps names unique)."""
        return f"{pod_name}.{time.time_ns() + next(self._event_serial):x}"

    # -- for the API side -----------------------------------------------------------------------------------------

    def _worker(self, namespace: str, name: str) -> PodWorker:
        worker = self._by_name.get((namespace, name))
        if worker is None:
            raise ApiError(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
        return worker

    def evict(self, namespace: str, name: str, message: str = DEFAULT_EVICTION_MESSAGE) -> None:
        """Evict a pod as the kubelet does under node pressure: Failed/Evicted, containers SIGKILLed."""
        worker = self._worker(namespace, name)
        if not worker.start_time or worker.ending is not None:
            raise ApiError(409, "Conflict", f'pod "{name}" is not running on node {self.node_name}: nothing to evict')
        worker.on_evict(message)

    def lose_node(self, namespace: str, name: str) -> None:
        """Lose the pod's node: phase Unknown, reason NodeLost, Ready False; its processes die unseen."""
        worker = self._worker(namespace, name)
        if not worker.start_time or worker.ending is not None:
            raise ApiError(409, "Conflict", f'pod "{name}" is not running on node {self.node_name}: nothing to lose')
        worker.on_node_lost()

    def log_file(self, namespace: str, name: str, container: str, container_id: str) -> ContainerLog | None:
        worker = self._by_name.get((namespace, name))
        slot = worker.slot(container) if worker else None
        return slot.logs.get(container_id) if slot else None

    def log_path(self, namespace: str, name: str, container: str, previous: bool = False) -> Path | None:
        """The log file the kubelet would serve for ``container`` (its previous instance with ``previous``)."""
        try:
            pod = self.store.get("pods", namespace, name)
            log = self.log_file(namespace, name, container, log_container_id(pod, container, previous))
        except ApiError:
            return None
        return log.path if log else None

    def container_running(self, namespace: str, name: str, container: str) -> bool:
        worker = self._by_name.get((namespace, name))
        slot = worker.slot(container) if worker else None
        return bool(slot and slot.is_running)

    def exec_target(self, namespace: str, name: str, container: str) -> tuple[dict[str, str], Path] | None:
        """Environment and working directory for exec in a running container, or None when it is not running."""
        worker = self._by_name.get((namespace, name))
        slot = worker.slot(container) if worker else None
        if slot is None or not slot.is_running or slot.launch is None:
            return None
        return slot.launch.env, slot.launch.cwd
