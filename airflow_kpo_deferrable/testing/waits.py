"""Polling with a bound that follows what it waits for, and a timeout error that says what it saw.

Why: end-to-end tests wait for other processes (a scheduler, a triggerer, pods). On a loaded machine every step takes
longer, so a fixed total bound is either too tight (the test fails while things are still moving) or so loose that a
real hang takes minutes to report. Two tools here:

* a check may answer ``Pending(seen, progress)`` instead of a bare falsy value: ``seen`` goes into the timeout message
  (counts, states), and with ``step_timeout`` every change of ``progress`` restarts the clock, so a fan-out of ten
  tasks gets a bound per task rather than one guess for all of them; ``timeout`` stays the hard bound on the whole;
* the error (``WaitTimeout``) names the wait, the time spent, how many checks ran, the last thing seen and whatever
  ``details()`` adds (the stack adds component output there).

Facts it handles: ``check`` runs at least once, also with a zero timeout; the last check runs after the deadline has
passed, so a condition that became true while we slept is not reported as a timeout; ``abort()`` (e.g. "the scheduler
exited") ends the wait at once with its reason, since waiting longer cannot help; an exception in ``details()`` is
reported in the message instead of hiding the timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from airflow_kpo_deferrable.testing.errors import AirflowStackError

SEEN_LIMIT = 2000


@dataclass(frozen=True)
class Pending:
    """A check's answer while the condition does not hold: falsy, with what it saw and a measure of progress."""

    seen: str
    progress: Hashable = None

    def __bool__(self) -> bool:
        return False


class WaitTimeout(AirflowStackError):
    """A wait ended without its condition holding; ``str()`` is the whole story, the attributes are for tests."""

    def __init__(self, message: str, *, what: str, elapsed: float, checks: int, seen: str | None) -> None:
        super().__init__(message)
        self.what = what
        self.elapsed = elapsed
        self.checks = checks
        self.seen = seen


def describe_seen(value: Any) -> str | None:
    """What a falsy check answer tells a reader: a ``Pending``'s text, an empty list as ``[]``; nothing for None."""
    if isinstance(value, Pending):
        return value.seen
    if value is None or value is False:
        return None
    text = repr(value)
    return text if len(text) <= SEEN_LIMIT else text[:SEEN_LIMIT] + "…"


def wait_until(
    what: str,
    check: Callable[[], Any],
    timeout: float,
    *,
    interval: float = 0.5,
    step_timeout: float | None = None,
    details: Callable[[], str] | None = None,
    abort: Callable[[], str | None] | None = None,
) -> Any:
    """Poll ``check`` until it returns something truthy and return that.

    ``timeout`` bounds the whole wait; ``step_timeout`` (optional) bounds the time between two changes of a
    ``Pending.progress``. On either, or when ``abort()`` returns a reason, raise ``WaitTimeout`` with the evidence.
    """
    begun = time.monotonic()
    deadline = begun + timeout
    step_deadline = begun + step_timeout if step_timeout is not None else deadline
    progress: Hashable = None
    checks = 0
    while True:
        result = check()
        checks += 1
        if result:
            return result
        now = time.monotonic()
        if isinstance(result, Pending) and result.progress != progress:
            progress = result.progress
            if step_timeout is not None:
                step_deadline = now + step_timeout
        reason = abort() if abort is not None else None
        if reason is None and now >= min(deadline, step_deadline):
            if now >= deadline:
                reason = f"timed out after {now - begun:.0f}s"
            else:
                reason = f"no progress for {step_timeout:.0f}s (timed out after {now - begun:.0f}s in all)"
        if reason is not None:
            seen = describe_seen(result)
            raise WaitTimeout(
                _message(what, reason, checks, seen, details), what=what, elapsed=now - begun, checks=checks, seen=seen
            )
        time.sleep(max(0.0, min(interval, deadline - now)))


def _message(what: str, reason: str, checks: int, seen: str | None, details: Callable[[], str] | None) -> str:
    lines = [f"waiting for {what}: {reason}; {checks} check{'s' if checks != 1 else ''}"]
    lines.append(f"last seen: {seen}" if seen is not None else "last seen: nothing yet")
    if details is not None:
        try:
            lines.append(details())
        except Exception as exc:  # the API may be what is broken; the rest of the evidence still helps
            lines.append(f"(could not collect details: {type(exc).__name__}: {exc})")
    return "\n".join(lines)
