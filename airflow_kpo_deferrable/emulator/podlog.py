"""Container log files and the ``pods/log`` endpoint, in bounded memory whatever a log's size.

Why: the operator streams logs of every container while a pod runs and after it ends; benchmarks use logs of a GiB.
So each container instance writes a CRI-format file (what containerd writes under ``/var/log/pods``) and the endpoint
streams from that file in chunks; no log is ever read whole into memory.

Facts it handles, matching the real API server and kubelet (1.32):

* File format, one record per line: ``<RFC3339Nano UTC, 9 digits> <stdout|stderr> <F|P> <text>``. A line longer than
  16 KiB is cut into ``P`` (partial) records ended by an ``F`` record; output joins them back. A last line without a
  newline is written as ``F`` and so gets a newline on output, as containerd does.
* One file per container instance (``<container>/<restart>.log``), so ``previous=true`` reads the instance that
  ``lastState.terminated`` names, like the kubelet, which picks the file by container ID.
* ``container`` may be omitted only when the pod has one container; else 400 ``a container name must be specified for
  pod x, choose one of: [init a b]`` (init containers first, as ``VisitContainers`` orders them). An unknown name is
  400 ``container x is not valid for pod y``. A pod without a node answers 200 with an empty body.
* The kubelet's own checks become 400 BadRequest bodies: ``container "base" in pod "x" is waiting to start:
  ContainerCreating`` (``image can't be pulled`` for ErrImagePull, ``trying and failing to pull image`` for
  ImagePullBackOff), ``previous terminated container "base" in pod "x" not found``.
* Invalid options are 422 like ``ValidatePodLogOptions`` (sinceSeconds with sinceTime, negative tailLines, ...).
* ``follow`` streams until that container instance ends (its log file is closed), flushing as records arrive;
  ``tailLines`` seeks back from the end of the file; ``sinceTime``/``sinceSeconds`` compare record timestamps and skip
  whole chunks that are older; ``limitBytes`` cuts the output at that many bytes, even mid-line.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from aiohttp import web

from .store import ApiError

if TYPE_CHECKING:
    from .server import Emulator

MAX_RECORD_BYTES = 16 * 1024  # containerd's default max_container_log_line_size
CHUNK_BYTES = 64 * 1024
FOLLOW_POLL_SECONDS = 1.0  # a safety net only: writers wake followers at once

_FULL_PREFIX = re.compile(rb"^\S+ \S+ F ", re.M)
_FULL_PREFIX_KEEP_TIME = re.compile(rb"^(\S+) \S+ F ", re.M)


def cri_timestamp(ns: int | None = None) -> bytes:
    """``2024-05-01T10:00:00.123456789Z``: fixed nine digits, so timestamps compare as bytes."""
    ns = time.time_ns() if ns is None else ns
    seconds, nanos = divmod(ns, 1_000_000_000)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z").encode()


class ContainerLog:
    """The log file of one container instance; writers append CRI records, followers wait for changes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        self.path = path
        self.closed = False
        self._pending: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self._changed = asyncio.Event()

    def write(self, stream: str, data: bytes) -> None:
        """Append raw output of ``stream``; complete lines become records, a partial line waits for its end."""
        pending = self._pending[stream]
        pending += data
        lines: list[bytes] = []
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            lines.append(bytes(pending[start:end]))
            start = end + 1
        del pending[:start]
        records = [_records(stream, line) for line in lines]
        while len(pending) >= MAX_RECORD_BYTES:  # a line still growing past the limit: flush a partial record now
            records.append(_record(stream, b"P", bytes(pending[:MAX_RECORD_BYTES])))
            del pending[:MAX_RECORD_BYTES]
        self._append(b"".join(records))

    def write_lines(self, stream: str, lines: Iterable[bytes]) -> None:
        """Append whole lines (without newlines) with one timestamp: the scripted runtime's batches."""
        stamp = cri_timestamp()
        self._append(b"".join(_records(stream, line, stamp) for line in lines))

    def close(self) -> None:
        """The container instance ended: flush partial lines as full records and end every follower."""
        if self.closed:
            return
        for stream, pending in self._pending.items():
            if pending:
                self._append(_records(stream, bytes(pending)))
                pending.clear()
        self.closed = True
        self._wake()

    @property
    def change_event(self) -> asyncio.Event:
        """Set by the next write or the close; take it before reading so no change slips between."""
        return self._changed

    def _append(self, data: bytes) -> None:
        if not data:
            return
        with self.path.open("ab") as file:
            file.write(data)
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


def _record(stream: str, tag: bytes, text: bytes, stamp: bytes | None = None) -> bytes:
    return b"%s %s %s %s\n" % (stamp or cri_timestamp(), stream.encode(), tag, text)


