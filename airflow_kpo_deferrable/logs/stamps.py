"""Timestamped ``pods/log`` output → lines without their stamps: parsing stamps, removing the kubelet's record stamps.

Why apart: reading a log so that a broken read can resume exactly needs ``timestamps=true``; turning that output back
into the container's own lines is a job of its own, pure and shared by the worker's and the triggerer's readers.

Facts it handles:

* Every line arrives as ``<RFC3339Nano> <text>``. Stamps are parsed to integer nanoseconds (Python's datetime keeps
  only microseconds; Go's RFC3339Nano drops trailing zeros, so stamps are compared as numbers, never as strings).
* The kubelet stamps each *runtime record*, not each line: a line longer than the runtime's record size
  (containerd's ``max_container_log_line_size``, 16 KiB by default) arrives with a stamp in front of every further
  piece (kubernetes#77603). Such a stamp — the kubelet's fixed width with nine fractional digits, not earlier than
  the previous one, at least ``MIN_RUNTIME_RECORD_BYTES`` after it — is removed, so long lines arrive whole.
* Speed: lines up to ``LONG_LINE_BYTES`` are split in bulk per chunk and a stamp is parsed once per distinct stamp
  (about the speed of a plain newline split); a longer line is streamed in pieces as it arrives, never held whole.
"""

from __future__ import annotations

import calendar
import re
import time
from typing import Protocol

MIN_RUNTIME_RECORD_BYTES = 4096  # far below any runtime's record size: content that merely looks like a stamp stays
STAMP_MAX_BYTES = 36  # "2024-05-01T10:00:00.123456789+02:00 "
LONG_LINE_BYTES = 128 * 1024  # longer lines are streamed in pieces, not buffered whole

_STAMP = re.compile(
    rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d\d):(\d\d))"
)
_EMBEDDED_STAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(?:Z|[+-]\d\d:\d\d) ")


def parse_stamp(text: bytes) -> int | None:
    """An RFC3339 (Nano) timestamp → nanoseconds since the epoch; None when ``text`` is not one."""
    match = _STAMP.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, utc, sign, off_hours, off_minutes = match.groups()[6:]
    try:
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    if not utc:
        offset = int(off_hours) * 3600 + int(off_minutes) * 60
        seconds -= offset if sign == b"+" else -offset
    return seconds * 1_000_000_000 + int((fraction or b"0").ljust(9, b"0"))


def since_time(stamp_ns: int) -> str:
    """``sinceTime`` for a resume at ``stamp_ns``: RFC3339 truncated to the second, the resolution servers honour."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp_ns // 1_000_000_000))


# -- decoding a timestamped stream --------------------------------------------------------------------------------


class LineHandler(Protocol):
    """What ``StampedDecoder`` hands lines to: whole lines at once, long lines as start, pieces, end."""

    def line(self, stamp: int | None, text: bytes) -> None: ...

    def start(self, stamp: int | None) -> None: ...

    def data(self, data: bytes) -> None: ...

    def end(self) -> None: ...


class StampedDecoder:
    """``timestamps=true`` output, in chunks of any size → lines with the stamps taken off, in bounded memory.

    Lines that fit in ``LONG_LINE_BYTES`` are split in bulk (the fast path: one ``bytes.split`` per chunk, a stamp
    parsed once per distinct stamp); a longer line is streamed in pieces as its bytes arrive.
    """

    def __init__(self, handler: LineHandler) -> None:
        self._handler = handler
        self._buffer = bytearray()
        self._long = False
        self._stamp: int | None = None  # the last stamp seen in the current long line
        self._since_stamp = 0  # its content bytes since that stamp
        self._cached: tuple[bytes, int | None] = (b"", None)

    def feed(self, chunk: bytes) -> None:
        buffer = self._buffer
        buffer += chunk
        while buffer:
            if self._long:
                if not self._stream_long(final=False):
                    return
                continue
            last = buffer.rfind(b"\n")
            if last >= 0:
                block = bytes(buffer[:last])
                del buffer[: last + 1]
                for line in block.split(b"\n"):
                    self._whole(line)
            if len(buffer) <= LONG_LINE_BYTES:
                return
            self._begin_long()

    def end(self) -> None:
        """The stream ended normally: what is left is the last line (a last line may lack its newline)."""
        if self._long:
            self._stream_long(final=True)
            if self._long:
                self._long = False
                self._handler.end()
        elif self._buffer:
            self._whole(bytes(self._buffer))
            self._buffer.clear()

    def _parse(self, stamp_text: bytes) -> int | None:
        if stamp_text != self._cached[0]:
            self._cached = (stamp_text, parse_stamp(stamp_text))
        return self._cached[1]

    def _whole(self, line: bytes) -> None:
        space = line.find(b" ", 0, STAMP_MAX_BYTES)
        stamp = self._parse(line[:space]) if space > 0 else None
        text = line[space + 1 :] if stamp is not None else line
        if stamp is not None and len(text) >= MIN_RUNTIME_RECORD_BYTES:
            text = b"".join(_without_record_stamps(text, stamp, 0, len(text))[0])
        self._handler.line(stamp, text)

    def _begin_long(self) -> None:
        buffer = self._buffer
        space = buffer.find(b" ", 0, STAMP_MAX_BYTES)
        stamp = self._parse(bytes(buffer[:space])) if space > 0 else None
        if stamp is not None:
            del buffer[: space + 1]
        self._long, self._stamp, self._since_stamp = True, stamp, 0
        self._handler.start(stamp)

    def _stream_long(self, final: bool) -> bool:
        """Hand on what has arrived of the long line; True when it ended (the rest of the buffer is new lines)."""
        buffer = self._buffer
        newline = buffer.find(b"\n")
        limit = newline if newline >= 0 else len(buffer)
        # Without a newline in sight, hold back what could be the start of a stamp still arriving.
        safe = limit if newline >= 0 or final else max(0, len(buffer) - STAMP_MAX_BYTES + 1)
        if self._stamp is None:
            pieces, end = [bytes(buffer[:safe])], safe
        else:
            pieces, end, self._stamp, self._since_stamp = _without_record_stamps(
                buffer, self._stamp, self._since_stamp, safe, limit
            )
        del buffer[:end]
        data = b"".join(pieces)
        if data:
            self._handler.data(data)
        if newline >= 0 and end == limit:
            del buffer[:1]
            self._long = False
            self._handler.end()
            return True
        return False


def _without_record_stamps(
    text: bytes | bytearray, stamp: int, since_stamp: int, safe: int, limit: int | None = None
) -> tuple[list[bytes], int, int, int]:
    """Cut the kubelet's per-record stamps out of ``text[:safe]`` (a stamp may end before ``limit``).

    A stamp counts as the kubelet's when it has the kubelet's fixed width, is not earlier than the previous one and
    follows at least ``MIN_RUNTIME_RECORD_BYTES`` of content. Returns the pieces, where they end, the last stamp
    and the content bytes since it.
    """
    limit = safe if limit is None else limit
    pieces: list[bytes] = []
    position = search = 0
    while (match := _EMBEDDED_STAMP.search(text, search, limit)) is not None and match.start() < safe:
        found = parse_stamp(match.group()[:-1])
        if found is not None and found >= stamp and since_stamp + match.start() - position >= MIN_RUNTIME_RECORD_BYTES:
            pieces.append(bytes(text[position : match.start()]))
            stamp, since_stamp, position = found, 0, match.end()
            search = position
        else:
            search = match.start() + 1
    end = max(safe, position)
    if end > position:
        pieces.append(bytes(text[position:end]))
        since_stamp += end - position
    return pieces, end, stamp, since_stamp
