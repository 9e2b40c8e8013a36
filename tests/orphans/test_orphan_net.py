"""The orphan net: which task instance states own a pod, and the triggerer's sweep over a real shared watch.

Airflow's answer (``GetTaskStates``) is supplied by the test: the triggerer's supervisor is Airflow's, and the
end-to-end fault matrix (tests/e2e/test_no_orphans.py) runs the same sweep inside a real triggerer.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from airflow_kpo_deferrable.hooks.kubernetes import ClusterTarget, async_core_v1
from airflow_kpo_deferrable.orphans import (
    FINAL_STATES,
    MISSING,
    OrphanSweeper,
    Owner,
    TryEnded,
    ensure_running,
    orphaned,
    owner_state,
    state_key,
    sweep_candidates,
)
from airflow_kpo_deferrable.podspec import MANAGED_BY_SELECTOR, PodIdentity, identity_labels, safe_label_value
from airflow_kpo_deferrable.triggers.pod import delete_pod_async
from airflow_kpo_deferrable.watcher import WatcherRegistry, WatchKey
from tests.support.scripted_cluster import scenario

RUN_ID = "manual__2026-01-01T00:00:00+00:00"


def labels(task_id: str = "t", map_index: int = -1) -> dict[str, str]:
    return identity_labels(PodIdentity(dag_id="d", task_id=task_id, run_id=RUN_ID, map_index=map_index, try_number=1))


def slim(name: str, phase: str = "Running", **metadata: Any) -> dict[str, Any]:
    metadata = {"name": name, "uid": f"uid-{name}", "labels": labels(), **metadata}
    return {"metadata": metadata, "status": {"phase": phase}}


@pytest.mark.parametrize("state", sorted(FINAL_STATES))
def test_final_states_orphan_a_pod(state: str) -> None:
    assert orphaned(state)


@pytest.mark.parametrize("state", ["running", "deferred", "queued", "scheduled", "up_for_retry", "restarting", None])
def test_states_someone_still_owns_do_not(state: str | None) -> None:
    assert not orphaned(state)


def test_the_owner_is_found_under_its_label_safe_run_id_and_mapped_key() -> None:
    owner = Owner.of({"metadata": {"labels": labels(map_index=3)}})
    assert owner == Owner("d", "t", safe_label_value(RUN_ID), 3)
    answer = {"other_run": {"t_3": "running"}, RUN_ID: {"t_3": "failed", "t": "success"}}
    assert owner_state(owner, answer) == "failed"
    assert owner_state(owner, {"other_run": {"t_3": "failed"}}) is None  # no answer for it: never deleted
    assert state_key("t", -1) == "t" and state_key("t", 0) == "t_0"
    assert Owner.of({"metadata": {"labels": {"dag_id": "d"}}}) is None  # not one of ours (no identity)


def test_candidates_are_unwatched_running_pods_older_than_the_grace() -> None:
    since: dict[str, float] = {}
    pods = [slim("watched"), slim("done", "Succeeded"), slim("free"), slim("going", deletionTimestamp="x"),
            {**slim("lost", "Unknown", deletionTimestamp="x"), "status": {"phase": "Unknown", "reason": "NodeLost"}}]
    watched = {"watched"}.__contains__
    assert sweep_candidates(pods, watched, since, now=100.0, grace=10) == []
    due = sweep_candidates(pods, watched, since, now=110.0, grace=10)
    assert [p["metadata"]["name"] for p in due] == ["free", "lost"]
    # A pod watched again (a trigger picked it up) starts over.
    assert sweep_candidates(pods[:2], watched, since, now=111.0, grace=10) == [] and since == {}


class FakeTI:
    """The ``RuntimeTaskInstance`` surface the worker's check uses, answering as Airflow's API would."""

    dag_id, task_id, run_id, map_index, try_number = "d", "t", RUN_ID, -1, 1

    def __init__(self, state: str | None | Exception) -> None:
        self.state = state

    def get_task_states(self, **query: Any) -> dict[str, dict[str, str | None]]:
        if isinstance(self.state, Exception):
            raise self.state
        assert query == {"dag_id": "d", "task_ids": ["t"], "run_ids": [RUN_ID], "map_index": -1}
        return {RUN_ID: {"t": self.state}}


@pytest.mark.parametrize("state", ["failed", "success", None, "up_for_retry"])
def test_the_worker_stops_when_its_try_no_longer_runs(state: str | None) -> None:
    with pytest.raises(TryEnded, match=f"no longer running before create: its state is {state!r}"):
        ensure_running(FakeTI(state), "before create")


def test_the_worker_goes_on_while_running_or_when_airflow_cannot_tell() -> None:
    ensure_running(FakeTI("running"), "before create")
    ensure_running(FakeTI(RuntimeError("no supervisor")), "before create")
    assert MISSING != "running"


async def _create(target: ClusterTarget, name: str, pod_labels: dict[str, str], **annotations: Any) -> None:
    api = await async_core_v1(target)
    await api.create_namespaced_pod("default", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": pod_labels, "annotations": scenario(**annotations)},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox"}]},
    })


async def _names(target: ClusterTarget) -> set[str]:
    api = await async_core_v1(target)
    pods = await api.list_namespaced_pod("default")
    return {p.metadata.name for p in pods.items if p.metadata.deletion_timestamp is None}


async def test_the_sweep_deletes_only_unwatched_pods_whose_task_instance_finished(target: ClusterTarget) -> None:
    await _create(target, "watched", labels("a"), duration=600)
    await _create(target, "owner-failed", labels("b"), duration=600)
    await _create(target, "owner-running", labels("c"), duration=600)
    await _create(target, "owner-unknown", labels("e"), duration=600)
    answers = {"a": "failed", "b": "failed", "c": "running"}  # "e": Airflow gives no answer for it
    asked: list[Owner] = []

    async def ask(owner: Owner) -> dict[str, dict[str, str | None]]:
        asked.append(owner)
        return {RUN_ID: {owner.task_id: answers[owner.task_id]}} if owner.task_id in answers else {}

    registry = WatcherRegistry(grace_seconds=0.1)
    key = WatchKey(cluster=target, namespace="default", selector=MANAGED_BY_SELECTOR)
    factory = functools.partial(async_core_v1, target)
    sweeper = OrphanSweeper("default", grace=0.5, ask=ask, delete=functools.partial(delete_pod_async, target))
    async with registry.subscription(key, factory, "watched", None) as (watcher, _):
        async def listed() -> None:
            while len(watcher.pods()) < 4:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(listed(), 20)
        assert await sweeper.sweep(watcher.pods(), watcher.watched) == []  # nothing is older than the grace yet
        await asyncio.sleep(0.6)
        assert await sweeper.sweep(watcher.pods(), watcher.watched) == ["owner-failed"]
    assert {o.task_id for o in asked} == {"b", "c", "e"}  # the watched pod's owner is never asked
    assert await _names(target) == {"watched", "owner-running", "owner-unknown"}
