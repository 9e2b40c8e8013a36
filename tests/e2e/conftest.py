"""One emulator (process runtime) and one real Airflow stack shared by a module's end-to-end operator tests.

Starting Airflow costs ~20 s, so each test module starts it once; every test uses its own DAG, so runs do not interfere.
The emulator runs in this process's background thread, which lets tests read its request counters and pods directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.testing.airflow_stack import AirflowStack

REPO_DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    directory = tmp_path_factory.mktemp("emulator")
    with Emulator.in_thread(runtime="process", kubeconfig_path=directory / "kubeconfig", workdir=directory / "node") as emu:
        yield emu


@pytest.fixture(scope="module")
def kube(emulator: Emulator) -> Iterator[CoreV1Api]:
    client = kubernetes.config.new_client_from_config(config_file=str(emulator.kubeconfig_path))
    yield CoreV1Api(client)
    client.close()


def start_stack(tmp_path_factory: pytest.TempPathFactory, emulator: Emulator, dag_files: dict[str, str],
                **kwargs: Any) -> AirflowStack:
    """A started stack over a DAGs folder holding ``dag_files`` (name → source), pointed at the emulator."""
    folder = tmp_path_factory.mktemp("dags")
    for name, source in dag_files.items():
        (folder / name).write_text(source)
    home = tmp_path_factory.mktemp("airflow-home")
    return AirflowStack(folder, extra_env={"KUBECONFIG": str(emulator.kubeconfig_path)}, home=home, **kwargs).start()


def copy_repo_dag(name: str) -> str:
    return (REPO_DAGS / name).read_text()


def pods_of(kube: CoreV1Api, dag_id: str) -> list[Any]:
    return kube.list_namespaced_pod("default", label_selector=f"dag_id={dag_id}").items

