"""Kubernetes rules that both the API server half (defaults on create) and the kubelet half apply: one copy each.

Why: a test oracle with two copies of a rule drifts; both copies here were checked against Kubernetes 1.32:

* ``qos_class`` is ``GetPodQOS`` (pkg/apis/core/helper/qos): init containers count like containers; only cpu and
  memory count, and only quantities above zero; a request left out defaults to its limit (API defaulting); quantities
  compare by value, so ``requests.cpu: "1"`` with ``limits.cpu: "1000m"`` is Guaranteed. Guaranteed needs cpu and
  memory limits on every container and summed requests equal to summed limits; BestEffort has no request or limit
  at all; anything else is Burstable.
* ``default_pull_policy`` is ``SetDefaults_Container``: ``Always`` when the image's tag is ``latest``, or when it has
  neither tag nor digest (the tag then defaults to ``latest``); ``IfNotPresent`` for any other tag and for a digest
  without a tag. ``busybox:latest@sha256:...`` keeps its tag ``latest``: Always.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .quantities import parse_quantity

QOS_RESOURCES = ("cpu", "memory")


def _positive(resources: dict[str, Any], name: str) -> Decimal | None:
    """The quantity if above zero; an unparsable one counts as absent (validation is not this rule's job)."""
    try:
        value = parse_quantity(resources[name]) if name in resources else None
    except ValueError:
        return None
    return value if value is not None and value > 0 else None


def qos_class(spec: dict[str, Any]) -> str:
    """BestEffort, Guaranteed or Burstable for a pod spec (``status.qosClass``)."""
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        resources = container.get("resources") or {}
        given_limits = resources.get("limits") or {}
        given_requests = {**given_limits, **(resources.get("requests") or {})}
        found = set()
        for name in QOS_RESOURCES:
            if (request := _positive(given_requests, name)) is not None:
                requests[name] = requests.get(name, Decimal(0)) + request
            if (limit := _positive(given_limits, name)) is not None:
                found.add(name)
                limits[name] = limits.get(name, Decimal(0)) + limit
        if found != set(QOS_RESOURCES):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(name) == value for name, value in requests.items()) and len(requests) == len(
        limits
    ):
        return "Guaranteed"
    return "Burstable"


def image_tag_and_digest(image: str) -> tuple[str, str]:
    """The tag and digest of an image reference ("" when absent); a registry port is not a tag."""
    last = image.rsplit("/", 1)[-1]
    name_and_tag, _, digest = last.partition("@")
    return name_and_tag.partition(":")[2], digest


def default_pull_policy(image: str) -> str:
    """``imagePullPolicy`` the API server fills in when a container leaves it out."""
    tag, digest = image_tag_and_digest(image)
    if not tag and not digest:
        tag = "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def pull_policy(container: dict[str, Any]) -> str:
    """The container's ``imagePullPolicy``, or the default for its image."""
    return container.get("imagePullPolicy") or default_pull_policy(container.get("image", ""))
