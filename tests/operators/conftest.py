from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_kpo_deferrable.emulator import Emulator


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    directory: Path = tmp_path_factory.mktemp("k8s-emulator")
    with Emulator.in_thread(kubeconfig_path=directory / "kubeconfig", workdir=directory / "node") as running:
        yield running
