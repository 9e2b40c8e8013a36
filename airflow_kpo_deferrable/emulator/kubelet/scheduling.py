"""The default scheduler's decision for the one-node cluster, as pure functions of the pod spec and the Node.

Why pure: "Unschedulable" is an outcome the operator must recognise from ``PodScheduled`` False and the scheduler's
message, so the rule is tested without a pod running. Facts: ``nodeSelector`` and required node affinity
(``matchExpressions`` on labels with In/NotIn/Exists/DoesNotExist/Gt/Lt, ``matchFields`` on ``metadata.name``);
a pod's request is its running containers plus native sidecars, or its largest init container if that is more;
a request left out counts its limit; quantities compare by value (``quantities``). Messages are the scheduler's
``0/1 nodes are available: ...`` with the preemption suffix it adds.
"""

from __future__ import annotations

from decimal import Decimal

from ..nodeinfo import allocatable
from ..quantities import parse_quantity


def _expression_matches(expression: dict, labels: dict[str, str]) -> bool:
    key, operator, values = expression.get("key", ""), expression.get("operator", ""), expression.get("values") or []
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    if operator in ("Gt", "Lt") and key in labels and values:
        try:
            left, right = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return left > right if operator == "Gt" else left < right
    return False


def node_matches(spec: dict, node: dict) -> bool:
    """nodeSelector and required node affinity against the node's labels and name."""
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(key) != value for key, value in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return True
    fields = {"metadata.name": node["metadata"]["name"]}
    return any(
        all(_expression_matches(e, labels) for e in term.get("matchExpressions") or [])
        and all(_expression_matches(e, fields) for e in term.get("matchFields") or [])
        for term in terms
    )


def _container_request(container: dict, resource: str) -> Decimal:
    resources = container.get("resources") or {}
    value = (resources.get("requests") or {}).get(resource) or (resources.get("limits") or {}).get(resource)
    return parse_quantity(value) if value is not None else Decimal(0)


def pod_request(spec: dict, resource: str) -> Decimal:
    """What the scheduler counts: running containers and sidecars together, or the largest init container."""
    inits = spec.get("initContainers") or []
    sidecars = sum((_container_request(c, resource) for c in inits if c.get("restartPolicy") == "Always"), Decimal(0))
    regular = sum((_container_request(c, resource) for c in spec.get("containers") or []), Decimal(0))
    largest_init = max((_container_request(c, resource) for c in inits), default=Decimal(0))
    return max(regular + sidecars, largest_init)


def unschedulable_message(spec: dict, node: dict) -> str | None:
    """The default scheduler's FailedScheduling message for a one-node cluster, or None when the pod fits."""
    if not node_matches(spec, node):
        return (
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are "
            "available: 1 Preemption is not helpful for scheduling."
        )
    free = allocatable(node)
    short = [r for r in ("cpu", "memory") if pod_request(spec, r) > parse_quantity(free.get(r, "0"))]
    if not short:
        return None
    return insufficient_message(short)


def insufficient_message(resources: list[str]) -> str:
    reasons = ", ".join(f"1 Insufficient {r}" for r in resources)
    return (
        f"0/1 nodes are available: {reasons}. preemption: 0/1 nodes are available: 1 No preemption victims found for "
        "incoming pod."
    )

