"""Nodes and request bodies as the official clients and a raw HTTP client see them.

``CoreV1Api().list_node()`` deserializes every required field of ``V1Node`` (it raised ``ValueError: Invalid value
for boot_id`` before); a protobuf body of a kind the emulator cannot decode is the API server's 415, a garbled one
400, and neither stores anything.
"""

from __future__ import annotations

import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from tests.support.emulator import http_json

pytestmark = pytest.mark.timeout(60)


def test_list_node_deserializes_a_complete_node(api: CoreV1Api) -> None:
    nodes = api.list_node().items
    assert [node.metadata.name for node in nodes] == ["emulator-node"]
    info = nodes[0].status.node_info
    assert info.boot_id and info.machine_id and info.system_uuid and info.kernel_version and info.os_image
    assert (info.kubelet_version, info.operating_system, info.architecture) == ("v1.32.0", "linux", "amd64")
    assert {a.type: a.address for a in nodes[0].status.addresses} == {"InternalIP": "10.0.0.10",
                                                                      "Hostname": "emulator-node"}
    assert nodes[0].status.allocatable["cpu"] == "8"
    assert api.read_node("emulator-node").status.conditions[0].type == "Ready"


def field(number: int, value: bytes) -> bytes:
    """One length-delimited protobuf field (values under 128 bytes)."""
    return bytes([number << 3 | 2, len(value)]) + value


def envelope(kind: str, raw: bytes = b"") -> bytes:
    """A ``runtime.Unknown`` in the k8s protobuf framing, with TypeMeta v1/<kind>."""
    return b"k8s\x00" + field(1, field(1, b"v1") + field(2, kind.encode())) + field(2, raw)


def test_protobuf_configmap_is_decoded_with_labels(emulator: Emulator, api: CoreV1Api) -> None:
    metadata = field(1, b"tuned") + field(11, field(1, b"team") + field(2, b"data"))
    raw = field(1, metadata) + field(2, field(1, b"mode") + field(2, b"fast"))
    status, body = http_json(emulator, "/api/v1/namespaces/default/configmaps", envelope("ConfigMap", raw),
                        "application/vnd.kubernetes.protobuf")
    assert status == 201, body
    stored = api.read_namespaced_config_map("tuned", "default")
    assert (stored.metadata.labels, stored.data) == ({"team": "data"}, {"mode": "fast"})


def test_protobuf_of_another_kind_is_415_and_garbled_protobuf_is_400(emulator: Emulator, api: CoreV1Api) -> None:
    status, body = http_json(emulator, "/api/v1/namespaces/default/pods", envelope("Pod"),
                        "application/vnd.kubernetes.protobuf")
    assert (status, body["reason"], body["code"]) == (415, "UnsupportedMediaType", 415)
    assert body["message"].startswith("the body of the request was in an unknown format - accepted media types")
    status, body = http_json(emulator, "/api/v1/namespaces/default/configmaps", b"k8s\x00\x0a\xff",
                        "application/vnd.kubernetes.protobuf")
    assert (status, body["reason"]) == (400, "BadRequest")
    assert api.list_namespaced_pod("default").items == []
    assert api.list_namespaced_config_map("default").items == []
