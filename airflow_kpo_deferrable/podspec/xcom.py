"""The pod shape of ``do_xcom_push``: the provider's XCom sidecar and the shared ``xcom`` volume.

Why: with ``do_xcom_push=True`` the base container writes its result to ``/airflow/xcom/return.json``; a sidecar
named ``airflow-xcom-sidecar`` keeps the pod open until the result is read over exec and then stops on SIGINT. The
names, image, command, mount path and resource requests are the provider's (10.25.0), so pod specs, RBAC rules and
network policies written for it keep working.

Facts it handles: the ``xcom`` emptyDir volume goes first in ``volumes`` and its mount first in the base
container's ``volumeMounts``, the sidecar last in ``containers`` (the provider's order). The connection extras
``xcom_sidecar_container_image`` / ``xcom_sidecar_container_resources`` (JSON) and the operator's
``xcom_sidecar_container_security_context`` (else the connection's) override the defaults.
"""

from __future__ import annotations

import copy
from typing import Any

XCOM_MOUNT_PATH = "/airflow/xcom"
XCOM_RESULT_PATH = f"{XCOM_MOUNT_PATH}/return.json"
XCOM_VOLUME = "xcom"
SIDECAR_NAME = "airflow-xcom-sidecar"
# A pinned tag, as the provider's: kubelet then defaults to IfNotPresent instead of pulling on every task.
SIDECAR_IMAGE = "alpine:3.24.2"
SIDECAR_COMMAND = ["sh", "-c", 'trap "exit 0" INT; while true; do sleep 1; done;']
SIDECAR_RESOURCES = {"requests": {"cpu": "1m", "memory": "10Mi"}}


def add_xcom_sidecar(
    pod: dict[str, Any],
    base_container_name: str,
    *,
    image: str | None = None,
    resources: dict[str, Any] | None = None,
    security_context: dict[str, Any] | None = None,
) -> None:
    """Add the XCom volume, the base container's mount of it and the sidecar to ``pod`` (changed in place)."""
    spec = pod["spec"]
    spec["volumes"] = [{"name": XCOM_VOLUME, "emptyDir": {}}, *(spec.get("volumes") or [])]
    base = next(c for c in spec["containers"] if c["name"] == base_container_name)
    base["volumeMounts"] = [{"name": XCOM_VOLUME, "mountPath": XCOM_MOUNT_PATH}, *(base.get("volumeMounts") or [])]
    sidecar: dict[str, Any] = {
        "name": SIDECAR_NAME,
        "command": list(SIDECAR_COMMAND),
        "image": image or SIDECAR_IMAGE,
        "volumeMounts": [{"name": XCOM_VOLUME, "mountPath": XCOM_MOUNT_PATH}],
        "resources": copy.deepcopy(resources or SIDECAR_RESOURCES),
    }
    if security_context is not None:
        sidecar["securityContext"] = security_context
    spec["containers"].append(sidecar)
