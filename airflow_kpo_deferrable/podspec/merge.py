"""How a pod is layered: templates, then the operator's arguments, merged by fixed rules.

Layers, lowest first: ``pod_template_file``, ``pod_template_dict``, ``full_pod_spec``, the operator's arguments, the
identity labels. Dicts merge key by key; lists of named things merge by name (containers field by field; a volume,
env var, mount or pull secret of the same name is replaced whole, as its sources are exclusive); ``tolerations`` and
``envFrom`` add up; any other list is replaced.
"""

from __future__ import annotations

from typing import Any

# Lists merged item by item on this key; any other list of an upper layer replaces the lower one.
_LIST_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}
_MERGED_ITEMS = frozenset({"containers", "initContainers", "ephemeralContainers"})
_ADDED_LISTS = frozenset({"tolerations", "envFrom"})


def merge(lower: Any, upper: Any, key: str | None = None) -> Any:
    """``upper`` over ``lower``: dicts key by key, named lists item by item, ``_ADDED_LISTS`` added up."""
    if upper is None:
        return lower
    if isinstance(lower, dict) and isinstance(upper, dict):
        merged = dict(lower)
        for name, value in upper.items():
            merged[name] = merge(lower.get(name), value, name)
        return merged
    if isinstance(lower, list) and isinstance(upper, list):
        if key in _LIST_KEYS:
            by = _LIST_KEYS[key]
            merged_list = list(lower)
            for item in upper:
                index = next((i for i, old in enumerate(merged_list) if old.get(by) == item.get(by)), None)
                if index is None:
                    merged_list.append(item)
                elif key in _MERGED_ITEMS:
                    merged_list[index] = merge(merged_list[index], item)
                else:  # a volume or env var is one choice of source: mixing two would be invalid
                    merged_list[index] = item
            return merged_list
        if key in _ADDED_LISTS:
            return lower + [item for item in upper if item not in lower]
    return upper
