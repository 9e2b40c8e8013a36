"""Real Airflow stacks for tests: a factory fixture whose stacks are always stopped, and the PostgreSQL skip rule."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_kpo_deferrable.testing.airflow_stack import DEFAULT_POSTGRES_URL, AirflowStack

StackFactory = Callable[..., AirflowStack]


def postgres_reachable() -> bool:
    """Whether something accepts TCP connections at ``$AIRFLOW_KPO_POSTGRES_URL`` (default 127.0.0.1:5432)."""
    url = urlsplit(os.environ.get("AIRFLOW_KPO_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    try:
        socket.create_connection((url.hostname or "127.0.0.1", url.port or 5432), timeout=2).close()
    except OSError:
        return False
    return True


def skip_postgres_tests_when_unreachable(items: list[pytest.Item]) -> None:
    """Mark ``postgres`` tests skipped, saying why, when no PostgreSQL server listens (``.ci/run`` starts one)."""
    if any(item.get_closest_marker("postgres") for item in items) and not postgres_reachable():
        skip = pytest.mark.skip(
            reason="PostgreSQL is not reachable on 127.0.0.1:5432 (set AIRFLOW_KPO_POSTGRES_URL or run .ci/run)"
        )
        for item in items:
            if item.get_closest_marker("postgres"):
                item.add_marker(skip)


@pytest.fixture
def airflow_stack_factory(tmp_path: Path) -> Iterator[StackFactory]:
    """``factory(dags_folder, **AirflowStack kwargs)`` → a started stack; its AIRFLOW_HOME is under ``tmp_path``, so
    component output and task logs of a failed test stay on disk for reading (pytest keeps the last three runs)."""
    stacks: list[AirflowStack] = []

    def factory(dags_folder: Path, **kwargs: Any) -> AirflowStack:
        kwargs.setdefault("home", tmp_path / f"airflow-home-{len(stacks)}")
        stack = AirflowStack(dags_folder, **kwargs)
        stacks.append(stack)
        return stack.start()

    yield factory
    for stack in reversed(stacks):
        stack.stop()
