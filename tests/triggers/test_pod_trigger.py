"""PodTrigger against the emulator: one typed event per pod end, absolute deadlines, on_kill, no credentials."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airflow.sdk.serde import deserialize, serialize

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.hooks.kubernetes import ClusterTarget
from airflow_kpo_deferrable.outcome import Outcome, PodResult
from airflow_kpo_deferrable.triggers.pod import PodTrigger
from airflow_kpo_deferrable.watcher import WatcherRegistry
from tests.support.scripted_cluster import create_pod, scenario


def _trigger(target: ClusterTarget, pod: dict[str, Any], **kwargs: Any) -> PodTrigger:
    return PodTrigger(pod_name=pod["name"], namespace="default", pod_uid=pod["uid"], cluster=target.to_dict(), **kwargs)


def _in(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def _wait(trigger: PodTrigger, timeout: float = 20) -> PodResult:
    return await asyncio.wait_for(trigger.wait(WatcherRegistry(grace_seconds=0.1)), timeout)


async def test_run_yields_one_event_with_pod_identity(target: ClusterTarget) -> None:
    pod = await create_pod(target, "ok", annotations=scenario(duration=0.3))
    events = [event async for event in _trigger(target, pod).run()]
    assert len(events) == 1
    assert events[0].payload["outcome"] == "succeeded"
    assert (events[0].payload["pod_name"], events[0].payload["namespace"]) == ("ok", "default")


@pytest.mark.parametrize(
    ("annotations", "reason", "exit_code"),
    [
        (scenario(duration=0.2, exit_code=3), "Error", 3),
        (scenario(duration=0.2, failure="OOMKilled"), "OOMKilled", 137),
        (scenario(duration=0.2, failure="Evicted"), "Evicted", None),
        (scenario(duration=0.2, failure="DeadlineExceeded"), "DeadlineExceeded", None),
        (scenario(failure="InvalidImageName"), "InvalidImageName", None),
        (scenario(duration=0.2, failure="NodeLost"), "NodeLost", None),
    ],
)
async def test_failures_are_typed(target: ClusterTarget, annotations: dict, reason: str, exit_code: int | None) -> None:
    pod = await create_pod(target, "bad", annotations=annotations)
    result = await _wait(_trigger(target, pod))
    assert (result.outcome, result.reason) == (Outcome.FAILED, reason)
    if exit_code is not None:
        assert result.exit_code == exit_code


async def test_image_pull_error_fails_at_the_startup_deadline(target: ClusterTarget) -> None:
    pod = await create_pod(target, "pull", annotations=scenario(failure="ErrImagePull"))
    started = asyncio.get_running_loop().time()
    result = await _wait(_trigger(target, pod, startup_timeout_seconds=1.5))
    assert result.outcome is Outcome.FAILED
    assert result.reason in ("ErrImagePull", "ImagePullBackOff")
    assert asyncio.get_running_loop().time() - started < 10


async def test_unschedulable_fails_at_the_schedule_deadline(target: ClusterTarget) -> None:
    pod = await create_pod(target, "nowhere", annotations=scenario(failure="Unschedulable"))
    result = await _wait(_trigger(target, pod, schedule_deadline=_in(1)))
    assert (result.outcome, result.reason) == (Outcome.FAILED, "Unschedulable")
    assert "nodes are available" in (result.message or "")


async def test_execution_deadline_ends_a_running_pod(target: ClusterTarget) -> None:
    pod = await create_pod(target, "slow", annotations=scenario(duration=60))
    result = await _wait(_trigger(target, pod, execution_deadline=_in(1)))
    assert (result.outcome, result.reason) == (Outcome.TIMEOUT, "ExecutionTimeout")


async def test_a_sidecar_that_keeps_running_does_not_hang_the_task(target: ClusterTarget) -> None:
    annotations = scenario(duration=0.3, **{"duration.sidecar": 3600})
    pod = await create_pod(target, "side", annotations=annotations, containers=["base", "sidecar"])
    result = await _wait(_trigger(target, pod))
    assert result.outcome is Outcome.SUCCEEDED


async def test_a_pod_deleted_while_running_is_reported_deleted(emulator: Emulator, target: ClusterTarget) -> None:
    pod = await create_pod(target, "doomed", annotations=scenario(duration=60))
    waiting = asyncio.create_task(_wait(_trigger(target, pod)))
    await asyncio.sleep(0.5)
    emulator.store.delete("pods", "default", "doomed", 0, None)
    assert (await waiting).outcome is Outcome.DELETED


async def test_a_new_pod_with_the_same_name_is_not_ours(emulator: Emulator, target: ClusterTarget) -> None:
    pod = await create_pod(target, "reused", annotations=scenario(duration=60))
    emulator.store.delete("pods", "default", "reused", 0, None)
    await create_pod(target, "reused", annotations=scenario(duration=0.2))
    result = await _wait(_trigger(target, pod))
    assert result.outcome is Outcome.DELETED


async def test_deadlines_survive_a_restart(target: ClusterTarget) -> None:
    """A trigger re-created from its serialized kwargs (what a triggerer restart does) keeps the original clock."""
    pod = await create_pod(target, "restart", annotations=scenario(duration=60))
    first = _trigger(target, pod, execution_deadline=_in(6))
    with pytest.raises(TimeoutError):
        await _wait(first, timeout=3)
    _, kwargs = first.serialize()
    again = PodTrigger(**deserialize(json.loads(json.dumps(serialize(kwargs)))))  # what the trigger table does
    started = asyncio.get_running_loop().time()
    result = await _wait(again)
    assert result.reason == "ExecutionTimeout"
    assert asyncio.get_running_loop().time() - started < 4.5  # the remaining ~3 s, not a fresh 6


async def test_a_deadline_on_stale_watch_state_is_confirmed_first(emulator: Emulator, target: ClusterTarget) -> None:
    """The watch stalls while the pod finishes; the execution deadline then passes. One GET shows the truth (#40018)."""
    pod = await create_pod(target, "stale", annotations=scenario(duration=1))
    waiting = asyncio.create_task(_wait(_trigger(target, pod, execution_deadline=_in(2.5))))
    await asyncio.sleep(0.3)
    emulator.faults.error_rate(503, 1.0, verbs={"watch", "list"}, seconds=30)
    emulator.faults.close_watches()
    assert (await waiting).outcome is Outcome.SUCCEEDED


async def test_on_kill_deletes_the_pod(emulator: Emulator, target: ClusterTarget) -> None:
    pod = await create_pod(target, "killme", annotations=scenario(duration=60))
    await _trigger(target, pod, termination_grace_period=0).on_kill()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10  # the pod would run 60 s by itself
    while "killme" in (names := [p["metadata"]["name"] for p in emulator.store.list("pods", "default")[0]]):
        assert loop.time() < deadline, f"the pod is still there: {names}"
        await asyncio.sleep(0.05)


async def test_a_pod_that_ends_while_the_api_is_paused_is_seen_once_it_answers(
    emulator: Emulator, target: ClusterTarget
) -> None:
    pod = await create_pod(target, "paused", annotations=scenario(duration=1))
    waiting = asyncio.create_task(_wait(_trigger(target, pod), timeout=40))
    await asyncio.sleep(0.3)
    emulator.faults.pause(5)  # accepts connections, answers nothing: the pod ends meanwhile
    emulator.faults.close_watches()
    result = await waiting
    assert result.outcome is Outcome.SUCCEEDED


async def test_on_kill_force_deletes_a_pod_on_a_lost_node(emulator: Emulator, target: ClusterTarget) -> None:
    pod = await create_pod(target, "lost", annotations=scenario(duration=0.4, failure="NodeLost"))
    trigger = _trigger(target, pod)
    assert (await _wait(trigger)).reason == "NodeLost"
    await trigger.on_kill()  # a normal delete would stay pending forever: no kubelet confirms it
    names = [p["metadata"]["name"] for p in emulator.store.list("pods", "default")[0]]
    assert "lost" not in names


async def test_an_event_is_held_until_event_not_before(target: ClusterTarget) -> None:
    """A pod that ends right after the deferral: its event waits for the deferring worker (a lower bound only)."""
    pod = await create_pod(target, "fast", annotations=scenario(duration=0.1))
    trigger = _trigger(target, pod, event_not_before=_in(2))
    started = asyncio.get_running_loop().time()
    events = [event async for event in trigger.run()]
    assert asyncio.get_running_loop().time() - started >= 1.9
    assert [e.payload["outcome"] for e in events] == ["succeeded"]
    _, kwargs = trigger.serialize()
    assert PodTrigger(**deserialize(json.loads(json.dumps(serialize(kwargs))))).event_not_before == kwargs["event_not_before"]


async def test_on_kill_keeps_the_pod_when_asked(emulator: Emulator, target: ClusterTarget) -> None:
    pod = await create_pod(target, "keepme", annotations=scenario(duration=60))
    await _trigger(target, pod, on_kill_action="keep_pod").on_kill()
    assert emulator.store.get("pods", "default", "keepme")["metadata"].get("deletionTimestamp") is None


async def test_trigger_kwargs_hold_no_credentials(emulator: Emulator, target: ClusterTarget) -> None:
    pod = await create_pod(target, "secret", annotations=scenario(duration=0.1))
    _, kwargs = _trigger(target, pod).serialize()
    stored = json.dumps(kwargs, default=str)
    kubeconfig = emulator.kubeconfig_path.read_text()
    for secret_field in ("token:", "certificate-authority-data:", "client-key-data:"):
        for line in kubeconfig.splitlines():
            if secret_field in line:
                assert line.split(":", 1)[1].strip() not in stored
    assert set(kwargs["cluster"]) == {"conn_id", "config_file", "in_cluster", "cluster_context"}
