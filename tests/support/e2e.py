"""Helpers for the end-to-end tests: the shared emulator and stack, pods that wait for a gate, log-record timing.

Pods under the emulator's process runtime are real local processes, so a pod can wait for a file the test creates
(``Gates``). That lets a pod last exactly as long as the test needs — "until every task has deferred", "until the
triggerer is back" — instead of a number of seconds guessed on an idle machine: on a loaded one every Airflow step
(a worker start parses the DAG file: 5–13 s on a busy 2-core machine) takes longer and a guessed pod ends too early.
A gate that is never opened still ends its pod, with exit code 1, after ``GATE_BOUND`` seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.testing.airflow_stack import AirflowStack
from tests.support.trigger_audit import audited_rows, leaks, secrets_of, start_audit

REPO_DAGS = Path(__file__).resolve().parents[2] / "dags"
GATE_BOUND = 600


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One in-thread emulator (process runtime) per module: tests read its counters and pods directly."""
    directory = tmp_path_factory.mktemp("emulator")
    node = directory / "node"
    with Emulator.in_thread(runtime="process", kubeconfig_path=directory / "kubeconfig", workdir=node) as emu:
        yield emu


@pytest.fixture(scope="module")
def kube(emulator: Emulator) -> Iterator[CoreV1Api]:
    client = kubernetes.config.new_client_from_config(config_file=str(emulator.kubeconfig_path))
    yield CoreV1Api(client)
    client.close()


@dataclass(frozen=True)
class Gates:
    """Named files in ``folder``; ``pod_code(name)`` is Python for ``python -c`` that returns once the gate opens."""

    folder: Path

    def path(self, name: str) -> Path:
        return self.folder / name

    def open(self, name: str) -> None:
        self.path(name).touch()

    def pod_code(self, name: str, then: str = "") -> str:
        gate = str(self.path(name))
        return (
            "import os, sys, time\n"
            f"end = time.monotonic() + {GATE_BOUND}\n"
            f"while not os.path.exists({gate!r}) and time.monotonic() < end:\n"
            "    time.sleep(0.2)\n"
            f"if not os.path.exists({gate!r}):\n"
            f"    sys.exit('gate {name} never opened')\n"
            f"{then}\n"
        )


@pytest.fixture(scope="module")
def gates(tmp_path_factory: pytest.TempPathFactory) -> Gates:
    return Gates(tmp_path_factory.mktemp("gates"))


def start_stack(tmp_path_factory: pytest.TempPathFactory, emulator: Emulator, dag_files: dict[str, str], *,
                env: dict[str, str] | None = None, plugin_files: dict[str, str] | None = None,
                **kwargs: Any) -> AirflowStack:
    """A started stack over a DAGs folder holding ``dag_files`` (name → source), pointed at the emulator.

    ``plugin_files`` (name → source) go to the stack's plugins folder (``$AIRFLOW_HOME/plugins``, Airflow's default).
    On PostgreSQL every trigger row it writes is recorded (``trigger_audit``); stop it with ``stop_stack``.
    """
    folder = tmp_path_factory.mktemp("dags")
    for name, source in dag_files.items():
        (folder / name).write_text(source)
    home = tmp_path_factory.mktemp("airflow-home")
    if plugin_files:
        (home / "plugins").mkdir()
        for name, source in plugin_files.items():
            (home / "plugins" / name).write_text(source)
    extra_env = {"KUBECONFIG": str(emulator.kubeconfig_path), **(env or {})}
    stack = AirflowStack(folder, extra_env=extra_env, home=home, **kwargs).start()
    if kwargs.get("db") == "postgres":
        start_audit(stack.env)
    return stack


def stop_stack(stack: AirflowStack, emulator: Emulator) -> None:
    """Stop the stack; first scan every trigger row it wrote for credentials (fails the module's teardown if any)."""
    problems: list[str] = []
    rows: list[tuple[str, str]] = []
    if "postgresql" in stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]:
        rows = audited_rows(stack.env)
        problems = leaks(rows, secrets_of(emulator.kubeconfig_path, stack.env))
    stack.stop()
    assert not problems, f"{len(problems)} trigger rows of {len(rows)} hold secrets: {problems[:10]}"


def copy_repo_dag(name: str) -> str:
    return (REPO_DAGS / name).read_text()


def pods_of(kube: CoreV1Api, dag_id: str) -> list[Any]:
    return kube.list_namespaced_pod("default", label_selector=f"dag_id={dag_id}").items


def phases(kube: CoreV1Api, dag_id: str) -> list[str]:
    return sorted(pod.status.phase for pod in pods_of(kube, dag_id))


def records_with(records: Iterable[Any], text: str) -> list[dict[str, Any]]:
    """The structured log records whose ``event`` holds ``text``, oldest first."""
    found = [r for r in records if isinstance(r, dict) and text in str(r.get("event", "")) and r.get("timestamp")]
    return sorted(found, key=record_time)


def record_time(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(record["timestamp"]).replace("Z", "+00:00"))
