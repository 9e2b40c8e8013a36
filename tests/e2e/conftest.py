"""One emulator (process runtime) and one real Airflow stack shared by a module's end-to-end operator tests.

Starting Airflow costs ~20 s, so each test module starts it once; every test uses its own DAG, so runs do not interfere.
The emulator runs in this process's background thread, which lets tests read its request counters and pods directly.
"""

from __future__ import annotations

from collections.abc import Iterator

import kubernetes
import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator


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
