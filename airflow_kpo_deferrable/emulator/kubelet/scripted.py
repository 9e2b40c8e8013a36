"""The ``scripted`` runtime: containers made of timers that write generated log lines and exit as annotated.

Why: thousands of pods on one machine (benchmarks, the scripted suites) without a process each. Log lines are never
held in memory: they are written in batches of at most ``BATCH_BYTES``. A container ends when both its duration
(default 1 s) and its lines are done; SIGTERM/SIGKILL end it at once with 143/137; ``OOMKilled`` ends it after
``duration`` with 137.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from ..clock import utcnow
from ..scenario import Failure
from .launch import OOM_EXIT_CODE, Exit, Handle, Launch, exit_reason

BATCH_BYTES = 1024 * 1024

class ScriptedHandle:
    """A container made of timers: writes its log lines on schedule, exits when duration and lines are done."""

    def __init__(self, launch: Launch) -> None:
        self.started_at = utcnow()
        self.pid1: int | None = None  # no process: an exec command gets namespaces of its own
        self._launch = launch
        self._exit: asyncio.Future[Exit] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run())

    async def wait(self) -> Exit:
        return await asyncio.shield(self._exit)

    def signal(self, signum: int) -> None:
        if not self._exit.done():
            self._task.cancel()
            self._finish(128 + signum, "Error")

    def _finish(self, code: int, reason: str) -> None:
        self._launch.log.close()
        self._exit.set_result(Exit(code, reason, utcnow()))

    async def _run(self) -> None:
        scenario = self._launch.scenario
        duration = 1.0 if scenario.duration is None else scenario.duration
        if scenario.failure is Failure.OOM_KILLED:
            await asyncio.sleep(duration)
            self._finish(OOM_EXIT_CODE, "OOMKilled")
            return
        begin = time.monotonic()
        await self._write_lines(begin, duration)
        await asyncio.sleep(max(0.0, begin + duration - time.monotonic()))
        self._finish(scenario.exit_code, exit_reason(scenario.exit_code))

    async def _write_lines(self, begin: float, duration: float) -> None:
        scenario, log = self._launch.scenario, self._launch.log
        count = scenario.log_lines
        interval = scenario.log_interval if scenario.log_interval is not None else duration / max(count, 1)
        per_batch = max(1, BATCH_BYTES // ((scenario.log_line_bytes or 40) + 40))
        written = 0
        while written < count:
            due = count if interval == 0 else min(count, int((time.monotonic() - begin) / interval) + 1)
            if due > written:
                upto = min(due, written + per_batch)
                log.write_lines("stdout", self._lines(written, upto))
                written = upto
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(begin + written * interval - time.monotonic())

    def _lines(self, start: int, stop: int) -> Iterator[bytes]:
        size = self._launch.scenario.log_line_bytes
        name = self._launch.container
        for number in range(start + 1, stop + 1):
            text = f"{name} line {number}".encode()
            yield text if size is None else (text + b" " + b"x" * size)[:size]


class ScriptedRuntime:
    async def start(self, launch: Launch) -> Handle:
        return ScriptedHandle(launch)

