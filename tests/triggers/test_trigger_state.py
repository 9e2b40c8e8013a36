"""The trigger's saved state: the decided record round-trips through Airflow's XCom serde and as a Kubernetes Event
(another pod's or another try's is ignored); resume points round-trip through the pod annotation, and are written
only when they moved."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.serde import deserialize, serialize

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.hooks.kubernetes import async_core_v1
from airflow_kpo_deferrable.logs.lines import ResumePoint
from airflow_kpo_deferrable.podspec.names import LOG_RESUME_ANNOTATION, PodIdentity, try_suffix
from airflow_kpo_deferrable.triggers.record import RECORD_ANNOTATION, RECORD_REASON, record_event, record_of
from airflow_kpo_deferrable.triggers.state import (
    ResumePointWriter,
    StateStore,
    TriggerState,
    resume_points_on_pod,
    resume_points_patch,
    warm_up_supervisor,
)
from tests.support.scripted_cluster import create_pod


def test_the_record_round_trips_through_serde() -> None:
    state = TriggerState(uid="u1", logs={"base": ResumePoint(1_700_000_000_123_456_789, 3)}, decided={"outcome": "failed"})
    again = TriggerState.from_json(deserialize(serialize(state.to_json())), "u1")
    assert again == state


def test_a_record_of_another_pod_is_not_ours() -> None:
    assert TriggerState.from_json(TriggerState(uid="old").to_json(), "new") is None
    assert TriggerState.from_json("not a record", "new") is None


async def test_without_a_task_instance_nothing_is_saved_or_read() -> None:
    warnings: list[str] = []
    store = StateStore(None, warnings.append)
    assert await store.save(TriggerState(uid="u")) is False
    assert await store.load("u") is None
    assert warnings == []


def test_resume_points_round_trip_through_the_pod_annotation() -> None:
    points = {"base": ResumePoint(1_700_000_000_123_456_789, 2), "side": ResumePoint(5, 1)}
    patch = resume_points_patch(points)
    assert list(patch) == ["metadata"] and list(patch["metadata"]["annotations"]) == [LOG_RESUME_ANNOTATION]
    assert resume_points_on_pod(patch) == points


@pytest.mark.parametrize("raw", [None, "", "not json", "[1, 2]", '{"base": [1]}', '{"base": "x"}'])
def test_an_unreadable_annotation_means_start_over(raw: str | None) -> None:
    pod = {"metadata": {"annotations": {} if raw is None else {LOG_RESUME_ANNOTATION: raw}}}
    assert resume_points_on_pod(pod) == {}
    assert resume_points_on_pod(None) == {}


async def test_the_writer_patches_only_moved_points_and_warns_once_when_it_cannot() -> None:
    sent: list[dict] = []
    failing = False

    async def patch(body: dict) -> None:
        if failing:
            raise RuntimeError("403 Forbidden")
        sent.append(body)

    warnings: list[str] = []
    writer = ResumePointWriter(patch, warnings.append)
    writer.start_from({"base": ResumePoint(1, 1)})
    assert await writer.write({"base": ResumePoint(1, 1)}) and sent == []  # unchanged: no request
    assert await writer.write({"base": ResumePoint(2, 1)}) and len(sent) == 1
    failing = True
    assert not await writer.write({"base": ResumePoint(3, 1)})
    assert not await writer.write({"base": ResumePoint(4, 1)})
    assert len(warnings) == 1 and "RBAC: pods patch" in warnings[0]


class RecordingComms:
    """Stands in for Airflow's ``SUPERVISOR_COMMS`` (its interface: ``asend``), recording what a trigger sends."""

    def __init__(self) -> None:
        self.sent: list[object] = []

    async def asend(self, message: object) -> None:
        self.sent.append(message)


