"""v1 Events about one pod, written as the kubelet's and the scheduler's event recorders write them.

Why: ``kubectl describe`` and the operator's failure messages show them, and tests assert their order
(Scheduled, Pulling, Pulled, Created, Started, Killing, BackOff, Failed). Facts: a repeat of the same reason,
message and ``involvedObject.fieldPath`` bumps ``count`` and ``lastTimestamp`` of the first event instead of adding
one (the recorder's aggregation); names are ``<pod>.<hex>``; the kubelet's events carry ``source.host`` (the node),
the scheduler's do not. An event for a namespace that is going away is lost, as on a real cluster.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from ..clock import rfc3339
from ..errors import ApiError
from ..store import Store


class EventRecorder:
    """Writes the events of one pod; remembers what it wrote so repeats are counted."""

    def __init__(self, store: Store, node_name: str, name_for: Callable[[str], str], pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        self.store, self.node_name, self.name_for = store, node_name, name_for
        self.namespace, self.name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self._written: dict[tuple[str, str, str], str] = {}

    def record(
        self, reason: str, message: str, kind: str = "Normal", field_path: str = "", component: str = "kubelet"
    ) -> None:
        key = (reason, message, field_path)
        now = rfc3339()
        if key in self._written:

            def bump(event: dict) -> None:
                event["count"] = event.get("count", 1) + 1
                event["lastTimestamp"] = now

            with contextlib.suppress(ApiError):
                self.store.update("events", self.namespace, self._written[key], bump)
                return
        involved = {"apiVersion": "v1", "kind": "Pod", "name": self.name, "namespace": self.namespace, "uid": self.uid}
        if field_path:
            involved["fieldPath"] = field_path
        host = self.node_name if component == "kubelet" else ""
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": self.name_for(self.name), "namespace": self.namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": component} | ({"host": host} if host else {}),
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host,
        }
        try:
            created = self.store.create("events", self.namespace, body)
        except ApiError:  # namespace going away: the event is lost, as on a real cluster
            return
        self._written[key] = created["metadata"]["name"]
