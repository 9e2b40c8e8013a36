"""What the kubelet knows of one pod on its node, and how that becomes the pod's status in the store.

Why: the pod worker's parts (``lifecycle``: container instances; ``worker``: the pod's life and endings) change
this state; this module turns it into status writes. Facts: status writes are coalesced, any number of changes in
one loop iteration is one ``store.update`` (``changed()``); the status itself comes from the pure
``status.render_status``. A write that finds the pod gone from the store (or replaced by a pod with the same name
and another uid) marks the worker ``gone``: from then on nothing is written and no event is recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from ..clock import rfc3339
from ..errors import ApiError
from .containers import ContainerRecord
from .context import NodeContext
from .events import EventRecorder
from .status import Progress, Terminal, condition, phase, render_status


class Ending(StrEnum):
    """Why a pod stopped making progress; once set, only the kill and the status that follows remain."""

    EVICTED = "evicted"
    DEADLINE = "deadline"
    LOST = "lost"
    DELETING = "deleting"
    DONE = "done"


class PodGone(Exception):
    """The pod left the store (or was replaced by another with the same name)."""


class PodState:
    """One pod's records on the node; ``changed()`` after any change writes its status once per loop iteration."""

    def __init__(self, context: NodeContext, pod: dict) -> None:
        self.context = context
        self.pod = pod
        meta, self.spec = pod["metadata"], pod.get("spec", {})
        self.namespace, self.name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.annotations: dict[str, str] = meta.get("annotations") or {}
        self.restart_policy = self.spec.get("restartPolicy", "Always")
        self.init_records = [ContainerRecord(c, init=True) for c in self.spec.get("initContainers") or []]
        self.records = [ContainerRecord(c) for c in self.spec.get("containers") or []]
        if self.init_records:
            for record in self.records + self.init_records[1:]:
                record.wait("PodInitializing")
        self.conditions: dict[str, dict] = {}
        self.start_time: str | None = None
        self.pod_ip: str | None = None
        self.sandbox_ready = False
        self.terminal: Terminal | None = None
        self.ending: Ending | None = None
        self.directory: Path = context.workdir / "pods" / f"{self.namespace}_{self.name}_{self.uid}"
        self.gone = False
        self._flush_pending = False
        self._events = EventRecorder(context.store, context.node_name, context.event_name, pod)

    @property
    def all_records(self) -> list[ContainerRecord]:
        return self.init_records + self.records

    def record(self, name: str) -> ContainerRecord | None:
        return next((r for r in self.all_records if r.name == name), None)

    # -- status -------------------------------------------------------------------------------------------------------

    def progress(self) -> Progress:
        return Progress(self.context.host_ip, self.start_time, self.pod_ip, self.sandbox_ready, self.terminal,
                        node_lost=self.ending is Ending.LOST)

    def phase(self) -> str:
        return phase(self.spec, [r.record() for r in self.init_records], [r.record() for r in self.records],
                     self.progress())

    def set_condition(self, kind: str, status: str, reason: str | None = None, message: str | None = None) -> None:
        self.conditions[kind] = condition(kind, status, self.conditions.get(kind), rfc3339(), reason, message)

    def render_status(self) -> dict:
        """The status to write now; its conditions become the ones the next render starts from."""
        status = render_status(self.spec, [r.record() for r in self.init_records], [r.record() for r in self.records],
                               self.progress(), self.conditions, rfc3339())
        self.conditions = {entry["type"]: entry for entry in status["conditions"]}
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
        self.update(lambda pod: pod.__setitem__("status", status))

    def update(self, mutate: Callable[[dict], None]) -> None:
        """Apply ``mutate`` to this pod in the store; marks the worker gone when the pod is not there any more."""

        def guarded(pod: dict) -> None:
            if pod["metadata"].get("uid") != self.uid:
                raise PodGone
            mutate(pod)

        try:
            self.context.store.update("pods", self.namespace, self.name, guarded)
        except (PodGone, ApiError) as error:
            if isinstance(error, ApiError) and error.code != 404:
                raise
            self.gone = True

    def event(
        self, reason: str, message: str, kind: str = "Normal", record: ContainerRecord | None = None,
        component: str = "kubelet",
    ) -> None:
        """A v1 Event about the pod (nothing once the pod is gone)."""
        if not self.gone:
            self._events.record(reason, message, kind, record.field_path if record else "", component)
