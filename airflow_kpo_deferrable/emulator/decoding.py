"""The API server's typed JSON decode of a Pod body: a wrongly typed field is 400 BadRequest, before any validation.

Why: a client that sends ``"values": "a"`` (a string where the API wants a list) gets no 422 from a real API
server but the Go decoder's 400, ``Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string
into Go struct field NodeSelectorRequirement.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.matchExpressions.values of type []string``;
our operator's checks and the emulator must agree on which inputs get which answer.

Facts (encoding/json as the API server uses it): the first mismatch in document order is reported; the struct
named is the innermost one holding the field, the path is the JSON field names from the object's root without list
indices; the JSON kinds are ``string``, ``number``, ``bool``, ``array``, ``object`` (a non-integral number into an
integer is ``number 1.5``); Go types print as ``string``, ``int64``, ``[]string``, ``map[string]string``,
``v1.Affinity``, ``[]v1.Container``; ``null`` fits every field; unknown fields are not errors here. Only the Pod
fields the operator builds are typed (the rest pass, as with a lenient decoder).
"""

from __future__ import annotations

from typing import Any

from .errors import ApiError

# struct name -> field -> Go type; "[]T" list, "map[string]T" map, a capitalised name another struct
_STRUCTS: dict[str, dict[str, str]] = {
    "Pod": {"metadata": "ObjectMeta", "spec": "PodSpec"},
    "ObjectMeta": {"name": "string", "generateName": "string", "namespace": "string",
                   "labels": "map[string]string", "annotations": "map[string]string"},
    "PodSpec": {
        "volumes": "[]Volume", "initContainers": "[]Container", "containers": "[]Container",
        "restartPolicy": "string", "terminationGracePeriodSeconds": "int64", "activeDeadlineSeconds": "int64",
        "dnsPolicy": "string", "nodeSelector": "map[string]string", "serviceAccountName": "string",
        "automountServiceAccountToken": "bool", "nodeName": "string", "hostNetwork": "bool",
        "hostname": "string", "subdomain": "string", "affinity": "Affinity", "schedulerName": "string",
        "tolerations": "[]Toleration", "priorityClassName": "string", "priority": "int32",
        "runtimeClassName": "string", "enableServiceLinks": "bool",
    },
    "Container": {
        "name": "string", "image": "string", "command": "[]string", "args": "[]string", "workingDir": "string",
        "env": "[]EnvVar", "volumeMounts": "[]VolumeMount", "terminationMessagePath": "string",
        "terminationMessagePolicy": "string", "imagePullPolicy": "string", "restartPolicy": "string",
        "stdin": "bool", "tty": "bool",
    },
    "EnvVar": {"name": "string", "value": "string"},
    "VolumeMount": {"name": "string", "readOnly": "bool", "mountPath": "string", "subPath": "string",
                    "subPathExpr": "string"},
    "Volume": {"name": "string", "hostPath": "HostPathVolumeSource", "emptyDir": "EmptyDirVolumeSource"},
    "HostPathVolumeSource": {"path": "string", "type": "string"},
    "EmptyDirVolumeSource": {"medium": "string"},
    "Toleration": {"key": "string", "operator": "string", "value": "string", "effect": "string",
                   "tolerationSeconds": "int64"},
    "Affinity": {"nodeAffinity": "NodeAffinity", "podAffinity": "PodAffinity", "podAntiAffinity": "PodAntiAffinity"},
    "NodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": "NodeSelector",
                     "preferredDuringSchedulingIgnoredDuringExecution": "[]PreferredSchedulingTerm"},
    "NodeSelector": {"nodeSelectorTerms": "[]NodeSelectorTerm"},
    "NodeSelectorTerm": {"matchExpressions": "[]NodeSelectorRequirement", "matchFields": "[]NodeSelectorRequirement"},
    "NodeSelectorRequirement": {"key": "string", "operator": "string", "values": "[]string"},
    "PreferredSchedulingTerm": {"weight": "int32", "preference": "NodeSelectorTerm"},
    "PodAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": "[]PodAffinityTerm",
                    "preferredDuringSchedulingIgnoredDuringExecution": "[]WeightedPodAffinityTerm"},
    "PodAffinityTerm": {"labelSelector": "LabelSelector", "namespaces": "[]string", "topologyKey": "string"},
    "WeightedPodAffinityTerm": {"weight": "int32", "podAffinityTerm": "PodAffinityTerm"},
    "LabelSelector": {"matchLabels": "map[string]string", "matchExpressions": "[]LabelSelectorRequirement"},
    "LabelSelectorRequirement": {"key": "string", "operator": "string", "values": "[]string"},
}
_STRUCTS["PodAntiAffinity"] = _STRUCTS["PodAffinity"]
_PACKAGE = {"LabelSelector": "v1", "LabelSelectorRequirement": "v1"}  # metav1 and corev1 are both "v1"


class _Mismatch(Exception):
    def __init__(self, json_kind: str, struct: str, path: str, go_type: str) -> None:
        super().__init__(f"json: cannot unmarshal {json_kind} into Go struct field {struct}.{path} of type {go_type}")


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _go_name(go_type: str) -> str:
    if go_type.startswith("[]"):
        return "[]" + _go_name(go_type[2:])
    if go_type in _STRUCTS:
        return f"{_PACKAGE.get(go_type, 'v1')}.{go_type}"
    return go_type


def _check(value: Any, go_type: str, struct: str, path: str) -> None:
    """``value`` must decode into ``go_type`` (the field ``path`` of ``struct``)."""
    if value is None:
        return
    mismatch = _Mismatch(_json_kind(value), struct, path, _go_name(go_type))
    if go_type.startswith("[]"):
        if not isinstance(value, list):
            raise mismatch
        for item in value:
            _check(item, go_type[2:], struct, path)
    elif go_type.startswith("map[string]"):
        if not isinstance(value, dict):
            raise mismatch
        for item in value.values():
            _check(item, go_type.removeprefix("map[string]"), struct, path)
    elif go_type in _STRUCTS:
        if not isinstance(value, dict):
            raise mismatch
        _fields(value, go_type, path)
    elif go_type == "string":
        if not isinstance(value, str):
            raise mismatch
    elif go_type == "bool":
        if not isinstance(value, bool):
            raise mismatch
    elif isinstance(value, bool) or not isinstance(value, (int, float)):  # integers
        raise mismatch
    elif isinstance(value, float) and not value.is_integer():
        raise _Mismatch(f"number {value}", struct, path, go_type)


def _fields(obj: dict[str, Any], struct: str, path: str) -> None:
    for key, value in obj.items():
        go_type = _STRUCTS[struct].get(key)
        if go_type is not None:
            _check(value, go_type, struct, f"{path}.{key}" if path else key)


def check_pod_types(body: Any) -> None:
    """Raise the API server's 400 when a Pod body does not decode into the Pod type."""
    prefix = 'Pod in version "v1" cannot be handled as a Pod: '
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", f"{prefix}json: cannot unmarshal {_json_kind(body)} into Go value of type v1.Pod")
    try:
        _fields(body, "Pod", "")
    except _Mismatch as mismatch:
        raise ApiError(400, "BadRequest", f"{prefix}{mismatch}") from None
