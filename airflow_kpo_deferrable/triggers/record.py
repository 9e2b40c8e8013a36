"""The decided-outcome record as a Kubernetes Event next to the pod: written and read without Airflow's supervisor.

Why: the record (``triggers/state.py``) must be durable before the trigger deletes the pod. Kept as an XCom, each
write is a ``SetXCom`` that the triggerer's supervisor answers with a *synchronous* API-server call in the one loop
that also forwards every trigger's events: when 100 pods end within a few seconds (pods started together, e.g. by
``start_from_trigger``), those writes queue behind each other and each task's end waits for all before it —
measured, 100 × 20 s pods: pod end → task end p50 5.0 s / p99 7.7 s with the XCom record, 2.7 / 3.1 s without.
An Event is one async request to the Kubernetes API from the trigger itself, concurrent with every other.

Facts it handles:

* One Event per pod and try, named ``<pod>.<try suffix>`` (``names.try_suffix``): writing it twice answers 409
  (already recorded, fine), and a restarted trigger reads it with one GET by name — also one that has no uid to go
  on (``PodStartTrigger``, whose pod is gone). A record of another pod (an earlier pod of the same name) is told
  apart by the uid inside when the reader knows it.
* The record is JSON in an annotation of the Event (``airflow-kpo-deferrable/decided``), not in ``message``, which
  the API server may cut; the message is a short line for humans (``kubectl describe pod``). Its ``reason``,
  ``AirflowOutcomeDecided``, keeps it out of the failure's event dump (``events.format_events`` skips it).
* Events outlive their pod until the API server's event TTL (1 h by default) — long after the window that matters
  (a triggerer restart between our delete and Airflow applying the task's end).
* RBAC ``events`` ``create``/``get`` are needed; where they are missing ``StateStore`` falls back to the XCom.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from airflow_kpo_deferrable.podspec.names import ANNOTATION_PREFIX, PodIdentity, try_suffix

RECORD_REASON = "AirflowOutcomeDecided"
RECORD_ANNOTATION = f"{ANNOTATION_PREFIX}decided"
SOURCE = "airflow-kpo-deferrable"


def record_name(pod_name: str, identity: PodIdentity) -> str:
    return f"{pod_name}.{try_suffix(identity)}"


def record_event(record: dict[str, Any], pod_name: str, namespace: str, identity: PodIdentity,
                 now: datetime) -> dict[str, Any]:
    """The v1 Event that holds ``record`` (``TriggerState.to_json``) for this pod and try."""
    decided = record.get("decided") or {}
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    involved = {"apiVersion": "v1", "kind": "Pod", "name": pod_name, "namespace": namespace}
    if record.get("uid"):
        involved["uid"] = record["uid"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": record_name(pod_name, identity),
            "namespace": namespace,
            "annotations": {RECORD_ANNOTATION: json.dumps(record, separators=(",", ":"), sort_keys=True)},
        },
        "involvedObject": involved,
        "reason": RECORD_REASON,
        "message": f"Airflow task try {identity.try_number} decided: {decided.get('outcome', '?')}",
        "type": "Normal",
        "source": {"component": SOURCE},
        "reportingComponent": SOURCE,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def record_of(event: dict[str, Any] | None) -> Any:
    """The record an Event holds (``None`` if it holds none or it cannot be read)."""
    raw = (((event or {}).get("metadata") or {}).get("annotations") or {}).get(RECORD_ANNOTATION)
    try:
        return json.loads(raw) if raw else None
    except (TypeError, ValueError):
        return None
