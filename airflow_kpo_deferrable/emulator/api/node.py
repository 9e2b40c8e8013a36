"""What the HTTP side needs from the node, and nothing more: the ``Node`` protocol.

Why: on a real cluster the API server reaches the kubelet only for logs, exec and the like; here the handlers are
built from the store and an object with these four methods (``kubelet.Kubelet`` is one), never from the whole
emulator, so the HTTP layer depends on the node's contract, not on its workings (kwok's logs/exec server is built
the same way, from a data source and a pod getter). ``None`` stands for no node at all (runtime ``none``).

Guarantees a ``Node`` gives:

* ``log_file`` returns the log of exactly that container instance (by container ID), or None when the node has
  none; the file is in the ``logfile`` format and is ``closed`` once that instance ended.
* ``exec_target`` returns where a command runs in the container, or None unless the container runs now.
* ``evict`` and ``lose_node`` act at once or raise ``ApiError`` (404 unknown pod, 409 not running or ending).
"""

from __future__ import annotations

from typing import Protocol

from ..kubelet.process import ExecTarget
from ..logfile import ContainerLog


class Node(Protocol):
    def log_file(self, namespace: str, name: str, container: str, container_id: str) -> ContainerLog | None: ...

    def exec_target(self, namespace: str, name: str, container: str) -> ExecTarget | None: ...

    def evict(self, namespace: str, name: str) -> None: ...

    def lose_node(self, namespace: str, name: str) -> None: ...
