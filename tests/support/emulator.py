"""Emulator helpers for tests: kubectl availability, polling a pod until a check accepts it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable

import pytest
from kubernetes.client import CoreV1Api, V1Pod

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


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
