"""The shared watch against the emulator: O(1) requests for many pods, resume, 410 relist, late joiners, faults."""

from __future__ import annotations

import asyncio

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.hooks.kubernetes import ClusterTarget
from airflow_kpo_deferrable.outcome import Outcome, PodResult
from airflow_kpo_deferrable.triggers.pod import PodTrigger
from airflow_kpo_deferrable.watcher import WatcherRegistry
from tests.support.scripted_cluster import create_pod, scenario, watch_opened


async def _wait_all(target: ClusterTarget, pods: list[dict], registry: WatcherRegistry) -> list[PodResult]:
    triggers = [
        PodTrigger(pod_name=p["name"], namespace="default", pod_uid=p["uid"], cluster=target.to_dict()) for p in pods
    ]
    return await asyncio.wait_for(asyncio.gather(*(t.wait(registry) for t in triggers)), 60)


async def test_200_waiting_pods_cost_one_list_and_one_watch(emulator: Emulator, target: ClusterTarget) -> None:
    pods = [await create_pod(target, f"p{i}", annotations=scenario(duration=2 + i % 5 * 0.2)) for i in range(200)]
    emulator.reset_counters()
    results = await _wait_all(target, pods, WatcherRegistry())
    assert {r.outcome for r in results} == {Outcome.SUCCEEDED}
    counters = emulator.counters()
    assert counters.get("list pods", 0) == 1
    assert counters.get("watch pods", 0) == 1
    assert counters.get("get pods", 0) == 0  # no per-pod polling


async def test_a_closed_watch_resumes_from_its_resource_version(emulator: Emulator, target: ClusterTarget) -> None:
    pods = [await create_pod(target, f"r{i}", annotations=scenario(duration=1.5)) for i in range(5)]
    emulator.reset_counters()
    waiting = asyncio.create_task(_wait_all(target, pods, WatcherRegistry()))
    await watch_opened(emulator)
    emulator.faults.close_watches()
    assert {r.outcome for r in await waiting} == {Outcome.SUCCEEDED}
    counters = emulator.counters()
    assert counters.get("list pods", 0) == 1  # resumed, not relisted
    assert counters.get("watch pods", 0) >= 2


async def test_410_relists_and_notices_a_deletion_it_missed(emulator: Emulator, target: ClusterTarget) -> None:
    kept = await create_pod(target, "kept", annotations=scenario(duration=1.5))
    lost = await create_pod(target, "lost", annotations=scenario(duration=60))
    emulator.reset_counters()
    waiting = asyncio.create_task(_wait_all(target, [kept, lost], WatcherRegistry()))
    await watch_opened(emulator)
    # No await between these: the watcher cannot see the deletion on its old stream, and its version expires.
    emulator.faults.close_watches()
    emulator.store.delete("pods", "default", "lost", 0, None)
    emulator.faults.expire_history()
    results = await waiting
    assert [r.outcome for r in results] == [Outcome.SUCCEEDED, Outcome.DELETED]
    assert emulator.counters().get("list pods", 0) == 2


async def test_a_late_subscriber_gets_the_state_at_once(emulator: Emulator, target: ClusterTarget) -> None:
    registry = WatcherRegistry(grace_seconds=30)
    first = await create_pod(target, "first", annotations=scenario(duration=0.2))
    late = await create_pod(target, "late", annotations=scenario(duration=0.2))
    await _wait_all(target, [first], registry)
    await asyncio.sleep(1)  # "late" ended while nobody waited on it; the watch stayed up in its grace period
    emulator.reset_counters()
    [result] = await _wait_all(target, [late], registry)
    assert result.outcome is Outcome.SUCCEEDED
    assert emulator.counters() == {}  # answered from the shared watch's cache


async def test_a_pod_that_does_not_exist_is_reported_deleted(target: ClusterTarget) -> None:
    [result] = await _wait_all(target, [{"name": "ghost", "uid": None}], WatcherRegistry())
    assert result.outcome is Outcome.DELETED


async def test_retry_after_is_honoured(emulator: Emulator, target: ClusterTarget) -> None:
    pod = await create_pod(target, "busy", annotations=scenario(duration=0.5))
    emulator.reset_counters()
    emulator.faults.error_rate(429, 1.0, retry_after=2, verbs={"list"}, seconds=3)
    [result] = await _wait_all(target, [pod], WatcherRegistry())
    assert result.outcome is Outcome.SUCCEEDED
    # Without Retry-After the exponential backoff (0.5 s, 1 s, ...) would try 4+ times in 3 s.
    assert emulator.counters().get("list pods", 0) <= 3


async def test_forbidden_list_falls_back_to_polling(emulator: Emulator, target: ClusterTarget) -> None:
    pod = await create_pod(target, "rbac", annotations=scenario(duration=0.5))
    emulator.faults.error_rate(403, 1.0, verbs={"list", "watch"})
    [result] = await _wait_all(target, [pod], WatcherRegistry(poll_interval=0.3))
    assert result.outcome is Outcome.SUCCEEDED
    assert emulator.counters().get("get pods", 0) >= 2
