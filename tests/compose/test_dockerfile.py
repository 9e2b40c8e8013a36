"""The demo's Dockerfile: linted by hadolint, and its pip step run here on what its COPY lines put in the image."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.support.compose import DOCKERFILE, REPO, venv_tool

AIRFLOW_VERSION = "3.3.2"  # the base image's, which sets AIRFLOW_VERSION in its environment
IMAGE_PACKAGE_DIR = "/opt/airflow-kpo-deferrable"  # where the COPY lines put the package and pip installs it from


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([venv_tool("hadolint"), "--no-color", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def instructions(keyword: str) -> list[list[str]]:
    lines = [line.split() for line in DOCKERFILE.read_text().splitlines() if line.startswith(f"{keyword} ")]
    assert lines, f"no {keyword} line in {DOCKERFILE}"
    return [line[1:] for line in lines]


def test_hadolint_passes_and_would_catch_an_unpinned_base(tmp_path: Path) -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr
    unpinned = tmp_path / "Dockerfile"
    unpinned.write_text(DOCKERFILE.read_text().replace(f"apache/airflow:{AIRFLOW_VERSION}", "apache/airflow"))
    rejected = hadolint(unpinned)
    assert rejected.returncode != 0 and "DL3006" in rejected.stdout


def test_the_build_context_keeps_what_the_dockerfile_copies() -> None:
    allowed = {line[1:] for line in (REPO / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    for args in instructions("COPY"):
        sources = [arg for arg in args[:-1] if not arg.startswith("--")]
        assert set(sources) <= allowed, (sources, allowed)
        assert all((REPO / source).exists() for source in sources)


def copy_context(destination: Path) -> Path:
    """The package directory as the image has it: the files the COPY lines copy, where Docker puts them."""
    for args in instructions("COPY"):
        *sources, target = [arg for arg in args if not arg.startswith("--")]
        placed = destination / Path(target).relative_to(IMAGE_PACKAGE_DIR)
        for source in (REPO / name for name in sources):
            if source.is_dir():  # Docker copies a directory's contents into the target
                shutil.copytree(source, placed, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
            else:
                file = placed / source.name if target.endswith("/") else placed
                file.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, file)
    return destination


@pytest.mark.slow
def test_the_pip_step_installs_our_wheel_next_to_airflow_3_3_2_in_a_clean_venv(tmp_path: Path) -> None:
    started = time.monotonic()
    context = copy_context(tmp_path / "context")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels),
                    str(context)], check=True, timeout=300)  # fmt: skip
    [wheel] = wheels.glob("airflow_kpo_deferrable-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "airflow_kpo_deferrable/emulator/server.py" in names
    assert "License-Expression: Apache-2.0" in metadata  # the SPDX form, no deprecation warning on install

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # The Dockerfile's own pip command, with the image's paths and variables replaced by this machine's.
    [run] = [" ".join(args) for args in instructions("RUN") if "pip" in args]
    command = run.replace('"apache-airflow==${AIRFLOW_VERSION}"', f"apache-airflow=={AIRFLOW_VERSION}")
    command = re.sub(rf"{IMAGE_PACKAGE_DIR}\b", str(wheel), command)
    # The image's build keeps no pip cache (a smaller layer); here the cache may serve the same files, which resolves
    # and installs the same set without downloading Airflow's ~150 packages again on every run. --no-compile skips
    # writing .pyc files for those packages (CPU the check below does not need: imports compile what they load).
    command = command.replace(" --no-cache-dir", "").replace("pip install", "pip install --no-compile", 1)
    assert command.startswith("pip install") and str(wheel) in command, command
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    installed = subprocess.run([str(python), "-m", *command.split()], capture_output=True, text=True, timeout=900,
                               env=env, check=False)  # fmt: skip
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]

    check = (
        "import airflow, importlib.metadata as m;"
        "from airflow_kpo_deferrable import KubernetesPodOperator;"
        f"assert airflow.__version__ == {AIRFLOW_VERSION!r}, airflow.__version__;"
        "[e] = [e for e in m.entry_points(group='apache_airflow_provider') if e.value.startswith('airflow_kpo')];"
        "print(e.load()()['package-name'], KubernetesPodOperator.__module__)"
    )
    home = tmp_path / "airflow-home"
    out = subprocess.run([str(python), "-c", check], capture_output=True, text=True, timeout=300, check=False,
                         env={**env, "AIRFLOW_HOME": str(home)})  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["airflow-kpo-deferrable", "airflow_kpo_deferrable.operators.pod"]
    print(f"pip step check took {time.monotonic() - started:.0f}s")
