"""`bash scripts/demo` end to end: the emulator, a real Airflow and the repository's example DAG, as a user runs it.

The demo bounds each of its own waits and says which one ran out; the outer bound here only has to be longer than
their sum, so that on a slow machine the failure is the demo's own message, not a bare subprocess timeout.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from airflow_kpo_deferrable.testing import demo
from airflow_kpo_deferrable.testing.stack import COMPONENTS_STARTUP_TIMEOUT

RUN_TIMEOUT = 240
# The demo's own bounds, one after the other: emulator ready, Airflow healthy, DAG parsed, run started, run finished.
DEMO_BOUNDS = sum((
    demo.EMULATOR_READY_TIMEOUT, COMPONENTS_STARTUP_TIMEOUT, demo.DAG_PARSE_TIMEOUT, demo.RUN_START_TIMEOUT, RUN_TIMEOUT
))
OUTER_TIMEOUT = DEMO_BOUNDS + 60

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(OUTER_TIMEOUT + 30)]


def test_demo_runs_the_example_dag_to_success():
    command = [sys.executable, "-m", "airflow_kpo_deferrable.testing.demo", "--timeout", str(RUN_TIMEOUT)]
    try:
        result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=OUTER_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the demo outlived its own bounds ({DEMO_BOUNDS:.0f}s):\n{_text(exc.stderr)[-4000:]}")
    assert result.returncode == 0, f"demo failed:\n{result.stderr[-4000:]}\n{result.stdout[-4000:]}"
    assert "finished: success" in result.stdout
    assert "Hello from KubernetesPodOperator" in result.stdout  # the pod's own output, copied into the task log


def _text(output: str | bytes | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""
