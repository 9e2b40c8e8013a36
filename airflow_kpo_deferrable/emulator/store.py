"""The emulator's object store: what etcd plus the API server's registry do for the kinds we need.

Why: watch resume, 410 handling and "was this deletion seen?" are exactly where KPO implementations break, so the
store keeps the semantics those depend on instead of placeholders:

* One global, monotonic ``resourceVersion`` across all kinds (an integer; a string on the wire). Every create,
  update and removal gets the next one; a DELETED change carries the version of the deletion.
* A bounded history of changes. A watch from version *N* replays every change after *N*; when *N* is older than the
  retained window (``history_limit`` changes, or everything before ``expire_history()``), ``changes_since`` raises
  ``Gone`` — the server turns that into the real ``410 Expired`` watch event.
* Defaults on create are the API server's: pods get ``rules.default_pull_policy`` and ``rules.qos_class`` (the same
  rules the kubelet applies), secrets type ``Opaque``, namespaces phase Active and their name label.
* Updates are copy-on-write: a stored dict is never mutated after it is stored, so changes, lists and watch events
  can share it without copies; callers outside the store get deep copies. An update that changes nothing is not
  written (no new version, no event), as in the real API server.
* Graceful deletion: a pod bound to a node and not finished gets ``deletionTimestamp`` and
  ``deletionGracePeriodSeconds`` (a MODIFIED change) and stays until the kubelet calls ``remove``; grace period 0,
  unbound or finished pods, and every other kind go at once. ``preconditions`` (uid, resourceVersion) are checked
  first (409 on mismatch).
* Subscribers get every change in version order. A bounded subscriber (a watch) that falls behind is cut off with a
  ``None`` in its queue, as the API server closes watchers that are too slow, instead of letting memory grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import secrets
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .clock import rfc3339
from .errors import ApiError, Gone, already_exists, conflict, not_found
from .kinds import KIND_OF, KINDS, NAMESPACED
from .nodeinfo import node_object
from .rules import default_pull_policy, qos_class
from .selectors import matcher
from .validation import validate_create, validate_update

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
FINISHED = ("Succeeded", "Failed")
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the API server's name generator avoids vowels and look-alikes


@dataclass(slots=True)
class Change:
    """One write, in version order. ``old`` is the object before a MODIFIED (selector transitions need it)."""

    type: str
    kind: str
    obj: dict[str, Any]
    rv: int
    old: dict[str, Any] | None = None
    _wire: bytes | None = field(default=None, repr=False, compare=False)

    def wire(self, as_type: str | None = None) -> bytes:
        """The watch event line; serialized once however many watches send it (when sent as its own type)."""
        if as_type is not None and as_type != self.type:
            return json.dumps({"type": as_type, "object": self.obj}, separators=(",", ":")).encode() + b"\n"
        if self._wire is None:
            self._wire = json.dumps({"type": self.type, "object": self.obj}, separators=(",", ":")).encode() + b"\n"
        return self._wire


def _default_pod(pod: dict[str, Any]) -> None:
    """The defaults the API server fills in on create (the ones clients and our kubelet read)."""
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("imagePullPolicy", default_pull_policy(container.get("image", "")))
        container.setdefault("resources", {})
    pod["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}


class Store:
    """All objects, the change history and the subscribers; every method runs on the emulator's loop."""

    def __init__(self, history_limit: int = 10_000) -> None:
        self.history_limit = history_limit
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {kind: {} for kind in KINDS}
        self._rv = 0
        self._history: deque[Change] = deque()
        self._compacted = 0  # every change up to this version is forgotten
        self._subscribers: dict[asyncio.Queue[Change | None], int] = {}  # queue -> maxsize (0 = unbounded)
        for name in DEFAULT_NAMESPACES:
            self.create("namespaces", None, {"metadata": {"name": name}})
        self.create("nodes", None, node_object())

    @property
    def resource_version(self) -> int:
        return self._rv

    # -- reads ----------------------------------------------------------------------------------------------------

    def _table(self, kind: str) -> dict[tuple[str, str], dict[str, Any]]:
        try:
            return self._objects[kind]
        except KeyError:
            raise ApiError(404, "NotFound", "the server could not find the requested resource") from None

    def peek(self, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
        """The stored object itself (never mutate it)."""
        found = self._table(kind).get((namespace or "", name))
        if found is None:
            raise not_found(kind, name)
        return found

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.peek(kind, namespace, name))

    def select(
        self, kind: str, namespace: str | None, label_selector: str = "", field_selector: str = ""
    ) -> list[dict[str, Any]]:
        """Stored objects (shared, never mutate) matching the selectors, in (namespace, name) order."""
        match = matcher(kind, label_selector, field_selector)
        table = self._table(kind)
        keys = sorted(key for key in table if namespace is None or key[0] == namespace)
        return [table[key] for key in keys if match(table[key])]

    def list(
        self, kind: str, namespace: str | None, label_selector: str = "", field_selector: str = ""
    ) -> tuple[list[dict[str, Any]], str]:
        return copy.deepcopy(self.select(kind, namespace, label_selector, field_selector)), str(self._rv)

    # -- writes ---------------------------------------------------------------------------------------------------

    def create(self, kind: str, namespace: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        table = self._table(kind)
        obj = copy.deepcopy(obj)
        metadata = obj.setdefault("metadata", {})
        namespace = self._namespace_for(kind, namespace, metadata)
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = metadata["generateName"] + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
        validate_create(kind, obj)
        key = (namespace or "", metadata["name"])
        if key in table:
            raise already_exists(kind, metadata["name"])
        for transient in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
            metadata.pop(transient, None)
        metadata.update(uid=str(uuid.uuid4()), creationTimestamp=rfc3339())
        obj["apiVersion"], obj["kind"] = obj.get("apiVersion") or "v1", KIND_OF[kind]
        if kind == "pods":
            _default_pod(obj)
        elif kind == "secrets" and not obj.get("type"):
            obj["type"] = "Opaque"  # SetDefaults_Secret
        elif kind == "namespaces":
            obj["status"] = {"phase": "Active"}
            metadata.setdefault("labels", {})["kubernetes.io/metadata.name"] = metadata["name"]
        self._commit("ADDED", kind, key, obj)
        return copy.deepcopy(obj)

    def _namespace_for(self, kind: str, namespace: str | None, metadata: dict[str, Any]) -> str | None:
        if kind not in NAMESPACED:
            metadata.pop("namespace", None)
            return None
        given = metadata.get("namespace")
        if given and namespace and given != namespace:
            raise ApiError(400, "BadRequest",
                           "the namespace of the provided object does not match the namespace sent on the request")
        namespace = namespace or given or "default"
        if ("", namespace) not in self._objects["namespaces"]:
            raise not_found("namespaces", namespace)
        metadata["namespace"] = namespace
        return namespace

    def update(
        self, kind: str, namespace: str | None, name: str, mutate: Callable[[dict[str, Any]], None],
        *, validate: bool = False,
    ) -> dict[str, Any]:
        """Apply ``mutate`` to a copy and store it; identity fields cannot change. Returns a copy of the result."""
        current = self.peek(kind, namespace, name)
        new = copy.deepcopy(current)
        mutate(new)
        metadata = new.setdefault("metadata", {})
        for identity in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp"):
            if identity in current["metadata"]:
                metadata[identity] = current["metadata"][identity]
        metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
        if new == current:
            return copy.deepcopy(current)
        if validate:
            validate_update(kind, current, new)
        self._commit("MODIFIED", kind, (namespace or "", name), new, old=current)
        return copy.deepcopy(new)

    def delete(
        self, kind: str, namespace: str | None, name: str, grace_period: int | None = None,
        preconditions: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        current = self.peek(kind, namespace, name)
        self._check_preconditions(kind, name, current, preconditions or {})
        if kind == "namespaces":
            self._empty_namespace(name, grace_period)
        if kind == "pods" and grace_period != 0 and self._kubelet_must_confirm(current):
            return self._start_graceful_deletion(current, grace_period)
        return self.remove(kind, namespace, name)

    @staticmethod
    def _check_preconditions(kind: str, name: str, current: dict[str, Any], preconditions: dict[str, Any]) -> None:
        for key, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted, actual = preconditions.get(key), current["metadata"].get(key)
            if wanted and wanted != actual:
                raise conflict(kind, name, f"Precondition failed: {label} in precondition: {wanted}, "
                                           f"{label} in object meta: {actual}")

    @staticmethod
    def _kubelet_must_confirm(pod: dict[str, Any]) -> bool:
        return bool(pod.get("spec", {}).get("nodeName")) and pod.get("status", {}).get("phase") not in FINISHED

    def _start_graceful_deletion(self, pod: dict[str, Any], grace_period: int | None) -> dict[str, Any]:
        grace = pod["spec"].get("terminationGracePeriodSeconds", 30) if grace_period is None else grace_period
        metadata = pod["metadata"]
        if metadata.get("deletionTimestamp") and metadata.get("deletionGracePeriodSeconds", grace) <= grace:
            return copy.deepcopy(pod)  # already ending at least as soon

        def mark(obj: dict[str, Any]) -> None:
            obj["metadata"]["deletionTimestamp"] = rfc3339(offset=grace)
            obj["metadata"]["deletionGracePeriodSeconds"] = grace

        new = copy.deepcopy(pod)
        mark(new)
        self._commit("MODIFIED", "pods", (metadata["namespace"], metadata["name"]), new, old=pod)
        return copy.deepcopy(new)

    def _empty_namespace(self, namespace: str, grace_period: int | None) -> None:
        for kind in NAMESPACED:
            for obj in self.select(kind, namespace):
                with contextlib.suppress(ApiError):
                    self.delete(kind, namespace, obj["metadata"]["name"], grace_period)

    def remove(self, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
        """Take the object out at once (the kubelet confirming a pod's end). Returns the deleted object."""
        key = (namespace or "", name)
        current = self._table(kind).get(key)
        if current is None:
            raise not_found(kind, name)
        gone = copy.deepcopy(current)
        self._commit("DELETED", kind, key, gone, old=current)
        return copy.deepcopy(gone)

    def _commit(self, kind_of_change: str, kind: str, key: tuple[str, str], obj: dict[str, Any],
                old: dict[str, Any] | None = None) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        if kind_of_change == "DELETED":
            del self._objects[kind][key]
        else:
            self._objects[kind][key] = obj
        change = Change(kind_of_change, kind, obj, self._rv, old)
        self._history.append(change)
        if len(self._history) > self.history_limit:
            self._compacted = self._history.popleft().rv
        for queue, maxsize in list(self._subscribers.items()):
            if maxsize and queue.qsize() >= maxsize:
                self._cut_off(queue)
            else:
                queue.put_nowait(change)

    # -- change feed ----------------------------------------------------------------------------------------------

    def subscribe(self, maxsize: int = 0) -> asyncio.Queue[Change | None]:
        """A queue of every change from now on; with ``maxsize``, falling that far behind ends it with ``None``."""
        queue: asyncio.Queue[Change | None] = asyncio.Queue()
        self._subscribers[queue] = maxsize
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Change | None]) -> None:
        self._subscribers.pop(queue, None)

    def _cut_off(self, queue: asyncio.Queue[Change | None]) -> None:
        self.unsubscribe(queue)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(None)

    def cut_off_all(self, predicate: Callable[[asyncio.Queue[Change | None]], bool]) -> int:
        """End the bounded subscriptions (watches) that ``predicate`` selects; returns how many."""
        chosen = [q for q, maxsize in self._subscribers.items() if maxsize and predicate(q)]
        for queue in chosen:
            self._cut_off(queue)
        return len(chosen)

    def changes_since(self, rv: int) -> list[Change]:
        if rv < self._compacted:
            oldest = self._history[0].rv if self._history else self._rv + 1
            raise Gone(rv, oldest)
        if not self._history or rv >= self._history[-1].rv:
            return []
        return [change for change in self._history if change.rv > rv]

    def expire_history(self) -> None:
        """Forget every change so far: any watch from an older version gets 410 (etcd compaction)."""
        self._history.clear()
        self._compacted = self._rv
