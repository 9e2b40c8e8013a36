"""``PodStartTrigger`` against the emulator's real API: create, adopt after a restart, never re-run a decided pod.

The task instance is a stand-in with the fields the triggerer's ``RuntimeTaskInstance`` has (no supervisor here, so
the decided-outcome record is the Kubernetes Event). Starting through Airflow itself (the scheduler, rendering, a
killed triggerer) is in ``tests/e2e/test_finish_in_triggerer.py``.
"""

from __future__ import annotations

import asyncio
import functools
from types import SimpleNamespace
from typing import Any

from airflow.triggers.base import TaskFailedEvent, TaskSuccessEvent, TriggerEvent

from airflow_kpo_deferrable import KubernetesPodOperator
from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.hooks.kubernetes import ClusterTarget, async_core_v1
from airflow_kpo_deferrable.podspec.names import PodIdentity, identity_labels, try_suffix
from airflow_kpo_deferrable.triggers.start import PodStartTrigger
from airflow_kpo_deferrable.triggers.state import StateStore, TriggerState
from tests.support.scripted_cluster import scenario

TRY = SimpleNamespace(dag_id="sft", task_id="pod", run_id="manual__2026-01-01T00:00:00+00:00", map_index=-1,
                      try_number=1)
IDENTITY = PodIdentity(TRY.dag_id, TRY.task_id, TRY.run_id, TRY.map_index, TRY.try_number)
NAME = f"sft-{try_suffix(IDENTITY)}"


def _trigger(target: ClusterTarget, **arguments: Any) -> PodStartTrigger:
    operator = KubernetesPodOperator(
        task_id=TRY.task_id, name="sft", namespace="default", image="busybox:1.36", kubernetes_conn_id=None,
        config_file=target.config_file, start_from_trigger=True, get_logs=False,
        annotations=scenario(duration=0.3), **arguments,
    )
    trigger = PodStartTrigger(**operator.start_trigger_args.trigger_kwargs)
    trigger.task_instance = TRY
    return trigger


async def _events(trigger: PodStartTrigger, timeout: float = 30) -> list[TriggerEvent]:
    async def collect() -> list[TriggerEvent]:
        return [event async for event in trigger.run()]

    return await asyncio.wait_for(collect(), timeout)


async def test_it_creates_the_try_named_pod_and_waits_for_it(target: ClusterTarget, emulator: Emulator) -> None:
    events = await _events(_trigger(target))
    assert len(events) == 1 and events[0].payload["outcome"] == "succeeded", events
    assert events[0].payload["pod_name"] == NAME
    assert emulator.counters().get("create pods") == 1


async def test_after_a_restart_it_adopts_the_pod_it_created(target: ClusterTarget, emulator: Emulator) -> None:
    api = await async_core_v1(target)
    await api.create_namespaced_pod("default", {  # what the run before the restart created
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": NAME, "labels": identity_labels(IDENTITY), "annotations": scenario(duration=0.5)},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox:1.36"}]},
    })
    events = await _events(_trigger(target))
    assert len(events) == 1 and events[0].payload["outcome"] == "succeeded", events
    pods = (await api.list_namespaced_pod("default")).items
    assert [p.metadata.name for p in pods] == [NAME]  # one pod: the 409 was ours


async def test_a_stranger_pod_of_that_name_fails_the_task_and_is_left_alone(target: ClusterTarget) -> None:
    api = await async_core_v1(target)
    await api.create_namespaced_pod("default", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": NAME, "annotations": scenario(duration=30)},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox:1.36"}]},
    })
    events = await _events(_trigger(target))
    assert len(events) == 1 and isinstance(events[0], TaskFailedEvent), events
    assert (await api.read_namespaced_pod(NAME, "default")).metadata.deletion_timestamp is None


async def test_a_pod_decided_and_deleted_before_a_restart_is_not_created_again(
    target: ClusterTarget, emulator: Emulator
) -> None:
    decided = {"outcome": "succeeded", "reason": None, "exit_code": 0, "message": None, "container": "base",
               "phase": "Succeeded"}
    store = StateStore(TRY, print, functools.partial(async_core_v1, target), "default", NAME)
    assert await store.save(TriggerState(uid="uid-before-restart", decided=decided, pod=NAME))
    trigger = _trigger(target)
    # The trigger ends the task (the mode that deletes pods and so writes the record; this test process may have
    # plugin listeners, which would choose a worker resume at parse).
    trigger.finish_in_triggerer, trigger.finish_reason = True, "the trigger finishes the task"
    events = await _events(trigger)
    assert len(events) == 1 and isinstance(events[0], TaskSuccessEvent), events
    assert emulator.counters().get("create pods", 0) == 0


async def test_a_bad_rendered_argument_fails_before_any_create(target: ClusterTarget, emulator: Emulator) -> None:
    trigger = _trigger(target, labels={"team": "{{ 'x' }}"})
    trigger.labels = {"team": "not a label value!"}  # what the triggerer's rendering made of it
    events = await _events(trigger)
    assert len(events) == 1 and isinstance(events[0], TaskFailedEvent), events
    assert emulator.counters().get("create pods", 0) == 0
