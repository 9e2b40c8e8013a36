"""Label and field selectors, parsed like the API server parses them.

Why: the operator's shared watch relies on ``labelSelector`` (managed-by label, ``in``/``notin``), ``kubectl delete
--wait`` on ``fieldSelector=metadata.name=...`` and event lookups on ``involvedObject.*``; a selector the emulator
got wrong would make those tests pass for the wrong reason.

Facts handled: label selectors are parsed by a port of apimachinery's ``labels.Parse`` (its lexer and recursive
descent, so a bad selector gets the same 400 message word for word, keys and values are validated, and ``gt``/``lt``
work); ``=`` and ``==`` are the same; ``!=`` and ``notin`` also match objects without the label; field selectors only
accept the fields the real server registers per kind (others are a 400 ``field label not supported``), and a field
that is absent compares as the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import ApiError
from .validation import label_value_errors, qualified_name_errors

Matcher = Callable[[dict[str, Any]], bool]

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


class _SelectorError(Exception):
    pass


_SPECIAL = frozenset("=!(),><")
_SPACE = frozenset(" \t\r\n")
_SYMBOLS = {")": "CLOSE", ",": "COMMA", "!": "NOT", "(": "OPEN", "==": "==", "=": "=", "!=": "!=", ">": "gt", "<": "lt"}
_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"


def _lex(text: str) -> list[tuple[str, str]]:
    """Tokens as (kind, literal): symbols, "in"/"notin" keywords, "ID" identifiers, then ("END", "")."""
    tokens, pos = [], 0
    while True:
        while pos < len(text) and text[pos] in _SPACE:
            pos += 1
        if pos == len(text):
            return [*tokens, ("END", "")]
        start = pos
        if text[pos] in _SPECIAL:  # the longest symbol: "!=" rather than "!", "==" rather than "="
            while pos < len(text) and text[start : pos + 1] in _SYMBOLS:
                pos += 1
            tokens.append((_SYMBOLS[text[start:pos]], text[start:pos]))
        else:
            while pos < len(text) and text[pos] not in _SPECIAL and text[pos] not in _SPACE:
                pos += 1
            literal = text[start:pos]
            tokens.append((literal if literal in ("in", "notin") else "ID", literal))


class _LabelParser:
    """apimachinery's ``labels.Parser``; in a value position "in" and "notin" are plain identifiers."""

    def __init__(self, text: str) -> None:
        self.tokens, self.position = _lex(text), 0

    def lookahead(self, values: bool = True) -> tuple[str, str]:
        kind, literal = self.tokens[min(self.position, len(self.tokens) - 1)]
        return ("ID" if values and kind in ("in", "notin") else kind), literal

    def consume(self, values: bool = True) -> tuple[str, str]:
        token = self.lookahead(values)
        self.position += 1
        return token

    def parse(self) -> list[Matcher]:
        requirements: list[Matcher] = []
        while True:
            kind, literal = self.lookahead()
            if kind == "END":
                return requirements
            if kind not in ("ID", "NOT"):
                raise _SelectorError(f"found '{literal}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except _SelectorError as error:
                raise _SelectorError(f"unable to parse requirement: {error}") from None
            kind, literal = self.consume()
            if kind == "END":
                return requirements
            if kind != "COMMA":
                raise _SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            kind, literal = self.lookahead()
            if kind not in ("ID", "NOT"):
                raise _SelectorError(f"found '{literal}', expected: identifier after ','")

    def requirement(self) -> Matcher:
        operator = ""
        kind, key = self.consume()
        if kind == "NOT":
            operator = "!"
            kind, key = self.consume()
        if kind != "ID":
            raise _SelectorError(f"found '{key}', expected: identifier")
        if errors := qualified_name_errors(key):
            raise _SelectorError(f'<nil>: Invalid value: "{key}": ' + "; ".join(errors))
        if operator == "!" or self.lookahead()[0] in ("END", "COMMA"):
            return _requirement(key, operator or "exists", [])
        kind, literal = self.consume(values=False)
        if kind not in ("in", "notin", "=", "==", "!=", "gt", "lt"):
            raise _SelectorError(f"found '{literal}', expected: {_BINARY_OPERATORS}")
        values = self.values() if kind in ("in", "notin") else self.exact_value()
        return _requirement(key, kind, sorted(values))

    def values(self) -> set[str]:
        kind, literal = self.consume()
        if kind != "OPEN":
            raise _SelectorError(f"found '{literal}' expected: '('")
        kind, literal = self.lookahead()
        if kind == "CLOSE":
            self.consume()
            return {""}
        if kind not in ("ID", "COMMA"):
            raise _SelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self.identifiers()
        if self.consume()[0] != "CLOSE":
            raise _SelectorError(f"found '{literal}', expected: ')'")
        return values

    def identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            kind, literal = self.consume()
            if kind == "ID":
                values.add(literal)
                after, after_literal = self.lookahead()
                if after == "CLOSE":
                    return values
                if after != "COMMA":
                    raise _SelectorError(f"found '{after_literal}', expected: ',' or ')'")
            elif kind == "COMMA":  # "(,", ",," and ",)" hold empty values
                if not values:
                    values.add("")
                after = self.lookahead()[0]
                if after == "CLOSE":
                    values.add("")
                    return values
                if after == "COMMA":
                    self.consume()
                    values.add("")
            else:
                raise _SelectorError(f"found '{literal}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.lookahead()[0] in ("END", "COMMA"):
            return {""}
        kind, literal = self.consume()
        if kind != "ID":
            raise _SelectorError(f"found '{literal}', expected: identifier")
        return {literal}


def _requirement(key: str, operator: str, values: list[str]) -> Matcher:
    """``labels.NewRequirement``: validate the values (errors aggregated like ``utilerrors.NewAggregate``)."""
    errors: list[str] = []
    for index, value in enumerate(values):
        if operator in ("gt", "lt") and not re.fullmatch(r"[+-]?[0-9]+", value):
            errors.append(f'values[{index}]: Invalid value: "{value}": '
                          "for 'Gt', 'Lt' operators, the value must be an integer")
        if problems := label_value_errors(value):
            errors.append(f'values[{index}][{key}]: Invalid value: "{value}": ' + "; ".join(problems))
    errors = list(dict.fromkeys(errors))
    if errors:
        raise _SelectorError(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
    wanted = set(values)
    if operator in ("in", "=", "=="):
        return lambda labels: key in labels and labels[key] in wanted
    if operator in ("notin", "!="):
        return lambda labels: key not in labels or labels[key] not in wanted
    if operator == "exists":
        return lambda labels: key in labels
    if operator == "!":
        return lambda labels: key not in labels
    bound = int(values[0])

    def compare(labels: dict[str, str]) -> bool:
        if not re.fullmatch(r"[+-]?[0-9]+", labels.get(key, "")):
            return False
        return int(labels[key]) > bound if operator == "gt" else int(labels[key]) < bound

    return compare


def label_matcher(selector: str) -> Matcher | None:
    """A predicate on an object's labels for ``selector``, or None when the selector selects everything."""
    try:
        requirements = _LabelParser(selector or "").parse()
    except _SelectorError as error:
        raise ApiError(400, "BadRequest", str(error)) from None
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
