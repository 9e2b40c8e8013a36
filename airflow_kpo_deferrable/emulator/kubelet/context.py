"""What every pod worker shares with the node: the store, the runtime, the delays and the node's facts.

Why: a worker needs these, not the ``Kubelet`` that owns it; handing them over as one object keeps the imports one
way (``node`` → ``worker``) with no back reference. ``timings`` is the node's one ``Timings`` object: tests shorten
back-offs on a running emulator (``emulator.kubelet.timings.backoff_initial = 0.05``) and every worker sees it.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ApiError
from ..nodeinfo import NODE_IP, allocatable, internal_ip
from ..store import Store
from .launch import Runtime


@dataclass
class Timings:
    """Delays of the simulated node, in seconds; real kubelet values in comments. Tests may shorten them further."""

    sandbox: float = 0.05  # sandbox creation before PodReadyToStartContainers (~1 s)
    backoff_initial: float = 0.2  # CrashLoopBackOff first delay (10 s)
    backoff_max: float = 3.0  # CrashLoopBackOff cap (300 s)
    image_backoff_initial: float = 0.3  # ImagePullBackOff first delay (10 s)
    image_backoff_max: float = 3.0  # (300 s)
    config_retry: float = 0.5  # CreateContainerConfigError re-check (each sync, ~10 s)
    terminated_hold: float = 0.05  # how long an exited container shows terminated before its restart


@dataclass
class NodeContext:
    """The node as its pod workers see it."""

    store: Store
    runtime: Runtime
    timings: Timings
    node_name: str
    workdir: Path
    node: dict[str, Any] = field(default_factory=dict)
    host_ip: str = NODE_IP
    _ips: itertools.count = field(default_factory=itertools.count)
    _event_serial: itertools.count = field(default_factory=itertools.count)

    def read_node(self) -> None:
        """Take the Node object's facts from the store (labels, allocatable, InternalIP), if it is there."""
        try:
            self.node = self.store.get("nodes", None, self.node_name)
        except ApiError:
            self.node = {"metadata": {"name": self.node_name, "labels": {"kubernetes.io/hostname": self.node_name}},
                         "status": {}}
        self.host_ip = internal_ip(self.node)

    @property
    def allocatable(self) -> dict[str, str]:
        return allocatable(self.node)

    def lookup(self, kind: str, namespace: str, name: str) -> dict | None:
        """A ConfigMap or Secret for env resolution, or None when it does not exist."""
        try:
            return self.store.get(kind, namespace, name)
        except ApiError as error:
            if error.code == 404:
                return None
            raise

    def allocate_ip(self) -> str:
        number = next(self._ips)
        return f"10.244.{number // 250}.{number % 250 + 2}"

    def event_name(self, pod_name: str) -> str:
        """``<pod>.<hex>`` like the event recorder (it uses the time in ns; a serial keeps names unique)."""
        return f"{pod_name}.{time.time_ns() + next(self._event_serial):x}"
