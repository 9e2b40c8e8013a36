"""``wait_until``: the bound follows progress, and a timeout says what it saw."""

from __future__ import annotations

import itertools
import time

import pytest

from airflow_kpo_deferrable.testing.waits import Pending, WaitTimeout, wait_until


def test_returns_the_first_truthy_answer():
    answers = iter([None, [], {"state": "deferred"}])
    assert wait_until("a state", lambda: next(answers), timeout=5, interval=0.01) == {"state": "deferred"}


def test_a_timeout_names_the_wait_the_checks_and_the_last_thing_seen():
    counter = itertools.count()

    def check() -> Pending:
        return Pending(f"{next(counter)} of 10 deferred; states {{'queued': 3}}", progress=0)

    with pytest.raises(WaitTimeout) as caught:
        wait_until("all 10 tasks to defer", check, timeout=0.2, interval=0.02, details=lambda: "scheduler: last lines")
    message = str(caught.value)
    assert message.startswith("waiting for all 10 tasks to defer: timed out after 0s;")
    assert f"{caught.value.checks} checks" in message and caught.value.checks >= 2
    assert f"last seen: {caught.value.checks - 1} of 10 deferred; states {{'queued': 3}}" in message
    assert message.endswith("scheduler: last lines")


def test_a_plain_falsy_answer_is_reported_too():
    with pytest.raises(WaitTimeout, match=r"last seen: \[\]"):
        wait_until("pods", lambda: [], timeout=0.05, interval=0.01)
    with pytest.raises(WaitTimeout, match="last seen: nothing yet"):
        wait_until("a DAG", lambda: None, timeout=0.05, interval=0.01)


def test_the_check_runs_once_more_after_the_deadline():
    begun = time.monotonic()
    # True only after the deadline: a wait that gave up without a last look would report a timeout.
    assert wait_until("late", lambda: time.monotonic() - begun >= 0.1, timeout=0.1, interval=1.0)


def test_progress_extends_a_step_bound_and_a_stall_ends_it():
    steps = itertools.count()

    def advancing() -> bool | Pending:
        step = next(steps)
        return step >= 20 or Pending(f"step {step}", progress=step)

    # 20 checks of 0.01 s each take far longer than one step bound of 0.05 s: only progress keeps the wait alive.
    assert wait_until("progress", advancing, timeout=10, interval=0.01, step_timeout=0.05)

    with pytest.raises(WaitTimeout, match=r"no progress for 0s \(timed out after 0s in all\)") as caught:
        wait_until("a stall", lambda: Pending("stuck at 3", progress=3), timeout=10, interval=0.01, step_timeout=0.05)
    assert caught.value.elapsed < 5 and caught.value.seen == "stuck at 3"


def test_abort_ends_the_wait_at_once_with_its_reason():
    begun = time.monotonic()
    with pytest.raises(WaitTimeout, match="waiting for a run: scheduler exited; 1 check"):
        wait_until("a run", lambda: None, timeout=30, abort=lambda: "scheduler exited")
    assert time.monotonic() - begun < 15  # against a 30 s bound: it did not wait it out


def test_a_failing_details_callable_does_not_hide_the_timeout():
    def broken() -> str:
        raise ConnectionError("api-server down")

    with pytest.raises(WaitTimeout, match=r"could not collect details: ConnectionError: api-server down"):
        wait_until("x", lambda: None, timeout=0.01, interval=0.01, details=broken)
