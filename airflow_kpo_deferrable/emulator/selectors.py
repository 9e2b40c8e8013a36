"""Label and field selectors, parsed like the API server parses them.

Why: the operator's shared watch relies on ``labelSelector`` (managed-by label, ``in``/``notin``), ``kubectl delete
--wait`` on ``fieldSelector=metadata.name=...`` and event lookups on ``involvedObject.*``; a selector the emulator
got wrong would make those tests pass for the wrong reason.

Facts handled: requirements are comma-separated but ``in (a,b)`` holds commas inside parentheses; ``=`` and ``==``
are the same; ``!=`` and ``notin`` also match objects without the label; field selectors only accept the fields the
real server registers per kind (others are a 400 ``field label not supported``), and a field that is absent compares
as the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import ApiError

Matcher = Callable[[dict[str, Any]], bool]

_SET_REQUIREMENT = re.compile(r"^\s*(\S+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_OPERATOR = re.compile(r"^\s*([^!=\s]+)\s*(==|=|!=)\s*(\S*)\s*$")

# Field selectors the API server accepts, per kind (the generic metadata ones plus each kind's own).
FIELDS: dict[str, frozenset[str]] = {
    "pods": frozenset(
        {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork",
         "status.phase", "status.podIP", "status.nominatedNodeName"}
    ),
    "events": frozenset(
        {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
         "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
         "reportingComponent", "source", "type"}
    ),
    "namespaces": frozenset({"status.phase"}),
    "nodes": frozenset({"spec.unschedulable"}),
    "secrets": frozenset({"type"}),
}
_METADATA_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


def _split(selector: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, []
    for char in selector:
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def _bad(kind: str, message: str) -> ApiError:
    return ApiError(400, "BadRequest", f"unable to parse requirement: {message}" if kind == "label" else message)


def _label_requirement(text: str) -> Matcher:
    if match := _SET_REQUIREMENT.match(text):
        key, operator, values = match.group(1), match.group(2), {v.strip() for v in match.group(3).split(",")}
        if operator == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _OPERATOR.match(text):
        key, operator, value = match.groups()
        if operator == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    stripped = text.strip()
    if stripped.startswith("!") and re.fullmatch(r"![^\s!=(),]+", stripped):
        return lambda labels: stripped[1:] not in labels
    if re.fullmatch(r"[^\s!=(),]+", stripped):
        return lambda labels: stripped in labels
    raise _bad("label", f"found '{text.strip()}', expected: in, notin, =, ==, !=, or a label key")


def label_matcher(selector: str) -> Matcher | None:
    """A predicate on an object's labels for ``selector``, or None when the selector selects everything."""
    requirements = [_label_requirement(part) for part in _split(selector or "")]
    if not requirements:
        return None
    return lambda obj: all(requirement(obj.get("metadata", {}).get("labels") or {}) for requirement in requirements)


def _field_value(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if path == "source" and isinstance(value, dict):  # events select on source.component
        value = value.get("component")
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def field_matcher(kind: str, selector: str) -> Matcher | None:
    """A predicate on an object's fields for ``selector``; 400 for a field the API server does not index."""
    requirements: list[Matcher] = []
    for part in _split(selector or ""):
        match = _OPERATOR.match(part)
        if not match:
            raise ApiError(400, "BadRequest", f"invalid selector: '{selector}'; can't understand '{part.strip()}'")
        path, operator, expected = match.groups()
        if path not in _METADATA_FIELDS and path not in FIELDS.get(kind, frozenset()):
            raise ApiError(400, "BadRequest", f'field label not supported: {path}')
        if operator == "!=":
            requirements.append(lambda obj, p=path, e=expected: _field_value(obj, p) != e)
        else:
            requirements.append(lambda obj, p=path, e=expected: _field_value(obj, p) == e)
    if not requirements:
        return None
    return lambda obj: all(requirement(obj) for requirement in requirements)


def matcher(kind: str, label_selector: str = "", field_selector: str = "") -> Matcher:
    """One predicate for both selectors (labels first: they are the cheap, common filter)."""
    labels, fields = label_matcher(label_selector), field_matcher(kind, field_selector)
    if labels and fields:
        return lambda obj: labels(obj) and fields(obj)
    return labels or fields or (lambda obj: True)
