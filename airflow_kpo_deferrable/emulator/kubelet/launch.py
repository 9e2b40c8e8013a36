"""What a container runtime is given and gives back: ``Launch`` (with its ``Mount``s), ``Handle``, ``Exit``, ``StartError``.

Why a module of its own: the pod worker and both runtimes (``process``, ``scripted``) depend on these types and on
nothing of each other. ``Exit.code`` of a signal death is 128 + signal (137, 143) like containerd; ``reason`` is
Completed, Error or OOMKilled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from ..logfile import ContainerLog
from ..scenario import Scenario

OOM_EXIT_CODE = 137

@dataclass(frozen=True)
class Exit:
    code: int
    reason: str  # Completed | Error | OOMKilled
    finished_at: datetime
    message: str | None = None


def exit_reason(code: int) -> str:
    return "Completed" if code == 0 else "Error"


class StartError(Exception):
    """containerd could not start the container's process; exit code 128, reason StartError."""


@dataclass(frozen=True)
class Mount:
    """A volume in a container: the node's directory ``source`` appears at ``target`` (the ``mountPath``)."""

    source: Path
    target: str
    read_only: bool = False


@dataclass
class Launch:
    """Everything a runtime needs to start one container instance."""

    container: str
    command: list[str]  # command + args (args alone without a command), expanded; empty when neither is set
    env: dict[str, str]
    cwd: Path
    log: ContainerLog
    scenario: Scenario = field(default_factory=Scenario)
    mounts: list[Mount] = field(default_factory=list)


class Handle(Protocol):
    started_at: datetime
    pid1: int | None  # the host pid of the container's PID 1 when it is an isolated process

    async def wait(self) -> Exit: ...

    def signal(self, signum: int) -> None: ...


class Runtime(Protocol):
    async def start(self, launch: Launch) -> Handle: ...