async def test_the_supervisor_is_warmed_once_per_process_with_one_cheap_request(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import GetTaskStates

    comms = RecordingComms()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    assert warm_up_supervisor(None, print) is None  # no task instance (dag.test, unit tests): nothing to ask
    assert warm_up_supervisor(SimpleNamespace(run_id=None), print) is None
    ti = SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=-1)
    first = warm_up_supervisor(ti, print)
    assert first is not None
    assert warm_up_supervisor(ti, print) is None  # a second trigger in the same process sends nothing
    await first
    assert [type(m) for m in comms.sent] == [GetTaskStates]


# -- the decided-outcome record as a Kubernetes Event (the emulator's real API) ------------------------------------

TRY = SimpleNamespace(dag_id="etl", task_id="load", run_id="manual__2026-01-01T00:00:00+00:00", map_index=-1,
                      try_number=1)


def _store(target: Any, pod: str, ti: Any = TRY, warnings: list[str] | None = None) -> StateStore:
    return StateStore(ti, (warnings if warnings is not None else []).append,
                      functools.partial(async_core_v1, target), "default", pod)


async def test_the_record_is_an_event_that_outlives_the_pod(target: Any) -> None:
    pod = await create_pod(target, "rec-1")
    state = TriggerState(uid=pod["uid"], logs={"base": ResumePoint(7, 1)}, decided={"outcome": "succeeded"},
                         pod="rec-1")
    warnings: list[str] = []
    assert await _store(target, "rec-1", warnings=warnings).save(state) is True
    assert await _store(target, "rec-1").save(state) is True  # a restarted trigger writing it again: 409 is fine
    api = await async_core_v1(target)
    await api.delete_namespaced_pod("rec-1", "default", grace_period_seconds=0)
    assert await _store(target, "rec-1").load(pod["uid"]) == state  # by uid (PodTrigger)
    assert await _store(target, "rec-1").load(None, pod="rec-1", xcom=False) == state  # by name (PodStartTrigger)
    assert await _store(target, "rec-1").load("another-uid") is None  # an earlier pod of that name: not ours
    next_try = SimpleNamespace(**{**vars(TRY), "try_number": 2})
    assert await _store(target, "rec-1", ti=next_try).load(pod["uid"]) is None  # the Event's name holds the try
    events = (await api.list_namespaced_event("default", field_selector="involvedObject.name=rec-1")).items
    ours = [e for e in events if e.reason == RECORD_REASON]
    assert len(ours) == 1 and "succeeded" in ours[0].message, events
    assert warnings == []


async def test_without_events_rbac_the_record_falls_back_to_the_xcom_and_says_so(
    target: Any, emulator: Emulator
) -> None:
    emulator.faults.error_rate(403, 1.0, verbs={"create"}, resources={"events"})
    warnings: list[str] = []
    # No supervisor in a test process: the XCom fallback is a no-op, so the save reports False.
    assert await _store(target, "rec-2", warnings=warnings).save(TriggerState(uid="u", decided={})) is False
    assert len(warnings) == 1 and "RBAC: events create/get" in warnings[0], warnings
    assert await _store(target, "rec-2").load("u") is None  # no Event: 404, and no supervisor to ask


def test_the_record_event_is_a_valid_event_named_for_pod_and_try() -> None:
    identity = PodIdentity(TRY.dag_id, TRY.task_id, TRY.run_id, TRY.map_index, TRY.try_number)
    event = record_event({"uid": "u", "decided": {"outcome": "failed"}}, "p", "ns", identity,
                         datetime(2026, 1, 1, tzinfo=UTC))
    assert event["metadata"]["name"] == f"p.{try_suffix(identity)}"
    assert event["involvedObject"] == {"apiVersion": "v1", "kind": "Pod", "name": "p", "namespace": "ns", "uid": "u"}
    assert record_of(event) == {"uid": "u", "decided": {"outcome": "failed"}}
    assert record_of({"metadata": {"annotations": {RECORD_ANNOTATION: "{broken"}}}) is None
