"""Airflow provider registration.

Airflow discovers providers through the ``apache_airflow_provider`` entry point and validates the returned dict: the
``package-name`` must equal the distribution name. Registering the trigger class path lets the triggerer import it, and
the connection type lets the UI show a "Kubernetes (deferrable KPO)" form. We reuse the provider's connection type name
``kubernetes`` only if the official provider is absent, so both can be installed side by side.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

CONNECTION_TYPE = {"connection-type": "kubernetes", "hook-class-name": "airflow_kpo_deferrable.hooks.kubernetes.KubernetesHook"}


def _official_provider_installed() -> bool:
    try:
        return find_spec("airflow.providers.cncf.kubernetes") is not None
    except ModuleNotFoundError:
        return False


def get_provider_info() -> dict[str, Any]:
    info = {
        "package-name": "airflow-kpo-deferrable",
        "name": "Deferrable KubernetesPodOperator",
        "description": "A deferrable KubernetesPodOperator: one shared watch per namespace, typed failures, streamed logs.",
        "versions": ["0.1.0"],
        "triggers": [
            {
                "integration-name": "Kubernetes",
                "python-modules": ["airflow_kpo_deferrable.triggers.pod"],
            }
        ],
    }
    if not _official_provider_installed():  # it registers "kubernetes" itself, with the same connection fields
        info["connection-types"] = [CONNECTION_TYPE]
    return info
