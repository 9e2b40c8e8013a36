"""The operator end to end: real Airflow (LocalExecutor + triggerer) running pods on the emulator's process runtime.

Every outcome is read the way a user sees it: the task state and task log through Airflow's REST API, and the pods
left in the cluster through the official ``kubernetes`` client.

Nothing here depends on the machine being idle: waits poll for what they wait for with generous bounds (a worker
start alone parses the DAG file, 5–13 s on a busy 2-core machine), a pod that must outlive a step of the test waits
for a gate the test opens (``tests/support/e2e.py``), and the one timing claim (deadlines are absolute) compares two
timestamps the restarted trigger itself logged against the execution timeout.
"""

from __future__ import annotations

import json
import re
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg2
import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.testing.airflow_stack import AirflowStack, Pending
from tests.support.e2e import (
    Gates,
    copy_repo_dag,
    phases,
    pods_of,
    record_time,
    records_with,
    start_stack,
    stop_stack,
)

# Generous bounds: each is far above what a step takes on a loaded machine and far below the pods' own lives.
PARSE = 120.0  # a DAG file parsed
RUN = 240.0  # a one-pod run: scheduler, worker start, pod, trigger, worker resume
# e2e_deadline's, seconds: far above the time from its deferral to the triggerer's kill, and above what a restarted
# triggerer's first subscription costs under load (43 s seen at load 16).
EXECUTION_TIMEOUT = 60
# e2e_unschedulable's, seconds: its verdict must come after the deferring worker's exit (up to 5 s at load 16).
SCHEDULE_TIMEOUT = 30

# PostgreSQL: several DAG runs, a scheduler and a triggerer write at once, and SQLite's lock times out under that.
pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.timeout(900)]

DAGS = textwrap.dedent(
    '''
    from datetime import datetime, timedelta

    from airflow.sdk import DAG

    from airflow_kpo_deferrable import KubernetesPodOperator


    def one_pod(dag_id, **kwargs):
        with DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
            kwargs.setdefault("image", "python:3.12-slim")
            kwargs.setdefault("cmds", ["python", "-c"])
            KubernetesPodOperator(task_id="pod", name=dag_id.replace("_", "-"), namespace="default", **kwargs)
        return dag


    one_pod("e2e_exit_3", arguments=[GATED["e2e_exit_3"]])
    one_pod("e2e_exit_3_keep", arguments=[GATED["e2e_exit_3_keep"]], on_finish_action="keep_pod")
    # The image is pulled once the gate (an init container) opens; the startup clock runs from scheduling.
    one_pod("e2e_image_pull", image="registry.invalid/team/app:1", arguments=["print(1)"],
            init_containers=[{"name": "gate", "image": "python:3.12-slim",
                              "command": ["python", "-c", GATED["e2e_image_pull"]]}],
            startup_timeout_seconds=120)
    one_pod("e2e_unschedulable", arguments=["print(1)"], node_selector={"disktype": "ssd"},
            schedule_timeout_seconds=SCHEDULE_TIMEOUT)
    one_pod("e2e_long", arguments=["import time; time.sleep(600)"])
    one_pod("e2e_sync", arguments=["print('waited on the worker')"], deferrable=False)
    one_pod("e2e_restart", arguments=[RESTART_CODE])
    one_pod("e2e_deadline", arguments=["import time; time.sleep(600)"],
            execution_timeout=timedelta(seconds=EXECUTION_TIMEOUT))
    '''
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, emulator: Emulator, gates: Gates) -> Iterator[AirflowStack]:
    restart_code = gates.pod_code("e2e_restart", then="print('survived the triggerer')")
    gated = {
        "e2e_exit_3": gates.pod_code("e2e_exit_3", then="print('about to fail'); sys.exit(3)"),
        "e2e_exit_3_keep": gates.pod_code("e2e_exit_3_keep", then="sys.exit(3)"),
        "e2e_image_pull": gates.pod_code("e2e_image_pull"),
    }
    constants = {"RESTART_CODE": restart_code, "GATED": gated, "EXECUTION_TIMEOUT": EXECUTION_TIMEOUT,
                 "SCHEDULE_TIMEOUT": SCHEDULE_TIMEOUT}
    source = "".join(f"{name} = {value!r}\n" for name, value in constants.items()) + DAGS
    dags = {"e2e.py": source, "example_kpo.py": copy_repo_dag("example_kpo.py")}
    started = start_stack(tmp_path_factory, emulator, dags, db="postgres")
    yield started
    stop_stack(started, emulator)


FAILED_ON_RESUME = "(outcome failed"  # only the worker's failure message has it, not the trigger's event line


