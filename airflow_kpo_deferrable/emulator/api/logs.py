"""The ``pods/log`` endpoint: a container's log file streamed to the client in bounded memory, as the kubelet serves it.

Why: the operator streams logs of every container while a pod runs and after it ends; benchmarks read logs of a
GiB. The file format is ``logfile``'s; this module is the HTTP side. Facts (API server and kubelet 1.32):

* One file per container instance, so ``previous=true`` reads the instance that ``lastState.terminated`` names,
  like the kubelet, which picks the file by container ID (``log_container_id``). A pod without a node answers 200
  with an empty body.
* The kubelet's own checks are 400 BadRequest bodies: ``container "base" in pod "x" is waiting to start:
  ContainerCreating`` (``image can't be pulled`` for ErrImagePull, ``trying and failing to pull image`` for
  ImagePullBackOff), ``previous terminated container "base" in pod "x" not found``.
* Invalid options are 422 like ``ValidatePodLogOptions`` (sinceSeconds with sinceTime, negative tailLines, ...).
* ``follow`` streams until that container instance ends (its log file is closed), flushing as records arrive;
  ``tailLines`` seeks back from the end of the file; ``sinceTime``/``sinceSeconds`` compare record timestamps and
  skip whole chunks that are older; ``limitBytes`` cuts the output at that many bytes, even mid-line.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..errors import ApiError
from ..faults import Faults
from ..logfile import ContainerLog, cri_timestamp, drop_older, read_records, render, tail_offset
from ..store import Store
from .containers import choose_container, container_status
from .node import Node
from .requests import query_bool, query_int

FOLLOW_POLL_SECONDS = 1.0  # a safety net only: writers wake followers at once


@dataclass(frozen=True)
class LogOptions:
    container: str
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    since: bytes | None = None  # a CRI timestamp
    tail_lines: int | None = None
    limit_bytes: int | None = None


def parse_options(query: Any, pod_name: str) -> tuple[str, LogOptions]:
    """Query → options (container still unresolved, returned first); 422 like ``ValidatePodLogOptions``."""
    since_seconds = query_int(query, "sinceSeconds")
    tail_lines = query_int(query, "tailLines")
    limit_bytes = query_int(query, "limitBytes")
    since_time = query.get("sinceTime")
    problems = []
    if tail_lines is not None and tail_lines < 0:
        problems.append(f"tailLines: Invalid value: {tail_lines}: must be greater than or equal to 0")
    if limit_bytes is not None and limit_bytes < 1:
        problems.append(f"limitBytes: Invalid value: {limit_bytes}: must be greater than 0")
    if since_seconds is not None and since_time:
        problems.append("sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified")
    elif since_seconds is not None and since_seconds < 1:
        problems.append(f"sinceSeconds: Invalid value: {since_seconds}: must be greater than 0")
    if problems:
        message = f'PodLogOptions "{pod_name}" is invalid: ' + ", ".join(problems)
        raise ApiError(422, "Invalid", message, {"name": pod_name, "kind": "PodLogOptions"})
    since: bytes | None = None
    if since_seconds is not None:
        since = cri_timestamp(time.time_ns() - since_seconds * 1_000_000_000)
    elif since_time:
        since = cri_timestamp(int(_parse_time(since_time).timestamp() * 1_000_000_000))
    options = LogOptions(
        container="",
        follow=query_bool(query, "follow"),
        previous=query_bool(query, "previous"),
        timestamps=query_bool(query, "timestamps"),
        since=since,
        tail_lines=tail_lines,
        limit_bytes=limit_bytes,
    )
    return query.get("container", ""), options


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(
            400, "BadRequest", f"invalid value for sinceTime: {value!r}: use RFC 3339, e.g. 2024-05-01T10:00:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def log_container_id(pod: dict, container: str, previous: bool) -> str:
    """The container ID whose log the kubelet would serve, or its 400 error (``validateContainerLogStatus``)."""
    name = pod["metadata"]["name"]
    status = container_status(pod, container)
    if status is None:
        raise ApiError(
            400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
        )
    state = status.get("state") or {}
    last = (status.get("lastState") or {}).get("terminated") or {}
    if previous:
        if not last.get("containerID"):
            raise ApiError(400, "BadRequest", f'previous terminated container "{container}" in pod "{name}" not found')
        return last["containerID"]
    if "running" in state:
        return status["containerID"]
    if "terminated" in state:
        terminated_id = state["terminated"].get("containerID") or last.get("containerID")
        if not terminated_id:
            raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is terminated')
        return terminated_id
    if last.get("containerID"):
        return last["containerID"]
    reason = (state.get("waiting") or {}).get("reason", "")
    explained = {"ErrImagePull": "image can't be pulled", "ImagePullBackOff": "trying and failing to pull image"}
    detail = explained.get(reason, reason) if reason else "ContainerCreating"
    raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start: {detail}')


@dataclass(frozen=True)
class PodLogs:
    """``GET /api/v1/namespaces/{namespace}/pods/{name}/log``, built from the store and the node (None: no node).

    ``faults`` (optional) may break an answer midway (``Faults.cut_streams``), as a proxy or a restarting API server
    does.
    """

    store: Store
    node: Node | None
    faults: Faults | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        container, options = parse_options(request.query, name)
        pod = self.store.get("pods", namespace, name)
        container = choose_container(pod, container)
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        if not pod.get("spec", {}).get("nodeName") or self.node is None:
            await response.prepare(request)
            await response.write_eof()
            return response
        container_id = log_container_id(pod, container, options.previous)
        log = self.node.log_file(namespace, name, container, container_id)
        response.enable_chunked_encoding()
        await response.prepare(request)
        if log is not None:
            cut = self.faults.stream_cut("pods/log") if self.faults is not None else None
            try:
                await stream_log(response if cut is None else _CutAfter(response, request, cut), log, options)
            except ConnectionError:  # the client went away (or a cut_streams fault broke the answer): nothing to answer
                return response
        await response.write_eof()
        return response


class _CutAfter:
    """A response that breaks after ``remaining`` bytes (the ``cut_streams`` fault): no chunked end, socket closed."""

    def __init__(self, response: web.StreamResponse, request: web.Request, remaining: int) -> None:
        self._response, self._request, self._remaining = response, request, remaining

    async def write(self, data: bytes) -> None:
        if len(data) < self._remaining:
            self._remaining -= len(data)
            await self._response.write(data)
            return
        await self._response.write(data[: self._remaining])
        if self._request.transport is not None:
            self._request.transport.close()  # close, not abort: what was written is flushed first
        raise ConnectionResetError("emulated fault: stream cut")


async def stream_log(response: web.StreamResponse, log: ContainerLog, options: LogOptions) -> None:
    """Copy ``log`` to ``response`` chunk by chunk, applying tail, since, timestamps, limit and follow."""
    remaining = options.limit_bytes
    with log.path.open("rb") as file:
        if options.tail_lines is not None:
            file.seek(tail_offset(file, options.tail_lines))
        since = options.since
        while True:
            closed = log.closed  # taken before the read: a close after it still gets its records read next time
            changed = log.change_event
            records = read_records(file)
            if records:
                if since is not None:
                    records = drop_older(records, since)
                    if records:
                        since = None
                out = render(records, options.timestamps)
                if remaining is not None:
                    out = out[:remaining]
                    remaining -= len(out)
                if out:
                    await response.write(out)
                if remaining == 0:
                    return
                await asyncio.sleep(0)  # a GiB log must not hold the loop while the client keeps up
                continue
            if not options.follow or closed:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), FOLLOW_POLL_SECONDS)
