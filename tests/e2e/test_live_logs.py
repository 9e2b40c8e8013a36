"""Live logs end to end: a running pod's lines reach the task log while the task is deferred, each exactly once.

Real Airflow (LocalExecutor + a triggerer), pods as real processes on the emulator. Durations: the pod prints a
numbered line a second for 45 s — on this loaded machine a task takes 10-30 s from trigger to pod start, so the
lines must outlast that for "seen while running" to mean something.
"""

from __future__ import annotations

import re
import textwrap
import time
from collections.abc import Iterator

import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.testing.airflow_stack import AirflowStack
from tests.support.e2e import pods_of, start_stack

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.timeout(400)]

TICKS = 45
TICK = re.compile(r"\btick (\d{3})\b")
RESTART_MARK = "Restarted: the log continues after the last saved line"

DAGS = textwrap.dedent(
    f'''
    from datetime import datetime

    from airflow.sdk import DAG

    from airflow_kpo_deferrable import KubernetesPodOperator

    SCRIPT = "import time\\nfor n in range(1, {TICKS} + 1):\\n    print(f'tick {{n:03d}}', flush=True)\\n    time.sleep(1)"

    for dag_id in ("live_ticks", "live_restart"):
        with DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
            KubernetesPodOperator(task_id="pod", name=dag_id.replace("_", "-"), namespace="default",
                                  image="python:3.12-slim", cmds=["python", "-c"], arguments=[SCRIPT],
                                  logging_interval=2)
    '''
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, emulator: Emulator) -> Iterator[AirflowStack]:
    started = start_stack(tmp_path_factory, emulator, {"live.py": DAGS}, db="postgres")
    yield started
    started.stop()


def ticks(log: str) -> list[int]:
    return [int(match.group(1)) for match in TICK.finditer(log)]


def test_lines_show_while_the_pod_runs_and_each_once_at_the_end(stack: AirflowStack, kube: CoreV1Api) -> None:
    stack.wait_for_dag("live_ticks", timeout=90)
    run_id = stack.trigger_dag("live_ticks")
    stack.wait_for_task("live_ticks", run_id, "pod", states=["deferred"], timeout=120)
    early = stack.wait_for_log("live_ticks", run_id, "pod", "tick 003", timeout=120)
    ti = stack.task_instance("live_ticks", run_id, "pod")
    assert ti is not None and ti["state"] == "deferred", ti  # seen while the pod runs, from the trigger
    assert f"tick {TICKS:03d}" not in early
    assert stack.wait_for_run("live_ticks", run_id, timeout=150) == "success"
    log = stack.wait_for_log("live_ticks", run_id, "pod", "Finished in the triggerer")
    assert ticks(log) == list(range(1, TICKS + 1)), log
    assert "Resumed on a worker" not in log
    assert pods_of(kube, "live_ticks") == []


def test_a_triggerer_killed_mid_stream_resumes_after_the_saved_line(stack: AirflowStack, kube: CoreV1Api) -> None:
    stack.wait_for_dag("live_restart", timeout=90)
    run_id = stack.trigger_dag("live_restart")
    stack.wait_for_task("live_restart", run_id, "pod", states=["deferred"], timeout=120)
    stack.wait_for_log("live_restart", run_id, "pod", "tick 005", timeout=120)
    stack.kill_triggerer()
    time.sleep(4)  # the pod keeps printing while no triggerer runs
    stack.start_triggerer()
    assert stack.wait_for_run("live_restart", run_id, timeout=180) == "success"
    log = stack.wait_for_log("live_restart", run_id, "pod", "Finished in the triggerer")
    seen = ticks(log)
    # Every line, in order; a line repeats only after the restart's marker, at most logging_interval (2 s) of them
    # plus what the killed triggerer had not yet saved or flushed.
    assert sorted(set(seen)) == list(range(1, TICKS + 1)), log
    assert RESTART_MARK in log, log
    before, after = log.split(RESTART_MARK, 1)
    first, second = ticks(before), ticks(after)
    assert first == list(range(1, len(first) + 1)) and second == list(range(second[0], TICKS + 1)), log
    repeated = set(first) & set(second)
    assert len(repeated) <= 5, f"{sorted(repeated)} repeated after the restart"
    assert pods_of(kube, "live_restart") == []
