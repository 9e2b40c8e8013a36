"""Fixtures for tests that drive the emulator with kubernetes_asyncio on the test's own loop (scripted runtime).

Bind them in a test module (``emulator = async_fixtures.emulator``, ``api = async_fixtures.api``) to replace
tests/emulator/conftest.py's in-thread, process-runtime ``emulator`` and sync ``api`` there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes_asyncio.client import CoreV1Api
from kubernetes_asyncio.config import new_client_from_config

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.hooks.kubernetes import close_async_clients


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[Emulator]:
    """The emulator on the test's loop; afterwards the package's shared async clients (if the test made any through
    ``hooks.kubernetes``) are closed, since they belong to this loop."""
    async with Emulator(runtime="scripted", kubeconfig_path=tmp_path / "kubeconfig", workdir=tmp_path / "node") as emu:
        yield emu
        await close_async_clients()


@pytest.fixture
async def api(emulator: Emulator) -> AsyncIterator[CoreV1Api]:
    client = await new_client_from_config(config_file=str(emulator.kubeconfig_path))
    yield CoreV1Api(client)
    await client.close()
