"""A deferrable KubernetesPodOperator for Apache Airflow 3.

``KubernetesPodOperator`` and ``PodTrigger`` are imported lazily so that the emulator (``python -m
airflow_kpo_deferrable.emulator``) starts without importing Airflow.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "KubernetesPodOperator": "airflow_kpo_deferrable.operators.pod",
    "PodFailure": "airflow_kpo_deferrable.operators.pod",
    "PodTrigger": "airflow_kpo_deferrable.triggers.pod",
    "Secret": "airflow_kpo_deferrable.podspec.secrets",
}

__all__ = ["KubernetesPodOperator", "PodFailure", "PodTrigger", "Secret", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
