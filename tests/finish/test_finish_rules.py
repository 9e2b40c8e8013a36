"""The pure rules of a pod's end, shared by the worker resume and the trigger that finishes in the triggerer."""

from __future__ import annotations

import pytest

from airflow_kpo_deferrable.finish import TaskEnd, end_message, finish_mode, should_delete, task_end
from airflow_kpo_deferrable.outcome import Outcome, PodResult


def result(outcome: Outcome, exit_code: int | None = None, reason: str | None = None) -> PodResult:
    return PodResult(outcome=outcome, reason=reason, exit_code=exit_code, message=None, container="base")


@pytest.mark.parametrize(
    ("wanted", "deferrable", "listeners", "xcom", "in_triggerer", "says"),
    [
        (True, True, False, False, True, "no worker resume"),
        (False, True, False, False, False, "finish_in_triggerer=False"),
        (True, True, True, False, False, "listeners"),
        (True, True, False, True, False, "do_xcom_push"),
        (True, False, False, False, False, "deferrable=False"),
    ],
)
def test_finish_mode(wanted: bool, deferrable: bool, listeners: bool, xcom: bool, in_triggerer: bool, says: str) -> None:
    mode = finish_mode(wanted=wanted, deferrable=deferrable, listeners=listeners, do_xcom_push=xcom)
    assert mode.in_triggerer is in_triggerer
    assert says in mode.reason


def test_a_success_callback_needs_a_worker_resume() -> None:
    mode = finish_mode(wanted=True, deferrable=True, listeners=False, do_xcom_push=False, success_callbacks=True)
    assert not mode.in_triggerer and "on_success_callback" in mode.reason


@pytest.mark.parametrize(
    ("pod", "codes", "end"),
    [
        (result(Outcome.SUCCEEDED, 0), [0], TaskEnd.SUCCESS),  # a success is never skipped, as in the provider
        (result(Outcome.FAILED, 42, "Error"), [42], TaskEnd.SKIPPED),
        (result(Outcome.FAILED, 3, "Error"), [42], TaskEnd.FAILED),
        (result(Outcome.TIMEOUT, None, "StartupTimeout"), [42], TaskEnd.FAILED),
        (result(Outcome.FAILED, 42, "Error"), [], TaskEnd.FAILED),
    ],
)
def test_task_end(pod: PodResult, codes: list[int], end: TaskEnd) -> None:
    assert task_end(pod, codes) is end


@pytest.mark.parametrize(
    ("action", "outcome", "phase", "delete"),
    [
        ("delete_pod", Outcome.FAILED, "Failed", True),
        ("delete_succeeded_pod", Outcome.SUCCEEDED, "Succeeded", True),
        ("delete_succeeded_pod", Outcome.FAILED, "Failed", False),
        ("delete_active_pod", Outcome.TIMEOUT, "Pending", True),
        ("delete_active_pod", Outcome.FAILED, "Failed", False),
        ("keep_pod", Outcome.TIMEOUT, "Running", False),
    ],
)
def test_should_delete(action: str, outcome: Outcome, phase: str, delete: bool) -> None:
    assert should_delete(action, result(outcome), phase) is delete


def test_the_end_message_names_the_reason_and_ends_with_the_last_lines() -> None:
    message = end_message(TaskEnd.FAILED, result(Outcome.FAILED, 3, "Error"), "p", "ns", ["a", "b"])
    assert "(outcome failed, reason Error, container base, exit code 3)" in message
    assert message.endswith("Last log lines:\na\nb")
    skipped = end_message(TaskEnd.SKIPPED, result(Outcome.FAILED, 42, "Error"), "p", "ns", [])
    assert skipped.startswith("Skipping the task: exit code 42 is in skip_on_exit_code.")
