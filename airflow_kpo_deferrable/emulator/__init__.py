"""A Kubernetes API emulator with a simulated kubelet, for testing KubernetesPodOperator DAGs without a cluster.

``python -m airflow_kpo_deferrable.emulator --port 0 --kubeconfig PATH`` serves it; ``Emulator`` runs it in-process
(async context manager, or ``Emulator.in_thread()``); the pytest plugin offers the ``k8s_emulator`` fixture. It never
imports Airflow, so it starts fast and works for any Kubernetes client code.

Layers, imports one way: ``errors`` → the shared rules and formats (``kinds``, ``quantities``, ``rules``,
``nodeinfo``, ``clock``, ``scenario``, ``logfile``, ``selectors``, ``validation``, ``patching``, ``tables``) →
``store`` → ``kubelet`` (the node) → ``api`` (HTTP handlers over the store and the ``api.node.Node`` protocol) →
``server`` (the ``Emulator``). See docs/emulator-internals.md.
"""

from .errors import ApiError
from .scenario import ANNOTATION_PREFIX, scenario
from .server import Emulator

__all__ = ["ANNOTATION_PREFIX", "ApiError", "Emulator", "scenario"]
