"""The record the kubelet keeps of one container of a pod: its status fields and its live instance, if any.

Why: the status fields (``state``, ``lastState``, ``restartCount``, ``image``, ``imageID``, ``containerID``) are
what ``status.render_status`` reads, through ``record()``; the live parts (runtime handle, launch, log files by
container ID) are what endings, logs and exec need. ``state`` and ``last_state`` are replaced, never edited in
place: a status handed to the store is never mutated afterwards, so it is stored without a copy.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ..logfile import ContainerLog
from .launch import Handle, Launch


@dataclass
class ContainerRecord:
    """One container (or init container) of a pod on this node."""

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

    def record(self) -> dict[str, Any]:
        """The status fields, as ``status.render_status`` takes them."""
        return {
            "name": self.name,
            "state": self.state,
            "lastState": self.last_state,
            "restartCount": self.restart_count,
            "image": self.image,
            "imageID": self.image_id,
            "containerID": self.container_id,
        }
