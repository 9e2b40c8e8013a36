"""The demo's UI login: airflow-init's password line run here, then Airflow's SimpleAuthManager logging in with it.

The compose file gives SimpleAuthManager (Airflow 3's default) one admin user and a passwords file that airflow-init
writes; the api-server reads it at start and on every login. Here airflow-init's own command line writes the file,
and a fresh Python process with the api-server's environment runs the auth manager's start-up and login service.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.compose import parsed_config

LOGIN = """
from airflow.api_fastapi.app import create_auth_manager
from airflow.api_fastapi.auth.managers.simple.datamodels.login import LoginBody
from airflow.api_fastapi.auth.managers.simple.services.login import SimpleAuthManagerLogin
create_auth_manager().init()  # what the api-server does at start: adds a generated password for unknown users
for username, password in [("airflow", "airflow"), ("airflow", "wrong"), ("admin", "admin"), ("ann", "s3cr\\"et'")]:
    try:
        SimpleAuthManagerLogin.create_token(LoginBody(username=username, password=password))
        print("accepted", username)
    except Exception as error:
        print("refused", username, getattr(error, "status_code", error))
"""


def login_attempts(tmp_path: Path, **variables: str) -> tuple[list[str], str]:
    services = parsed_config(**variables)["services"]
    passwords = tmp_path / "passwords.json"
    init: dict[str, Any] = services["airflow-init"]
    [line] = [line for line in init["command"][1].splitlines() if line.startswith("python -c")]
    env = {**init["environment"], "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords)}
    env["PATH"] = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # "python" is the image's; here the venv's
    # The parsed model keeps Compose's "$$" escape; the container's shell gets a single "$".
    subprocess.run(["bash", "-c", line.replace("$$", "$")], env=env, check=True, timeout=60, cwd=tmp_path)

    api = {**services["airflow-apiserver"]["environment"], "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords)}
    api |= {"AIRFLOW_HOME": str(tmp_path / "home"), "PATH": os.environ["PATH"]}
    result = subprocess.run([sys.executable, "-c", LOGIN], env=api, capture_output=True, text=True, timeout=120,
                            check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    attempts = [line for line in result.stdout.splitlines() if line.startswith(("accepted ", "refused "))]
    return attempts, result.stdout + result.stderr


def test_the_documented_login_works_and_nothing_else_does(tmp_path: Path) -> None:
    attempts, logs = login_attempts(tmp_path)
    assert attempts == ["accepted airflow", "refused airflow 401", "refused admin 401", "refused ann 401"]
    assert "Password for user" not in logs  # the file was used, no password was generated
    assert "InsecureKeyLengthWarning" not in logs  # the JWT secret is long enough for HS512
    assert json.loads((tmp_path / "passwords.json").read_text()) == {"airflow": "airflow"}


@pytest.mark.parametrize("password", ["s3cr\"et'"])
def test_the_login_variables_change_user_and_password(tmp_path: Path, password: str) -> None:
    attempts, _ = login_attempts(tmp_path, _AIRFLOW_WWW_USER_USERNAME="ann", _AIRFLOW_WWW_USER_PASSWORD=password)
    assert attempts == ["refused airflow 401", "refused airflow 401", "refused admin 401", "accepted ann"]
