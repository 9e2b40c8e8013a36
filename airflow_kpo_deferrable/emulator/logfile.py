"""Container log files in the CRI format containerd writes, and the pure functions that read them in bounded memory.

Why a module of its own: the runtimes write these files (the node side), the ``pods/log`` handler and the
``FallbackToLogsOnError`` termination message read them; the format is one definition, apart from HTTP.
No log is ever read whole into memory: benchmarks write logs of a GiB.

Format, one record per line: ``<RFC3339Nano UTC, 9 digits> <stdout|stderr> <F|P> <text>``. A line longer than
16 KiB is cut into ``P`` (partial) records ended by an ``F`` record; ``render`` joins them back. A last line without a
newline is written as ``F`` on close and so gets a newline on output, as containerd does. Timestamps have a fixed
width, so they compare as bytes (``drop_older``). Writers wake followers through ``change_event`` at once.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

MAX_RECORD_BYTES = 16 * 1024  # containerd's default max_container_log_line_size
CHUNK_BYTES = 64 * 1024

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


