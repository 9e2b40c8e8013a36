"""Deferral frees worker slots: 10 mapped pod tasks on LocalExecutor with parallelism 2 all wait at the same time.

The timing figure (makespan against pods × seconds) comes from ``benchmarks/``; this test checks the behaviour behind
it: every pod runs at once although only two worker slots exist, and while they wait the API server sees no per-pod
polling. The pods wait for a gate the test opens once it has seen all that, so no pod can end before the last task
has deferred, however slowly a loaded machine starts workers. Bounds are per step (between two deferrals), not one
guess for the whole fan-out.
"""

from __future__ import annotations

import textwrap
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.testing.airflow_stack import AirflowStack, Pending
from tests.support.e2e import Gates, copy_repo_dag, phases, pods_of, start_stack, stop_stack

PODS, SLOTS = 10, 2
DAG_ID = "e2e_overlap"
# Between two steps of the fan-out (one task deferring, resuming or finishing) at most this long: a worker start
# parses the DAG file, 5–13 s on a busy 2-core machine; the rest is room.
STEP = 120.0
WATCH_WINDOW = 5.0

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.timeout(int(3 * PODS * STEP))]

# The shape of dags/example_kpo_fanout.py; each pod waits for the gate instead of sleeping a fixed time.
DAG = textwrap.dedent(
    """
    from datetime import datetime

    from airflow.sdk import DAG, task

    from airflow_kpo_deferrable import KubernetesPodOperator

    with DAG(dag_id="e2e_overlap", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

        @task
        def shards(params=None) -> list[list[str]]:
            return [[CODE + f"print('shard {i} done')"] for i in range(params["pods"])]

        KubernetesPodOperator.partial(
            task_id="long_pod", name="long-pod", namespace="default", image="python:3.12-slim", cmds=["python", "-c"]
        ).expand(arguments=shards())
    """
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, emulator: Emulator, gates: Gates) -> Iterator[AirflowStack]:
    dags = {
        "e2e_overlap.py": f"CODE = {gates.pod_code('overlap')!r}\n{DAG}",
        "example_kpo_fanout.py": copy_repo_dag("example_kpo_fanout.py"),
    }
    started = start_stack(tmp_path_factory, emulator, dags, db="postgres", parallelism=SLOTS)
    yield started
    stop_stack(started, emulator)


def test_the_fanout_example_parses(stack: AirflowStack) -> None:
    assert stack.wait_for_dag("example_kpo_fanout", timeout=STEP)["dag_id"] == "example_kpo_fanout"


def test_more_pods_run_at_once_than_there_are_worker_slots(
    stack: AirflowStack, emulator: Emulator, kube: CoreV1Api, gates: Gates
) -> None:
    stack.wait_for_dag(DAG_ID, timeout=STEP)
    run_id = stack.trigger_dag(DAG_ID, conf={"pods": PODS})

    def long_pods() -> list[dict]:
        return [ti for ti in stack.task_instances(DAG_ID, run_id) if ti["task_id"] == "long_pod"]

    def all_deferred() -> bool | Pending:
        states = Counter(ti["state"] for ti in long_pods())
        deferred = states["deferred"]
        return deferred == PODS or Pending(f"{deferred} of {PODS} deferred; states {dict(states)}", progress=deferred)

    stack.wait_until(f"all {PODS} tasks to defer", all_deferred, PODS * STEP, step_timeout=STEP)

    def all_running() -> bool | Pending:
        seen = phases(kube, DAG_ID)
        return seen.count("Running") == PODS or Pending(f"pod phases {seen}")

    stack.wait_until(f"all {PODS} pods to run at once on {SLOTS} worker slots", all_running, STEP)

    # Each trigger has started (and so subscribed to the shared watch) once its line is in the task's log.
    watched: set[int] = set()

    def all_watched() -> bool | Pending:
        for index in set(range(PODS)) - watched:
            if "Waiting for pod" in stack.task_log(DAG_ID, run_id, "long_pod", map_index=index):
                watched.add(index)
        return len(watched) == PODS or Pending(f"triggers running for map indexes {sorted(watched)}", len(watched))

    stack.wait_until(f"all {PODS} triggers to wait", all_watched, PODS * STEP, step_timeout=STEP)

    # While every pod waits, the triggerer holds one watch: no GET per pod, no new LIST.
    emulator.reset_counters()
    time.sleep(WATCH_WINDOW)
    counters = emulator.counters()
    assert counters.get("get pods", 0) == 0, counters
    assert counters.get("list pods", 0) + counters.get("watch pods", 0) <= 1, counters

    for index in range(PODS):  # a pod ending before its deferring worker exited could hit an Airflow race
        stack.wait_for_deferral_exit(DAG_ID, run_id, "long_pod", map_index=index, timeout=STEP)
    gates.open("overlap")
    assert stack.wait_for_run(DAG_ID, run_id, timeout=3 * PODS * STEP, step_timeout=STEP) == "success"
    assert pods_of(kube, DAG_ID) == []
