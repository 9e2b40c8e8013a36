"""A container's environment: ``env``/``envFrom`` resolved against ConfigMaps, Secrets and the pod, as the kubelet does.

Why: a missing ConfigMap or key is CreateContainerConfigError with the kubelet's exact message, retried until the
object appears; ``$(VAR)`` in env values, command and args expands like the kubelet's (``$$`` escapes, unknown
references stay as written). Secrets' ``data`` is base64; ``stringData`` is read too (the emulator stores it as
sent). ``resourceFieldRef`` falls back to the node's allocatable when the container sets no limit, and rounds up
after dividing by ``divisor``. The process starts with ``PATH`` (the emulator's), ``HOME`` and ``HOSTNAME``.
"""

from __future__ import annotations

import base64
import math
import os
import re
from collections.abc import Callable
from pathlib import Path

from ..quantities import parse_quantity


class ConfigError(Exception):
    """The container cannot be configured (CreateContainerConfigError); the message is the kubelet's."""


Lookup = Callable[[str, str, str], dict | None]  # (kind, namespace, name) -> object or None when missing

_VAR_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: known variables are replaced, ``$$`` escapes, unknown refs stay as written."""

    def replace(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        return env.get(match[1], match[0])

    return _VAR_REF.sub(replace, text)


def _decode(data: dict[str, str], kind: str) -> dict[str, str]:
    if kind == "configmaps":
        return dict(data)
    return {key: base64.b64decode(value).decode("utf-8", "replace") for key, value in data.items()}


def _source_data(lookup: Lookup, kind: str, namespace: str, name: str) -> dict[str, str] | None:
    obj = lookup(kind, namespace, name)
    if obj is None:
        return None
    data = _decode(obj.get("data") or {}, kind)
    if kind == "secrets":
        data |= obj.get("stringData") or {}
    return data


_KIND_WORD = {"configmaps": ("configmap", "ConfigMap"), "secrets": ("secret", "Secret")}


def _key_ref(lookup: Lookup, namespace: str, kind: str, ref: dict) -> str | None:
    data = _source_data(lookup, kind, namespace, ref.get("name", ""))
    lower, title = _KIND_WORD[kind]
    if data is None:
        if ref.get("optional"):
            return None
        raise ConfigError(f'{lower} "{ref.get("name", "")}" not found')
    if ref.get("key") not in data:
        if ref.get("optional"):
            return None
        raise ConfigError(f"couldn't find key {ref.get('key')} in {title} {namespace}/{ref.get('name', '')}")
    return data[ref["key"]]


def _field_ref(pod: dict, path: str, pod_ip: str, host_ip: str) -> str:
    meta, spec = pod["metadata"], pod.get("spec", {})
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return simple[path]
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return (meta.get(match[1]) or {}).get(match[2], "")
    raise ConfigError(f"unsupported fieldRef fieldPath {path!r}")


def _resource_ref(containers: list[dict], default: str, ref: dict, allocatable: dict[str, str]) -> str:
    name = ref.get("containerName") or default
    container = next((c for c in containers if c["name"] == name), {})
    kind, _, resource = ref.get("resource", "").partition(".")
    resources = container.get("resources") or {}
    value = (resources.get(kind) or {}).get(resource) or (resources.get("limits") or {}).get(resource)
    if value is None:
        value = allocatable.get(resource, "0")
    divisor = parse_quantity(ref.get("divisor") or "1")
    return str(math.ceil(parse_quantity(value) / divisor))


def container_env(
    pod: dict, container: dict, lookup: Lookup, *, pod_ip: str, host_ip: str, allocatable: dict[str, str]
) -> dict[str, str]:
    """The container's variables: ``envFrom`` first, then ``env`` (expanded in order); raises ``ConfigError``."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        kind, ref = (
            ("configmaps", source["configMapRef"])
            if "configMapRef" in source
            else ("secrets", source.get("secretRef", {}))
        )
        data = _source_data(lookup, kind, namespace, ref.get("name", ""))
        if data is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{_KIND_WORD[kind][0]} "{ref.get("name", "")}" not found')
        env |= {source.get("prefix", "") + key: value for key, value in data.items()}
    every = (pod.get("spec", {}).get("initContainers") or []) + (pod.get("spec", {}).get("containers") or [])
    for var in container.get("env") or []:
        source = var.get("valueFrom")
        if source is None:
            env[var["name"]] = expand(var.get("value", ""), env)
        elif "configMapKeyRef" in source or "secretKeyRef" in source:
            kind = "configmaps" if "configMapKeyRef" in source else "secrets"
            value = _key_ref(lookup, namespace, kind, source.get("configMapKeyRef") or source["secretKeyRef"])
            if value is not None:
                env[var["name"]] = value
        elif "fieldRef" in source:
            env[var["name"]] = _field_ref(pod, source["fieldRef"].get("fieldPath", ""), pod_ip, host_ip)
        elif "resourceFieldRef" in source:
            env[var["name"]] = _resource_ref(every, container["name"], source["resourceFieldRef"], allocatable)
    return env



def base_env(pod_name: str, home: Path) -> dict[str, str]:
    """What every container process starts with before its own variables."""
    return {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home), "HOSTNAME": pod_name}

