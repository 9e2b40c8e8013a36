"""The Kubernetes rules both halves of the emulator apply (``emulator.rules``), case by case from the docs.

QoS: https://kubernetes.io/docs/concepts/workloads/pods/pod-qos/ and ``GetPodQOS`` (pkg/apis/core/helper/qos):
Guaranteed needs cpu and memory limits on every container with requests equal to them (a request left out takes its
limit); BestEffort has no cpu/memory request or limit anywhere; the rest is Burstable. Init containers count.
Pull policy: https://kubernetes.io/docs/concepts/containers/images/#imagepullpolicy-defaulting and
``SetDefaults_Container``: Always for ``:latest`` or no tag, IfNotPresent for any other tag and for a digest.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_kpo_deferrable.emulator.rules import default_pull_policy, pull_policy, qos_class


def spec(*resources: dict[str, Any], init: dict[str, Any] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(resources)]}
    if init is not None:
        result["initContainers"] = [{"name": "init", "resources": init}]
    return result


EQUAL = {"cpu": "500m", "memory": "128Mi"}


@pytest.mark.parametrize(
    ("pod_spec", "expected"),
    [
        (spec({}), "BestEffort"),
        (spec({"requests": {"ephemeral-storage": "1Gi"}}), "BestEffort"),  # only cpu and memory count
        (spec({"requests": {"cpu": "0"}}), "BestEffort"),  # only quantities above zero count
        (spec({"requests": EQUAL, "limits": EQUAL}), "Guaranteed"),
        (spec({"limits": EQUAL}), "Guaranteed"),  # requests default to the limits
        (spec({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "1024Mi"}}),
         "Guaranteed"),  # compared by value, not by spelling
        (spec({"requests": {"cpu": "0.5", "memory": "128Mi"}, "limits": EQUAL}), "Guaranteed"),
        (spec({"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": EQUAL}), "Burstable"),
        (spec({"limits": {"cpu": "1"}}), "Burstable"),  # no memory limit
        (spec({"requests": {"memory": "64Mi"}}), "Burstable"),
        (spec({"limits": EQUAL}, {}), "Burstable"),  # one container (here the init one) without limits
        (spec({"limits": EQUAL}, init={"limits": EQUAL}), "Guaranteed"),
        (spec({"limits": EQUAL}, {"limits": EQUAL}), "Guaranteed"),
    ],
)
def test_qos_class(pod_spec: dict[str, Any], expected: str) -> None:
    assert qos_class(pod_spec) == expected


def test_an_unparsable_quantity_counts_as_absent_instead_of_raising() -> None:
    assert qos_class(spec({"requests": {"cpu": "lots"}})) == "BestEffort"


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("busybox", "Always"),  # no tag: the tag is latest
        ("busybox:latest", "Always"),
        ("docker.io/library/busybox:latest", "Always"),
        ("busybox:1.36", "IfNotPresent"),
        ("busybox@sha256:" + "a" * 64, "IfNotPresent"),  # a digest and no tag
        ("busybox:1.36@sha256:" + "a" * 64, "IfNotPresent"),
        ("busybox:latest@sha256:" + "a" * 64, "Always"),  # the tag is still latest
        ("localhost:5000/app", "Always"),  # a registry port is not a tag
        ("localhost:5000/app:v1", "IfNotPresent"),
    ],
)
def test_default_pull_policy(image: str, expected: str) -> None:
    assert default_pull_policy(image) == expected


def test_a_given_pull_policy_wins() -> None:
    assert pull_policy({"image": "busybox:1.36", "imagePullPolicy": "Always"}) == "Always"
    assert pull_policy({"image": "busybox@sha256:" + "a" * 64}) == "IfNotPresent"
