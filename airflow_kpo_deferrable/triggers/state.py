"""What a ``PodTrigger`` must remember across a triggerer restart, and where each part is kept.

Why: ``run()`` starts from scratch after a triggerer restart or redistribution. Two things must survive it:

* where the live log stood (per container, a ``ResumePoint``), so a restarted trigger resumes after it instead of
  replaying the whole log — kept **on the pod**, in the annotation ``airflow-kpo-deferrable/log-resume``, written
  with one PATCH every ``checkpoint_seconds`` while lines move. A restarted trigger reads it from the shared watch's
  cached pod: no request of its own;
* the outcome once decided, recorded *before* the pod is deleted: a trigger restarted after our own delete would
  otherwise see the pod gone and report a deletion failure for a task that succeeded — kept in a Kubernetes Event
  next to the pod (``triggers/record.py``), which outlives it, or, where RBAC forbids Events, in an XCom of the
  trigger's own task instance (``kpo_trigger_state``). A ``PodTrigger`` reads it **only when the pod is gone**, never
  at its start; a ``PodStartTrigger`` (which creates the pod) reads the Event once before creating, matched by the
  pod's name (derived from the task try), so a restart after our delete does not start the pod again.

Why not in the XCom first: in Airflow 3.3.2 a trigger's ``GetXCom``/``SetXCom`` (``SUPERVISOR_COMMS``,
``jobs/triggerer_job_runner.py``) is answered by the triggerer's supervisor with a *synchronous* call to the API
server, in the one loop that also forwards every trigger's events and heartbeats the triggerer. One read per new
trigger and one write per streaming pod every few seconds kept that loop busy; a slow API server answer (5 s
timeout, retried) then held every trigger's event back, seen as ~30 s stalls ("TriggerRunner subprocess event
loop appears deadlocked"). Even one ``SetXCom`` per task queues when many pods end together (``triggers/record.py``
has the figures). So the record goes to Kubernetes, and the supervisor only hears of a task through its events —
and through the XCom fallback.

The first supervisor call in a triggerer process is far dearer than the rest: the supervisor builds its in-process
execution API (FastAPI app, imported and assembled on first use: ~4 s on an idle 2-core machine, 13–35 s seen on a
loaded one) inside that same loop, so every trigger's events wait that long. Left to chance it lands on the first
pod's end (the first event, or the first decided-outcome XCom). ``warm_up_supervisor`` makes it happen at the first
trigger's start instead, in the background — while pods are still starting, never at an end a user waits for.

Facts it handles:

* The record names the pod's uid and name, and its Event's name holds the try (an XCom of an earlier try may
  remain: a try the scheduler defers straight to a trigger starts with its XComs uncleared), so a record never
  leaks into another pod's trigger; the resume-point annotation lives on the pod itself.
* Without a task instance (``dag.test()``, the operator's own wait on a worker, unit tests) the store is a no-op:
  a restart there cannot happen.
* Storing or reading may fail (API server restarting, RBAC without ``patch``): a warning, never an exception — the
  worst case is lines repeated after a restart, or (reading) a restarted trigger that treats the pod as new.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow_kpo_deferrable.logs.lines import ResumePoint
from airflow_kpo_deferrable.podspec.names import LOG_RESUME_ANNOTATION, PodIdentity
from airflow_kpo_deferrable.triggers.record import record_event, record_name, record_of

STATE_KEY = "kpo_trigger_state"


@dataclass
class TriggerState:
    """The record: the pod's uid and name, each container's resume point, and the decided result
    (``PodResult.to_dict``)."""

    uid: str | None
    logs: dict[str, ResumePoint] = field(default_factory=dict)
    decided: dict[str, Any] | None = None
    pod: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "pod": self.pod,
            "logs": resume_points_to_json(self.logs),
            "decided": self.decided,
        }

    @classmethod
    def from_json(cls, data: Any, uid: str | None, pod: str | None = None) -> TriggerState | None:
        """The record if it is one of ours for this pod (by uid, or by name when the uid is not known: a pod the
        triggerer created, whose name is derived from the task try); None otherwise."""
        if not isinstance(data, dict):
            return None
        if data.get("uid") != uid and (pod is None or data.get("pod") != pod):
            return None
        return cls(uid=data.get("uid"), logs=resume_points_from_json(data.get("logs")), decided=data.get("decided"),
                   pod=data.get("pod"))


def resume_points_to_json(points: dict[str, ResumePoint]) -> dict[str, list[int]]:
    return {c: [p.stamp, p.lines_at_stamp] for c, p in points.items()}


def resume_points_from_json(data: Any) -> dict[str, ResumePoint]:
    return {c: ResumePoint(int(p[0]), int(p[1])) for c, p in (data or {}).items()}


def resume_points_on_pod(pod: dict[str, Any] | None) -> dict[str, ResumePoint]:
    """The resume points a trigger saved on this pod ({} if none, or unreadable: the log then starts over)."""
    raw = ((pod or {}).get("metadata") or {}).get("annotations", {}).get(LOG_RESUME_ANNOTATION)
    try:
        return resume_points_from_json(json.loads(raw)) if raw else {}
    except (ValueError, TypeError, IndexError, AttributeError):
        return {}


def resume_points_patch(points: dict[str, ResumePoint]) -> dict[str, Any]:
    """The patch body that records ``points`` on the pod (a merge of one annotation; nothing else changes)."""
    text = json.dumps(resume_points_to_json(points), separators=(",", ":"), sort_keys=True)
    return {"metadata": {"annotations": {LOG_RESUME_ANNOTATION: text}}}


class ResumePointWriter:
    """Writes a pod's resume points when they moved since the last write; says once when it cannot (then the only
    cost is lines repeated after a restart)."""

    def __init__(self, patch: Callable[[dict[str, Any]], Awaitable[Any]], warn: Callable[[str], None]) -> None:
        self._patch = patch
        self._warn = warn
        self._written: dict[str, ResumePoint] = {}
        self._warned = False

    def start_from(self, points: dict[str, ResumePoint]) -> None:
        self._written = dict(points)

    async def write(self, points: dict[str, ResumePoint]) -> bool:
        if points == self._written:
            return True
        try:
            await self._patch(resume_points_patch(points))
        except Exception as error:  # noqa: BLE001 — see the module docstring
            if not self._warned:
                self._warned = True
                self._warn(
                    f"Could not save the log's resume point on the pod ({type(error).__name__}: {error}); after a "
                    "triggerer restart this pod's log may repeat (RBAC: pods patch)"
                )
            return False
        self._written = dict(points)
        return True


# The supervisor comms objects already warmed (one per triggerer process), with the task doing it (kept referenced).
_WARMED: dict[int, asyncio.Task[None]] = {}


def _supervisor_comms() -> Any:
    try:
        from airflow.sdk.execution_time import task_runner
    except ImportError:
        return None
    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    return comms if comms is not None and hasattr(comms, "asend") else None


def warm_up_supervisor(task_instance: Any, warn: Callable[[str], None]) -> asyncio.Task[None] | None:
    """Once per triggerer process: send one cheap request (``GetTaskStates`` of this task) in the background, so the
    supervisor builds its in-process API now (module docstring). None where there is no supervisor or it is warm."""
    comms = _supervisor_comms()
    if comms is None or task_instance is None or not getattr(task_instance, "run_id", None) or id(comms) in _WARMED:
        return None
    from airflow.sdk.execution_time.comms import GetTaskStates

    async def ask() -> None:
        try:
            await comms.asend(GetTaskStates(dag_id=task_instance.dag_id, task_ids=[task_instance.task_id]))
        except Exception as error:  # noqa: BLE001 — a warm-up that fails costs nothing but the warm-up
            warn(f"Warming up the triggerer's supervisor failed ({type(error).__name__}: {error})")

    task = _WARMED[id(comms)] = asyncio.create_task(ask(), name="kpo-supervisor-warm-up")
    return task


class StateStore:
    """Reads and writes the decided-outcome record: as a Kubernetes Event (``triggers/record.py``) when given the
    pod's API, else — or when RBAC forbids the Event — as an XCom through the triggerer's supervisor (each call a
    synchronous API call in the supervisor's loop: module docstring). A no-op without a task instance."""

    def __init__(
        self,
        task_instance: Any,
        warn: Any,
        api: Callable[[], Awaitable[Any]] | None = None,
        namespace: str | None = None,
        pod_name: str | None = None,
    ) -> None:
        self._ti = task_instance
        self._warn = warn
        self._api = api if namespace and pod_name else None
        self._namespace = namespace
        self._pod_name = pod_name

    def _no_task_instance(self) -> bool:
        """No task instance to keep a record for (``dag.test()``, the operator's own wait, unit tests): a no-op."""
        return self._ti is None or not getattr(self._ti, "run_id", None)

    def _comms(self) -> Any:
        if self._no_task_instance():
            return None
        return _supervisor_comms()

    def _where(self) -> dict[str, Any]:
        ti = self._ti
        return {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "map_index": ti.map_index}

    async def load(self, uid: str | None, *, pod: str | None = None, xcom: bool = True) -> TriggerState | None:
        """The record for this pod (by ``uid``, or by name ``pod`` when the uid is unknown). ``xcom=False``: the
        Event only, never the supervisor (a trigger's start)."""
        if self._no_task_instance():
            return None
        if self._api is not None:
            try:
                api = await self._api()
                name = record_name(self._pod_name, PodIdentity.of(self._ti))
                event = await api.read_namespaced_event(name, self._namespace)
                found = TriggerState.from_json(record_of(api.api_client.sanitize_for_serialization(event)), uid, pod)
                if found is not None:
                    return found
            except Exception as error:  # noqa: BLE001 — see the module docstring
                if getattr(error, "status", None) != 404:
                    self._warn(f"Could not read this pod's decided-outcome Event ({type(error).__name__}: {error})")
        return await self._load_xcom(uid, pod) if xcom else None

    async def save(self, state: TriggerState) -> bool:
        if self._no_task_instance():
            return False
        if self._api is not None:
            record = record_event(state.to_json(), self._pod_name, self._namespace, PodIdentity.of(self._ti),
                                  datetime.now(UTC))
            try:
                api = await self._api()
                await api.create_namespaced_event(self._namespace, record)
                return True
            except Exception as error:  # noqa: BLE001 — see the module docstring
                if getattr(error, "status", None) == 409:  # recorded before a restart
                    return True
                self._warn(f"Could not record the decided outcome as an Event ({type(error).__name__}: {error}; "
                           "RBAC: events create/get); keeping it in an XCom instead")
        return await self._save_xcom(state)

    async def _load_xcom(self, uid: str | None, pod: str | None) -> TriggerState | None:
        comms = self._comms()
        if comms is None:
            return None
        from airflow.sdk.bases.xcom import BaseXCom
        from airflow.sdk.execution_time.comms import GetXCom, XComResult

        try:
            answer = await comms.asend(GetXCom(key=STATE_KEY, **self._where()))
            if not isinstance(answer, XComResult) or answer.value is None:
                return None
            return TriggerState.from_json(BaseXCom.deserialize_value(answer), uid, pod)
        except Exception as error:  # noqa: BLE001 — see the module docstring
            self._warn(f"Could not read this trigger's saved state ({type(error).__name__}: {error}); starting afresh")
            return None

    async def _save_xcom(self, state: TriggerState) -> bool:
        comms = self._comms()
        if comms is None:
            return False
        from airflow.sdk.bases.xcom import BaseXCom
        from airflow.sdk.execution_time.comms import SetXCom

        try:
            value = BaseXCom.serialize_value(state.to_json(), key=STATE_KEY, **self._where())
            await comms.asend(SetXCom(key=STATE_KEY, value=value, **self._where()))
            return True
        except Exception as error:  # noqa: BLE001 — see the module docstring
            self._warn(f"Could not save this trigger's state ({type(error).__name__}: {error})")
            return False
