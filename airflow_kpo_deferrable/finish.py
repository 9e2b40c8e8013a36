"""The rules of a pod's end, one copy for the worker resume and for the trigger that finishes in the triggerer.

Why: a task can end in two places — in the triggerer (the trigger yields ``TaskSuccessEvent`` / ``TaskSkippedEvent``
/ ``TaskFailedEvent``; the default) or on a worker that resumes the deferred task (the fallback). Both must reach the
same verdict, delete the same pods and word the failure the same way, so every decision is a pure function here;
the I/O (reading logs, deleting, yielding the event or raising) stays in ``operators/pod.py`` and
``triggers/finisher.py``.

Facts it handles:

* Airflow 3.3.2 lets a trigger end its task (``models/trigger.py`` ``handle_event_submit``: the state is set
  directly, a failure goes to ``up_for_retry`` when retries remain, callbacks are sent through the DAG processor).
  But an operator whose ``end_from_trigger`` is True fails DAG parsing when plugin listeners are installed
  (``dag_processing/dagbag.py``), and listeners never see a task that ends in the triggerer: with listeners, the
  worker resume is used (``finish_mode``).
* ``do_xcom_push`` reads the result over an exec into the pod; that read lives on the worker, so such tasks resume
  on a worker.
* Airflow 3.3.2's DAG processor runs only the failure and retry callbacks of a task ended by a trigger
  (``dag_processing/processor.py`` ``_execute_task_callbacks``: "Task callback requested but is not a failure
  callback"), and sends none for a skip: a task with ``on_success_callback`` or ``on_skipped_callback`` resumes on
  a worker, where they run as always.
* ``callbacks``, ``progress_callback`` and ``log_formatter`` are Python callables, which trigger kwargs (JSON) cannot
  carry: a task with any of them resumes on a worker, where they are called (``callbacks.python_callables``).
* ``skip_on_exit_code`` applies, as in the provider, only to a pod that did not succeed: the base container's exit
  code decides.
* ``on_finish_action``: ``delete_pod`` always deletes, ``delete_succeeded_pod`` only after a success,
  ``delete_active_pod`` only a pod still running (the provider's meaning), ``keep_pod`` never.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from airflow_kpo_deferrable.logs.lines import selected_containers
from airflow_kpo_deferrable.outcome import Outcome, PodResult, describe

FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


class TaskEnd(StrEnum):
    """How the task ends; the values are Airflow's task instance states."""

    SUCCESS = "success"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class FinishMode:
    """Where the task finishes and why (the reason goes to the task log)."""

    in_triggerer: bool
    reason: str


def finish_mode(
    *,
    wanted: bool,
    deferrable: bool,
    listeners: bool,
    do_xcom_push: bool,
    success_callbacks: bool = False,
    python_callables: Sequence[str] = (),
) -> FinishMode:
    """Whether the trigger ends the task itself; otherwise a worker resumes it (today's semantics)."""
    if not deferrable:
        return FinishMode(False, "deferrable=False: the task waits and finishes on the worker")
    if not wanted:
        return FinishMode(False, "finish_in_triggerer=False: a worker resumes the task to finish it")
    if listeners:
        return FinishMode(False, "plugin listeners are installed (they never see a task ended by a trigger)")
    if do_xcom_push:
        return FinishMode(False, "do_xcom_push=True: the result is read from the pod by a worker")
    if success_callbacks:
        return FinishMode(
            False,
            "on_success_callback/on_skipped_callback is set: Airflow runs only the failure and retry callbacks of a "
            "task a trigger ends, so a worker resumes the task",
        )
    if python_callables:
        return FinishMode(
            False,
            f"{'/'.join(python_callables)} set: Python callables cannot go to the triggerer (its kwargs are JSON), "
            "so a worker resumes the task and calls them",
        )
    return FinishMode(True, "the trigger finishes the task (no worker resume)")


def task_end(result: PodResult, skip_on_exit_code: Iterable[int]) -> TaskEnd:
    """Success, skip (a failed base container's exit code is in ``skip_on_exit_code``) or failure."""
    if result.outcome is Outcome.SUCCEEDED:
        return TaskEnd.SUCCESS
    if result.exit_code is not None and result.exit_code in set(skip_on_exit_code):
        return TaskEnd.SKIPPED
    return TaskEnd.FAILED


def should_delete(on_finish_action: str, result: PodResult, phase: str | None) -> bool:
    """Whether ``on_finish_action`` deletes the pod after ``result`` (``phase``: the pod's last phase, if known)."""
    if on_finish_action == "delete_pod":
        return True
    if on_finish_action == "delete_succeeded_pod":
        return result.outcome is Outcome.SUCCEEDED
    if on_finish_action == "delete_active_pod":
        return phase not in FINISHED_PHASES
    return False


def finish_action_line(on_finish_action: str, deleted: bool, name: str, namespace: str) -> str:
    if deleted:
        return f"Deleted pod {name} (on_finish_action={on_finish_action})"
    return f"Keeping pod {name} in {namespace} (on_finish_action={on_finish_action})"


def end_message(end: TaskEnd, result: PodResult, name: str, namespace: str, tail: Iterable[str]) -> str:
    """The line that ends the task log: the typed reason (``outcome.describe``) and the last log lines."""
    if end is TaskEnd.SUCCESS:
        return f"Pod {name} succeeded"
    message = describe(result, name, namespace)
    if end is TaskEnd.SKIPPED:
        message = f"Skipping the task: exit code {result.exit_code} is in skip_on_exit_code. {message}"
    lines = list(tail)
    if lines:
        message += "\nLast log lines:\n" + "\n".join(lines)
    return message


def log_containers(
    init_names: list[str], names: list[str], init_container_logs: Any, container_logs: Any, base: str
) -> list[str]:
    """The containers whose logs reach the task log, init containers first (the order they run)."""
    return selected_containers(init_names, init_container_logs, []) + selected_containers(
        names, container_logs, [base]
    )


def pod_phase(pod: dict[str, Any] | None) -> str | None:
    return ((pod or {}).get("status") or {}).get("phase")
