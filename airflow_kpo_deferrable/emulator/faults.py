"""Faults on demand: what a real API server does to clients on a bad day, at the moment a test wants it.

Why: the trigger's watch must survive closed streams, compaction (410), throttling (429 with Retry-After),
overload (500/503), slow answers and an API server that accepts connections but does not answer. A real cluster
shows these rarely and never on cue; here each is one call (or one POST to ``/emulator/faults``).

Error answers are chosen per request with a seeded random generator, so a share of 0.3 gives the same pattern in
every run of a test. Faults apply to API requests only, never to the ``/emulator`` side channel.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Any

from .errors import ApiError
from .store import Store

REASONS = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
           401: "Unauthorized", 403: "Forbidden"}
MESSAGES = {
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: emulated fault",
    503: "The server is currently unable to handle the request",
    504: "The server was unable to return a response in the time allotted, but may still be processing the request",
    401: "Unauthorized",
    403: "forbidden: the emulator was told to refuse this request",
}


@dataclass
class ErrorRate:
    status: int
    share: float
    retry_after: float | None
    verbs: frozenset[str] | None
    resources: frozenset[str] | None
    until: float | None
    count: int | None = None  # answers left to fault; None: no limit

    def applies(self, verb: str, resource: str, now: float) -> bool:
        return (
            (self.until is None or now < self.until)
            and (self.verbs is None or verb in self.verbs)
            and (self.resources is None or resource in self.resources)
        )


class Faults:
    """The active faults; the server consults ``before_request`` for every API request."""

    def __init__(self, store: Store, seed: int = 0) -> None:
        self._store = store
        self._random = random.Random(seed)
        self._errors: list[ErrorRate] = []
        self._latency = 0.0
        self._paused_until = 0.0
        self._cuts: list[tuple[int, frozenset[str]]] = []

    def close_watches(self) -> int:
        """End every open watch stream now (clients see a clean end of stream, as on an API server restart)."""
        return self._store.cut_off_all(lambda queue: True)

    def expire_history(self) -> None:
        """Compact: a watch or resume from any version older than now gets 410 Expired."""
        self._store.expire_history()

    def error_rate(
        self, status: int, share: float = 1.0, retry_after: float | None = None, verbs: set[str] | None = None,
        resources: set[str] | None = None, seconds: float | None = None, count: int | None = None,
    ) -> None:
        """Answer ``share`` of matching requests with ``status`` (a real Status body, Retry-After if given).

        Retry-After is sent as whole seconds (fractions round up), as the API server sends it: HTTP allows only
        delta-seconds there, and urllib3 (under the ``kubernetes`` client) rejects anything else. ``count`` limits
        the rule to that many faulted answers (``count=1``: exactly one error).
        """
        if not 0 <= share <= 1:
            raise ValueError(f"share must be between 0 and 1, got {share}")
        until = time.monotonic() + seconds if seconds is not None else None
        self._errors.append(ErrorRate(
            status, share, retry_after, frozenset(verbs) if verbs else None,
            frozenset(resources) if resources else None, until, count,
        ))

    def cut_streams(self, after_bytes: int, count: int = 1, resources: set[str] | None = None) -> None:
        """Break the next ``count`` streamed answers (``pods/log`` by default) after ``after_bytes`` bytes of body:
        the connection closes without the chunked body's end, as when a proxy or the API server drops it midway."""
        if after_bytes < 0 or count < 1:
            raise ValueError(f"after_bytes must be >= 0 and count >= 1, got {after_bytes} and {count}")
        self._cuts.extend([(after_bytes, frozenset(resources or {"pods/log"}))] * count)

    def stream_cut(self, resource: str) -> int | None:
        """Bytes after which to break this answer (taking one ``cut_streams`` token), or None to serve it whole."""
        for index, (after_bytes, resources) in enumerate(self._cuts):
            if resource in resources:
                del self._cuts[index]
                return after_bytes
        return None

    def latency(self, seconds: float) -> None:
        """Delay every answer by ``seconds``."""
        self._latency = seconds

    def pause(self, seconds: float) -> None:
        """Accept requests but answer none of them for ``seconds`` (a hung API server)."""
        self._paused_until = time.monotonic() + seconds

    def clear(self) -> None:
        self._errors.clear()
        self._cuts.clear()
        self._latency = 0.0
        self._paused_until = 0.0

    def delay(self) -> float:
        """Seconds to hold the current request before handling it."""
        return max(self._paused_until - time.monotonic(), 0.0) + self._latency

    def error_for(self, verb: str, resource: str) -> ApiError | None:
        now = time.monotonic()
        self._errors = [e for e in self._errors if (e.until is None or now < e.until) and e.count != 0]
        for rule in self._errors:
            if rule.applies(verb, resource, now) and self._random.random() < rule.share:
                if rule.count is not None:
                    rule.count -= 1
                error = ApiError(rule.status, REASONS.get(rule.status, "InternalError"),
                                 MESSAGES.get(rule.status, "emulated fault"))
                if rule.retry_after is not None:
                    seconds = max(math.ceil(rule.retry_after), 1)
                    error.headers["Retry-After"] = str(seconds)
                    error.details = {"retryAfterSeconds": seconds}
                return error
        return None

    def apply(self, operation: dict[str, Any]) -> Any:
        """One side-channel operation: ``{"op": "error_rate", "status": 503, ...}`` (method name + arguments)."""
        operation = dict(operation)
        name = operation.pop("op", None)
        if name not in {"close_watches", "expire_history", "error_rate", "cut_streams", "latency", "pause", "clear"}:
            raise ApiError(400, "BadRequest", f"unknown fault op {name!r}: use close_watches, expire_history, "
                                              "error_rate, cut_streams, latency, pause or clear")
        for key in ("verbs", "resources"):
            if operation.get(key) is not None:
                operation[key] = set(operation[key])
        try:
            return getattr(self, name)(**operation)
        except (TypeError, ValueError) as error:
            raise ApiError(400, "BadRequest", f"fault {name}: {error}") from None
