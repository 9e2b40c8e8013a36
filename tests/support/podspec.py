"""Helpers for the podspec tests: a task try's identity, arguments the way the operator passes them, small readers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from airflow_kpo_deferrable.podspec import PodArguments, PodIdentity
from airflow_kpo_deferrable.podspec.plan import PodContext

# Kubernetes' own rules, written out independently of the modules under test.
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

IDENTITY = PodIdentity(
    dag_id="etl", task_id="load", run_id="scheduled__2025-03-01T00:00:00+00:00", map_index=-1, try_number=2
)


def request(**arguments: Any) -> PodArguments:
    """Unset arguments keep PodArguments' defaults (the operator's)."""
    return PodArguments(**{"base_container_name": "base"} | arguments)


def at(task_id: str) -> PodContext:
    """Build for task ``task_id`` (the pod's name when no argument or template names it), with no random suffix."""
    return PodContext(task_id=task_id, identity=IDENTITY, random_name_suffix=False)


def base_container(pod: dict[str, Any], name: str = "base") -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == name)


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)
