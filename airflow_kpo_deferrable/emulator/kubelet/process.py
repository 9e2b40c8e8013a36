"""The ``process`` runtime: containers (and ``exec`` commands) as local processes, failing like containerd.

Why: users' DAG tests run real commands; the operator reads real exit codes, logs and termination messages.

Facts: each container's ``command`` + ``args`` (already ``$(VAR)``-expanded; ``args`` alone when there is no
``command``, as for an image without ENTRYPOINT) runs with the environment and working directory the pod worker
chose; the image is ignored. With isolation (``sandbox``; the default where the kernel allows) it is PID 1 of its
own PID and mount namespaces with the pod's volumes bind-mounted, and ``pods/exec`` commands enter those
namespaces; without, it is a plain local process group, and exec and volume mounts are refused. stdout/stderr go to
the container's log file; a signal death is 128 + signal. When the main process exits the rest of the container
dies with it, as a container dies with its PID 1. A program that cannot be executed fails like containerd:
``StartError`` (exit code 128) with ``failed to create containerd task: ... exec: "foo": executable file not found
in $PATH: unknown``. A container with neither ``command`` nor ``args`` runs scripted: its image's entrypoint is
unknown here. ``ExecTarget`` runs ``pods/exec`` commands (own process group, killed with the client's connection);
the WebSocket side is ``api.exec``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from ..clock import utcnow
from ..scenario import Failure
from . import sandbox
from .launch import OOM_EXIT_CODE, Exit, Handle, Launch, Mount, StartError, exit_reason
from .sandbox import Isolation, SandboxError
from .scripted import ScriptedRuntime
from .volumes import prepare_sources


def exec_problem(program: str, env: dict[str, str], cwd: Path) -> str | None:
    """Why runc could not execute ``program`` (``exec: "foo": executable file not found in $PATH``), or None."""
    if "/" not in program:
        if shutil.which(program, path=env.get("PATH", os.defpath)) is None:
            return f'exec: "{program}": executable file not found in $PATH'
        return None
    path = Path(program) if program.startswith("/") else cwd / program
    if not path.exists():
        return f'exec: "{program}": stat {program}: no such file or directory'
    if path.is_dir() or not os.access(path, os.X_OK):
        return f'exec: "{program}": permission denied'
    return None


def start_error_message(problem: str) -> str:
    """containerd's StartError message around runc's complaint."""
    return (
        "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: "
        f"unable to start container process: {problem}: unknown"
    )


class ProcessHandle:
    """A container that is a local process group; its output goes to the container's log file.

    ``pid1`` is the host pid of the container's PID 1 when it runs isolated (None otherwise)."""

    def __init__(self, process: asyncio.subprocess.Process, launch: Launch, pid1: int | None = None) -> None:
        self.started_at = utcnow()
        self.pid1 = pid1
        self._process = process
        self._log = launch.log
        self._oom = False
        self._default_action: int | None = None  # a signal PID 1 had no handler for, applied as SIGKILL
        if launch.scenario.failure is Failure.OOM_KILLED:
            duration = 1.0 if launch.scenario.duration is None else launch.scenario.duration
            asyncio.get_running_loop().call_later(duration, self._kill_for_oom)
        self._exit = asyncio.ensure_future(self._run())

    async def wait(self) -> Exit:
        return await asyncio.shield(self._exit)

    def signal(self, signum: int) -> None:
        default = (self.pid1 is not None and signum != signal.SIGKILL
                   and sandbox.default_action_needed(self.pid1, signum))
        with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
            os.killpg(self._process.pid, signum)
            if default and self.pid1 is not None:  # see sandbox: the signal's default action, not the kernel's drop
                self._default_action = signum
                os.kill(self.pid1, signal.SIGKILL)

    def _kill_for_oom(self) -> None:
        if self._process.returncode is None:
            self._oom = True
            self.signal(signal.SIGKILL)

    async def _run(self) -> Exit:
        assert self._process.stdout and self._process.stderr
        pumps = asyncio.gather(self._pump(self._process.stdout, "stdout"), self._pump(self._process.stderr, "stderr"))
        returncode = await self._process.wait()
        self.signal(signal.SIGKILL)  # the container dies with its main process: no orphan keeps the pipes open
        await pumps
        self._log.close()
        code = returncode if returncode >= 0 else 128 - returncode
        if returncode == -signal.SIGKILL and self._default_action is not None:
            code = 128 + self._default_action
        if self._oom:
            return Exit(OOM_EXIT_CODE, "OOMKilled", utcnow())
        return Exit(code, exit_reason(code), utcnow())

    async def _pump(self, stream: asyncio.StreamReader, name: str) -> None:
        while chunk := await stream.read(64 * 1024):
            self._log.write(name, chunk)


