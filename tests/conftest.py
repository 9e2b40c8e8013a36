"""Fixtures shared by every test folder: real Airflow stacks that are always stopped, even when a test fails."""

from __future__ import annotations

import pytest

from tests.support.airflow import airflow_stack_factory, skip_postgres_tests_when_unreachable  # noqa: F401  (fixture)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_postgres_tests_when_unreachable(items)
