"""Fixtures for the emulator tests: an in-thread emulator (process runtime) and a sync client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from tests.support.emulator import sync_client, threaded_emulator


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    with threaded_emulator(tmp_path, "process") as emu:
        yield emu


@pytest.fixture
def api(emulator: Emulator) -> Iterator[CoreV1Api]:
    with sync_client(emulator) as client:
        yield client
