"""Emulator helpers for tests: an in-thread emulator and client, kubectl, polling a pod until a check accepts it, host pids."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import psutil
import pytest
from kubernetes.client import CoreV1Api, V1Pod

from airflow_kpo_deferrable.emulator import Emulator

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def kubectl(emulator: Emulator, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run kubectl against ``emulator`` (its kubeconfig), with ``stdin`` as input; 30 s at most."""
    env = {**os.environ, "KUBECONFIG": str(emulator.kubeconfig_path)}
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env, timeout=30, input=stdin)


def wait_for(
    api: CoreV1Api, name: str, check: Callable[[V1Pod], bool], timeout: float = 10, namespace: str = "default"
) -> V1Pod:
    """Poll the pod until ``check`` accepts it; AssertionError with its last status after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        current = api.read_namespaced_pod(name, namespace)
        if check(current):
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"pod {name} never got there; last status: {current.status}")
        time.sleep(0.03)


def host_pids(marker: str) -> list[int]:
    """Host processes whose command line contains ``marker`` (a unique word a test put in a command)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if marker in " ".join(process.info["cmdline"] or []) and process.pid != os.getpid():
            found.append(process.pid)
    return found


def http_json(
    emulator: Emulator, path: str, data: bytes | None = None, content_type: str = "application/json"
) -> tuple[int, Any]:
    """GET (no data) or POST ``data`` to ``path`` on the emulator; the status and the decoded JSON answer."""
    request = urllib.request.Request(emulator.url + path, data=data, method="GET" if data is None else "POST",
                                     headers={"Content-Type": content_type, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@contextlib.contextmanager
def threaded_emulator(tmp_path: Path, runtime: str) -> Iterator[Emulator]:
    """An emulator serving from a background thread, its kubeconfig and node directory under ``tmp_path``."""
    with Emulator.in_thread(runtime=runtime, kubeconfig_path=tmp_path / "kubeconfig", workdir=tmp_path / "node") as emu:
        yield emu


@contextlib.contextmanager
def sync_client(emulator: Emulator) -> Iterator[CoreV1Api]:
    """The official client's ``CoreV1Api`` on the emulator's kubeconfig, closed afterwards."""
    client = kubernetes.config.new_client_from_config(config_file=str(emulator.kubeconfig_path))
    try:
        yield CoreV1Api(client)
    finally:
        client.close()
