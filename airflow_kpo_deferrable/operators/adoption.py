"""The worker's side of reattach: find this task's pods of earlier tries, delete what the plan says, adopt one.

Why a module: the rules are pure (``reattach``); this is their I/O with the sync ``kubernetes`` client, kept out of
``operators/pod.py`` so the operator stays about arguments and the pod's path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from kubernetes.client import CoreV1Api, V1Pod
from kubernetes.client.exceptions import ApiException
from tenacity import Retrying

from airflow_kpo_deferrable.podspec import PodIdentity
from airflow_kpo_deferrable.reattach import EarlierPod, identity_selector, plan_reattach

DeletePod = Callable[[str, str | None, bool], None]  # (name, uid, node lost)


def find_pods(api: CoreV1Api, namespace: str, identity: PodIdentity, retrying: Callable[[], Retrying]) -> list[V1Pod]:
    """Every pod in ``namespace`` with this task instance's identity labels, any try.

    RBAC that forbids ``list`` (403) turns reattach off with a warning instead of failing the task.
    """
    for attempt in retrying():
        with attempt:
            try:
                return api.list_namespaced_pod(namespace, label_selector=identity_selector(identity)).items
            except ApiException as error:
                if error.status != 403:
                    raise
                logging.getLogger(__name__).warning(
                    "Cannot list pods in %s (403 Forbidden): earlier tries' pods cannot be found, so none is adopted "
                    "or deleted; grant 'list' on pods (README RBAC)", namespace)
                return []
    return []


def adopt_or_clear(
    api: CoreV1Api,
    namespace: str,
    identity: PodIdentity,
    *,
    reattach: bool,
    on_finish_action: str,
    delete: DeletePod,
    retrying: Callable[[], Retrying],
    log: logging.Logger,
) -> V1Pod | None:
    """Apply the reattach plan; returns the earlier try's pod to wait on, or None to create a new one.

    Raises ``reattach.ReattachError`` (before anything is deleted) when more than one running pod matches.
    """
    pods = find_pods(api, namespace, identity, retrying)
    if not pods:
        return None
    by_name = {p.metadata.name: p for p in pods}
    plan = plan_reattach(
        [EarlierPod.from_pod(p) for p in pods],
        try_number=identity.try_number,
        reattach=reattach,
        on_finish_action=on_finish_action,
    )
    for note in plan.notes:
        log.info("Earlier tries: %s", note)
    for pod in plan.delete:
        delete(pod.name, pod.uid, pod.lost)
    return by_name[plan.adopt.name] if plan.adopt is not None else None
