"""Airflow provider registration.

Airflow discovers providers through the ``apache_airflow_provider`` entry point and validates the returned dict: the
``package-name`` must equal the distribution name. Registering the trigger class path lets the triggerer import it, and
the connection type lets the UI show a "Kubernetes (deferrable KPO)" form. We reuse the provider's connection type name
``kubernetes`` only if the official provider is absent, so both can be installed side by side.
"""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    return {
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
