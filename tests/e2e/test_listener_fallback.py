"""With a plugin listener installed, a DAG of ours still parses and its task finishes through a worker resume.

Why: Airflow 3.3.2 refuses to parse a DAG holding a task with ``end_from_trigger=True`` while plugin listeners are
installed (``dag_processing/dagbag.py``), and listeners never see a task that a trigger ends. So with a listener the
operator reports ``end_from_trigger=False`` and finishes on a worker, where the listener sees the success. The pod
outlives the deferring worker process, clear of the fast-pod race of worker resumes (the reliability issue).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.testing.airflow_stack import AirflowStack
from tests.support.e2e import Gates, pods_of, start_stack

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.timeout(240)]

DAGS = textwrap.dedent(
    '''
    from datetime import datetime

    from airflow.sdk import DAG

    from airflow_kpo_deferrable import KubernetesPodOperator

    with DAG(dag_id="listened", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
        KubernetesPodOperator(task_id="pod", name="listened", namespace="default", image="python:3.12-slim",
                              cmds=["python", "-c"], arguments=[GATED])

    with DAG(dag_id="listened_start", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
        KubernetesPodOperator(task_id="pod", name="listened-start", namespace="default", image="python:3.12-slim",
                              cmds=["python", "-c"], arguments=[GATED_START], start_from_trigger=True)
    '''
)

PLUGIN = textwrap.dedent(
    '''
    from pathlib import Path

    from airflow.listeners import hookimpl
    from airflow.plugins_manager import AirflowPlugin

    OUT = Path({out!r})


    class Listener:
        @hookimpl
        def on_task_instance_success(self, previous_state, task_instance):
            (OUT / f"{{task_instance.dag_id}}.listened").write_text("success")


    class KpoTestListenerPlugin(AirflowPlugin):
        name = "kpo_test_listener"
        listeners = [Listener()]
    '''
)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("listener")


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, emulator: Emulator, out: Path, gates: Gates
) -> Iterator[AirflowStack]:
    # The pod waits for its gate, opened once the task has deferred (a pod that ended before the deferral would be
    # finished on the worker, not resumed), then outlives the deferring worker process by 8 s.
    gated = gates.pod_code("listened", then="import time; time.sleep(8); print('seen by a listener')")
    gated_start = gates.pod_code("listened_start", then="print('seen by a listener')")
    started = start_stack(
        tmp_path_factory, emulator, {"listened.py": f"GATED = {gated!r}\nGATED_START = {gated_start!r}\n" + DAGS},
        plugin_files={"kpo_listener.py": PLUGIN.format(out=str(out))}, db="postgres",
    )
    yield started
    started.stop()


def test_with_a_listener_the_dag_parses_and_finishes_through_a_worker_resume(
    stack: AirflowStack, kube: CoreV1Api, out: Path, gates: Gates
) -> None:
    stack.wait_for_dag("listened", timeout=90)  # raises with the import error if parsing refused the DAG
    run_id = stack.trigger_dag("listened")
    stack.wait_for_task("listened", run_id, "pod", states=["deferred"], timeout=150)
    gates.open("listened")
    state = stack.wait_for_run("listened", run_id, timeout=150)
    log = stack.wait_for_log("listened", run_id, "pod", "Deleted pod listened-")
    assert state == "success", log
    assert "Finish mode: plugin listeners are installed" in log, log
    assert "Resumed on a worker" in log and "Finished in the triggerer" not in log
    assert log.count("seen by a listener") == 1, log
    listened = stack.wait_until("the listener's file", lambda: (out / "listened.listened").exists(), 60)
    assert listened and (out / "listened.listened").read_text() == "success"
    assert pods_of(kube, "listened") == []


def test_with_a_listener_a_task_started_from_the_triggerer_finishes_through_one_worker_resume(
    stack: AirflowStack, kube: CoreV1Api, out: Path, gates: Gates
) -> None:
    stack.wait_for_dag("listened_start", timeout=90)
    run_id = stack.trigger_dag("listened_start")
    stack.wait_for_task("listened_start", run_id, "pod", states=["deferred"], timeout=150)
    gates.open("listened_start")
    state = stack.wait_for_run("listened_start", run_id, timeout=150)
    log = stack.wait_for_log("listened_start", run_id, "pod", "Deleted pod listened-start-")
    assert state == "success", log
    assert "Started from the triggerer" in log and "Finish mode: plugin listeners are installed" in log, log
    assert "Resumed on a worker" in log and log.count("seen by a listener") == 1, log
    listened = stack.wait_until("the listener's file", lambda: (out / "listened_start.listened").exists(), 60)
    assert listened and (out / "listened_start.listened").read_text() == "success"
    assert pods_of(kube, "listened_start") == []
