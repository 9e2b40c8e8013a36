"""`bash scripts/demo` end to end: the emulator, a real Airflow and the repository's example DAG, as a user runs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(240)]


def test_demo_runs_the_example_dag_to_success():
    result = subprocess.run(
        [sys.executable, "-m", "airflow_kpo_deferrable.demo", "--timeout", "120"],
        check=False,
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert result.returncode == 0, f"demo failed:\n{result.stderr[-4000:]}\n{result.stdout[-4000:]}"
    assert "finished: success" in result.stdout
    assert "Hello from KubernetesPodOperator" in result.stdout  # the pod's own output, copied into the task log