class ProcessRuntime:
    """Runs containers as local processes, isolated as ``isolation`` says (see ``sandbox``)."""

    def __init__(self, isolation: Isolation) -> None:
        self.isolation = isolation
        self._scripted = ScriptedRuntime()

    async def start(self, launch: Launch) -> Handle:
        if not launch.command:
            return await self._scripted.start(launch)
        problem = exec_problem(launch.command[0], launch.env, launch.cwd)
        if problem:
            launch.log.close()
            raise StartError(start_error_message(problem))
        pipes = {"stdin": asyncio.subprocess.DEVNULL, "stdout": asyncio.subprocess.PIPE,
                 "stderr": asyncio.subprocess.PIPE}
        if not self.isolation.enabled:
            if launch.mounts:
                launch.log.close()
                raise StartError(start_error_message(self.isolation.refusal("a container with volumeMounts")))
            try:
                process = await asyncio.create_subprocess_exec(
                    *launch.command, cwd=launch.cwd, env=launch.env, start_new_session=True, **pipes)
            except OSError as error:
                launch.log.close()
                raise StartError(start_error_message(f'exec: "{launch.command[0]}": {error.strerror}')) from None
            return ProcessHandle(process, launch)
        try:
            prepare_sources(launch.mounts)
            process, pid1 = await sandbox.run(launch.command, launch.env, launch.cwd, launch.mounts, **pipes)
        except (OSError, SandboxError) as error:
            launch.log.close()
            problem = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise StartError(start_error_message(problem)) from None
        return ProcessHandle(process, launch, pid1)


@dataclass(frozen=True)
class ExecTarget:
    """A running container, where ``pods/exec`` commands run: its environment, working directory and namespaces.

    ``pid1`` is the host pid of its PID 1 (an isolated process container): commands enter its namespaces. Without
    one (a scripted container) each command gets fresh namespaces of its own with the container's ``mounts``."""

    env: dict[str, str]
    cwd: Path
    pid1: int | None = None
    mounts: tuple[Mount, ...] = ()

    def problem(self, program: str) -> str | None:
        """Why ``program`` cannot be executed here (runc's words), or None."""
        return exec_problem(program, self.env, self.cwd)

    async def spawn(
        self, command: list[str], *, stdin: bool, stdout: bool, stderr: bool, tty: bool
    ) -> asyncio.subprocess.Process:
        """Start ``command`` in its own process group; with ``tty`` stderr is merged into stdout.

        Raises ``SandboxError`` when the command cannot start in the container."""
        pipe, nowhere = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
        pipes = {
            "stdin": pipe if stdin else nowhere,
            "stdout": pipe if stdout or tty else nowhere,
            "stderr": asyncio.subprocess.STDOUT if tty else pipe if stderr else nowhere,
        }
        if self.pid1 is not None:
            return await sandbox.enter(self.pid1, command, self.env, self.cwd, **pipes)
        prepare_sources(list(self.mounts))
        process, _ = await sandbox.run(command, self.env, self.cwd, list(self.mounts), **pipes)
        return process


def kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL ``process``'s whole group (an exec command whose client went away): no orphan process."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
