"""Kubernetes protobuf request bodies, decoded for the kinds ``kubectl create`` sends that way.

Why: ``kubectl create secret``, ``create configmap`` and ``create namespace`` send
``Content-Type: application/vnd.kubernetes.protobuf`` (with ``Accept: ...protobuf,application/json``, so a JSON
answer is fine) and do not fall back to JSON on a 415; the API server decodes them. A small wire-format reader
covers those three kinds; any other kind in protobuf is the API server's 415 ``UnsupportedMediaType``.

Facts: a body is the magic ``k8s\\x00`` and a ``runtime.Unknown`` (1: TypeMeta {1: apiVersion, 2: kind},
2: the object's own message). ObjectMeta: 1 name, 2 generateName, 3 namespace, 11 labels, 12 annotations,
14 finalizers (the rest are server-set and ignored). Secret: 2 data (map of bytes, base64 in JSON), 3 type,
4 stringData, 5 immutable. ConfigMap: 2 data, 3 binaryData (bytes), 4 immutable. Namespace: 1 metadata only.
Maps are repeated entries {1: key, 2: value}; proto3 leaves out empty values, and so does the decoded object.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from .errors import ApiError

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
UNSUPPORTED = (
    "the body of the request was in an unknown format - accepted media types include: application/json, "
    "application/yaml"
)


def _varint(data: bytes, index: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if index >= len(data):
            raise ValueError("truncated varint")
        byte = data[index]
        index += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, index
        shift += 7


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs of one message: ints for varints, bytes for length-delimited fields."""
    index = 0
    while index < len(data):
        key, index = _varint(data, index)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, index = _varint(data, index)
            yield number, value
        elif wire == 2:
            size, index = _varint(data, index)
            if index + size > len(data):
                raise ValueError("truncated field")
            yield number, data[index : index + size]
            index += size
        elif wire in (1, 5):  # fixed64 / fixed32: none in the kinds decoded here, skipped
            index += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _message(data: bytes) -> dict[int, bytes]:
    """The length-delimited fields of a message by number (the last one wins, as in protobuf)."""
    return {number: value for number, value in fields(data) if isinstance(value, bytes)}


def _entry(data: bytes) -> tuple[str, bytes]:
    parts = _message(data)
    return parts.get(1, b"").decode(), parts.get(2, b"")


def _metadata(data: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    names = {1: "name", 2: "generateName", 3: "namespace"}
    for number, value in fields(data):
        if number in names and isinstance(value, bytes) and value:
            meta[names[number]] = value.decode()
        elif number in (11, 12) and isinstance(value, bytes):
            key, text = _entry(value)
            meta.setdefault("labels" if number == 11 else "annotations", {})[key] = text.decode()
        elif number == 14 and isinstance(value, bytes):
            meta.setdefault("finalizers", []).append(value.decode())
    return meta


# Per kind: map fields (number -> JSON name, values are bytes), string fields and bool fields besides metadata.
MAPS = {"Secret": {2: ("data", True), 4: ("stringData", False)},
        "ConfigMap": {2: ("data", False), 3: ("binaryData", True)}, "Namespace": {}}
STRINGS = {"Secret": {3: "type"}}
BOOLS = {"Secret": {5: "immutable"}, "ConfigMap": {4: "immutable"}}


def _fill(kind: str, data: bytes, obj: dict[str, Any]) -> None:
    """The kind's own fields of ``data`` into ``obj``; bytes values become base64 as in JSON."""
    maps, strings, bools = MAPS[kind], STRINGS.get(kind, {}), BOOLS.get(kind, {})
    for number, value in fields(data):
        if number in maps and isinstance(value, bytes):
            name, binary = maps[number]
            key, raw = _entry(value)
            obj.setdefault(name, {})[key] = base64.b64encode(raw).decode() if binary else raw.decode()
        elif number in strings and isinstance(value, bytes) and value:
            obj[strings[number]] = value.decode()
        elif number in bools:
            obj[bools[number]] = bool(value)


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded Secret, ConfigMap or Namespace; 415 for anything else, 400 if garbled."""
    if not body.startswith(MAGIC):
        raise ApiError(400, "BadRequest", "the body of the request could not be decoded: missing the k8s protobuf "
                                          "prefix")
    try:
        envelope = _message(body[len(MAGIC):])
        type_meta = _message(envelope.get(1, b""))
        api_version, kind = type_meta.get(1, b"").decode(), type_meta.get(2, b"").decode()
        raw = envelope.get(2, b"")
        obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind,
                               "metadata": _metadata(_message(raw).get(1, b""))}
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "BadRequest", "the body of the request could not be decoded as protobuf") from None
    if kind not in MAPS or api_version != "v1":
        raise ApiError(415, "UnsupportedMediaType", UNSUPPORTED)
    try:
        _fill(kind, raw, obj)
        return obj
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "BadRequest", "the body of the request could not be decoded as protobuf") from None
