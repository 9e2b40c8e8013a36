"""Operator arguments → the pod to create. One concern a module, imports one way (each imports only those above it):

``problems`` (the error type) → ``names`` (pod name, identity labels) → ``quantities`` → ``convert`` (client models
and dicts → camelCase data) → ``templates`` → ``merge`` (the layering rules) → ``arguments`` (validation of each
argument, no I/O) → ``checks`` (rules on the merged pod) → ``plan`` (load the template, merge once, check once).
``secrets`` (Secrets on the base container) and ``xcom`` (the XCom sidecar's pod shape) sit beside ``merge``.
"""

from airflow_kpo_deferrable.podspec.arguments import PodArguments
from airflow_kpo_deferrable.podspec.convert import PYDANTIC_MODELS
from airflow_kpo_deferrable.podspec.names import (
    MANAGED_BY_LABEL,
    MANAGED_BY_SELECTOR,
    MANAGED_BY_VALUE,
    PodIdentity,
    identity_labels,
    pod_name,
    safe_label_value,
)
from airflow_kpo_deferrable.podspec.plan import build_pod, pod_dict
from airflow_kpo_deferrable.podspec.problems import PodSpecError, Problem
from airflow_kpo_deferrable.podspec.secrets import Secret

__all__ = [
    "MANAGED_BY_LABEL",
    "MANAGED_BY_SELECTOR",
    "MANAGED_BY_VALUE",
    "PYDANTIC_MODELS",
    "PodArguments",
    "PodIdentity",
    "PodSpecError",
    "Problem",
    "Secret",
    "build_pod",
    "identity_labels",
    "pod_dict",
    "pod_name",
    "safe_label_value",
]
