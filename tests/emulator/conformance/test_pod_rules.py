"""The fixed rules as a client sees them: the official ``kubernetes`` client reads what the API server would write.

One rule, one copy: the QoS class written at creation (the API server's) and the one written once the pod runs
(the kubelet's) agree, also when requests and limits are spelled differently; a digest-only image defaults to
``IfNotPresent`` and the kubelet treats it as present (no pull).
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client import CoreV1Api

from tests.support.emulator import wait_for

pytestmark = pytest.mark.timeout(60)


def pod(name: str, image: str = "busybox:1.36", resources: dict[str, Any] | None = None) -> dict[str, Any]:
    container = {"name": "base", "image": image, "command": ["sleep", "30"], "resources": resources or {}}
    return {"metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0, "containers": [container]}}


def test_requests_1_and_limits_1000m_are_guaranteed_at_creation_and_while_running(api: CoreV1Api) -> None:
    resources = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "1024Mi"}}
    created = api.create_namespaced_pod("default", pod("guaranteed", resources=resources))
    assert created.status.qos_class == "Guaranteed"
    running = wait_for(api, "guaranteed", lambda p: p.status.phase == "Running")
    assert running.status.qos_class == "Guaranteed"


def test_a_digest_only_image_defaults_to_if_not_present_and_is_not_pulled(api: CoreV1Api) -> None:
    image = "busybox@sha256:" + "0123456789abcdef" * 4
    created = api.create_namespaced_pod("default", pod("pinned", image=image))
    assert created.spec.containers[0].image_pull_policy == "IfNotPresent"
    wait_for(api, "pinned", lambda p: p.status.phase == "Running")
    events = api.list_namespaced_event("default", field_selector="involvedObject.name=pinned").items
    reasons = [(e.reason, e.message) for e in events]
    assert ("Pulled", f'Container image "{image}" already present on machine') in reasons, reasons
    assert not any(reason == "Pulling" for reason, _ in reasons), reasons


def test_latest_and_untagged_images_default_to_always(api: CoreV1Api) -> None:
    for name, image in (("untagged", "busybox"), ("latest", "busybox:latest"), ("tagged", "busybox:1.36")):
        api.create_namespaced_pod("default", pod(name, image=image))
    policies = {name: api.read_namespaced_pod(name, "default").spec.containers[0].image_pull_policy
                for name in ("untagged", "latest", "tagged")}
    assert policies == {"untagged": "Always", "latest": "Always", "tagged": "IfNotPresent"}
