"""Times as the API server and kubelet write them.

Why: every timestamp the emulator writes (creationTimestamp, deletionTimestamp, conditions, container states, events)
is RFC 3339 in UTC with whole seconds and a ``Z`` (``metav1.Time``), and back-off messages print Go durations; one
copy of each format keeps the store and the kubelet agreeing. (Log records use nanosecond CRI stamps: ``logfile``.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime | None = None, offset: float = 0) -> str:
    """``2024-05-01T10:00:00Z``: ``moment`` (default now) plus ``offset`` seconds."""
    return ((moment or utcnow()) + timedelta(seconds=offset)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_duration(seconds: float) -> str:
    """A duration as Go prints it (``500ms``, ``10s``, ``1m20s``), for back-off messages."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:g}s"
    return f"{int(minutes)}m{text}" if minutes else text
