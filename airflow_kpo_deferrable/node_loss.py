"""Deleting a pod whose node is gone: only a force delete (grace period 0) removes it.

Why: a normal delete sets ``deletionTimestamp`` and waits for the kubelet to confirm the containers stopped. When
the node is lost (the node controller has set the pod's phase to ``Unknown``, reason ``NodeLost``) no kubelet will
ever confirm, and the pod stays in the API with its deletion pending forever (``kubectl`` shows ``Unknown``). Setting
``gracePeriodSeconds: 0`` removes the object at once; Kubernetes documents this as the way to delete pods on
unreachable nodes (the containers, if the node ever comes back, are killed by its kubelet then).

Pure: the worker (``kubernetes``) and the triggerer (``kubernetes_asyncio``) both ask here which grace period to
send, and log ``FORCE_DELETE_MESSAGE`` when it is a force delete.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_kpo_deferrable.outcome import NODE_LOST

FORCE_DELETE_MESSAGE = "Force-deleting pod %s in %s (grace period 0): its node is lost (%s), no kubelet will confirm"


def node_lost(phase: str | None, reason: str | None) -> bool:
    """Whether the pod's node stopped reporting: phase ``Unknown`` or reason ``NodeLost``."""
    return phase == "Unknown" or reason == NODE_LOST


def node_lost_status(status: Mapping[str, Any] | None) -> bool:
    """``node_lost`` for a pod status given as JSON (the watcher's slim pods)."""
    status = status or {}
    return node_lost(status.get("phase"), status.get("reason"))


def node_lost_model(pod: Any) -> bool:
    """``node_lost`` for a ``kubernetes`` client ``V1Pod`` (None: no pod, nothing lost)."""
    if pod is None or pod.status is None:
        return False
    return node_lost(pod.status.phase, pod.status.reason)


def delete_grace_period(lost: bool, configured: int | None) -> int | None:
    """The grace period to delete with: 0 (force) when the node is lost, else the configured one (None: the pod's)."""
    return 0 if lost else configured
