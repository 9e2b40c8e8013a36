"""Live logs: the trigger follows its pod's containers' logs into the task's trigger log while the pod runs.

Why: the provider shows nothing of a running pod's log in deferrable mode (or, with ``logging_interval``, buffers
each whole polled response in the triggerer). Here each selected container's log is followed (``follow=true``,
``timestamps=true``) from the moment the container starts, and each line is written as one log record.

Guarantees, in the order callers rely on them:

* Memory per stream is bounded: one read chunk plus one line piece (``logs.lines``: lines longer than 64 KiB are
  cut into marked pieces, bytes decoded as UTF-8 with replacement), so no log record is large (Airflow #66158) and
  a multi-MB burst becomes many small records, the loop yielding between chunks.
* No line twice, none lost, across a broken stream (the reader resumes with ``sinceTime`` and drops the repeat) and
  across the hand-over at pod end: ``finish`` waits for the follow streams (they end with their containers), then
  copies from each stream's resume point what remains — the worker does the same with ``start_after`` when it
  resumes the task instead.
* A triggerer restart resumes after the last persisted resume point (``start_after``); lines written after that
  point and before the restart repeat, at most ``logging_interval`` seconds of them, after a marker line.
* Concurrent streams per triggerer process are capped (``[kpo_deferrable] max_log_streams``, default 200): a pod
  over the cap says so and gets its log at the end. End work (the final copy) runs under a per-loop semaphore
  (``[kpo_deferrable] max_concurrent_finishes``, default 20).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from kubernetes_asyncio.client import CoreV1Api

from airflow_kpo_deferrable.logs.aio import drive_copy_async
from airflow_kpo_deferrable.logs.lines import TAIL_LINES, ContainerLogCopy, LineSink, ResumePoint, line_prefix

DEFAULT_MAX_LOG_STREAMS = 200
DEFAULT_MAX_CONCURRENT_FINISHES = 20
HANDOVER_GRACE_SECONDS = 30.0
REFOLLOW_SECONDS = 2.0

ApiFactory = Callable[[], Awaitable[CoreV1Api]]


def _config_int(key: str, default: int) -> int:
    try:
        from airflow.configuration import conf

        return conf.getint("kpo_deferrable", key, fallback=default)
    except Exception:  # noqa: BLE001 — no Airflow config (a plain test process): the default
        return default


class StreamSlots:
    """The per-process cap on followed streams (no waiting: a pod that finds no free slot gets its log at the end)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def try_take(self) -> bool:
        if self.in_use >= self.limit:
            return False
        self.in_use += 1
        return True

    def give_back(self) -> None:
        self.in_use = max(self.in_use - 1, 0)


_SLOTS: StreamSlots | None = None
_END_WORK: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def stream_slots() -> StreamSlots:
    global _SLOTS
    if _SLOTS is None:
        _SLOTS = StreamSlots(_config_int("max_log_streams", DEFAULT_MAX_LOG_STREAMS))
    return _SLOTS


def set_max_log_streams(limit: int) -> StreamSlots:
    """Replace this process's cap (benchmarks, tests); streams already followed keep their slots until they end."""
    global _SLOTS
    _SLOTS = StreamSlots(limit)
    return _SLOTS


def end_work() -> asyncio.Semaphore:
    """The running loop's semaphore for end work (final copies, deletes): bounded concurrency per triggerer."""
    loop = asyncio.get_running_loop()
    semaphore = _END_WORK.get(loop)
    if semaphore is None:
        semaphore = _END_WORK[loop] = asyncio.Semaphore(
            _config_int("max_concurrent_finishes", DEFAULT_MAX_CONCURRENT_FINISHES)
        )
    return semaphore


def _state_of(pod: dict[str, Any] | None, container: str) -> dict[str, Any]:
    status = (pod or {}).get("status") or {}
    for entry in list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or []):
        if entry.get("name") == container:
            return entry.get("state") or {}
    return {}


def _started(pod: dict[str, Any] | None, container: str) -> bool:
    return bool({"running", "terminated"} & set(_state_of(pod, container)))


def _ended(pod: dict[str, Any] | None, container: str) -> bool:
    return "terminated" in _state_of(pod, container)


