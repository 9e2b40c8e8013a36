"""The process runtime's container init, run as a script (``python -I -S sandbox_init.py MODE ...``), never imported.

Why a script: Python 3.11 has no ``os.unshare``/``os.setns``, and neither may run in the emulator's own (threaded)
process; util-linux ``unshare --fork`` cannot report a SIGKILLed child (it prints ``sigprocmask unblock failed``
into the container's stderr and exits 1). This file uses only the standard library (``ctypes`` for the syscalls),
so ``-I -S`` start-up is quick and the container's ``PYTHONPATH``/``PYTHONHOME`` cannot affect it.

Modes (the kubelet side is ``sandbox.py``):

* ``probe``: unshare a PID and a mount namespace, fork, check the child is PID 1 and can mount ``/proc``; exit 0.
* ``run STATUS_FD SPEC``: new PID + mount namespaces (mount propagation private, so nothing leaks to the host);
  the forked child is PID 1: it mounts a fresh ``/proc``, bind-mounts ``SPEC["mounts"]`` (``[source, target,
  read_only]``; a missing target directory is created), enters ``SPEC["cwd"]`` and execs ``SPEC["argv"]`` with
  the inherited environment. STATUS_FD gets ``ok <host pid of PID 1>`` once the exec succeeded, or ``error
  <message>``; then this process waits and exits as the child did (a signal death is re-raised).
* ``exec STATUS_FD PID SPEC``: enter the PID and mount namespaces of host process PID (a container's PID 1),
  fork, exec ``SPEC["argv"]`` in ``SPEC["cwd"]``; same status and exit mirroring.

While it waits it ignores the signals a kubelet or a client sends to the whole process group, so the exit it
mirrors is the container's; the child gets default dispositions back before its exec.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
RELAYED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
RESET = (*RELAYED, signal.SIGPIPE, signal.SIGXFSZ)

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int) -> None:
    encode = lambda text: None if text is None else text.encode()  # noqa: E731
    _check(_libc.mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), None),
           f"mount {target}")


def _new_namespaces() -> None:
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # our mounts must never propagate to the host


def _container_mounts(mounts: list[list]) -> None:
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for source, target, read_only in mounts:
        try:
            os.makedirs(target, exist_ok=True)
            _mount(source, target, None, MS_BIND | MS_REC)
            if read_only:
                _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        except OSError as error:
            raise OSError(error.errno, f'error mounting "{source}" to rootfs at "{target}": '
                                       f"{os.strerror(error.errno or 0).lower()}") from None


def _spawn(spec: dict, status_fd: int, prepare) -> int:
    """Fork; the child runs ``prepare()`` and execs; report ``ok <pid>``/``error ...``; return the child's pid."""
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, False)  # closed by a successful exec: EOF means it worked
    for signum in RELAYED:
        signal.signal(signum, signal.SIG_IGN)
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        os.close(status_fd)  # the command must not hold the kubelet's pipe open
        try:
            prepare()
            os.chdir(spec["cwd"])
        except OSError as error:
            os.write(write_end, (error.strerror or str(error)).encode())
            os._exit(127)
        for signum in RESET:
            signal.signal(signum, signal.SIG_DFL)
        try:
            os.execvp(spec["argv"][0], spec["argv"])
        except OSError as error:  # runc's words
            os.write(write_end, f'exec: "{spec["argv"][0]}": {os.strerror(error.errno or 0).lower()}'.encode())
        os._exit(127)
    os.close(write_end)
    failure = b""
    while chunk := os.read(read_end, 4096):
        failure += chunk
    os.close(read_end)
    os.write(status_fd, (f"error {failure.decode()}" if failure else f"ok {pid}").encode())
    os.close(status_fd)
    return pid


def _mirror(pid: int) -> None:
    """Exit as child ``pid`` did."""
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if signum not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
        os.kill(os.getpid(), signum)
        os._exit(128 + signum)
    os._exit(os.waitstatus_to_exitcode(status))


def probe() -> None:
    _new_namespaces()
    pid = os.fork()
    if pid == 0:
        try:
            _container_mounts([])
        except OSError:
            os._exit(2)
        os._exit(0 if os.getpid() == 1 else 3)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code:
        sys.exit({2: "cannot mount /proc in a new mount namespace", 3: "the child is not PID 1"}.get(code, code))


def run(status_fd: int, spec: dict) -> None:
    try:
        _new_namespaces()
    except OSError as error:
        os.write(status_fd, f"error {error.strerror}".encode())
        sys.exit(128)
    _mirror(_spawn(spec, status_fd, lambda: _container_mounts(spec.get("mounts", []))))


def enter(status_fd: int, target: int, spec: dict) -> None:
    try:
        spaces = [os.open(f"/proc/{target}/ns/{space}", os.O_RDONLY) for space in ("pid", "mnt")]
        for fd in spaces:
            _check(_libc.setns(fd, 0), "setns")
            os.close(fd)
    except OSError as error:
        os.write(status_fd, f"error {error.strerror}".encode())
        sys.exit(128)
    _mirror(_spawn(spec, status_fd, lambda: None))


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "probe":
        try:
            probe()
        except OSError as error:
            sys.exit(error.strerror)
    elif mode == "run":
        run(int(rest[0]), json.loads(rest[1]))
    elif mode == "exec":
        enter(int(rest[0]), int(rest[1]), json.loads(rest[2]))
    else:
        sys.exit(f"unknown mode {mode!r}")
