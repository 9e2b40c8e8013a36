"""Kubernetes resource quantities (``500m``, ``1Gi``, ``2e3``): parse them, and check requests against limits.

Why: a malformed quantity or a request above its limit is rejected by the API server at create time with a terse 422;
checking it here names the argument and the fix before any pod exists.

Facts it handles: YAML makes ``cpu: 1`` a number, which the API accepts but the client models (strings) do not, so
numbers in ``limits``/``requests``/``overhead`` maps and ``sizeLimit`` are turned into strings.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_QUANTITY = re.compile(r"(?P<number>[+-]?(\d+(\.\d*)?|\.\d+))(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": "1e-9", "u": "1e-6", "m": "1e-3", "": "1", "k": "1e3", "M": "1e6", "G": "1e9", "T": "1e12"}
_DECIMAL |= {"P": "1e15", "E": "1e18"}
_QUANTITY_MAPS = frozenset({"limits", "requests", "overhead"})


def stringify_quantities(value: Any) -> Any:
    """``cpu: 1`` is a valid quantity in YAML and the API, but the client models want the string ``"1"``."""
    if isinstance(value, list):
        return [stringify_quantities(item) for item in value]
    if not isinstance(value, dict):
        return value
    result = {}
    for key, item in value.items():
        if key in _QUANTITY_MAPS and isinstance(item, dict):
            item = {k: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for k, v in item.items()}
        elif key == "sizeLimit" and isinstance(item, int | float) and not isinstance(item, bool):
            item = str(item)
        result[key] = stringify_quantities(item)
    return result


def parse_quantity(text: str) -> Decimal | None:
    """The quantity's value, or None when ``text`` is not a quantity."""
    match = _QUANTITY.fullmatch(text)
    if not match:
        return None
    number, suffix = Decimal(match["number"]), match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * Decimal(_DECIMAL[suffix])
    try:
        return number * Decimal(10) ** int(suffix[1:])
    except (InvalidOperation, ValueError):
        return None


def resource_problems(where: str, resources: dict[str, Any]) -> list[str]:
    """Malformed or negative quantities, and requests above their limits, in one container's ``resources``."""
    problems = []
    parsed: dict[str, dict[str, Decimal]] = {}
    for kind in ("limits", "requests"):
        for resource, text in (resources.get(kind) or {}).items():
            amount = parse_quantity(text) if isinstance(text, str) else None
            if amount is None or amount < 0:
                problems.append(
                    f"{where}.{kind}.{resource}: {text!r} is not a Kubernetes quantity; "
                    "write e.g. '500m' or '2' for CPU and '512Mi' or '1Gi' for memory"
                )
            else:
                parsed.setdefault(kind, {})[resource] = amount
    for resource, request in parsed.get("requests", {}).items():
        limit = parsed.get("limits", {}).get(resource)
        if limit is not None and request > limit:
            problems.append(
                f"{where}: requests.{resource} ({resources['requests'][resource]}) exceeds limits.{resource} "
                f"({resources['limits'][resource]}); a request must not be larger than its limit"
            )
    return problems
