"""Starting Airflow components as process trees and stopping every process of a tree, orphans included.

Why a module of its own: stopping is the hard part, and it is the same for every component. Facts it handles:

- The task-sdk supervisor puts each task and the trigger runner in a process group of its own (``setpgid``), so
  signalling a component's process group does not reach them: ``process_tree`` snapshots the whole tree before any
  signal, and ``marked_processes`` finds whatever escaped (re-parented to init) by the marker variable
  ``STACK_MARKER`` that every process of a stack inherits.
- ``PR_SET_PDEATHSIG`` makes a component get SIGTERM if the test process dies abruptly. Linux ties it to the *thread*
  that started the child, so start stacks from a thread that outlives them; ``prctl`` is resolved once in the parent
  because a forked child must not ``dlopen`` (another thread may hold the loader's lock).
- Children start from ``clean_environment()``: the caller's own ``AIRFLOW__*``, ``AIRFLOW_CONN_*``, ``AIRFLOW_VAR_*``
  and ``AIRFLOW_HOME`` are dropped so a developer's local Airflow set-up cannot leak into a test.
- A component's output goes to one file (appended across restarts), which is what timeout messages quote.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

STACK_MARKER = "AIRFLOW_KPO_STACK_ID"
_PR_SET_PDEATHSIG = 1

# Resolved once in the parent: the forked child must not dlopen (another thread may hold the loader's lock).
_PRCTL = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None) if sys.platform == "linux" else None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process may still take it before we bind it again)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def clean_environment() -> dict[str, str]:
    """This process's environment without any Airflow configuration of the caller's (see module docstring)."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
        and key not in ("AIRFLOW_HOME", STACK_MARKER)
    }


def _set_parent_death_signal() -> None:
    """Runs in the child before exec: if the test process dies abruptly, its components get SIGTERM, not orphaned."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def process_tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants now (empty if it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def marked_processes(stack_id: str) -> list[psutil.Process]:
    """Every process still carrying this stack's marker, including orphans re-parented to init."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.pid != os.getpid() and process.environ().get(STACK_MARKER) == stack_id:
                found.append(process)
    return found


def terminate(processes: list[psutil.Process], sig: int, grace: float) -> None:
    """Send ``sig`` to every process, wait up to ``grace`` seconds, SIGKILL whatever is left."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)
    terminate_after(processes, grace)


def terminate_after(processes: list[psutil.Process], timeout: float) -> None:
    """Wait up to ``timeout`` seconds for the processes to exit on their own, then SIGKILL the rest."""
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=5)


def emergency_stop(stack_id: str) -> None:
    """Last resort when a stack is garbage-collected or the interpreter exits without ``stop()``."""
    terminate(marked_processes(stack_id), signal.SIGKILL, grace=5)


@dataclass
class Component:
    """One long-running process (``python -m airflow <args>``) and the file its output goes to.

    ``stopped_on_purpose`` tells a crash (worth ending every wait for) from a kill the test asked for.
    """

    name: str
    args: list[str]
    output: Path
    popen: subprocess.Popen[bytes] | None = None
    stopped_on_purpose: bool = False

    def launch(self, python: str, env: Mapping[str, str], cwd: Path) -> None:
        """Start the process in a session of its own, output appended to ``output``."""
        self.output.parent.mkdir(parents=True, exist_ok=True)
        with open(self.output, "ab") as sink:
            self.popen = subprocess.Popen(
                [python, "-m", "airflow", *self.args],
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_set_parent_death_signal,
            )
        self.stopped_on_purpose = False

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def crashed(self) -> bool:
        return self.popen is not None and not self.running() and not self.stopped_on_purpose

    def status(self) -> str:
        if self.popen is None:
            return "not started"
        return "running" if self.running() else f"exited with {self.popen.returncode}"

    def output_tail(self, lines: int = 40) -> str:
        return tail(self.output.read_text(errors="replace"), lines) if self.output.exists() else ""

    def tree(self) -> list[psutil.Process]:
        return process_tree(self.popen.pid) if self.running() else []

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """Stop on purpose. SIGKILL kills the whole tree at once (a lost host); other signals go to the main process
        only, as a container runtime would, and the tree gets ``timeout`` seconds to exit before SIGKILL."""
        self.stopped_on_purpose = True
        tree = self.tree()
        if sig == signal.SIGKILL:
            terminate(tree, signal.SIGKILL, grace=5)
        else:
            self.popen.send_signal(sig)
            terminate_after(tree, timeout)
        self.popen.wait(timeout=5)
