"""Container isolation for the process runtime: each container its own PID and mount namespace, as on a real node.

Why: a container's command may be ``pkill -f sh``, ``kill -9 -1`` or the provider's XCom sidecar kill (``kill -2
$(pgrep -u $(id -u) -f 'sh')``); run as plain local processes these would reach the host's own processes. In its
own PID namespace a container's first process is PID 1 (``sh -c 'echo $$$$'`` prints 1; ``$$`` is Kubernetes'
escape for ``$``), ``ps``/``pgrep``/``kill -1`` see only the container, and in its own mount namespace volumes are
bind mounts at their ``mountPath`` (``/airflow/xcom`` is the pod's own directory, not the host's).

Facts:

* ``sandbox_init.py`` does the syscalls (a script run with ``python -I -S``); this module starts it and reads its
  status pipe: ``ok <host pid of PID 1>`` or ``error <why>`` (a mount that failed, an exec that failed).
* ``pods/exec`` commands enter the target container's PID and mount namespaces (``setns``, as ``nsenter --target
  <pid1> --pid --mount``): they see the container's processes, ``/proc`` and volumes, nothing else.
* ``detect()`` runs the probe once per emulator process. Where the kernel refuses (no root, no namespaces) the
  runtime still runs plain containers as local process groups, but refuses what needs isolation: ``pods/exec`` and
  containers with volume mounts, with ``refusal()``'s message; the choice is logged once at start.
* Mount targets that do not exist on the host are created there (empty directories; only the container's mount
  namespace has anything mounted on them).
* Signals from outside reach a PID 1 only where it has a handler (the kernel's rule for a namespace's init). A real
  node's kubelet SIGTERM therefore does nothing to a PID 1 without a handler until SIGKILL after the grace period;
  the emulator applies the signal's default action instead (SIGKILL, reported as 128 + the signal, e.g. 143), so
  deleting a pod of ``sleep 600`` stays quick. ``default_action_needed`` tells when; a PID 1 that handles or
  explicitly ignores the signal is left to the kernel, as on a node.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .launch import Mount

logger = logging.getLogger(__name__)

INIT = Path(__file__).with_name("sandbox_init.py")


class SandboxError(Exception):
    """The container init could not start the command; the message says why (mount or exec failure)."""


@dataclass(frozen=True)
class Isolation:
    """Whether containers get their own PID and mount namespaces here; ``reason`` says why not."""

    enabled: bool
    reason: str = ""

    def refusal(self, what: str) -> str:
        """The error for ``what`` (e.g. ``pods/exec``) when containers cannot be isolated."""
        return (
            f"{what} is refused: the emulator's process runtime cannot isolate containers on this machine "
            f"({self.reason}); without their own PID and mount namespaces a container's commands could see and "
            "signal the host's processes and could not have volumes. Run the emulator as root on Linux, or use "
            "runtime scripted"
        )


@functools.cache
def detect() -> Isolation:
    """Probe once whether this kernel lets us create PID + mount namespaces (root on Linux)."""
    if not sys.platform.startswith("linux"):
        return Isolation(False, f"namespaces need Linux, this is {sys.platform}")
    try:
        probe = subprocess.run([sys.executable, "-I", "-S", str(INIT), "probe"], capture_output=True, text=True,
                               timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return Isolation(False, f"the namespace probe could not run: {error}")
    if probe.returncode != 0:
        why = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else f"exit code {probe.returncode}"
        return Isolation(False, f"unshare(CLONE_NEWPID|CLONE_NEWNS) failed: {why}")
    return Isolation(True)


def choose(isolate: bool | None) -> Isolation:
    """The runtime's isolation: detected (None), or turned off by the caller (False); logged once per runtime."""
    if isolate is False:
        chosen = Isolation(False, "isolation turned off (isolation=False)")
    else:
        chosen = detect()
        if isolate and not chosen.enabled:
            raise RuntimeError(f"container isolation was required but is not available: {chosen.reason}")
    if chosen.enabled:
        logger.info("emulator process runtime: each container runs in its own PID and mount namespace")
    else:
        logger.warning("emulator process runtime: containers are NOT isolated (%s); pods/exec and volume mounts "
                       "are refused", chosen.reason)
    return chosen


async def _status(fd: int) -> str:
    """Everything the container init writes to its status pipe (it closes it right after)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                os.fdopen(fd, "rb", buffering=0))
    try:
        return (await reader.read()).decode("utf-8", "replace")
    finally:
        transport.close()


async def _start(mode_args: list[str], spec: dict, env: dict[str, str], cwd: Path,
                 **pipes: int) -> tuple[asyncio.subprocess.Process, int]:
    read_end, write_end = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", str(INIT), mode_args[0], str(write_end), *mode_args[1:], json.dumps(spec),
            cwd=cwd, env=env, pass_fds=(write_end,), start_new_session=True, **pipes,
        )
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    status = await _status(read_end)
    word, _, rest = status.partition(" ")
    if word != "ok":
        await process.wait()
        raise SandboxError(rest or f"the container init exited with {process.returncode}")
    return process, int(rest)


async def run(argv: list[str], env: dict[str, str], cwd: Path, mounts: list[Mount],
              **pipes: int) -> tuple[asyncio.subprocess.Process, int]:
    """Start ``argv`` as PID 1 of new PID and mount namespaces; the init process and PID 1's host pid."""
    spec = {"argv": argv, "cwd": str(cwd), "mounts": [[str(m.source), m.target, m.read_only] for m in mounts]}
    return await _start(["run"], spec, env, cwd, **pipes)


async def enter(pid1: int, argv: list[str], env: dict[str, str], cwd: Path,
                **pipes: int) -> asyncio.subprocess.Process:
    """Start ``argv`` inside the namespaces of the container whose PID 1 is host process ``pid1``."""
    process, _ = await _start(["exec", str(pid1)], {"argv": argv, "cwd": str(cwd)}, env, cwd, **pipes)
    return process


def default_action_needed(pid: int, signum: int) -> bool:
    """True when ``pid`` (a PID 1) neither handles nor ignores ``signum``: the kernel would drop it from outside."""
    try:
        fields = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":\t" in line)
    except OSError:
        return False  # already gone
    bit = 1 << (signum - 1)
    return not (int(fields.get("SigCgt", "0"), 16) & bit or int(fields.get("SigIgn", "0"), 16) & bit)
