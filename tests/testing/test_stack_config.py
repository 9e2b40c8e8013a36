"""What ``AirflowStack`` decides before starting anything: argument checks and the components' environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_kpo_deferrable.testing.airflow_stack import STACK_MARKER, AirflowStack


def test_bad_arguments_name_the_argument_and_the_fix(tmp_path: Path):
    with pytest.raises(ValueError, match="is not a directory; pass the folder of DAG files"):
        AirflowStack(tmp_path / "missing")
    with pytest.raises(ValueError, match="triggerers=2 needs row locks that SQLite lacks; pass db='postgres'"):
        AirflowStack(tmp_path, triggerers=2, home=tmp_path / "home")
    with pytest.raises(ValueError, match="db='mysql' is not supported"):
        AirflowStack(tmp_path, db="mysql", home=tmp_path / "home")


def test_the_environment_drops_the_callers_airflow_settings_and_lets_extra_env_win(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.setenv("AIRFLOW__CORE__HOSTNAME_CALLABLE", "mine")
    stack = AirflowStack(tmp_path, home=tmp_path / "home", extra_env={"AIRFLOW__CORE__PARALLELISM": "3", "K": "v"})
    env = stack.env
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"  # ours, not the caller's
    assert "AIRFLOW__CORE__HOSTNAME_CALLABLE" not in env
    assert env["AIRFLOW__CORE__PARALLELISM"] == "3" and env["K"] == "v"  # extra_env last
    assert env["AIRFLOW_HOME"] == str(tmp_path / "home") and env[STACK_MARKER]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path / 'home'}/airflow.db"
    other = AirflowStack(tmp_path, home=tmp_path / "other", db="postgres")
    assert other.env["AIRFLOW__API__PORT"] != env["AIRFLOW__API__PORT"]
    assert other.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
