"""Finishing in the triggerer, end to end: real Airflow (LocalExecutor + triggerer), pods on the emulator.

Airflow 3.3.2 runs the failure and retry callbacks of a task a trigger ends (in the DAG processor), not its success
callback: a task with one finishes on a worker (tested here too).

Each test reads what a user sees — the task's state, its tries, its log, the files its callbacks wrote, the pods left
— and proves that no worker resumed the task: the worker's resume method logs "Resumed on a worker" first thing, and
the trigger logs "Finished in the triggerer" just before it yields the event that ends the task.

Every pod waits for its gate (one per DAG and try), which the test opens once that try has deferred: a pod that ended
before the worker deferred is finished on the worker (the fast-pod defence), which is not what these tests are about
(seen under a CPU hog: 1.3 s from create to the pre-defer check, longer than the pod lived).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.testing.airflow_stack import AirflowStack, Pending
from tests.support.e2e import Gates, pods_of, start_stack

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.timeout(300)]

WORKER_RESUME = "Resumed on a worker"
IN_TRIGGERER = "Finished in the triggerer"
DAG_IDS = ("fin_ok", "fin_ok_callback", "fin_retry", "fin_fail", "fin_skip", "fin_skip_worker", "fin_worker",
           "sft_ok", "sft_retry", "sft_xcom", "sft_bad", "sft_restart", "sft_timeout")
STARTED_IN_TRIGGERER = "Started from the triggerer (start_from_trigger=True)"

DAGS = textwrap.dedent(
    '''
    from datetime import datetime, timedelta
    from pathlib import Path

    from airflow.sdk import DAG

    from airflow_kpo_deferrable import KubernetesPodOperator

    OUT = Path({out!r})


    def note(kind):
        def callback(context):
            ti = context["ti"]
            (OUT / f"{{ti.dag_id}}.{{kind}}.{{ti.try_number}}").write_text(kind)
        return callback


    def one_pod(dag_id, **kwargs):
        with DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
            kwargs.setdefault("image", "python:3.12-slim")
            kwargs.setdefault("cmds", ["python", "-c"])
            KubernetesPodOperator(
                task_id="pod", name=dag_id.replace("_", "-"), namespace="default",
                on_failure_callback=note("failure"), on_retry_callback=note("retry"), **kwargs,
            )
        return dag


    one_pod("fin_ok", arguments=[GATED["fin_ok"] + "print('line one'); print('line two')"])
    # Worker-resume pods outlive the deferring worker process (SLOW): a trigger that fires within ~2 s of the deferral
    # hits Airflow's fast-pod race on a worker resume (the reliability issue), which ending in the triggerer avoids.
    SLOW = "import time; time.sleep(8); "
    one_pod("fin_ok_callback", arguments=[GATED["fin_ok_callback"] + SLOW + "print('called back')"],
            on_success_callback=note("success"))
    one_pod("fin_retry", arguments=[GATED["fin_retry"] + "import sys; print('try failing'); sys.exit(5)"],
            retries=1, retry_delay=timedelta(seconds=1))
    one_pod("fin_fail", arguments=[GATED["fin_fail"] + "import sys; print('about to fail'); sys.exit(3)"])
    one_pod("fin_skip", arguments=[GATED["fin_skip"] + "import sys; sys.exit(42)"], skip_on_exit_code=42)
    one_pod("fin_skip_worker", arguments=[GATED["fin_skip_worker"] + SLOW + "import sys; sys.exit(42)"],
            skip_on_exit_code=[42], finish_in_triggerer=False)
    one_pod("fin_worker", arguments=[GATED["fin_worker"] + SLOW + "print('finished by a worker')"],
            finish_in_triggerer=False)

    # start_from_trigger: no worker creates the pod; templates are rendered by the triggerer.
    one_pod("sft_ok", start_from_trigger=True, env_vars={{"RUN_{{{{ ti.try_number }}}}": "{{{{ run_id }}}}"}},
            arguments=[GATED["sft_ok"] + "import os; print('run', os.environ['RUN_1'])"])
    one_pod("sft_retry", start_from_trigger=True, retries=1, retry_delay=timedelta(seconds=1),
            arguments=[GATED["sft_retry"] + "import sys; print('try failing'); sys.exit(5)"])
    one_pod("sft_xcom", start_from_trigger=True, do_xcom_push=True,
            arguments=["import json; json.dump({{'n': 7}}, open('/airflow/xcom/return.json', 'w'))"])
    one_pod("sft_bad", start_from_trigger=True, labels={{"team": "{{{{ 'not a label value!' }}}}"}},
            arguments=["print('never runs')"])
    one_pod("sft_restart", start_from_trigger=True, arguments=[GATED["sft_restart"] + "print('survived')"])
    one_pod("sft_timeout", start_from_trigger=True, execution_timeout=timedelta(seconds=15),
            arguments=[GATED["sft_timeout"] + "print('never opened')"])  # the test never opens this gate
    '''
)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("callbacks")


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, emulator: Emulator, out: Path, gates: Gates
) -> Iterator[AirflowStack]:
    # A gate per DAG and try: ``arguments`` is templated, so the pod's code names its own try's gate.
    gated = {dag_id: gates.pod_code(f"{dag_id}.{{{{ ti.try_number }}}}") for dag_id in DAG_IDS}
    source = f"GATED = {gated!r}\n" + DAGS.format(out=str(out))
    started = start_stack(tmp_path_factory, emulator, {"fin.py": source}, db="postgres")
    yield started
    started.stop()


def run(stack: AirflowStack, gates: Gates, dag_id: str, until: str, try_number: int = 1) -> tuple[str, str, str]:
    stack.wait_for_dag(dag_id, timeout=90)
    run_id = stack.trigger_dag(dag_id)
    for attempt in range(1, try_number + 1):
        open_once_deferred(stack, gates, dag_id, run_id, attempt)
    state = stack.wait_for_run(dag_id, run_id, timeout=150)
    return run_id, state, stack.wait_for_log(dag_id, run_id, "pod", until, try_number=try_number, timeout=60)


def open_once_deferred(stack: AirflowStack, gates: Gates, dag_id: str, run_id: str, try_number: int) -> None:
    """Open the gate of ``try_number`` once that try is deferred (its pod waits for it until then)."""

    def deferred() -> bool | Pending:
        ti = stack.task_instance(dag_id, run_id, "pod") or {}
        seen = f"try {ti.get('try_number')} {ti.get('state')}"
        return (ti.get("try_number") == try_number and ti.get("state") == "deferred") or Pending(seen, progress=seen)

    stack.wait_until(f"try {try_number} of {dag_id} to defer", deferred, 150)
    gates.open(f"{dag_id}.{try_number}")


def callback_file(stack: AirflowStack, out: Path, name: str) -> str:
    """Callbacks run in the DAG processor, a moment after the state is set: wait for the file."""
    return stack.wait_until(f"callback file {name}", lambda: (out / name).exists() and (out / name).read_text(), 60)


def test_a_success_ends_in_the_triggerer_with_its_log(stack: AirflowStack, kube: CoreV1Api, gates: Gates) -> None:
    run_id, state, log = run(stack, gates, "fin_ok", until=IN_TRIGGERER)
    assert state == "success", log
    ti = stack.task_instance("fin_ok", run_id, "pod")
    assert ti is not None and ti.get("queued_when") is not None, ti  # a worker created its pod (start_from_trigger: no)
    assert "Finish mode: the trigger finishes the task (no worker resume)" in log
    assert log.count("line one") == 1 and log.count("line two") == 1, log
    assert log.index("line one") < log.index("line two") < log.index(IN_TRIGGERER)
    assert "Deleted pod fin-ok-" in log
    assert WORKER_RESUME not in log, log
    assert pods_of(kube, "fin_ok") == []


def test_an_on_success_callback_resumes_on_a_worker_where_it_runs(
    stack: AirflowStack, kube: CoreV1Api, out: Path, gates: Gates
) -> None:
    """Airflow 3.3.2 runs only failure/retry callbacks of a task a trigger ends: this one must finish on a worker."""
    _, state, log = run(stack, gates, "fin_ok_callback", until="Deleted pod fin-ok-callback-")
    assert state == "success", log
    assert "Finish mode: on_success_callback/on_skipped_callback is set" in log and WORKER_RESUME in log
    assert log.count("called back") == 1, log
    assert callback_file(stack, out, "fin_ok_callback.success.1") == "success"
    assert pods_of(kube, "fin_ok_callback") == []


def test_a_failure_with_retries_goes_up_for_retry_then_is_retried(
    stack: AirflowStack, kube: CoreV1Api, out: Path, gates: Gates
) -> None:
    run_id, state, second = run(stack, gates, "fin_retry", until=IN_TRIGGERER, try_number=2)
    assert state == "failed"
    ti = stack.task_instance("fin_retry", run_id, "pod")
    assert ti is not None and ti["try_number"] == 2 and ti["state"] == "failed", ti
    first = stack.wait_for_log("fin_retry", run_id, "pod", IN_TRIGGERER, try_number=1)
    for log in (first, second):
        assert "exit code 5" in log and "try failing" in log, log
        assert WORKER_RESUME not in log, log
    assert callback_file(stack, out, "fin_retry.retry.1") == "retry"
    assert callback_file(stack, out, "fin_retry.failure.2") == "failure"
    assert pods_of(kube, "fin_retry") == []


def test_a_failure_without_retries_fails_with_the_typed_reason_and_runs_the_failure_callback(
    stack: AirflowStack, kube: CoreV1Api, out: Path, gates: Gates
) -> None:
    _, state, log = run(stack, gates, "fin_fail", until=IN_TRIGGERER)
    assert state == "failed"
    assert "(outcome failed, reason Error, container base, exit code 3)" in log, log
    # The line, then again in the failure's tail (the spec dump quotes the command too, inside a longer line).
    printed = [line for line in log.splitlines() if line.endswith(": about to fail")]
    assert "Last log lines:" in log and len(printed) == 2, log
    assert WORKER_RESUME not in log
    assert callback_file(stack, out, "fin_fail.failure.1") == "failure"
    assert not (out / "fin_fail.success.1").exists()
    assert pods_of(kube, "fin_fail") == []


@pytest.mark.parametrize(("dag_id", "where"), [("fin_skip", IN_TRIGGERER), ("fin_skip_worker", WORKER_RESUME)])
def test_skip_on_exit_code_skips_the_task_in_both_modes(
    stack: AirflowStack, kube: CoreV1Api, gates: Gates, dag_id: str, where: str
) -> None:
    run_id, _, log = run(stack, gates, dag_id, until="is in skip_on_exit_code")
    ti = stack.task_instance(dag_id, run_id, "pod")
    assert ti is not None and ti["state"] == "skipped", (ti, log)
    assert where in log, log
    assert pods_of(kube, dag_id) == []


def test_finish_in_triggerer_false_resumes_on_a_worker(stack: AirflowStack, kube: CoreV1Api, gates: Gates) -> None:
    _, state, log = run(stack, gates, "fin_worker", until="Deleted pod fin-worker-")
    assert state == "success", log
    assert "Finish mode: finish_in_triggerer=False" in log
    assert WORKER_RESUME in log and IN_TRIGGERER not in log
    assert log.count("finished by a worker") == 1, log
    assert pods_of(kube, "fin_worker") == []


# -- start_from_trigger ------------------------------------------------------------------------------------------


def never_on_a_worker(stack: AirflowStack, dag_id: str, run_id: str) -> None:
    """No executor ever ran this task: it was never queued (a worker start, create or resume, queues it first)."""
    ti = stack.task_instance(dag_id, run_id, "pod")
    assert ti is not None and ti.get("queued_when") is None, ti


def test_start_from_trigger_creates_and_finishes_with_no_worker(
    stack: AirflowStack, kube: CoreV1Api, gates: Gates
) -> None:
    run_id, state, log = run(stack, gates, "sft_ok", until=IN_TRIGGERER)
    assert state == "success", log
    assert STARTED_IN_TRIGGERER in log and "Created pod sft-ok-" in log, log
    assert f"run {run_id}" in log, log  # env name and value rendered by the triggerer
    assert WORKER_RESUME not in log, log
    never_on_a_worker(stack, "sft_ok", run_id)
    assert pods_of(kube, "sft_ok") == []


def test_start_from_trigger_retries_with_a_new_pod_per_try(
    stack: AirflowStack, kube: CoreV1Api, out: Path, gates: Gates
) -> None:
    run_id, state, second = run(stack, gates, "sft_retry", until=IN_TRIGGERER, try_number=2)
    assert state == "failed"
    first = stack.wait_for_log("sft_retry", run_id, "pod", IN_TRIGGERER, try_number=1)
    names = [next(w for w in log.split() if w.startswith("sft-retry-")) for log in (first, second)]
    assert names[0] != names[1], names
    for log in (first, second):
        assert STARTED_IN_TRIGGERER in log and "exit code 5" in log and "try failing" in log, log
    assert callback_file(stack, out, "sft_retry.retry.1") == "retry"
    assert callback_file(stack, out, "sft_retry.failure.2") == "failure"
    never_on_a_worker(stack, "sft_retry", run_id)
    assert pods_of(kube, "sft_retry") == []


def test_start_from_trigger_with_do_xcom_push_resumes_on_a_worker_once(stack: AirflowStack, kube: CoreV1Api) -> None:
    stack.wait_for_dag("sft_xcom", timeout=90)
    run_id = stack.trigger_dag("sft_xcom")
    state = stack.wait_for_run("sft_xcom", run_id, timeout=150)
    log = stack.wait_for_log("sft_xcom", run_id, "pod", "Deleted pod sft-xcom-", timeout=60)
    assert state == "success", log
    assert STARTED_IN_TRIGGERER in log and "Finish mode: do_xcom_push=True" in log and WORKER_RESUME in log, log
    value = stack.api("GET", f"/api/v2/dags/sft_xcom/dagRuns/{run_id}/taskInstances/pod/xcomEntries/return_value")
    assert value["value"] in ({"n": 7}, '{"n": 7}', "{'n': 7}"), value
    assert pods_of(kube, "sft_xcom") == []


def test_start_from_trigger_bad_rendered_argument_fails_before_any_pod(stack: AirflowStack, kube: CoreV1Api) -> None:
    stack.wait_for_dag("sft_bad", timeout=90)
    run_id = stack.trigger_dag("sft_bad")
    assert stack.wait_for_run("sft_bad", run_id, timeout=150) == "failed"
    log = stack.wait_for_log("sft_bad", run_id, "pod", "so none was created", timeout=60)
    assert "labels" in log and "not a label value!" in log, log
    never_on_a_worker(stack, "sft_bad", run_id)
    assert pods_of(kube, "sft_bad") == []


def test_start_from_trigger_after_a_triggerer_restart_adopts_its_pod(
    stack: AirflowStack, kube: CoreV1Api, gates: Gates
) -> None:
    stack.wait_for_dag("sft_restart", timeout=90)
    run_id = stack.trigger_dag("sft_restart")
    stack.wait_for_task("sft_restart", run_id, "pod", states=["deferred"], timeout=120)
    stack.wait_for_log("sft_restart", run_id, "pod", "Created pod sft-restart-", timeout=120)
    first = [p.metadata.name for p in pods_of(kube, "sft_restart")]
    stack.kill_triggerer()
    stack.start_triggerer()
    stack.wait_for_log("sft_restart", run_id, "pod", "exists already (created by this try before)", timeout=120)
    assert [p.metadata.name for p in pods_of(kube, "sft_restart")] == first  # no second pod
    gates.open("sft_restart.1")
    assert stack.wait_for_run("sft_restart", run_id, timeout=150) == "success"
    log = stack.wait_for_log("sft_restart", run_id, "pod", IN_TRIGGERER, timeout=60)
    assert log.count("survived") == 1, log
    never_on_a_worker(stack, "sft_restart", run_id)
    assert pods_of(kube, "sft_restart") == []


def test_start_from_trigger_execution_timeout_fails_the_task_and_deletes_its_pod(
    stack: AirflowStack, kube: CoreV1Api
) -> None:
    """Airflow times the deferral out at start + execution_timeout, and so does the trigger: whichever acts first
    (the trigger, or a worker failing the task through ``resume_execution``), the pod is deleted."""
    stack.wait_for_dag("sft_timeout", timeout=90)
    run_id = stack.trigger_dag("sft_timeout")
    stack.wait_for_task("sft_timeout", run_id, "pod", states=["deferred"], timeout=120)
    stack.wait_for_log("sft_timeout", run_id, "pod", "Created pod sft-timeout-", timeout=120)
    assert stack.wait_for_run("sft_timeout", run_id, timeout=150) == "failed"
    stack.wait_until("the timed-out pod to be deleted", lambda: pods_of(kube, "sft_timeout") == [], 60)