def run(
    stack: AirflowStack, dag_id: str, until: str, timeout: float = RUN, gates: Gates | None = None
) -> tuple[str, str, str]:
    """Trigger ``dag_id``; returns (run id, final state, the task's log once it holds ``until``).

    With ``gates``, the pod waits for the gate named ``dag_id``, opened once the worker that deferred has exited:
    a pod that ends before that can get its task failed by an Airflow race (see ``AirflowStack``'s docstring).
    The run's state can be final a moment before the worker's last log lines are on disk, so wait for a line.
    """
    stack.wait_for_dag(dag_id, timeout=PARSE)
    run_id = stack.trigger_dag(dag_id)
    if gates is not None:
        stack.wait_for_task(dag_id, run_id, "pod", states=["deferred"], timeout=RUN)
        stack.wait_for_deferral_exit(dag_id, run_id, "pod", timeout=RUN)
        gates.open(dag_id)
    state = stack.wait_for_run(dag_id, run_id, timeout=timeout)
    task_id = stack.task_instances(dag_id, run_id)[0]["task_id"]
    return run_id, state, stack.wait_for_log(dag_id, run_id, task_id, until, timeout=PARSE)


def defer(stack: AirflowStack, dag_id: str) -> str:
    """Trigger ``dag_id`` and return its run id once its trigger runs (only a running trigger can act on the pod)."""
    stack.wait_for_dag(dag_id, timeout=PARSE)
    run_id = stack.trigger_dag(dag_id)
    stack.wait_for_task(dag_id, run_id, "pod", states=["deferred"], timeout=RUN)
    stack.wait_for_log(dag_id, run_id, "pod", "Waiting for pod", timeout=RUN)
    return run_id


def test_the_seed_example_succeeds_logs_hello_and_leaves_no_pod(stack: AirflowStack, kube: CoreV1Api) -> None:
    stack.wait_for_dag("example_kpo_hello", timeout=PARSE)
    # Its schedule is "@once": the scheduler starts the one run itself, as it would for a user.
    runs = stack.wait_until("the @once run", lambda: stack.rest.dag_runs("example_kpo_hello"), PARSE)
    run_id = runs[0]["dag_run_id"]
    state = stack.wait_for_run("example_kpo_hello", run_id, timeout=RUN)
    log = stack.wait_for_log("example_kpo_hello", run_id, "run_hello_pod", "Deleted pod hello-pod-", timeout=PARSE)
    assert state == "success", log
    assert "Hello from KubernetesPodOperator" in log
    # It deferred (the trigger's line), or its pod had already ended when the worker looked once more before
    # deferring, and the worker finished it (README "No orphan pods", fast pods).
    assert "Waiting for pod hello-pod-" in log or "ended before deferring" in log, log
    assert "Deleted pod hello-pod-" in log
    # The pod's name and namespace reach XCom (pushed before deferring), as with the provider.
    xcom = f"/api/v2/dags/example_kpo_hello/dagRuns/{run_id}/taskInstances/run_hello_pod/xcomEntries"
    pod_name = stack.api("GET", f"{xcom}/pod_name")["value"]
    assert pod_name.startswith("hello-pod-") and f"Deleted pod {pod_name}" in log
    assert stack.api("GET", f"{xcom}/pod_namespace")["value"] == "default"
    assert pods_of(kube, "example_kpo_hello") == []


def test_a_failing_pod_fails_the_task_with_its_exit_code_and_log(
    stack: AirflowStack, kube: CoreV1Api, gates: Gates
) -> None:
    _, state, log = run(stack, "e2e_exit_3", until=FAILED_ON_RESUME, gates=gates)
    assert state == "failed"
    assert "reason Error" in log and "exit code 3" in log
    assert "about to fail" in log
    assert pods_of(kube, "e2e_exit_3") == []


def test_keep_pod_keeps_the_failed_pod(stack: AirflowStack, kube: CoreV1Api, gates: Gates) -> None:
    _, state, log = run(stack, "e2e_exit_3_keep", until=FAILED_ON_RESUME, gates=gates)
    assert state == "failed"
    assert "exit code 3" in log
    [pod] = pods_of(kube, "e2e_exit_3_keep")
    assert pod.status.phase == "Failed"
    kube.delete_namespaced_pod(pod.metadata.name, "default")


def test_an_image_pull_failure_is_typed(stack: AirflowStack, kube: CoreV1Api, gates: Gates) -> None:
    _, state, log = run(stack, "e2e_image_pull", until=FAILED_ON_RESUME, gates=gates)
    assert state == "failed"
    assert "reason ErrImagePull" in log or "reason ImagePullBackOff" in log, log
    assert "registry.invalid" in log
    assert pods_of(kube, "e2e_image_pull") == []


def test_an_unschedulable_pod_is_typed(stack: AirflowStack, kube: CoreV1Api) -> None:
    _, state, log = run(stack, "e2e_unschedulable", until=FAILED_ON_RESUME)
    assert state == "failed"
    assert "reason Unschedulable" in log, log
    assert "didn't match Pod's node affinity/selector" in log
    assert pods_of(kube, "e2e_unschedulable") == []


