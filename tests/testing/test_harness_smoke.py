"""The harness itself, against Airflow's own triggers: deferral, trigger logs, on_kill, triggerer loss.

The long task waits in the triggerer for a gate file (Airflow's ``FileTrigger``) rather than a fixed nap, so the
triggerer hand-over test does not race the clock: the gate opens only after the trigger has moved.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import psutil
import pytest

from airflow_kpo_deferrable.testing.airflow_stack import Pending

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(600)]

DAG_ID = "harness_smoke"
PARSE, RUN = 120.0, 240.0
TRIGGER_STARTED = ") starting"  # the triggerer's "trigger <ti> (ID <n>) starting", for any trigger

# Deferrable operators built on Airflow's own triggers, so these tests exercise only the harness and Airflow.
DAG_FILE = textwrap.dedent(
    """
    from datetime import datetime, timedelta

    from airflow.providers.standard.triggers.file import FileTrigger
    from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
    from airflow.sdk import DAG, BaseOperator


    class Nap(BaseOperator):
        def __init__(self, *, seconds: float, **kwargs):
            super().__init__(**kwargs)
            self.seconds = seconds

        def execute(self, context):
            self.log.info("napping for %s seconds in the triggerer", self.seconds)
            self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=self.seconds)), method_name="wake")

        def wake(self, context, event=None):
            self.log.info("woke up with %r", event)


    class WaitForGate(BaseOperator):
        def execute(self, context):
            self.log.info("waiting for the gate in the triggerer")
            self.defer(trigger=FileTrigger(filepath=GATE, poke_interval=0.5), method_name="wake")

        def wake(self, context, event=None):
            self.log.info("the gate opened: %r", event)


    with DAG(dag_id="harness_smoke", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
        Nap(task_id="short_nap", seconds=2)
        WaitForGate(task_id="long_nap")
    """
)


def write_dag(folder: Path) -> Path:
    """The DAG into ``folder``; ``long_nap`` waits until the file ``folder/../gate`` exists."""
    folder.mkdir()
    (folder / "harness_smoke.py").write_text(f"GATE = {str(gate(folder))!r}\n{DAG_FILE}")
    return folder


def gate(folder: Path) -> Path:
    return folder.parent / "gate"


def test_deferred_task_succeeds_and_its_log_includes_the_trigger(airflow_stack_factory, tmp_path):
    stack = airflow_stack_factory(write_dag(tmp_path / "dags"))
    gate(tmp_path / "dags").touch()
    stack.wait_for_dag(DAG_ID, timeout=PARSE)
    run_id = stack.trigger_dag(DAG_ID)

    assert stack.wait_for_run(DAG_ID, run_id, timeout=RUN) == "success"
    log = stack.task_log(DAG_ID, run_id, "short_nap")
    assert "napping for 2 seconds in the triggerer" in log  # worker, before deferral
    assert "trigger starting" in log  # the triggerer's part
    assert "Trigger fired event" in log
    assert "woke up with" in log  # worker again, after resume
    assert {ti["state"] for ti in stack.task_instances(DAG_ID, run_id)} == {"success"}

    stack.stop()
    assert not processes_with_home(stack.home), "stop() left Airflow processes behind"


def test_marking_a_deferred_task_failed_runs_the_trigger_on_kill(airflow_stack_factory, tmp_path):
    stack = airflow_stack_factory(write_dag(tmp_path / "dags"))  # the gate never opens
    stack.wait_for_dag(DAG_ID, timeout=PARSE)
    run_id = stack.trigger_dag(DAG_ID)
    stack.wait_for_task(DAG_ID, run_id, "long_nap", states=["deferred"], timeout=RUN)
    stack.wait_for_log(DAG_ID, run_id, "long_nap", TRIGGER_STARTED, timeout=RUN)

    stack.mark_task(DAG_ID, run_id, "long_nap", "failed")

    assert stack.wait_for_run(DAG_ID, run_id, timeout=RUN) == "failed"
    assert stack.task_instance(DAG_ID, run_id, "long_nap")["state"] == "failed"
    stack.wait_for_log(DAG_ID, run_id, "long_nap", "Trigger cancelled by user action, invoking on_kill", timeout=RUN)


@pytest.mark.postgres
def test_two_triggerers_on_postgres_take_over_a_killed_triggerers_trigger(airflow_stack_factory, tmp_path):
    stack = airflow_stack_factory(write_dag(tmp_path / "dags"), db="postgres", triggerers=2)
    stack.wait_for_dag(DAG_ID, timeout=PARSE)
    stack.kill_triggerer(0)  # from here on only triggerer 1 can claim triggers
    run_id = stack.trigger_dag(DAG_ID)
    stack.wait_for_task(DAG_ID, run_id, "long_nap", states=["deferred"], timeout=RUN)
    stack.wait_for_log(DAG_ID, run_id, "long_nap", TRIGGER_STARTED, timeout=RUN)

    stack.start_triggerer(0)
    stack.kill_triggerer(1)  # the trigger must move to the restarted triggerer 0

    def moved() -> bool | Pending:
        count = stack.task_log(DAG_ID, run_id, "long_nap").count(TRIGGER_STARTED)
        return count == 2 or Pending(f"{count} trigger start line(s)")

    stack.wait_until("the trigger to start on triggerer 0", moved, RUN)
    gate(tmp_path / "dags").touch()

    assert stack.wait_for_task(DAG_ID, run_id, "long_nap", timeout=RUN)["state"] == "success"
    log = stack.task_log(DAG_ID, run_id, "long_nap")
    trigger_files = set(re.findall(r"attempt=1\.log\.trigger\.(\d+)\.log", log))
    assert len(trigger_files) == 2, f"expected the trigger's log from two triggerer jobs:\n{log}"
    assert log.count(TRIGGER_STARTED) == 2
    assert stack.wait_for_run(DAG_ID, run_id, timeout=RUN) == "success"


def processes_with_home(home: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("AIRFLOW_HOME") == str(home):
                found.append(process)
        except psutil.Error:
            continue
    return found