class LiveLogs:
    """One pod's containers' logs into ``sink``: followed while they run (if ``live``), the rest at ``finish``."""

    def __init__(
        self,
        api: ApiFactory,
        pod_name: str,
        namespace: str,
        containers: list[str],
        sink: LineSink,
        warn: LineSink,
        *,
        live: bool,
        start_after: dict[str, ResumePoint] | None = None,
        prefix_enabled: bool = True,
    ) -> None:
        """``start_after`` None: streams wait for ``ready`` (the saved state is being read); ``prefix_enabled``:
        the operator's ``container_name_log_prefix_enabled``."""
        self._api = api
        self.pod_name = pod_name
        self.namespace = namespace
        self.containers = containers
        self._sink = sink
        self._warn = warn
        self._live = live
        self._prefix_enabled = prefix_enabled
        self._start_after = dict(start_after or {})
        self._copies: dict[str, ContainerLogCopy] = {}
        self._tails: dict[str, deque[str]] = {c: deque(maxlen=TAIL_LINES) for c in containers}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slots: set[str] = set()
        self._pod: dict[str, Any] | None = None
        self._pod_seen = asyncio.Event()  # set (and replaced) on every newer pod state: wakes a waiting re-follow
        self._over_cap_said = False
        self._ready = start_after is not None

    @property
    def is_ready(self) -> bool:
        return self._ready

    def ready(self, start_after: dict[str, ResumePoint]) -> None:
        """Where earlier copies stopped (a restarted trigger's saved points) is known: streams may start."""
        if self._ready:
            return
        self._start_after = dict(start_after)
        self._ready = True
        self.observe(self._pod)

    # -- while the pod runs -----------------------------------------------------------------------------------

    def observe(self, pod: dict[str, Any] | None) -> None:
        """The newest pod state: follow every selected container that has started (once each)."""
        self._pod = pod
        self._pod_seen.set()
        self._pod_seen = asyncio.Event()
        if not self._live or not self._ready:
            return
        for container in self.containers:
            if container in self._tasks or not _started(pod, container):
                continue
            slots = stream_slots()
            if not slots.try_take():
                if not self._over_cap_said:
                    self._over_cap_said = True
                    self._sink(
                        f"Live logs are off for pod {self.pod_name}: this triggerer already follows {slots.in_use} "
                        f"log streams ([kpo_deferrable] max_log_streams={slots.limit}); its log follows at the end."
                    )
                continue
            self._slots.add(container)
            self._tasks[container] = asyncio.create_task(self._follow(container), name=f"logs {self.pod_name}/{container}")

    def _copy(self, container: str, *, follow: bool) -> ContainerLogCopy:
        """The container's one copy, kept across reads: a resumed read (even of a long line cut by a cancelled
        stream) drops exactly what it already wrote."""
        copy = self._copies.get(container)
        if copy is None:
            tail = self._tails[container]
            prefix = line_prefix(self.containers, container, self._prefix_enabled)

            def sink(line: str) -> None:
                tail.append(line[len(prefix) :] if prefix else line)
                self._sink(line)

            copy = ContainerLogCopy(
                container, sink, prefix=prefix, follow=follow, start_after=self._start_after.get(container)
            )
            self._copies[container] = copy
        copy.follow = follow
        return copy

    async def _follow(self, container: str) -> None:
        try:
            api = await self._api()
            copy = self._copy(container, follow=True)
            while True:
                await drive_copy_async(api, self.pod_name, self.namespace, copy, warn=self._quiet)
                # The stream ends when the container exits, usually a moment before the watch shows it terminated:
                # wait for the next pod state (or REFOLLOW_SECONDS: a stream that closed early is followed again).
                seen = self._pod_seen
                if _ended(self._pod, container):
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(seen.wait(), REFOLLOW_SECONDS)
                if _ended(self._pod, container):
                    return
        finally:
            self._release(container)

    def _quiet(self, line: str) -> None:
        """A follow read that gives up is not final: the end copy reads the log again and warns if it must."""

    def _release(self, container: str) -> None:
        if container in self._slots:
            self._slots.discard(container)
            stream_slots().give_back()

    def resume_point(self, container: str) -> ResumePoint | None:
        copy = self._copies.get(container)
        point = copy.result.resume_point if copy is not None else None
        return point or self._start_after.get(container)

    def resume_points(self) -> dict[str, ResumePoint]:
        points = {c: self.resume_point(c) for c in self.containers}
        return {c: p for c, p in points.items() if p is not None}

    def tail(self, container: str) -> list[str]:
        return list(self._tails.get(container, ()))

    # -- at the end -------------------------------------------------------------------------------------------

    async def stop(self, grace: float = HANDOVER_GRACE_SECONDS) -> None:
        """Let the follow streams of ended containers drain (bounded by ``grace``), then stop every stream."""
        if self._tasks:
            ending = [t for c, t in self._tasks.items() if _ended(self._pod, c) and not t.done()]
            if ending:
                await asyncio.wait(ending, timeout=grace)
        await self.close()

    async def finish(self, grace: float = HANDOVER_GRACE_SECONDS) -> None:
        """Stop following, then copy what remains of every container's log after its resume point, in order."""
        await self.stop(grace)
        self.ready({})
        async with end_work():
            api = await self._api()
            for container in self.containers:
                await drive_copy_async(api, self.pod_name, self.namespace, self._copy(container, follow=False), warn=self._warn)

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()
        for container in list(self._slots):
            self._release(container)
