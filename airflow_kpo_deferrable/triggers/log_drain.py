"""Wait, before a trigger's last event, until the triggerer's supervisor has read every log line the trigger wrote.

Why: Airflow 3.3.2's trigger runner (a subprocess) sends log records over one Unix socket and its state changes
("trigger N finished") over another; the supervisor reads both in one selector loop. On a ``finished`` message it
closes that trigger's log file (``jobs/triggerer_job_runner.py``, ``logger_cache.pop``), and records still unread on
the log socket then go to the triggerer's own log instead of the task's. On a loaded machine that cut a failed pod's
log right after its spec dump: the typed failure line was in the triggerer's output, not in the task log.

How: a record the supervisor has not read yet is still queued in our end of a Unix stream socket; Linux reports
that queue's size with the ``SIOCOUTQ`` ioctl. Before yielding its event the trigger waits (without blocking the
loop) until no Unix stream socket of this process has unread bytes. Once it has none, the supervisor has read every
record into its loop, and it handles what it read before the ``finished`` message, which is sent after the event.

Bounded: at most ``timeout`` seconds (a peer that never reads must not hold a task's end); elsewhere than Linux the
check is not available and the wait returns at once.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import stat
import struct
import sys
import termios
import time

POLL_SECONDS = 0.02
DEFAULT_TIMEOUT = 10.0


def unread_bytes() -> int | None:
    """Bytes this process wrote to Unix stream sockets that their readers have not read yet (None: unknown here)."""
    if not sys.platform.startswith("linux"):
        return None
    total = 0
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            with socket.socket(fileno=os.dup(fd)) as sock:
                if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                    continue
                queued = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
                total += struct.unpack("i", queued)[0]
        except OSError:  # closed meanwhile, or not a socket we may query
            continue
    return total


async def logs_read(timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Return once every byte written to this process's Unix stream sockets was read (True), or after ``timeout``
    seconds (False); True at once where that cannot be known."""
    deadline = time.monotonic() + timeout
    while (unread := unread_bytes()) and time.monotonic() < deadline:
        await asyncio.sleep(POLL_SECONDS)
    return not unread
