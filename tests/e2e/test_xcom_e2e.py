"""``do_xcom_push=True`` end to end: real Airflow (LocalExecutor + triggerer), the emulator's real XCom sidecar.

A deferred task's pod writes ``/airflow/xcom/return.json``; on resume the worker reads it over exec, stops the
sidecar, and the value becomes the task's return value, which a downstream task pulls (``multiple_outputs`` too).
The base container ends within milliseconds, usually before the task has even deferred: the XCom must survive
that. A failing base container and an invalid result fail the task with their reasons, without hanging.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.testing.airflow_stack import AirflowStack
from tests.support.e2e import pods_of, start_stack

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.timeout(300)]

DAGS = textwrap.dedent(
    r'''
    from datetime import datetime

    from airflow.sdk import DAG, task

    from airflow_kpo_deferrable import KubernetesPodOperator

    RESULT = {"rows": 3, "names": ["a", "b"]}


    def xcom_pod(dag_id, script, **kwargs):
        return KubernetesPodOperator(task_id="pod", name=dag_id.replace("_", "-"), namespace="default",
                                     image="busybox:1.36", cmds=["sh", "-c"], arguments=[script],
                                     do_xcom_push=True, **kwargs)


    with DAG(dag_id="e2e_xcom", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
        pod = xcom_pod("e2e_xcom", """echo '{"rows": 3, "names": ["a", "b"]}' > /airflow/xcom/return.json""",
                       multiple_outputs=True)

        @task
        def check(value, rows):
            assert value == RESULT, value
            assert rows == 3, rows
            print(f"pulled {value!r} rows={rows}")

        check(pod.output, pod.output["rows"])
        # An XComArg as a templated argument, resolved when the downstream task renders (as the provider's).
        KubernetesPodOperator(task_id="use", name="e2e-xcom-use", namespace="default", image="busybox:1.36",
                              cmds=["echo"], arguments=pod.output["names"])

    with DAG(dag_id="e2e_xcom_fail", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
        xcom_pod("e2e_xcom_fail", "echo 'no result today' >&2; exit 3")

    with DAG(dag_id="e2e_xcom_bad", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
        xcom_pod("e2e_xcom_bad", "echo '{not json' > /airflow/xcom/return.json")
    '''
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, emulator: Emulator) -> Iterator[AirflowStack]:
    started = start_stack(tmp_path_factory, emulator, {"xcom.py": DAGS}, db="postgres")
    yield started
    started.stop()


def test_the_result_reaches_a_downstream_task(stack: AirflowStack, kube: CoreV1Api) -> None:
    stack.wait_for_dag("e2e_xcom", timeout=60)
    run_id = stack.trigger_dag("e2e_xcom")
    state = stack.wait_for_run("e2e_xcom", run_id, timeout=180)
    pod_log = stack.wait_for_log("e2e_xcom", run_id, "pod", "Deleted pod e2e-xcom")
    check_log = stack.wait_for_log("e2e_xcom", run_id, "check", "pulled")
    assert state == "success", pod_log + check_log
    assert "pulled {'rows': 3, 'names': ['a', 'b']} rows=3" in check_log
    use_log = stack.wait_for_log("e2e_xcom", run_id, "use", "Deleted pod e2e-xcom-use")
    assert any(line.endswith("a b") for line in use_log.splitlines()), use_log  # echo a b
    entries = f"/api/v2/dags/e2e_xcom/dagRuns/{run_id}/taskInstances/pod/xcomEntries"
    assert stack.api("GET", f"{entries}/rows")["value"] in (3, "3")
    assert pods_of(kube, "e2e_xcom") == []


def test_a_failing_base_container_fails_with_its_reason_and_no_hang(stack: AirflowStack, kube: CoreV1Api) -> None:
    stack.wait_for_dag("e2e_xcom_fail", timeout=60)
    run_id = stack.trigger_dag("e2e_xcom_fail")
    assert stack.wait_for_run("e2e_xcom_fail", run_id, timeout=120) == "failed"
    log = stack.wait_for_log("e2e_xcom_fail", run_id, "pod", "(outcome failed")
    assert "reason Error" in log and "exit code 3" in log, log
    assert "no result today" in log
    assert pods_of(kube, "e2e_xcom_fail") == []


def test_an_invalid_result_fails_naming_the_pod(stack: AirflowStack, kube: CoreV1Api) -> None:
    stack.wait_for_dag("e2e_xcom_bad", timeout=60)
    run_id = stack.trigger_dag("e2e_xcom_bad")
    assert stack.wait_for_run("e2e_xcom_bad", run_id, timeout=120) == "failed"
    log = stack.wait_for_log("e2e_xcom_bad", run_id, "pod", "wrote invalid JSON")
    assert "default/e2e-xcom-bad" in log and "/airflow/xcom/return.json" in log, log
    assert pods_of(kube, "e2e_xcom_bad") == []