def test_marking_a_deferred_task_failed_deletes_its_pod(stack: AirflowStack, kube: CoreV1Api) -> None:
    # Only a running trigger can delete the pod: Airflow drops a trigger no triggerer has picked up yet silently.
    run_id = defer(stack, "e2e_long")
    assert phases(kube, "e2e_long") == ["Running"]

    stack.mark_task("e2e_long", run_id, "pod", "failed")
    # The pod would run 600 s by itself: gone within a fifth of that can only be the trigger's on_kill.
    def deleted() -> bool | Pending:
        return pods_of(kube, "e2e_long") == [] or Pending(f"pods {phases(kube, 'e2e_long')}")

    stack.wait_until("on_kill to delete the pod", deleted, 120, interval=0.25)
    assert stack.wait_for_run("e2e_long", run_id, timeout=RUN) == "failed"


def test_deferrable_false_waits_on_the_worker(stack: AirflowStack, kube: CoreV1Api) -> None:
    _, state, log = run(stack, "e2e_sync", until="Deleted pod e2e-sync-")
    assert state == "success", log
    assert "waited on the worker" in log
    assert "Waiting for pod" not in log
    assert pods_of(kube, "e2e_sync") == []


def test_a_triggerer_restart_neither_loses_pods_nor_resets_deadlines(
    stack: AirflowStack, kube: CoreV1Api, gates: Gates
) -> None:
    restart_run = defer(stack, "e2e_restart")  # its pod waits for the gate: it outlives the triggerer's absence
    deadline_run = defer(stack, "e2e_deadline")
    # The deadline was fixed on the worker before it deferred, so it is at the latest this long from now.
    deadline_passed = time.monotonic() + EXECUTION_TIMEOUT
    stack.kill_triggerer()
    assert phases(kube, "e2e_deadline") == ["Running"], "the deadline ran out before the triggerer was killed"

    time.sleep(max(0.0, deadline_passed + 2 - time.monotonic()))  # the execution deadline passes with no triggerer
    # Nothing ended either pod while no triggerer ran (the restart pod still waits for its gate).
    assert phases(kube, "e2e_restart") == ["Running"] and phases(kube, "e2e_deadline") == ["Running"]
    restarted_at = datetime.now(UTC)
    stack.start_triggerer()

    assert stack.wait_for_run("e2e_deadline", deadline_run, timeout=RUN) == "failed"
    deadline_log = stack.wait_for_log("e2e_deadline", deadline_run, "pod", "(outcome timeout", timeout=PARSE)
    assert "outcome timeout, reason ExecutionTimeout" in deadline_log, deadline_log
    # Deadlines are absolute: the restarted trigger reports the deadline fixed on the worker, which had passed before
    # the restart, and ends the pod without a fresh execution_timeout (measured from its own start line).
    reported = re.search(r"execution_timeout ran out at (\S+) \(", deadline_log)
    assert reported and datetime.fromisoformat(reported[1]) < restarted_at, deadline_log
    records = stack.task_log_records("e2e_deadline", deadline_run, "pod")
    waits, timeouts = records_with(records, "Waiting for pod"), records_with(records, ": timeout (ExecutionTimeout)")
    assert len(waits) == 2 and timeouts, deadline_log
    reaction = (record_time(timeouts[-1]) - record_time(waits[-1])).total_seconds()
    assert 0 <= reaction < EXECUTION_TIMEOUT, f"the restarted trigger took {reaction:.1f}s:\n{deadline_log}"

    def watched_again() -> bool | Pending:
        count = stack.task_log("e2e_restart", restart_run, "pod").count("Waiting for pod")
        return count == 2 or Pending(f"{count} 'Waiting for pod' lines")

    stack.wait_until("the restarted triggerer to watch the surviving pod", watched_again, RUN)
    gates.open("e2e_restart")
    assert stack.wait_for_run("e2e_restart", restart_run, timeout=RUN) == "success"
    restart_log = stack.wait_for_log("e2e_restart", restart_run, "pod", "Deleted pod e2e-restart-", timeout=PARSE)
    assert "survived the triggerer" in restart_log
    assert restart_log.count("Waiting for pod") == 2  # watched again by the restarted triggerer
    assert pods_of(kube, "e2e_restart") == [] and pods_of(kube, "e2e_deadline") == []


def test_the_trigger_row_holds_no_credentials(stack: AirflowStack, emulator: Emulator) -> None:
    run_id = defer(stack, "e2e_long")
    kwargs = trigger_kwargs(stack)
    token = "emulator-token"
    assert token not in kwargs and "BEGIN CERTIFICATE" not in kwargs and "certificate-authority" not in kwargs
    assert "e2e-long" in kwargs  # it is the right row
    stack.mark_task("e2e_long", run_id, "pod", "failed")
    stack.wait_for_run("e2e_long", run_id, timeout=RUN)


def trigger_kwargs(stack: AirflowStack) -> str:
    """The kwargs of every trigger row, as stored in the metadata DB."""
    url = stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(url) as db, db.cursor() as cursor:
        cursor.execute("SELECT kwargs FROM trigger")
        return json.dumps([row[0] for row in cursor.fetchall()])
