"""Fixtures for the emulator tests: an in-thread emulator (process runtime) and a sync client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator.in_thread(
        runtime="process", kubeconfig_path=tmp_path / "kubeconfig", workdir=tmp_path / "node"
    ) as emu:
        yield emu


@pytest.fixture
def api(emulator: Emulator) -> Iterator[CoreV1Api]:
    client = kubernetes.config.new_client_from_config(config_file=str(emulator.kubeconfig_path))
    yield CoreV1Api(client)
    client.close()
