"""The parts of the harness that need no running Airflow: database URLs and errors, log rendering, API paths."""

from __future__ import annotations

import re

import pytest

from airflow_kpo_deferrable.testing.databases import postgres_admin, sqlalchemy_url
from airflow_kpo_deferrable.testing.errors import AirflowStackError
from airflow_kpo_deferrable.testing.processes import free_port
from airflow_kpo_deferrable.testing.rest import render_log, ti_path


def test_a_stack_database_url_keeps_the_server_and_names_the_database():
    assert sqlalchemy_url("postgresql://postgres@127.0.0.1:5432/postgres", "airflow_kpo_1") == (
        "postgresql+psycopg2://postgres@127.0.0.1:5432/airflow_kpo_1"
    )
    with pytest.raises(ValueError, match="postgres_url='127.0.0.1:5432' is not a URL"):
        sqlalchemy_url("127.0.0.1:5432", "x")


def test_an_unreachable_postgres_says_where_and_how_to_start_it():
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"  # nothing listens there
    expected = rf"(?s)cannot connect to PostgreSQL at .{re.escape(url)}..*pg_ctlcluster"
    with pytest.raises(AirflowStackError, match=expected):
        postgres_admin(url)


def test_log_records_render_as_lines_without_losing_fields():
    records = [
        {"timestamp": "2026-01-01T00:00:00Z", "level": "info", "logger": "airflow.task", "event": "Waiting for pod",
         "dag_id": "d", "task_id": "t", "lineno": 3},
        {"event": "failed", "error_detail": [{"exc_type": "ValueError"}]},
        "a plain line",
    ]
    assert render_log(records).splitlines() == [
        "2026-01-01T00:00:00Z [info] airflow.task: Waiting for pod",
        "failed error_detail=[{'exc_type': 'ValueError'}]",
        "a plain line",
    ]


def test_a_mapped_task_instance_path_ends_in_its_index():
    assert ti_path("d", "r", "t") == "/api/v2/dags/d/dagRuns/r/taskInstances/t"
    assert ti_path("d", "r", "t", 3) == "/api/v2/dags/d/dagRuns/r/taskInstances/t/3"
