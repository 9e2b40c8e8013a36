"""Server-side printing: ``meta.k8s.io/v1`` Tables, which is what ``kubectl get`` asks for and prints.

Why: kubectl 1.32 sends ``Accept: application/json;as=Table;g=meta.k8s.io;v=v1`` and prints the columns the server
returns (it has no client-side printer for pods any more). The pod ``STATUS`` column follows kubectl's ``printPod``:
the waiting/terminated reason of the last container that has one, ``Init:x/y`` while init containers run,
``Terminating`` once ``deletionTimestamp`` is set (``Unknown`` for a pod on a lost node).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

NAME_COLUMN = {"name": "Name", "type": "string", "format": "name", "priority": 0,
               "description": "Name must be unique within a namespace."}
AGE_COLUMN = {"name": "Age", "type": "string", "format": "", "priority": 0,
              "description": "CreationTimestamp is a timestamp representing the server time when this object was created."}
POD_COLUMNS = [
    NAME_COLUMN,
    {"name": "Ready", "type": "string", "format": "", "priority": 0, "description": "The aggregate readiness state of this pod for accepting traffic."},
    {"name": "Status", "type": "string", "format": "", "priority": 0, "description": "The aggregate status of the containers in this pod."},
    {"name": "Restarts", "type": "string", "format": "", "priority": 0, "description": "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."},
    AGE_COLUMN,
    {"name": "IP", "type": "string", "format": "", "priority": 1, "description": "The IP address assigned to this pod."},
    {"name": "Node", "type": "string", "format": "", "priority": 1, "description": "The node this pod is scheduled onto."},
]


def human_age(created: str | None) -> str:
    if not created:
        return "<unknown>"
    seconds = max(int((datetime.now(UTC) - datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds()), 0)
    minutes, hours = seconds // 60, seconds // 3600
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s"
    if hours < 3:
        return f"{minutes}m"
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def _init_status(pod: dict[str, Any]) -> str | None:
    statuses = pod.get("status", {}).get("initContainerStatuses") or []
    total = len(pod.get("spec", {}).get("initContainers") or [])
    for index, status in enumerate(statuses):
        state = status.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated and terminated.get("exitCode") == 0:
            continue
        if terminated:
            return "Init:" + (terminated.get("reason") or f"ExitCode:{terminated.get('exitCode')}")
        if waiting and waiting.get("reason") not in (None, "", "PodInitializing"):
            return "Init:" + waiting["reason"]
        return f"Init:{index}/{total}"
    return None


def pod_status_text(pod: dict[str, Any]) -> str:
    status = pod.get("status", {})
    reason = status.get("reason") or status.get("phase") or "Unknown"
    init = _init_status(pod)
    if init:
        reason = init
    else:
        has_running = False
        for container in reversed(status.get("containerStatuses") or []):
            state = container.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated:
                reason = f"ExitCode:{terminated.get('exitCode')}"
            elif state.get("running"):
                has_running = True
        if reason == "Completed" and has_running:
            reason = "Running"
    if pod.get("metadata", {}).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason


def _pod_cells(pod: dict[str, Any]) -> list[Any]:
    status = pod.get("status", {})
    containers = status.get("containerStatuses") or []
    total = len(pod.get("spec", {}).get("containers") or [])
    ready = sum(1 for c in containers if c.get("ready"))
    restarts = sum(c.get("restartCount", 0) for c in containers)
    return [
        pod["metadata"]["name"], f"{ready}/{total}", pod_status_text(pod), str(restarts),
        human_age(pod["metadata"].get("creationTimestamp")), status.get("podIP") or "<none>",
        pod.get("spec", {}).get("nodeName") or "<none>",
    ]


def _row_object(obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def table(kind: str, objects: list[dict[str, Any]], resource_version: str, include: str = "Metadata") -> dict[str, Any]:
    """A Table of ``objects``: pods with kubectl's pod columns, anything else with Name and Age."""
    columns = POD_COLUMNS if kind == "pods" else [NAME_COLUMN, AGE_COLUMN]
    rows = []
    for obj in objects:
        cells = _pod_cells(obj) if kind == "pods" else [
            obj["metadata"]["name"], human_age(obj["metadata"].get("creationTimestamp"))
        ]
        row: dict[str, Any] = {"cells": cells}
        row_object = _row_object(obj, include)
        if row_object is not None:
            row["object"] = row_object
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": columns, "rows": rows}
