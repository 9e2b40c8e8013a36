"""The pure half of reading a container log without losing or repeating a line: decoding, resuming, retry policy.

Why: the worker (sync ``kubernetes`` client) and the triggerer (``kubernetes_asyncio``) read ``pods/log`` the same
way; only the I/O differs. Everything that decides — where a line starts, which timestamp it carries, which lines a
resumed read repeats, what to ask for on resume, when to stop retrying — lives here, as a push-style state machine
(``ContainerLogCopy.feed(chunk)``) that a sync loop and an async loop both drive.

Facts it handles:

* Reads ask for ``timestamps=true`` so that a broken read can resume; ``logs.stamps`` turns that output back into
  the container's lines (stamps parsed to nanoseconds and stripped, the kubelet's record stamps inside long lines
  removed).
* A read that breaks midway is resumed with ``sinceTime`` = the last written line's stamp truncated to the second:
  the API server passes ``sinceTime`` on to the kubelet with 1-second resolution (``Format(time.RFC3339)``), so the
  resumed read repeats up to a second of lines. They are dropped exactly: every line stamped before the last written
  one, then as many lines stamped exactly like it as were already written, then the bytes already written of a long
  line that broke in the middle. This relies on stamps not decreasing in file order, which holds per container log.
* Lines are handed on in pieces of at most ``MAX_LINE_BYTES`` (later pieces marked as continuations): memory stays
  one chunk plus one piece whatever the log's size. Bytes are decoded per piece as UTF-8 with replacement.
* Retrying: transient errors (``api_rules.is_transient``) are retried with backoff, Retry-After honoured; the budget
  counts consecutive attempts that delivered nothing new, so a long log cut many times still arrives whole.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tenacity import RetryCallState

from airflow_kpo_deferrable.api_rules import honouring_retry_after, is_transient, status_of
from airflow_kpo_deferrable.api_rules import retry_policy as api_retry_policy
from airflow_kpo_deferrable.logs.stamps import StampedDecoder, since_time

LOG_PATH = "/api/v1/namespaces/{namespace}/pods/{name}/log"  # pods/log, read raw by both clients (sinceTime)
MAX_LINE_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024
TAIL_LINES = 20
STALLED_ATTEMPTS = 6
MAX_WAIT_SECONDS = 10.0

LineSink = Callable[[str], None]
StampedSink = Callable[[str, int | None], None]  # a line (without prefix) and its stamp in nanoseconds, if any


# -- one container's copy: resume point, overlap, outcome -----------------------------------------------------------


@dataclass(frozen=True)
class ResumePoint:
    """Where a copy stands: the stamp of the last whole line written and how many written lines carry exactly it.

    Plain ints, so it can travel in a trigger event: a reader started with ``start_after`` writes only what follows
    (the triggerer's live logs can hand over to the worker this way, no line twice).
    """

    stamp: int
    lines_at_stamp: int


@dataclass
class LogCopy:
    """What copying one container's log produced: counts, the tail for error messages, and why it stopped short."""

    container: str
    lines: int = 0
    bytes: int = 0
    resumed: int = 0  # reads that continued a broken one
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    unavailable: str | None = None
    last_stamp: int | None = None  # of the last whole line written
    lines_at_last_stamp: int = 0  # whole lines written with exactly that stamp

    @property
    def resume_point(self) -> ResumePoint | None:
        """After the last whole line written (None before the first): a later copy may ``start_after`` it."""
        return None if self.last_stamp is None else ResumePoint(self.last_stamp, self.lines_at_last_stamp)


class ContainerLogCopy:
    """The state of copying one container's log into ``sink``, across as many reads as it takes.

    Guarantees: every line of the log after ``start_after`` reaches ``sink`` exactly once and in order, without its
    timestamp, in pieces of at most ``max_line_bytes`` (later pieces prefixed ``… ``), whatever the chunking and
    however often a read breaks — provided the server honours ``timestamps=true`` (every kubelet does; without
    stamps a resumed read cannot be de-duplicated).

    Drive it: ``query()`` → the read's query parameters; ``restart()`` before each read; ``feed(chunk)`` for each
    chunk; ``finish()`` when a read ended normally; ``give_up(error)`` when reading stops for good. A read that broke
    needs nothing: the next ``restart()`` resumes after the last line written.
    """

    def __init__(
        self,
        container: str,
        sink: LineSink,
        *,
        prefix: str = "",
        follow: bool = False,
        start_after: ResumePoint | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
        write: StampedSink | None = None,
    ) -> None:
        self.result = LogCopy(container)
        self._stamped = write  # instead of sink(prefix + line): the line as written and its stamp
        self.follow = follow  # may change between reads (a followed log is read once more, unfollowed, at the end)
        self._sink = sink
        self._prefix = prefix
        self._max = max_line_bytes
        # what is written: the resume point
        self._last_stamp: int | None = start_after.stamp if start_after else None
        self._same_stamp_lines = start_after.lines_at_stamp if start_after else 0
        self._line_written = 0  # bytes of the current, unfinished line already handed to the sink
        self._reads = 0
        self._stalled_before = 0  # consecutive reads before this one that delivered nothing new
        self._bytes_at_restart = 0
        self._new_read()

    @property
    def stalled(self) -> int:
        """Consecutive reads, this one included, that delivered nothing new (0 once this read delivered a byte)."""
        return self._stalled_before + 1 if self.result.bytes == self._bytes_at_restart else 0

    @property
    def container(self) -> str:
        return self.result.container


    def query(self) -> dict[str, str]:
        """The ``pods/log`` query for the next read: whole log, or from the second of the last line written."""
        params = {"container": self.container, "timestamps": "true"}
        if self.follow:
            params["follow"] = "true"
        if self._last_stamp is not None:
            params["sinceTime"] = since_time(self._last_stamp)
        return params

    def restart(self) -> None:
        """A new read begins: whatever it repeats of what was written is dropped."""
        if self._reads:
            self.result.resumed += 1
            self._stalled_before = self.stalled
        self._reads += 1
        self._bytes_at_restart = self.result.bytes
        self._new_read()

    def _new_read(self) -> None:
        self._decoder = StampedDecoder(self)
        self._skipping = self._last_stamp is not None or self._line_written > 0
        self._seen_same = 0
        self._drop_bytes = 0
        self._dropping_line = False
        self._pending = bytearray()
        self._continued = self._line_written > 0
        self._line_stamp: int | None = None

    def give_up(self, error: BaseException) -> None:
        """Reading ended in ``error`` (gone, or not fixable by retrying, or retries spent): record why."""
        self.result.unavailable = gone_reason(error) or unreadable_reason(error)

    def feed(self, chunk: bytes) -> None:
        self._decoder.feed(chunk)

    def finish(self) -> None:
        self._decoder.end()

    # -- LineHandler: what the decoder hands on -------------------------------------------------------------------

    def line(self, stamp: int | None, text: bytes) -> None:
        """A whole line (the fast path)."""
        if self._skipping and self._repeats(stamp):
            return
        if self._drop_bytes:
            text, self._drop_bytes = text[self._drop_bytes :], 0
        if len(text) > self._max:
            self._line_stamp = stamp
            self.data(text)
            self.end()
            return
        self._line_stamp = stamp
        self._write(text, more=False)
        self._wrote_line(stamp)

    def start(self, stamp: int | None) -> None:
        """A long line begins; its pieces follow through ``data``, then ``end``."""
        self._line_stamp = stamp
        self._dropping_line = self._skipping and self._repeats(stamp)

    def data(self, data: bytes) -> None:
        if self._dropping_line:
            return
        if self._drop_bytes:
            cut = min(self._drop_bytes, len(data))
            data, self._drop_bytes = data[cut:], self._drop_bytes - cut
        self._pending += data
        while len(self._pending) > self._max:
            self._write(bytes(self._pending[: self._max]), more=True)
            del self._pending[: self._max]

    def end(self) -> None:
        if self._dropping_line:
            self._dropping_line = False
            return
        self._write(bytes(self._pending), more=False)
        self._pending.clear()
        self._wrote_line(self._line_stamp)

    # -- the rules ------------------------------------------------------------------------------------------------

    def _repeats(self, stamp: int | None) -> bool:
        """While a resumed read repeats what was written: whether the line stamped ``stamp`` is such a repeat.

        Earlier stamps are repeats; of the lines stamped exactly like the last one written, as many as were written;
        the first line after those is new (or the long line that broke: its written bytes are skipped).
        """
        if stamp is None:  # a server that sends no stamps: nothing to compare, nothing dropped
            return False
        if self._last_stamp is not None and stamp < self._last_stamp:
            return True
        if stamp == self._last_stamp and self._seen_same < self._same_stamp_lines:
            self._seen_same += 1
            return True
        self._skipping = False
        self._drop_bytes = self._line_written
        return False

    def _wrote_line(self, stamp: int | None) -> None:
        if stamp is None:
            return
        if stamp == self._last_stamp:
            self._same_stamp_lines += 1
        else:
            self._last_stamp, self._same_stamp_lines = stamp, 1
        self.result.last_stamp, self.result.lines_at_last_stamp = stamp, self._same_stamp_lines

    def _write(self, raw: bytes, *, more: bool) -> None:
        text = raw.decode("utf-8", "replace")
        if not more:
            text = text.rstrip("\r")
        piece = f"… {text}" if self._continued else text
        if self._stamped is not None:
            self._stamped(piece, self._line_stamp)
        else:
            self._sink(self._prefix + piece if self._prefix else piece)
        self.result.bytes += len(raw)
        self._continued = more
        if more:
            self._line_written += len(raw)
        else:
            self._line_written = 0
            self.result.lines += 1
            self.result.tail.append(text)


# -- when a read fails -------------------------------------------------------------------------------------------


def gone_reason(error: BaseException) -> str | None:
    """Why a log can never be read, when the answer says so: the pod is gone (404) or the container never ran (400)."""
    status = status_of(error)
    if status == 404:
        return "the pod no longer exists (404)"
    if status == 400:
        return f"the container has no log (400: {_message(error)})"
    return None


def unreadable_reason(error: BaseException) -> str:
    """Why the log could not be read although it may exist: retries ran out, or an answer retrying cannot change."""
    status = status_of(error)
    what = f"HTTP {status}: {_message(error)}" if status else f"{type(error).__name__}: {error}"
    return f"reading it failed ({what})" + (" after retries" if is_transient(error) else "")


def _message(error: BaseException) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = str(body or getattr(error, "reason", None) or error)
    try:
        text = json.loads(text).get("message", text)
    except (ValueError, AttributeError):
        pass
    return text[:300]


def unavailable_warning(pod_name: str, namespace: str, copy: LogCopy) -> str:
    """The WARNING for a log that could not be read: which container, why, and what it means for the task."""
    got = f"; {copy.lines} line(s) were copied before that" if copy.lines else ""
    return (
        f"The log of container {copy.container!r} of pod {pod_name} in {namespace} could not be read: "
        f"{copy.unavailable}{got}. The task's outcome is the pod's."
    )


def retry_policy(copy: ContainerLogCopy) -> dict[str, Any]:
    """tenacity arguments for reading ``copy``'s log: ``api_rules``' policy (transient errors only, Retry-After
    honoured), its budget counted in stalled reads instead of attempts, and a backoff that grows only while stalled."""

    def backoff(state: RetryCallState) -> float:
        return min(0.25 * 2 ** max(copy.stalled - 1, 0), MAX_WAIT_SECONDS) + random.uniform(0, 0.25)

    def stop(state: RetryCallState) -> bool:
        return copy.stalled >= STALLED_ATTEMPTS

    return api_retry_policy(attempts=None, wait=honouring_retry_after(backoff), stop=stop)


def line_prefix(containers: list[str], container: str, enabled: bool = True) -> str:
    """What precedes each of ``container``'s lines in the task log: its name, when several containers are copied
    (``enabled``: the provider's ``container_name_log_prefix_enabled``; False drops it)."""
    return f"[{container}] " if enabled and len(containers) > 1 else ""


class HookFailed(Exception):
    """A line hook (the user's ``log_formatter`` or progress callback) raised: not a read error, never retried."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error


@dataclass(frozen=True)
class LineOutput:
    """How the worker writes each copied line: the progress hook sees it first, then the task log gets
    ``formatter(container, line)`` (the provider's ``log_formatter``) or our prefix and the line."""

    sink: LineSink
    prefix_enabled: bool = True
    formatter: Callable[[str, str], str] | None = None
    progress: Callable[[str, str, int | None], None] | None = None  # (container, line, stamp)

    @property
    def hooked(self) -> bool:
        return self.formatter is not None or self.progress is not None

    def writer(self, containers: list[str], container: str) -> StampedSink:
        prefix = line_prefix(containers, container, self.prefix_enabled)

        def write(line: str, stamp: int | None) -> None:
            try:
                if self.progress is not None:
                    self.progress(container, line, stamp)
                text = self.formatter(container, line) if self.formatter is not None else prefix + line
            except Exception as error:
                raise HookFailed(error) from error
            self.sink(text)

        return write


def selected_containers(
    available: list[str], choice: Iterable[str] | str | bool | None, default: list[str]
) -> list[str]:
    """The containers whose logs to copy: ``True`` all, a name or names (in pod order), nothing given → ``default``."""
    if choice is True:
        return available
    if not choice:
        return default
    wanted = [choice] if isinstance(choice, str) else list(choice)
    return [c for c in available if c in wanted]
