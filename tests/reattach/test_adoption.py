"""Reattach through the real ``kubernetes`` client against the emulator: earlier tries' pods found by identity labels,
adopted or deleted; another task instance's pods (another map index, another task) are never touched."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import kubernetes
import pytest
from kubernetes.client import CoreV1Api
from tenacity import Retrying, stop_after_attempt

from airflow_kpo_deferrable.emulator import Emulator, scenario
from airflow_kpo_deferrable.operators.adoption import adopt_or_clear
from airflow_kpo_deferrable.podspec import PodIdentity, identity_labels
from airflow_kpo_deferrable.reattach import ReattachError
from tests.support.emulator import wait_for

log = logging.getLogger(__name__)


@pytest.fixture
def kube(k8s_emulator_factory: Callable[..., Emulator]) -> Iterator[CoreV1Api]:
    emulator = k8s_emulator_factory(runtime="scripted")
    client = kubernetes.config.new_client_from_config(config_file=str(emulator.kubeconfig_path))
    yield CoreV1Api(client)
    client.close()


def identity(try_number: int, map_index: int = -1, task_id: str = "t") -> PodIdentity:
    return PodIdentity(dag_id="d", task_id=task_id, run_id="manual__2026-01-01T00:00:00+00:00", map_index=map_index,
                       try_number=try_number)


def create(kube: CoreV1Api, name: str, who: PodIdentity, duration: float = 600, failure: str | None = None) -> None:
    annotations = scenario(duration=duration, failure=failure) if failure else scenario(duration=duration)
    body = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": identity_labels(who), "annotations": annotations},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox"}]},
    }
    kube.create_namespaced_pod("default", body)


def names(kube: CoreV1Api) -> set[str]:
    return {p.metadata.name for p in kube.list_namespaced_pod("default").items if not p.metadata.deletion_timestamp}


def run(kube: CoreV1Api, who: PodIdentity, *, reattach: bool = True, action: str = "delete_pod") -> tuple[object, list]:
    deleted: list[tuple[str, bool]] = []

    def delete(name: str, uid: str | None, lost: bool) -> None:
        deleted.append((name, lost))
        kube.delete_namespaced_pod(name, "default", grace_period_seconds=0)

    adopted = adopt_or_clear(kube, "default", who, reattach=reattach, on_finish_action=action, delete=delete,
                             retrying=lambda: Retrying(stop=stop_after_attempt(2), reraise=True), log=log)
    return adopted, deleted


def running(pod) -> bool:  # noqa: ANN001
    return pod.status.phase == "Running"


def test_a_running_pod_of_the_killed_try_is_adopted_and_other_task_instances_are_untouched(kube: CoreV1Api) -> None:
    create(kube, "try-1", identity(1))
    create(kube, "other-map-index", identity(1, map_index=0))
    create(kube, "other-task", identity(1, task_id="u"))
    wait_for(kube, "try-1", running)
    adopted, deleted = run(kube, identity(2))
    assert adopted is not None and adopted.metadata.name == "try-1"
    assert deleted == []
    assert names(kube) == {"try-1", "other-map-index", "other-task"}


def test_without_reattach_the_earlier_pod_is_deleted(kube: CoreV1Api) -> None:
    create(kube, "try-1", identity(1))
    create(kube, "other-map-index", identity(1, map_index=0))
    adopted, deleted = run(kube, identity(2), reattach=False)
    assert adopted is None and deleted == [("try-1", False)]
    assert names(kube) == {"other-map-index"}


def test_a_finished_earlier_pod_is_not_adopted_and_gets_the_on_finish_action(kube: CoreV1Api) -> None:
    create(kube, "done", identity(1), duration=0.1)
    wait_for(kube, "done", lambda p: p.status.phase == "Succeeded")
    assert run(kube, identity(2), action="keep_pod") == (None, [])
    assert names(kube) == {"done"}
    assert run(kube, identity(2)) == (None, [("done", False)])
    assert names(kube) == set()


def test_two_running_matches_are_an_error_and_nothing_is_deleted(kube: CoreV1Api) -> None:
    create(kube, "try-1", identity(1))
    create(kube, "try-2", identity(2))
    with pytest.raises(ReattachError, match="found 2 running pods"):
        run(kube, identity(3))
    assert names(kube) == {"try-1", "try-2"}


def test_a_pod_on_a_lost_node_is_force_deleted_not_adopted(kube: CoreV1Api) -> None:
    create(kube, "lost", identity(1), duration=0.4, failure="NodeLost")
    pod = wait_for(kube, "lost", lambda p: p.status.phase == "Unknown", timeout=20)
    assert pod.status.reason == "NodeLost"
    adopted, deleted = run(kube, identity(2))
    assert adopted is None and deleted == [("lost", True)]
