"""Fixtures shared by every test folder: real Airflow stacks that are always stopped, even when a test fails."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_kpo_deferrable.testing.airflow_stack import AirflowStack

StackFactory = Callable[..., AirflowStack]


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
