"""Helpers for the end-to-end tests: a started Airflow stack over given DAG files, the repository's DAGs, our pods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.testing.airflow_stack import AirflowStack

REPO_DAGS = Path(__file__).resolve().parents[2] / "dags"


def start_stack(
    tmp_path_factory: pytest.TempPathFactory, emulator: Emulator, dag_files: dict[str, str], **kwargs: Any
) -> AirflowStack:
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
