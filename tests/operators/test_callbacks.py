"""``callbacks``, ``progress_callback``, ``log_formatter`` and ``container_name_log_prefix_enabled`` on the worker, run
in-process against the emulator (process runtime: pods are local processes).

The create side and the wait run with ``deferrable=False``; the resume side defers for real: ``execute`` raises
``TaskDeferred`` with our trigger, the trigger's own wait gives the event (as the triggerer would), and ``resume``
finishes the task. A pod waits for a gate file the test creates, so it cannot end before the deferral however slow
the machine is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred
from kubernetes.client import CoreV1Api, V1Container, V1Pod
from kubernetes.client.exceptions import ApiException
from structlog.testing import capture_logs

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.triggers.pod import wait_blocking
from tests.support.emulator import sync_client
from tests.support.operators import operator_on, task_context

pytestmark = pytest.mark.timeout(120)

LINES = ["one", "two", "three"]
SCRIPT = "echo one; echo two; echo three"


def recorder(calls: list[tuple[str, dict[str, Any]]], raising: str | None = None) -> type:
    """A duck-typed callbacks class (as a user writes one) recording each hook and its keywords."""

    def hook(name: str) -> Callable[..., None]:
        def called(**kwargs: Any) -> None:
            calls.append((name, kwargs))
            if name == raising:
                raise RuntimeError(f"{name} broke")

        return staticmethod(called)

    names = ("on_sync_client_creation", "on_pod_manifest_created", "on_pod_creation", "on_pod_starting",
             "on_pod_completion", "on_pod_teardown", "on_pod_cleanup", "on_operator_resuming", "progress_callback")
    return type("Recorder", (), {name: hook(name) for name in names})


def hooks(calls: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [name for name, _ in calls if name != "progress_callback"]


def gone(api: CoreV1Api, name: str) -> bool:
    try:
        api.read_namespaced_pod(name, "default")
    except ApiException as error:
        return error.status == 404
    return False


def test_the_sync_path_calls_every_hook_with_the_providers_keywords(emulator: Emulator) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    operator = operator_on(emulator, name="cb-sync", image="busybox", cmds=["sh", "-c"], arguments=[SCRIPT],
                           callbacks=recorder(calls))
    context = task_context()
    operator.render_template_fields(context)
    operator.execute(context)
    assert hooks(calls) == [
        "on_sync_client_creation", "on_pod_manifest_created", "on_pod_creation", "on_pod_starting",
        "on_sync_client_creation", "on_pod_completion", "on_pod_teardown", "on_pod_cleanup",
    ]
    for name, kwargs in calls:
        assert isinstance(kwargs["client"], CoreV1Api), name
        if name != "on_sync_client_creation":
            assert kwargs["mode"] == "sync", name
        if name != "progress_callback":  # the provider passes it line, container_name, timestamp and pod instead
            assert kwargs["operator"] is operator, name
        if name not in ("on_sync_client_creation", "progress_callback"):
            assert kwargs["context"] is context, name
    by_name = dict(calls)
    assert by_name["on_pod_manifest_created"]["pod_request"].metadata.name == "cb-sync"
    assert isinstance(by_name["on_pod_creation"]["pod"], V1Pod) and by_name["on_pod_creation"]["pod"].metadata.uid
    assert by_name["on_pod_starting"]["pod"].status.phase != "Pending"
    assert by_name["on_pod_completion"]["pod"].status.phase == "Succeeded"
    progress = [kwargs for name, kwargs in calls if name == "progress_callback"]
    assert [p["line"] for p in progress] == LINES
    assert {p["container_name"] for p in progress} == {"base"}
    assert all(isinstance(p["timestamp"], datetime) and p["pod"].metadata.name == "cb-sync" for p in progress)


def test_log_formatter_and_progress_callback_see_every_line(emulator: Emulator) -> None:
    seen: list[str] = []
    operator = operator_on(emulator, name="cb-format", image="busybox", cmds=["sh", "-c"], arguments=[SCRIPT],
                           progress_callback=seen.append, log_formatter=lambda c, m: f"<{c}> {m.upper()}")
    context = task_context()
    operator.render_template_fields(context)
    with capture_logs() as logs:
        operator.execute(context)
    events = [record["event"] for record in logs]
    assert seen == LINES
    assert [e for e in events if e.startswith("<base> ")] == ["<base> ONE", "<base> TWO", "<base> THREE"]
    assert "one" not in events


def test_the_container_prefix_can_be_turned_off(emulator: Emulator) -> None:
    init = V1Container(name="side", image="busybox", command=["sh", "-c", "echo from side"])
    arguments = {"image": "busybox", "cmds": ["sh", "-c"], "arguments": ["echo from base"],
                 "init_containers": [init], "init_container_logs": True}
    for name, enabled, expected in (("cb-prefix", True, "[side] from side"), ("cb-noprefix", False, "from side")):
        operator = operator_on(emulator, name=name, container_name_log_prefix_enabled=enabled, **arguments)
        context = task_context()
        operator.render_template_fields(context)
        with capture_logs() as logs:
            operator.execute(context)
        assert expected in [record["event"] for record in logs], name


def test_a_raising_on_pod_creation_fails_the_task_and_leaves_no_pod(emulator: Emulator) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    operator = operator_on(emulator, name="cb-raise", image="busybox", cmds=["sh", "-c"], arguments=["sleep 30"],
                           callbacks=recorder(calls, raising="on_pod_creation"))
    context = task_context()
    operator.render_template_fields(context)
    with pytest.raises(RuntimeError, match="on_pod_creation broke"):
        operator.execute(context)
    assert hooks(calls)[-1] == "on_pod_creation"
    with sync_client(emulator) as api:
        assert gone(api, "cb-raise")


def test_a_raising_log_formatter_fails_the_task_after_the_pod_is_deleted(emulator: Emulator) -> None:
    def formatter(container: str, message: str) -> str:
        raise ValueError(f"cannot format {message}")

    calls: list[tuple[str, dict[str, Any]]] = []
    operator = operator_on(emulator, name="cb-badfmt", image="busybox", cmds=["sh", "-c"], arguments=[SCRIPT],
                           log_formatter=formatter, callbacks=recorder(calls))
    context = task_context()
    operator.render_template_fields(context)
    with pytest.raises(ValueError, match="cannot format one"):
        operator.execute(context)
    assert "on_pod_completion" not in hooks(calls) and "on_pod_cleanup" not in hooks(calls)  # none after the error
    with sync_client(emulator) as api:
        assert gone(api, "cb-badfmt")


def test_a_deferred_task_resumes_on_the_worker_and_copies_every_line_there(emulator: Emulator, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    script = f"while [ ! -e {gate} ]; do sleep 0.1; done; {SCRIPT}"
    calls: list[tuple[str, dict[str, Any]]] = []
    operator = operator_on(emulator, name="cb-resume", image="busybox", cmds=["sh", "-c"], arguments=[script],
                           deferrable=True, callbacks=recorder(calls), log_formatter=lambda c, m: f"{c}| {m}")
    context = task_context()
    operator.render_template_fields(context)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    trigger = deferred.value.trigger
    assert trigger.finish is None and trigger.log_containers is None  # the trigger copies no (unformatted) line
    assert hooks(calls) == ["on_sync_client_creation", "on_pod_manifest_created", "on_pod_creation"]
    gate.touch()
    result = wait_blocking(trigger)
    event = {**result.to_dict(), "pod_name": trigger.pod_name, "namespace": trigger.namespace}
    with capture_logs() as logs:
        getattr(operator, deferred.value.method_name)(context, event)
    assert [r["event"] for r in logs if r["event"].startswith("base| ")] == [f"base| {line}" for line in LINES]
    assert hooks(calls)[3:] == ["on_sync_client_creation", "on_operator_resuming", "on_pod_completion",
                                "on_pod_teardown", "on_pod_cleanup"]
    assert dict(calls)["on_operator_resuming"]["event"] is event
    assert [kwargs["line"] for name, kwargs in calls if name == "progress_callback"] == LINES
