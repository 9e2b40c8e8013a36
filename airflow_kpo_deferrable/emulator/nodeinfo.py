"""The facts of the emulator's one node, in one place: name, address, capacity, labels, the Node object.

Why: the store creates the Node object at start, the scheduler reads its labels and allocatable, the kubelet its
InternalIP (``status.hostIP``, ``HOST_IP`` fieldRefs) and ``kubectl describe node`` prints it; they must agree.
The Node object carries every field the official clients require when they deserialize a ``V1Node``
(``status.nodeInfo`` has ten required strings, e.g. ``bootID``; ``addresses`` and ``conditions`` entries their
``type``/``status``), so ``CoreV1Api().list_node()`` works.
"""

from __future__ import annotations

from typing import Any

from .clock import rfc3339

NODE_NAME = "emulator-node"
NODE_IP = "10.0.0.10"
CAPACITY = {"cpu": "8", "memory": "32Gi", "pods": "10000", "ephemeral-storage": "100Gi"}
KUBELET_VERSION = "v1.32.0"
SYSTEM_UUID = "6c6f6361-6c65-6d75-6c61-746f722d6e6f"


def node_object(name: str = NODE_NAME) -> dict[str, Any]:
    """The Node as the kubelet registers it (Ready, the default capacity, linux/amd64)."""
    now = rfc3339()
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
                       "node-role.kubernetes.io/control-plane": ""},
        },
        "spec": {"podCIDR": "10.244.0.0/16", "podCIDRs": ["10.244.0.0/16"]},
        "status": {
            "capacity": dict(CAPACITY),
            "allocatable": dict(CAPACITY),
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                            "lastTransitionTime": now}],
            "addresses": [{"type": "InternalIP", "address": NODE_IP}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": SYSTEM_UUID.replace("-", ""), "systemUUID": SYSTEM_UUID,
                "bootID": "0d3c5f0e-6b1e-4c55-9d3a-656d756c6174", "kernelVersion": "6.1.0-emulator",
                "osImage": "KPO emulator", "containerRuntimeVersion": "emulator://1.0",
                "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux", "architecture": "amd64",
            },
        },
    }


def allocatable(node: dict[str, Any]) -> dict[str, str]:
    """What the scheduler may place on ``node`` (allocatable, else capacity, else the default capacity)."""
    status = node.get("status") or {}
    return status.get("allocatable") or status.get("capacity") or dict(CAPACITY)


def internal_ip(node: dict[str, Any]) -> str:
    addresses = (node.get("status") or {}).get("addresses") or []
    return next((a["address"] for a in addresses if a.get("type") == "InternalIP"), NODE_IP)
