"""How a pod is layered: templates, then the operator's arguments, merged by the provider's rules.

Why: for the same arguments our pod must equal the provider's (``PodGenerator.reconcile_pods``), so a DAG moved
over builds the same pod. Layers, lowest first: ``pod_template_file``, ``pod_template_dict``, ``full_pod_spec``, the
operator's arguments; an upper layer's field is "given" when it is present and not ``None``.

=====================================  ===========================================================================
Field                                  Rule (upper = the higher layer)
=====================================  ===========================================================================
``metadata.labels``, ``annotations``   key by key; the upper value wins
``metadata.finalizers``,               lower items, then upper items
``ownerReferences``, ``managedFields``
other ``metadata`` fields              upper wins when given (so a template's ``name`` and ``namespace`` are kept
                                       when the arguments give none)
``spec.containers``                    matched by ``name`` (a container only in upper is appended, in its order)
``spec.initContainers``                matched by ``name``: lower order, unmatched upper ones appended
``spec.volumes``                       lower items, then upper items (two volumes of one name are an error)
other ``spec`` fields                  upper replaces lower whole when given: ``tolerations``, ``nodeSelector``,
                                       ``affinity``, ``securityContext``, ``imagePullSecrets``, ``hostAliases``...
container ``env``, ``envFrom``,        lower items, then upper items (Kubernetes uses the last of two same-named
``volumeMounts``, ``ports``,           env vars, so an argument's env var overrides a template's)
``volumeDevices``
other container fields                 upper replaces lower whole when given: ``resources``, ``securityContext``,
                                       ``command``, ``args``, ``image``...
=====================================  ===========================================================================

Differences from the provider, chosen (listed in the README): containers are matched by name, not by position (the
provider merges the arguments into the template's *first* container and renames it); an explicit false or zero in an
upper layer (``automount_service_account_token=False``, ``termination_grace_period=0``) wins, where the provider's
rule lets any falsy value fall through to the template's.
"""

from __future__ import annotations

from typing import Any

_APPENDED_METADATA = frozenset({"finalizers", "ownerReferences", "managedFields"})
_KEYED_METADATA = frozenset({"labels", "annotations"})
_APPENDED_CONTAINER = frozenset({"env", "envFrom", "volumeMounts", "ports", "volumeDevices"})


def _fields(lower: dict[str, Any], upper: dict[str, Any], appended: frozenset[str], keyed: frozenset[str]) -> dict:
    merged = dict(lower)
    for key, value in upper.items():
        if value is None:
            continue
        if key in appended and lower.get(key):
            merged[key] = [*lower[key], *value]
        elif key in keyed and lower.get(key):
            merged[key] = {**lower[key], **value}
        else:
            merged[key] = value
    return merged


def merge_container(lower: dict[str, Any], upper: dict[str, Any]) -> dict[str, Any]:
    return _fields(lower, upper, _APPENDED_CONTAINER, frozenset())


def _by_name(lower: list[dict[str, Any]], upper: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lower containers in order, each merged with the upper one of its name; then the upper-only ones."""
    uppers = {c.get("name"): c for c in upper}
    merged = [merge_container(c, uppers[c.get("name")]) if c.get("name") in uppers else c for c in lower]
    names = {c.get("name") for c in lower}
    return merged + [c for c in upper if c.get("name") not in names]


def _spec(lower: dict[str, Any], upper: dict[str, Any]) -> dict[str, Any]:
    merged = _fields(lower, upper, frozenset({"volumes"}), frozenset())
    for key in ("containers", "initContainers"):
        if lower.get(key) and upper.get(key):
            merged[key] = _by_name(lower[key], upper[key])
    return merged


def merge_pods(lower: dict[str, Any], upper: dict[str, Any]) -> dict[str, Any]:
    """``upper`` over ``lower`` (camelCase pod data; neither is changed)."""
    merged = _fields(lower, upper, frozenset(), frozenset())
    merged["metadata"] = _fields(
        lower.get("metadata") or {}, upper.get("metadata") or {}, _APPENDED_METADATA, _KEYED_METADATA
    )
    merged["spec"] = _spec(lower.get("spec") or {}, upper.get("spec") or {})
    return merged
