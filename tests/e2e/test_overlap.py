"""Deferral frees worker slots: 10 pods of 30 s on LocalExecutor with parallelism 2 run at the same time.

The timing figure (makespan against pods × seconds) comes from ``benchmarks/``; this test checks the behaviour behind
it: more pods run at once than there are worker slots, and while they wait the API server sees no per-pod polling.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.testing.airflow_stack import AirflowStack
from tests.support.e2e import copy_repo_dag, pods_of, start_stack

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.timeout(300)]

PODS, SECONDS, SLOTS = 10, 30, 2


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, emulator: Emulator) -> Iterator[AirflowStack]:
    dags = {"example_kpo_fanout.py": copy_repo_dag("example_kpo_fanout.py")}
    started = start_stack(tmp_path_factory, emulator, dags, db="postgres", parallelism=SLOTS)
    yield started
    started.stop()


def test_more_pods_run_at_once_than_there_are_worker_slots(
    stack: AirflowStack, emulator: Emulator, kube: CoreV1Api
) -> None:
    stack.wait_for_dag("example_kpo_fanout", timeout=60)
    run_id = stack.trigger_dag("example_kpo_fanout", conf={"pods": PODS, "seconds": SECONDS})

    def all_deferred() -> bool:
        tis = [ti for ti in stack.task_instances("example_kpo_fanout", run_id) if ti["task_id"] == "long_pod"]
        return len(tis) == PODS and all(ti["state"] == "deferred" for ti in tis)

    stack.wait_until(f"all {PODS} tasks to defer while their pods run", all_deferred, SECONDS)
    running = [p for p in pods_of(kube, "example_kpo_fanout") if p.status.phase == "Running"]
    assert len(running) > SLOTS, f"only {len(running)} pods run at once on {SLOTS} worker slots"

    # While every pod waits, the triggerer holds one watch: no GET per pod, no new LIST.
    emulator.reset_counters()
    time.sleep(5)
    counters = emulator.counters()
    assert counters.get("get pods", 0) == 0, counters
    assert counters.get("list pods", 0) + counters.get("watch pods", 0) <= 1, counters

    assert stack.wait_for_run("example_kpo_fanout", run_id, timeout=180) == "success"
    assert pods_of(kube, "example_kpo_fanout") == []
