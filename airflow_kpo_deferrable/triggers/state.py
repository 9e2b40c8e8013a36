"""What a ``PodTrigger`` must remember across a triggerer restart, kept in an XCom of its own task instance.

Why: ``run()`` starts from scratch after a triggerer restart or redistribution. Two things must survive it:

* where the live log stood (per container, a ``ResumePoint``), so a restarted trigger resumes after it instead of
  replaying the whole log;
* the outcome once decided, recorded *before* the pod is deleted: a trigger restarted after our own delete would
  otherwise see the pod gone and report a deletion failure for a task that succeeded.

Facts it handles:

* In Airflow 3.3.2 a trigger talks to the triggerer's supervisor like a task does (``SUPERVISOR_COMMS``; ``GetXCom``
  and ``SetXCom`` are among the messages a trigger may send, ``jobs/triggerer_job_runner.py``), for the task
  instance it serves (``trigger.task_instance``). A new try starts with its XComs cleared, and the record names the
  pod's uid, so a record never leaks into another pod's trigger.
* Without a task instance or supervisor (``dag.test()``, the operator's own wait on a worker, unit tests) nothing is
  persisted: the store is a no-op and the trigger behaves as before a restart.
* Storing or reading may fail (API server restarting): a warning, never an exception — the worst case is lines
  repeated after a restart, or (reading) a restarted trigger that treats the pod as new.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_kpo_deferrable.logs.lines import ResumePoint

STATE_KEY = "kpo_trigger_state"


@dataclass
class TriggerState:
    """The record: the pod's uid, each container's resume point, and the decided result (``PodResult.to_dict``)."""

    uid: str | None
    logs: dict[str, ResumePoint] = field(default_factory=dict)
    decided: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "logs": resume_points_to_json(self.logs),
            "decided": self.decided,
        }

    @classmethod
    def from_json(cls, data: Any, uid: str | None) -> TriggerState | None:
        """The record if it is one of ours for this pod; None otherwise."""
        if not isinstance(data, dict) or data.get("uid") != uid:
            return None
        return cls(uid=uid, logs=resume_points_from_json(data.get("logs")), decided=data.get("decided"))


def resume_points_to_json(points: dict[str, ResumePoint]) -> dict[str, list[int]]:
    return {c: [p.stamp, p.lines_at_stamp] for c, p in points.items()}


def resume_points_from_json(data: Any) -> dict[str, ResumePoint]:
    return {c: ResumePoint(int(p[0]), int(p[1])) for c, p in (data or {}).items()}


class StateStore:
    """Reads and writes the record through the triggerer's supervisor; a no-op where there is none."""

    def __init__(self, task_instance: Any, warn: Any) -> None:
        self._ti = task_instance
        self._warn = warn

    def _comms(self) -> Any:
        if self._ti is None or not getattr(self._ti, "run_id", None):
            return None
        try:
            from airflow.sdk.execution_time import task_runner
        except ImportError:
            return None
        comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
        return comms if comms is not None and hasattr(comms, "asend") else None

    @property
    def available(self) -> bool:
        return self._comms() is not None

    def _where(self) -> dict[str, Any]:
        ti = self._ti
        return {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id, "map_index": ti.map_index}

    async def load(self, uid: str | None) -> TriggerState | None:
        comms = self._comms()
        if comms is None:
            return None
        from airflow.sdk.bases.xcom import BaseXCom
        from airflow.sdk.execution_time.comms import GetXCom, XComResult

        try:
            answer = await comms.asend(GetXCom(key=STATE_KEY, **self._where()))
            if not isinstance(answer, XComResult) or answer.value is None:
                return None
            return TriggerState.from_json(BaseXCom.deserialize_value(answer), uid)
        except Exception as error:  # noqa: BLE001 — see the module docstring
            self._warn(f"Could not read this trigger's saved state ({type(error).__name__}: {error}); starting afresh")
            return None

    async def save(self, state: TriggerState) -> bool:
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
