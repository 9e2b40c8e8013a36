"""``callbacks``, ``progress_callback`` and ``log_formatter`` through real Airflow (LocalExecutor + triggerer), the pod
on the emulator: the task defers, then finishes on a worker, where every hook is called.

The pod waits for a gate the test opens only after the deferring worker's exit was processed (the Airflow 3.3 race
in ``AirflowStack``'s docstring), so the task really resumes. The DAG's hooks write files the test reads.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.testing.airflow_stack import AirflowStack
from tests.support.e2e import Gates, pods_of, start_stack

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.timeout(420)]

LINES = [f"tick {i}" for i in range(5)]
DAG = textwrap.dedent(
    '''
    import json
    from datetime import datetime
    from pathlib import Path

    from airflow.sdk import DAG

    from airflow_kpo_deferrable import KubernetesPodOperator

    OUT = Path({out!r})


    def note(name, **values):
        with (OUT / "hooks.jsonl").open("a") as f:
            f.write(json.dumps({{"hook": name, **values}}) + "\\n")


    class Hooks:
        @staticmethod
        def on_pod_creation(*, pod, mode, context, **kwargs):
            note("on_pod_creation", pod=pod.metadata.name, mode=mode, try_number=context["ti"].try_number)

        @staticmethod
        def on_operator_resuming(*, pod, event, mode, **kwargs):
            note("on_operator_resuming", pod=pod.metadata.name, outcome=event["outcome"])

        @staticmethod
        def on_pod_completion(*, pod, **kwargs):
            note("on_pod_completion", phase=pod.status.phase)

        @staticmethod
        def on_pod_cleanup(*, pod, **kwargs):
            note("on_pod_cleanup", pod=pod.metadata.name)

        @staticmethod
        def progress_callback(*, line, container_name, **kwargs):
            note("progress_callback", line=line, container=container_name)


    def seen(line):
        with (OUT / "progress.txt").open("a") as f:
            f.write(line + "\\n")


    with DAG(dag_id="cb_worker", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
        KubernetesPodOperator(
            task_id="pod", name="cb-worker", namespace="default", image="python:3.12-slim", cmds=["python", "-c"],
            arguments=[{code!r}], callbacks=Hooks, progress_callback=seen,
            log_formatter=lambda container, message: f"FORMATTED<{{container}}> {{message}}",
        )
    '''
)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("callback-files")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, emulator: Emulator, out: Path,
          gates: Gates) -> Iterator[AirflowStack]:
    code = gates.pod_code("cb_worker", then="".join(f"print({line!r})\n" for line in LINES))
    started = start_stack(tmp_path_factory, emulator, {"cb.py": DAG.format(out=str(out), code=code)}, db="postgres")
    yield started
    started.stop()


def test_hooks_progress_and_formatter_run_on_the_worker(
    stack: AirflowStack, kube: CoreV1Api, gates: Gates, out: Path
) -> None:
    stack.wait_for_dag("cb_worker", timeout=120)
    run_id = stack.trigger_dag("cb_worker")
    stack.wait_for_task("cb_worker", run_id, "pod", states=["deferred"], timeout=240)
    stack.wait_for_deferral_exit("cb_worker", run_id, "pod", timeout=240)
    gates.open("cb_worker")
    state = stack.wait_for_run("cb_worker", run_id, timeout=240)
    log = stack.wait_for_log("cb_worker", run_id, "pod", "Deleted pod cb-worker", timeout=60)
    assert state == "success", log

    assert "Finish mode: callbacks/progress_callback/log_formatter set" in log, log
    assert "Resumed on a worker" in log and "Finished in the triggerer" not in log, log
    for line in LINES:  # formatted, once, and never unformatted from the trigger
        assert log.count(f"FORMATTED<base> {line}") == 1, log
        assert log.count(line) == 1, log

    records = [json.loads(line) for line in (out / "hooks.jsonl").read_text().splitlines()]
    hooks = [r["hook"] for r in records if r["hook"] != "progress_callback"]
    assert hooks == ["on_pod_creation", "on_operator_resuming", "on_pod_completion", "on_pod_cleanup"], records
    first = records[0]
    assert first["pod"].startswith("cb-worker") and first["mode"] == "sync" and first["try_number"] == 1
    assert [r["line"] for r in records if r["hook"] == "progress_callback"] == LINES
    assert {r["container"] for r in records if r["hook"] == "progress_callback"} == {"base"}
    assert next(r for r in records if r["hook"] == "on_pod_completion")["phase"] == "Succeeded"
    assert (out / "progress.txt").read_text().splitlines() == LINES
    assert pods_of(kube, "cb_worker") == []
