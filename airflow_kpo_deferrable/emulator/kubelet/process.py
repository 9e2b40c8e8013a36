"""The ``process`` runtime: containers (and ``exec`` commands) as local process groups, failing like containerd.

Why: users' DAG tests run real commands; the operator reads real exit codes, logs and termination messages.

Facts: each container's ``command`` + ``args`` (already ``$(VAR)``-expanded; ``args`` alone when there is no
``command``, as for an image without ENTRYPOINT) runs in its own process group with the environment and working
directory the pod worker chose; the image is ignored. stdout/stderr go to the container's
log file; a signal death is 128 + signal. When the main process exits the rest of its group is killed, as a
container dies with its PID 1. A program that cannot be executed fails like containerd: ``StartError`` (exit code
128) with ``failed to create containerd task: ... exec: "foo": executable file not found in $PATH: unknown``.
A container with neither ``command`` nor ``args`` runs scripted: its image's entrypoint is unknown here. ``ExecTarget`` runs
``pods/exec`` commands the same way (own process group, killed with the client's connection); the WebSocket side
is ``api.exec``.
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
from .launch import OOM_EXIT_CODE, Exit, Handle, Launch, StartError, exit_reason
from .scripted import ScriptedRuntime


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
    """A container that is a local process group; its output goes to the container's log file."""

    def __init__(self, process: asyncio.subprocess.Process, launch: Launch) -> None:
        self.started_at = utcnow()
        self._process = process
        self._log = launch.log
        self._oom = False
        if launch.scenario.failure is Failure.OOM_KILLED:
            duration = 1.0 if launch.scenario.duration is None else launch.scenario.duration
            asyncio.get_running_loop().call_later(duration, self._kill_for_oom)
        self._exit = asyncio.ensure_future(self._run())

    async def wait(self) -> Exit:
        return await asyncio.shield(self._exit)

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
            os.killpg(self._process.pid, signum)

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
        if self._oom:
            return Exit(OOM_EXIT_CODE, "OOMKilled", utcnow())
        return Exit(code, exit_reason(code), utcnow())

    async def _pump(self, stream: asyncio.StreamReader, name: str) -> None:
        while chunk := await stream.read(64 * 1024):
            self._log.write(name, chunk)


class ProcessRuntime:
    def __init__(self) -> None:
        self._scripted = ScriptedRuntime()

    async def start(self, launch: Launch) -> Handle:
        if not launch.command:
            return await self._scripted.start(launch)
        problem = exec_problem(launch.command[0], launch.env, launch.cwd)
        if problem:
            launch.log.close()
            raise StartError(start_error_message(problem))
        try:
            process = await asyncio.create_subprocess_exec(
                *launch.command,
                cwd=launch.cwd,
                env=launch.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group, so signals reach the whole container
            )
        except OSError as error:
            launch.log.close()
            raise StartError(start_error_message(f'exec: "{launch.command[0]}": {error.strerror}')) from None
        return ProcessHandle(process, launch)



@dataclass(frozen=True)
class ExecTarget:
    """A running container's environment and working directory, where ``pods/exec`` commands run."""

    env: dict[str, str]
    cwd: Path

    def problem(self, program: str) -> str | None:
        """Why ``program`` cannot be executed here (runc's words), or None."""
        return exec_problem(program, self.env, self.cwd)

    async def spawn(
        self, command: list[str], *, stdin: bool, stdout: bool, stderr: bool, tty: bool
    ) -> asyncio.subprocess.Process:
        """Start ``command`` in its own process group; with ``tty`` stderr is merged into stdout."""
        pipe, nowhere = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
        return await asyncio.create_subprocess_exec(
            *command,
            cwd=self.cwd,
            env=self.env,
            stdin=pipe if stdin else nowhere,
            stdout=pipe if stdout or tty else nowhere,
            stderr=asyncio.subprocess.STDOUT if tty else pipe if stderr else nowhere,
            start_new_session=True,  # its own process group: a client that goes away takes the whole command down
        )


def kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL ``process``'s whole group (an exec command whose client went away): no orphan process."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
