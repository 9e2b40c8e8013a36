"""The operator end to end: real Airflow (LocalExecutor + triggerer) running pods on the emulator's process runtime.

Every outcome is read the way a user sees it: the task state and task log through Airflow's REST API, and the pods
left in the cluster through the official ``kubernetes`` client.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator

import psycopg2
import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.testing.airflow_stack import AirflowStack
from tests.support.e2e import copy_repo_dag, pods_of, start_stack

# PostgreSQL: several DAG runs, a scheduler and a triggerer write at once, and SQLite's lock times out under that.
pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.timeout(240)]

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


    one_pod("e2e_exit_3", arguments=["import sys; print('about to fail'); sys.exit(3)"])
    one_pod("e2e_exit_3_keep", arguments=["import sys; sys.exit(3)"], on_finish_action="keep_pod")
    one_pod("e2e_image_pull", image="registry.invalid/team/app:1", arguments=["print(1)"],
            startup_timeout_seconds=8)
    one_pod("e2e_unschedulable", arguments=["print(1)"], node_selector={"disktype": "ssd"},
            schedule_timeout_seconds=5)
    one_pod("e2e_long", arguments=["import time; time.sleep(600)"])
    one_pod("e2e_sync", arguments=["print('waited on the worker')"], deferrable=False)
    one_pod("e2e_restart", arguments=["import time; time.sleep(25); print('survived the triggerer')"])
    one_pod("e2e_deadline", arguments=["import time; time.sleep(600)"], execution_timeout=timedelta(seconds=20))
    '''
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, emulator: Emulator) -> Iterator[AirflowStack]:
    dags = {"e2e.py": DAGS, "example_kpo.py": copy_repo_dag("example_kpo.py")}
    started = start_stack(tmp_path_factory, emulator, dags, db="postgres")
    yield started
    started.stop()


FAILED_ON_RESUME = "(outcome failed"  # only the worker's failure message has it, not the trigger's event line


def run(stack: AirflowStack, dag_id: str, until: str, timeout: float = 120) -> tuple[str, str, str]:
    """Trigger ``dag_id``; returns (run id, final state, the task's log once it holds ``until``).

    The run's state can be final a moment before the worker's last log lines are on disk, so wait for a line.
    """
    stack.wait_for_dag(dag_id, timeout=60)
    run_id = stack.trigger_dag(dag_id)
    state = stack.wait_for_run(dag_id, run_id, timeout=timeout)
    task_id = stack.task_instances(dag_id, run_id)[0]["task_id"]
    return run_id, state, stack.wait_for_log(dag_id, run_id, task_id, until)


def test_the_seed_example_succeeds_logs_hello_and_leaves_no_pod(stack: AirflowStack, kube: CoreV1Api) -> None:
    stack.wait_for_dag("example_kpo_hello", timeout=60)
    # Its schedule is "@once": the scheduler starts the one run itself, as it would for a user.
    runs = stack.wait_until("the run", lambda: stack.api("GET", "/api/v2/dags/example_kpo_hello/dagRuns")["dag_runs"], 60)
    run_id = runs[0]["dag_run_id"]
    state = stack.wait_for_run("example_kpo_hello", run_id, timeout=120)
    log = stack.wait_for_log("example_kpo_hello", run_id, "run_hello_pod", "Deleted pod hello-pod-")
    assert state == "success", log
    assert "Hello from KubernetesPodOperator" in log
    assert "Waiting for pod hello-pod-" in log  # the trigger's part: it really deferred
    assert "Deleted pod hello-pod-" in log
    # The pod's name and namespace reach XCom (pushed before deferring), as with the provider.
    xcom = f"/api/v2/dags/example_kpo_hello/dagRuns/{run_id}/taskInstances/run_hello_pod/xcomEntries"
    pod_name = stack.api("GET", f"{xcom}/pod_name")["value"]
    assert pod_name.startswith("hello-pod-") and f"Deleted pod {pod_name}" in log
    assert stack.api("GET", f"{xcom}/pod_namespace")["value"] == "default"
    assert pods_of(kube, "example_kpo_hello") == []


def test_a_failing_pod_fails_the_task_with_its_exit_code_and_log(stack: AirflowStack, kube: CoreV1Api) -> None:
    _, state, log = run(stack, "e2e_exit_3", until=FAILED_ON_RESUME)
    assert state == "failed"
    assert "reason Error" in log and "exit code 3" in log
    assert "about to fail" in log
    assert pods_of(kube, "e2e_exit_3") == []


def test_keep_pod_keeps_the_failed_pod(stack: AirflowStack, kube: CoreV1Api) -> None:
    _, state, log = run(stack, "e2e_exit_3_keep", until=FAILED_ON_RESUME)
    assert state == "failed"
    assert "exit code 3" in log
    [pod] = pods_of(kube, "e2e_exit_3_keep")
    assert pod.status.phase == "Failed"
    kube.delete_namespaced_pod(pod.metadata.name, "default")


def test_an_image_pull_failure_is_typed(stack: AirflowStack, kube: CoreV1Api) -> None:
    _, state, log = run(stack, "e2e_image_pull", until=FAILED_ON_RESUME)
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
    stack.wait_for_dag("e2e_long", timeout=60)
    run_id = stack.trigger_dag("e2e_long")
    stack.wait_for_task("e2e_long", run_id, "pod", states=["deferred"], timeout=60)
    stack.wait_until("the pod to run", lambda: any(p.status.phase == "Running" for p in pods_of(kube, "e2e_long")), 30)
    # Only a running trigger can delete the pod: Airflow drops a trigger no triggerer has picked up yet silently.
    stack.wait_for_log("e2e_long", run_id, "pod", "Waiting for pod")

    stack.mark_task("e2e_long", run_id, "pod", "failed")
    marked = time.monotonic()
    stack.wait_until("the pod to be deleted", lambda: pods_of(kube, "e2e_long") == [], 30, interval=0.25)
    assert time.monotonic() - marked < 15
    assert stack.wait_for_run("e2e_long", run_id, timeout=30) == "failed"


def test_deferrable_false_waits_on_the_worker(stack: AirflowStack, kube: CoreV1Api) -> None:
    _, state, log = run(stack, "e2e_sync", until="Deleted pod e2e-sync-")
    assert state == "success", log
    assert "waited on the worker" in log
    assert "Waiting for pod" not in log
    assert pods_of(kube, "e2e_sync") == []


def test_a_triggerer_restart_neither_loses_pods_nor_resets_deadlines(stack: AirflowStack, kube: CoreV1Api) -> None:
    for dag_id in ("e2e_restart", "e2e_deadline"):
        stack.wait_for_dag(dag_id, timeout=60)
    restart_run = stack.trigger_dag("e2e_restart")
    deadline_run = stack.trigger_dag("e2e_deadline")
    stack.wait_for_task("e2e_restart", restart_run, "pod", states=["deferred"], timeout=60)
    stack.wait_for_task("e2e_deadline", deadline_run, "pod", states=["deferred"], timeout=60)
    stack.wait_for_log("e2e_deadline", deadline_run, "pod", "Waiting for pod")
    stack.wait_for_log("e2e_restart", restart_run, "pod", "Waiting for pod")

    stack.kill_triggerer()
    time.sleep(20)  # the execution deadline (20 s) passes while no triggerer runs
    assert [p.status.phase for p in pods_of(kube, "e2e_restart")] == ["Running"]  # nothing deleted it early
    stack.start_triggerer()
    restarted = time.monotonic()

    assert stack.wait_for_run("e2e_deadline", deadline_run, timeout=60) == "failed"
    # Deadlines are absolute: the restarted trigger ends the pod at once, not 20 s after the restart.
    assert time.monotonic() - restarted < 15
    deadline_log = stack.wait_for_log("e2e_deadline", deadline_run, "pod", "(outcome timeout")
    assert "outcome timeout, reason ExecutionTimeout" in deadline_log, deadline_log

    assert stack.wait_for_run("e2e_restart", restart_run, timeout=90) == "success"
    restart_log = stack.wait_for_log("e2e_restart", restart_run, "pod", "Deleted pod e2e-restart-")
    assert "survived the triggerer" in restart_log
    assert restart_log.count("Waiting for pod") == 2  # watched again by the restarted triggerer
    assert pods_of(kube, "e2e_restart") == [] and pods_of(kube, "e2e_deadline") == []


def test_the_trigger_row_holds_no_credentials(stack: AirflowStack, emulator: Emulator) -> None:
    stack.wait_for_dag("e2e_long", timeout=60)
    run_id = stack.trigger_dag("e2e_long")
    stack.wait_for_task("e2e_long", run_id, "pod", states=["deferred"], timeout=60)
    stack.wait_for_log("e2e_long", run_id, "pod", "Waiting for pod")
    kwargs = trigger_kwargs(stack)
    token = "emulator-token"
    assert token not in kwargs and "BEGIN CERTIFICATE" not in kwargs and "certificate-authority" not in kwargs
    assert "e2e-long" in kwargs  # it is the right row
    stack.mark_task("e2e_long", run_id, "pod", "failed")
    stack.wait_for_run("e2e_long", run_id, timeout=60)


def trigger_kwargs(stack: AirflowStack) -> str:
    """The kwargs of every trigger row, as stored in the metadata DB."""
    url = stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg2://", "postgresql://")
    with psycopg2.connect(url) as db, db.cursor() as cursor:
        cursor.execute("SELECT kwargs FROM trigger")
        return json.dumps([row[0] for row in cursor.fetchall()])
