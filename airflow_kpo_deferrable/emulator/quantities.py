"""Kubernetes resource quantities (``500m``, ``1.5Gi``, ``1e3``) as exact numbers.

Why: the scheduler compares requests with allocatable, the QoS class compares requests with limits and
``resourceFieldRef`` divides by a divisor; all must compare by value, never by spelling (``"1"`` equals ``"1000m"``).
``Decimal`` keeps ``100m`` exact where a float would not. Binary suffixes (Ki..Ei) are powers of 1024, decimal ones
(n, u, m, k, M, G, T, P, E) powers of ten; a bare number is base units.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def parse_quantity(value: str | int | float) -> Decimal:
    """A resource quantity as a number of base units; ``ValueError`` naming the value for anything else."""
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        raise ValueError(f"invalid quantity {value!r}: use e.g. 500m, 2, 128Mi, 1Gi")
    try:
        return Decimal(match[1]) * Decimal(_SUFFIXES[match[2] or ""])
    except InvalidOperation:
        raise ValueError(f"invalid quantity {value!r}") from None
