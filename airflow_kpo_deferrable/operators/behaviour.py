"""Checks of the operator arguments that shape time and behaviour (not the pod): pure, no I/O.

Why: a timeout given as the string ``"60"`` used to pass until the pod existed and then crash the task with a
``TypeError`` naming nothing, leaving the pod running. Every such argument is checked before any pod is created —
at DAG parse when its value is not a template, again after rendering — and reported into the same problem list as
the pod arguments, with the argument, the value and the fix.

Facts it handles: ``bool`` is an ``int`` in Python, so ``startup_timeout_seconds=True`` is refused explicitly;
``skip_on_exit_code`` takes an int or a collection of ints (the provider's forms); ``callbacks`` takes a
``KubernetesPodOperatorCallback`` subclass or a list of them (classes, not instances: the provider calls their static
methods; ``callbacks.callbacks_problem``).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping
from typing import Any

from airflow_kpo_deferrable.callbacks import callbacks_problem
from airflow_kpo_deferrable.podspec.problems import Problem

ON_FINISH_ACTIONS = ("delete_pod", "delete_succeeded_pod", "delete_active_pod", "keep_pod")
ON_KILL_ACTIONS = ("delete_pod", "keep_pod")
# (argument, whether None is allowed, whether a fraction is allowed)
_DURATIONS = (
    ("startup_timeout_seconds", False, False),
    ("schedule_timeout_seconds", True, False),
    ("startup_check_interval_seconds", False, True),
    ("base_container_status_polling_interval", False, True),
    ("poll_interval", False, True),
    ("logging_interval", True, False),
)
_BOOLS = (
    "get_logs",
    "random_name_suffix",
    "deferrable",
    "log_events_on_failure",
    "log_events_on_startup",
    "log_pod_spec_on_failure",
    "container_name_log_prefix_enabled",
)
_OPTIONAL_BOOLS = ("in_cluster", "reattach_on_restart", "durable", "is_delete_operator_pod")
_OPTIONAL_STRINGS = ("kubernetes_conn_id", "config_file", "cluster_context")


def _is_number(value: Any, fraction: bool) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (fraction and isinstance(value, float))


def _duration_problem(name: str, value: Any, optional: bool, fraction: bool) -> Problem | None:
    if value is None and optional:
        return None
    kind = "a number of seconds" if fraction else "a whole number of seconds"
    if not _is_number(value, fraction):
        text = f" (e.g. {name}={int(value)})" if isinstance(value, str) and value.strip().isdigit() else ""
        none = " or None" if optional else ""
        return Problem(name, f"{name}={value!r} must be {kind}{none}, not {type(value).__name__}{text}")
    if value <= 0:
        return Problem(name, f"{name}={value!r} must be greater than 0 ({kind})")
    return None


def _log_choice_problem(name: str, value: Any) -> Problem | None:
    if value is None or value is True or isinstance(value, str):
        return None
    if isinstance(value, Iterable) and not isinstance(value, Mapping) and all(isinstance(v, str) for v in value):
        return None
    return Problem(name, f"{name}={value!r} must be a container name, a list of names, or True for all containers")


def _exit_codes_problem(value: Any) -> Problem | None:
    if value is None:
        return None
    codes = [value] if not isinstance(value, Container) or isinstance(value, str) else value
    if isinstance(value, str) or not isinstance(codes, Iterable):
        return Problem("skip_on_exit_code", f"skip_on_exit_code={value!r} must be an exit code (int) or a list of them")
    bad = [c for c in codes if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= 255]
    if bad:
        return Problem(
            "skip_on_exit_code",
            f"skip_on_exit_code={value!r}: {bad} are not exit codes; give whole numbers 0-255 (e.g. 100 or [100, 101])",
        )
    return None


def behaviour_problems(values: Mapping[str, Any]) -> list[Problem]:
    """Problems of the behaviour arguments present in ``values`` (argument name → value)."""
    problems: list[Problem | None] = []
    for name, optional, fraction in _DURATIONS:
        if name in values:
            problems.append(_duration_problem(name, values[name], optional, fraction))
    for name in _BOOLS + _OPTIONAL_BOOLS:
        value = values.get(name)
        if name in values and not isinstance(value, bool) and not (value is None and name in _OPTIONAL_BOOLS):
            problems.append(Problem(name, f"{name}={value!r} must be True or False"))
    for name in _OPTIONAL_STRINGS:
        value = values.get(name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            problems.append(Problem(name, f"{name}={value!r} must be a non-empty string or None"))
    for name, choices in (("on_finish_action", ON_FINISH_ACTIONS), ("on_kill_action", ON_KILL_ACTIONS)):
        if name in values and values[name] not in choices:
            problems.append(Problem(name, f"{name}={values[name]!r} is not one of {', '.join(choices)}"))
    for name in ("container_logs", "init_container_logs"):
        if name in values:
            problems.append(_log_choice_problem(name, values[name]))
    if "skip_on_exit_code" in values:
        problems.append(_exit_codes_problem(values["skip_on_exit_code"]))
    if "callbacks" in values:
        problems.append(callbacks_problem(values["callbacks"]))
    for name in ("progress_callback", "log_formatter"):
        value = values.get(name)
        if value is not None and not isinstance(value, Callable):
            problems.append(Problem(name, f"{name}={value!r} must be a function (or None)"))
    trigger_kwargs = values.get("trigger_kwargs")
    if trigger_kwargs is not None and not isinstance(trigger_kwargs, dict):
        problems.append(Problem("trigger_kwargs", f"trigger_kwargs={trigger_kwargs!r} must be a dict (or None)"))
    return [p for p in problems if p is not None]
