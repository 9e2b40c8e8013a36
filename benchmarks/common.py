"""Shared benchmark plumbing: the emulator in its own process, its side channel, machine facts, percentiles.

The emulator runs in a separate process (``benchmarks.emulator_host``) so that the measured process holds only what
is measured (triggers, or a log copy). Its ``/emulator/...`` side channel is neither counted nor faulted, so reading
and resetting the request counters does not disturb them. On loopback the side channel is read without verifying the
emulator's self-signed certificate: nothing measured goes through it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = ("apache-airflow-core", "apache-airflow-task-sdk", "apache-airflow-providers-cncf-kubernetes",
            "kubernetes", "kubernetes_asyncio", "aiohttp", "urllib3", "airflow-kpo-deferrable")


@dataclass
class EmulatorHost:
    """A running ``benchmarks.emulator_host`` process: its URL, kubeconfig, and (after ``stop``) end stamps."""

    process: subprocess.Popen[str]
    url: str
    kubeconfig: Path
    stamps_path: Path
    labels_path: Path
    stamps: dict[str, float] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # the stamped pods' labels

    def _side_channel(self, method: str, path: str) -> Any:
        context = ssl._create_unverified_context() if self.url.startswith("https") else None
        request = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def counters(self) -> dict[str, int]:
        return self._side_channel("GET", "/emulator/counters")

    def reset_counters(self) -> None:
        self._side_channel("POST", "/emulator/counters/reset")

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            self.stamps = json.loads(self.stamps_path.read_text())
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            self.labels = json.loads(self.labels_path.read_text())


@contextlib.contextmanager
def emulator_host(workdir: Path, *, tls: bool, runtime: str = "scripted") -> Iterator[EmulatorHost]:
    """Start ``python -m benchmarks.emulator_host`` and wait for its ``ready`` line."""
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig, stamps, labels = workdir / "kubeconfig", workdir / "stamps.json", workdir / "labels.json"
    command = [sys.executable, "-m", "benchmarks.emulator_host", "--kubeconfig", str(kubeconfig),
               "--stamps", str(stamps), "--labels", str(labels), "--workdir", str(workdir / "node"), "--runtime", runtime] + (["--tls"] if tls else [])
    stderr = (workdir / "emulator.log").open("w")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=REPO)
    host: EmulatorHost | None = None
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("ready "):
            raise RuntimeError(f"emulator did not start: {line!r}; see {workdir / 'emulator.log'}")
        threading.Thread(target=process.stdout.read, daemon=True).start()  # keep its pipe drained
        host = EmulatorHost(process, line.split()[1], kubeconfig, stamps, labels)
        yield host
    finally:
        if host is not None:
            host.stop()
        elif process.poll() is None:
            process.kill()
        stderr.close()


def connection_env(kubeconfig: Path) -> dict[str, str]:
    """``kubernetes_default`` as a provider user configures it: a ``kube_config_path`` extra."""
    extra = {"kube_config_path": str(kubeconfig)}
    return {"AIRFLOW_CONN_KUBERNETES_DEFAULT": json.dumps({"conn_type": "kubernetes", "extra": extra})}


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_revision() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+uncommitted" if dirty else "")


def machine() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        with contextlib.suppress(Exception):
            versions[name] = version(name)
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "git": git_revision(),
        "versions": versions,
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def command_line(prog: str) -> str:
    return f"python -m {prog} " + " ".join(sys.argv[1:])


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")


def elapsed_since(started: float) -> float:
    return time.monotonic() - started
