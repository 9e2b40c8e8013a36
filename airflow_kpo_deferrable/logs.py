"""Copy a finished pod's container logs into the task log, line by line, in bounded memory.

Why: the provider reads the whole base-container log into memory on resume and ignores the other containers. Here
each selected container's log is streamed from ``pods/log`` in chunks and handed on line by line; memory is one chunk,
one partial line (capped) and the last few lines kept for the error message, whatever the log's size.

Facts it handles:

* A line may be longer than any sensible buffer: past ``MAX_LINE_BYTES`` it is emitted in pieces, each marked as a
  continuation, so nothing is dropped and memory stays bounded.
* The last line of a log may lack its newline; it is still emitted.
* Bytes are decoded per line as UTF-8 with replacement, so a multi-byte character split across chunks survives.
* A container that never started has no log (the API answers 400); a pod already deleted answers 404. Both are
  reported in the task log and are not errors: the pod's outcome was decided before the logs were read.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException

MAX_LINE_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024
TAIL_LINES = 20

LineSink = Callable[[str], None]


@dataclass
class LogCopy:
    """What copying one container's log produced: counts and the tail for error messages."""

    container: str
    lines: int = 0
    bytes: int = 0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    unavailable: str | None = None


def split_lines(chunks: Iterable[bytes], max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[bytes, bool]]:
    """Yield ``(line, continued)``; ``continued`` marks a piece of a line longer than ``max_line_bytes``."""
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        while True:
            end = pending.find(b"\n")
            if end < 0:
                break
            line = bytes(pending[:end])
            del pending[: end + 1]
            yield from _pieces(line, max_line_bytes)
        while len(pending) > max_line_bytes:
            yield bytes(pending[:max_line_bytes]), True
            del pending[:max_line_bytes]
    if pending:
        yield from _pieces(bytes(pending), max_line_bytes)


def _pieces(line: bytes, max_line_bytes: int) -> Iterator[tuple[bytes, bool]]:
    while len(line) > max_line_bytes:
        yield line[:max_line_bytes], True
        line = line[max_line_bytes:]
    yield line, False


def copy_container_log(
    api: CoreV1Api, pod_name: str, namespace: str, container: str, sink: LineSink, *, prefix: str = ""
) -> LogCopy:
    """Stream one container's whole log into ``sink``; never holds more than a chunk and one line."""
    copy = LogCopy(container)
    try:
        response = api.read_namespaced_pod_log(
            pod_name, namespace, container=container, _preload_content=False
        )
    except ApiException as error:
        copy.unavailable = _unavailable_reason(error)
        return copy
    try:
        continued = False
        for raw, more in split_lines(response.stream(CHUNK_BYTES, decode_content=True)):
            text = raw.decode("utf-8", "replace").rstrip("\r")
            marker = "… " if continued else ""
            sink(f"{prefix}{marker}{text}")
            copy.bytes += len(raw)
            if not more:
                copy.lines += 1
                copy.tail.append(text)
            continued = more
    finally:
        response.release_conn()
    return copy


def _unavailable_reason(error: ApiException) -> str:
    if error.status == 404:
        return "the pod no longer exists"
    body = (error.body or b"").decode() if isinstance(error.body, bytes) else str(error.body or error.reason)
    return body[:300]


def copy_logs(
    api: CoreV1Api, pod_name: str, namespace: str, containers: list[str], sink: LineSink
) -> list[LogCopy]:
    """Copy several containers' logs in order; with more than one, each line is prefixed by its container."""
    prefixed = len(containers) > 1
    copies = []
    for container in containers:
        prefix = f"[{container}] " if prefixed else ""
        copy = copy_container_log(api, pod_name, namespace, container, sink, prefix=prefix)
        if copy.unavailable:
            sink(f"{prefix}(no log for container {container}: {copy.unavailable})")
        copies.append(copy)
    return copies
