"""One watch stream (``?watch=true``): the initial objects or a replay, then live changes, bookmarks and the end.

Why: watch resume, 410 handling and "was this deletion seen?" are exactly where KPO implementations break. Facts
(API server 1.32):

* From ``resourceVersion`` "" or "0" a watch starts with a synthetic ADDED per existing object; from any other
  version it replays the stored changes after it. A version older than the retained history is not an HTTP error:
  the answer is 200 with one ``ERROR`` event holding a 410 ``Expired`` Status, then the stream ends; a version that
  is not an integer is 400.
* Selectors apply to transitions: an object that stops matching is sent as DELETED, one that starts matching as
  ADDED (a ``status.phase=Running`` watch sees the pod leave when it finishes).
* ``allowWatchBookmarks`` sends BOOKMARK events every ``bookmark_interval`` seconds while nothing else is sent;
  ``timeoutSeconds`` ends the stream cleanly (default 30 to 60 minutes, like the API server's min-request-timeout).
* Each change is serialized once and the same bytes go to every watch (``Change.wire``); each watch has a bounded
  queue and is ended, as the API server ends too-slow watchers, when it falls ``WATCH_QUEUE_LIMIT`` changes behind.
  Changes already queued go out in one write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..errors import ApiError, Gone
from ..kinds import KIND_OF
from ..store import Change, Store
from ..tables import table
from .requests import Target, query_bool, table_include

WATCH_QUEUE_LIMIT = 10_000


class Watch:
    """One watch stream: initial objects or a replay, then live changes, bookmarks, timeout."""

    def __init__(self, store: Store, bookmark_interval: float, target: Target,
                 match: Callable[[dict[str, Any]], bool], request: web.Request) -> None:
        self.store, self.target, self.match, self.request = store, target, match, request
        self.bookmark_interval = bookmark_interval
        query = request.query
        self.bookmarks = query_bool(query, "allowWatchBookmarks")
        # Without timeoutSeconds the API server picks 1x-2x its min-request-timeout (1800 s).
        self.timeout = float(query.get("timeoutSeconds") or 1800 * (1 + random.random()))
        self.table_include = table_include(request)

    def _selected(self, obj: dict[str, Any]) -> bool:
        namespace = self.target.namespace
        return (namespace is None or obj["metadata"].get("namespace") == namespace) and self.match(obj)

    def _line(self, change: Change) -> bytes | None:
        if change.kind != self.target.kind:
            return None
        now_in = self._selected(change.obj)
        was_in = change.old is not None and change.type == "MODIFIED" and self._selected(change.old)
        if change.type == "MODIFIED":
            kind_of_event = ("MODIFIED" if was_in else "ADDED") if now_in else ("DELETED" if was_in else None)
        else:
            kind_of_event = change.type if now_in else None
        if kind_of_event is None:
            return None
        return self._event(kind_of_event, change.obj, change)

    def _event(self, kind_of_event: str, obj: dict[str, Any], change: Change | None = None) -> bytes:
        if self.table_include is not None:
            printed = table(self.target.kind, [obj], obj["metadata"].get("resourceVersion", ""), self.table_include)
            return json.dumps({"type": kind_of_event, "object": printed}, separators=(",", ":")).encode() + b"\n"
        if change is not None:
            return change.wire(kind_of_event)
        return json.dumps({"type": kind_of_event, "object": obj}, separators=(",", ":")).encode() + b"\n"

    def _bookmark(self) -> bytes:
        obj = {"kind": KIND_OF[self.target.kind], "apiVersion": "v1",
               "metadata": {"resourceVersion": str(self.store.resource_version)}}
        return json.dumps({"type": "BOOKMARK", "object": obj}, separators=(",", ":")).encode() + b"\n"

    async def run(self) -> web.StreamResponse:
        start = self.request.query.get("resourceVersion", "")
        queue = self.store.subscribe(maxsize=WATCH_QUEUE_LIMIT)
        try:
            first = self._first_lines(start)
            response = web.StreamResponse(headers={"Content-Type": "application/json",
                                                   "Cache-Control": "no-cache, private"})
            response.enable_chunked_encoding()
            await response.prepare(self.request)
            if first:
                await response.write(b"".join(first))
            if first is not None and not (first and first[-1].startswith(b'{"type":"ERROR"')):
                await self._stream(queue, response)
            with contextlib.suppress(ConnectionError):
                await response.write_eof()
            return response
        finally:
            self.store.unsubscribe(queue)

    def _first_lines(self, start: str) -> list[bytes]:
        """Synthetic ADDED events for "" / "0", the replay for a version, or the 410 ERROR event."""
        if start in ("", "0"):
            return [self._event("ADDED", obj) for obj in self.store.select(self.target.kind, self.target.namespace)
                    if self.match(obj)]
        try:
            version = int(start)
        except ValueError:
            raise ApiError(400, "BadRequest", f'resourceVersion: Invalid value: "{start}": must be an integer')
        try:
            changes = self.store.changes_since(version)
        except Gone as gone:
            return [json.dumps({"type": "ERROR", "object": gone.status()}, separators=(",", ":")).encode() + b"\n"]
        return [line for change in changes if (line := self._line(change)) is not None]

    async def _stream(self, queue: asyncio.Queue[Change | None], response: web.StreamResponse) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + self.timeout
        while True:
            wait = end - loop.time()
            if self.bookmarks:
                wait = min(wait, self.bookmark_interval)
            if wait <= 0:
                return
            try:
                async with asyncio.timeout(wait):
                    change = await queue.get()
            except TimeoutError:
                if loop.time() >= end:
                    return
                await response.write(self._bookmark())
                continue
            batch = [change]
            while not queue.empty():  # send everything already queued in one write
                batch.append(queue.get_nowait())
            lines = []
            for item in batch:
                if item is None:  # cut off: too slow, or close_watches()
                    if lines:
                        await response.write(b"".join(lines))
                    return
                if (line := self._line(item)) is not None:
                    lines.append(line)
            if lines:
                await response.write(b"".join(lines))


