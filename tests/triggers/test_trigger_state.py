"""The trigger's saved state: the decided record round-trips through Airflow's XCom serde (another pod's is
ignored); resume points round-trip through the pod annotation, and are written only when they moved."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.sdk.serde import deserialize, serialize

from airflow_kpo_deferrable.logs.lines import ResumePoint
from airflow_kpo_deferrable.podspec.names import LOG_RESUME_ANNOTATION
from airflow_kpo_deferrable.triggers.state import (
    ResumePointWriter,
    StateStore,
    TriggerState,
    resume_points_on_pod,
    resume_points_patch,
    warm_up_supervisor,
)


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
