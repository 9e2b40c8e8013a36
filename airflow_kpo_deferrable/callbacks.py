"""The provider's ``callbacks``, ``progress_callback`` and ``log_formatter``: which apply where, and how they are called.

Why: a DAG moved from the official provider keeps its ``KubernetesPodOperatorCallback`` classes, so their static
methods are called at the provider's moments with its keyword arguments and ``mode`` values. This module holds the
rules (pure: no I/O of ours, only the user's code is called); ``operators/hooks.py`` calls them from the worker.

Facts it handles:

* The provider is not imported: a callback class is duck-typed, any class with at least one of ``HOOKS`` as an
  attribute (the provider's ``KubernetesPodOperatorCallback``, users' subclasses of it, or a plain class). A hook a
  class lacks is not called. ``mode`` is ``ExecutionMode.SYNC``, a ``str`` enum equal to the provider's (``"sync"``).
* Python callables cannot go to the triggerer (trigger kwargs are JSON): a task with any of them set finishes through
  a worker resume (``python_callables`` feeds ``finish.finish_mode``), and when one of them wants every log line (a
  ``log_formatter``, the ``progress_callback`` argument, a class that overrides ``progress_callback``) the trigger
  copies no line (``lines_on_worker``): the worker copies the whole log when it resumes, so each line is formatted
  and seen once. A class that only inherits the provider's no-op ``progress_callback`` keeps the live logs.
* A callback that raises fails the task with its own error, as in the provider, after the pod is cleaned up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import pendulum

from airflow_kpo_deferrable.podspec.problems import Problem


class ExecutionMode(str, Enum):
    """The provider's ``ExecutionMode`` values; equal to its members (``"sync"`` / ``"async"``)."""

    SYNC = "sync"
    ASYNC = "async"


HOOKS = (
    "on_sync_client_creation",
    "on_pod_manifest_created",
    "on_pod_creation",
    "on_pod_starting",
    "on_pod_completion",
    "on_pod_teardown",
    "on_pod_cleanup",
    "on_operator_resuming",
    "progress_callback",
)
# The provider's base class: its progress_callback is a no-op, so inheriting it does not ask for the lines.
_PROVIDER_BASE = ("airflow.providers.cncf.kubernetes.callbacks", "KubernetesPodOperatorCallback")


def callbacks_problem(value: Any) -> Problem | None:
    """The problem with a ``callbacks`` argument: classes (not instances) with the provider's hook methods."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    bad = [item for item in items if not isinstance(item, type) or not any(hasattr(item, h) for h in HOOKS)]
    if bad:
        return Problem(
            "callbacks",
            f"callbacks={value!r}: give KubernetesPodOperatorCallback subclasses (the class, not an instance, with "
            f"its static methods such as on_pod_creation), or a list of them; these are not: {bad!r}",
        )
    return None


def wants_lines(classes: Iterable[type]) -> bool:
    """Whether any class defines its own ``progress_callback`` (not just the provider's inherited no-op)."""
    for cls in classes:
        owner = next((k for k in cls.__mro__ if "progress_callback" in vars(k)), None)
        if owner is not None and (owner.__module__, owner.__name__) != _PROVIDER_BASE:
            return True
    return False


def python_callables(callbacks: Sequence[type], progress_callback: Any, log_formatter: Any) -> list[str]:
    """The arguments set that hold Python code the worker must call (they cannot travel to the triggerer)."""
    given = {"callbacks": bool(callbacks), "progress_callback": progress_callback is not None,
             "log_formatter": log_formatter is not None}
    return [name for name, value in given.items() if value]


def lines_on_worker(callbacks: Sequence[type], progress_callback: Any, log_formatter: Any) -> bool:
    """Whether every log line must be copied on the worker (no live logs in the triggerer)."""
    return log_formatter is not None or progress_callback is not None or wants_lines(callbacks)


def has_started(pod: Mapping[str, Any] | None) -> bool:
    """``on_pod_starting``'s moment: the pod has left ``Pending`` (the provider's ``await_pod_start``)."""
    phase = ((pod or {}).get("status") or {}).get("phase")
    return phase is not None and phase != "Pending"


def stamp_time(stamp: int | None) -> pendulum.DateTime | None:
    """A log line's stamp (nanoseconds) as the ``pendulum.DateTime`` (UTC, microseconds) the provider passes."""
    if stamp is None:
        return None
    seconds = datetime.fromtimestamp(stamp // 1_000_000_000, UTC)
    return pendulum.instance(seconds.replace(microsecond=stamp % 1_000_000_000 // 1000))


class Callbacks:
    """The ``callbacks`` classes of one operator; ``call`` runs one hook on each, in order. Errors propagate."""

    def __init__(self, classes: Sequence[type]) -> None:
        self.classes = list(classes)

    def __bool__(self) -> bool:
        return bool(self.classes)

    def call(self, hook: str, **kwargs: Any) -> None:
        for cls in self.classes:
            method: Callable[..., Any] | None = getattr(cls, hook, None)
            if method is not None:
                method(**kwargs)
