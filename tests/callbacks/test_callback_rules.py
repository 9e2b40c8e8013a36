"""The pure rules for ``callbacks``, ``progress_callback``, ``log_formatter`` and ``container_name_log_prefix_enabled``:
which classes are accepted, which tasks need every line on the worker, how a copied line is written."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from airflow_kpo_deferrable.callbacks import (
    Callbacks,
    ExecutionMode,
    callbacks_problem,
    has_started,
    lines_on_worker,
    python_callables,
    stamp_time,
    wants_lines,
)
from airflow_kpo_deferrable.finish import finish_mode
from airflow_kpo_deferrable.logs.lines import ContainerLogCopy, HookFailed, LineOutput, line_prefix
from tests.logs.test_log_lines import BASE, read_all, served


def provider_base() -> type:
    """A stand-in for the provider's ``KubernetesPodOperatorCallback`` (same module and name; the provider is not
    installed here): every hook a no-op static method."""
    body = {name: staticmethod(lambda **kwargs: None) for name in ("on_pod_creation", "progress_callback")}
    return type("KubernetesPodOperatorCallback", (), {"__module__": "airflow.providers.cncf.kubernetes.callbacks",
                                                      **body})


class OwnLines:
    @staticmethod
    def progress_callback(**kwargs: object) -> None:
        pass


class OnlyCreation:
    @staticmethod
    def on_pod_creation(**kwargs: object) -> None:
        pass


def test_callbacks_are_classes_with_the_providers_methods() -> None:
    base = provider_base()
    assert callbacks_problem(None) is None
    assert callbacks_problem(base) is None and callbacks_problem([type("Mine", (base,), {}), OnlyCreation]) is None
    assert "the class, not an instance" in callbacks_problem(OnlyCreation()).message
    assert "these are not" in callbacks_problem([OnlyCreation, int]).message  # a class without any hook


def test_only_a_progress_callback_of_ones_own_asks_for_every_line() -> None:
    base = provider_base()
    assert not wants_lines([base, type("Subclass", (base,), {}), OnlyCreation])
    assert wants_lines([type("Overrides", (base,), {"progress_callback": staticmethod(lambda **kw: None)})])
    assert wants_lines([OwnLines])
    assert lines_on_worker([], None, lambda c, m: m) and lines_on_worker([], print, None)
    assert lines_on_worker([OwnLines], None, None) and not lines_on_worker([OnlyCreation], None, None)


def test_python_callables_finish_on_a_worker_and_say_why() -> None:
    assert python_callables([], None, None) == []
    names = python_callables([OnlyCreation], None, str.format)
    assert names == ["callbacks", "log_formatter"]
    mode = finish_mode(wanted=True, deferrable=True, listeners=False, do_xcom_push=False, python_callables=names)
    assert not mode.in_triggerer
    assert mode.reason.startswith("callbacks/log_formatter set: Python callables cannot go to the triggerer")


def test_the_starting_moment_the_mode_and_the_timestamp() -> None:
    assert not has_started(None) and not has_started({"status": {"phase": "Pending"}})
    assert has_started({"status": {"phase": "Running"}}) and has_started({"status": {"phase": "Succeeded"}})
    assert ExecutionMode.SYNC == "sync" and ExecutionMode.ASYNC == "async"
    assert stamp_time(None) is None
    assert stamp_time(BASE + 123_456_789) == datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)


def test_hooks_are_called_on_each_class_that_has_them_in_order() -> None:
    calls: list[tuple[str, dict[str, object]]] = []
    first = type("First", (), {"on_pod_creation": staticmethod(lambda **kw: calls.append(("first", kw)))})
    second = type("Second", (), {"on_pod_creation": staticmethod(lambda **kw: calls.append(("second", kw)))})
    Callbacks([first, OwnLines, second]).call("on_pod_creation", pod="p")
    assert calls == [("first", {"pod": "p"}), ("second", {"pod": "p"})]


@pytest.mark.parametrize(
    ("containers", "enabled", "prefix"),
    [(["base"], True, ""), (["init", "base"], True, "[base] "), (["init", "base"], False, "")],
)
def test_the_container_prefix(containers: list[str], enabled: bool, prefix: str) -> None:
    assert line_prefix(containers, "base", enabled) == prefix


def test_line_output_formats_each_line_after_the_progress_hook_saw_it() -> None:
    out: list[str] = []
    seen: list[tuple[str, str, int | None]] = []
    output = LineOutput(out.append, formatter=lambda c, m: f"{c}: {m}",
                        progress=lambda c, m, s: seen.append((c, m, s)))
    copy = ContainerLogCopy("base", out.append, write=output.writer(["base"], "base"))
    read_all(copy, served([(BASE, b"a"), (BASE + 5, b"b")]), random.Random(1))
    assert out == ["base: a", "base: b"]
    assert seen == [("base", "a", BASE), ("base", "b", BASE + 5)]


def test_without_a_formatter_the_prefix_rule_applies() -> None:
    out: list[str] = []
    output = LineOutput(out.append, prefix_enabled=True, progress=lambda c, m, s: None)
    copy = ContainerLogCopy("side", out.append, write=output.writer(["side", "base"], "side"))
    read_all(copy, served([(BASE, b"x")]), random.Random(1))
    assert out == ["[side] x"]


def test_a_raising_hook_is_a_hook_failure_carrying_the_users_error() -> None:
    def formatter(container: str, message: str) -> str:
        raise KeyError(message)

    copy = ContainerLogCopy("base", [].append, write=LineOutput([].append, formatter=formatter).writer(["base"], "base"))
    with pytest.raises(HookFailed) as failed:
        read_all(copy, served([(BASE, b"a")]), random.Random(1))
    assert isinstance(failed.value.error, KeyError)