def _records(stream: str, line: bytes, stamp: bytes | None = None) -> bytes:
    stamp = stamp or cri_timestamp()
    if len(line) <= MAX_RECORD_BYTES:
        return _record(stream, b"F", line, stamp)
    pieces = [line[i : i + MAX_RECORD_BYTES] for i in range(0, len(line), MAX_RECORD_BYTES)]
    return b"".join(_record(stream, b"P", p, stamp) for p in pieces[:-1]) + _record(stream, b"F", pieces[-1], stamp)


# -- reading ----------------------------------------------------------------------------------------------------------


def render(records: bytes, timestamps: bool) -> bytes:
    """CRI records → what ``kubectl logs`` prints (``timestamps`` keeps each record's time in front)."""
    if b" P " not in records:  # only full records: one regex pass in C instead of a Python loop per line
        if timestamps:
            return _FULL_PREFIX_KEEP_TIME.sub(rb"\1 ", records)
        return _FULL_PREFIX.sub(b"", records)
    out = []
    for record in records.splitlines():
        stamp, _stream, tag, text = record.split(b" ", 3)
        prefix = stamp + b" " if timestamps else b""
        out.append(prefix + text + (b"\n" if tag == b"F" else b""))
    return b"".join(out)


def read_records(file: BinaryIO) -> bytes:
    """The next chunk of whole records from ``file``'s position; a record still being written is left for later."""
    data = file.read(CHUNK_BYTES)
    end = data.rfind(b"\n") + 1
    if end < len(data):
        file.seek(end - len(data), 1)
    return data[:end]


def tail_offset(file: BinaryIO, lines: int) -> int:
    """Offset where the last ``lines`` records start, found by reading backwards one chunk at a time."""
    position = file.seek(0, 2)
    if lines == 0:
        return position
    newlines = 0
    while position > 0:
        size = min(CHUNK_BYTES, position)
        position -= size
        file.seek(position)
        block = file.read(size)
        index = len(block)
        while (index := block.rfind(b"\n", 0, index)) >= 0:
            newlines += 1
            if newlines == lines + 1:  # the file ends with a newline: N records need N + 1 from the end
                return position + index + 1
    return 0


def drop_older(records: bytes, since: bytes) -> bytes:
    """Drop the records stamped before ``since``; files are in time order, so the rest is kept whole."""
    last_start = records.rfind(b"\n", 0, len(records) - 1) + 1
    if records[last_start : last_start + len(since)] < since:
        return b""
    start = 0
    while records[start : start + len(since)] < since:
        start = records.index(b"\n", start) + 1
    return records[start:]


@dataclass(frozen=True)
class LogOptions:
    container: str
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    since: bytes | None = None  # a CRI timestamp
    tail_lines: int | None = None
    limit_bytes: int | None = None


_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


def query_bool(query: Any, name: str) -> bool:
    """A boolean query parameter as Go's ``strconv.ParseBool`` reads it."""
    value = query.get(name)
    if value is None or value == "":
        return False
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ApiError(400, "BadRequest", f"invalid value for {name}: {value!r}: use true or false")


def _query_int(query: Any, name: str) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, "BadRequest", f"invalid value for {name}: {value!r}: must be an integer") from None


def parse_options(query: Any, pod_name: str) -> tuple[str, LogOptions]:
    """Query → options (container still unresolved, returned first); 422 like ``ValidatePodLogOptions``."""
    since_seconds = _query_int(query, "sinceSeconds")
    tail_lines = _query_int(query, "tailLines")
    limit_bytes = _query_int(query, "limitBytes")
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


def choose_container(pod: dict, container: str) -> str:
    """The container a log or exec request means, with the API server's 400 messages."""
    spec = pod.get("spec", {})
    name = pod["metadata"]["name"]
    regular = [c["name"] for c in spec.get("containers", [])]
    every = [c["name"] for c in spec.get("initContainers", [])] + regular
    every += [c["name"] for c in spec.get("ephemeralContainers", [])]
    if not container:
        if len(regular) == 1:
            return regular[0]
        if not regular:
            raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}")
        choices = "[" + " ".join(every) + "]"
        raise ApiError(
            400, "BadRequest", f"a container name must be specified for pod {name}, choose one of: {choices}"
        )
    if container not in every:
        raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
    return container


def container_status(pod: dict, container: str) -> dict | None:
    status = pod.get("status", {})
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for entry in status.get(key) or []:
            if entry.get("name") == container:
                return entry
    return None


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


async def handle(request: web.Request, emulator: Emulator) -> web.StreamResponse:
    """``GET /api/v1/namespaces/{namespace}/pods/{name}/log``."""
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    container, options = parse_options(request.query, name)
    pod = emulator.store.get("pods", namespace, name)
    container = choose_container(pod, container)
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    if not pod.get("spec", {}).get("nodeName") or emulator.kubelet is None:
        await response.prepare(request)
        await response.write_eof()
        return response
    container_id = log_container_id(pod, container, options.previous)
    log = emulator.kubelet.log_file(namespace, name, container, container_id)
    response.enable_chunked_encoding()
    await response.prepare(request)
    if log is not None:
        cut = emulator.faults.stream_cut("pods/log")
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
