"""The trigger's saved state: it round-trips through Airflow's XCom serde, and a record of another pod is ignored."""

from __future__ import annotations

from airflow.sdk.serde import deserialize, serialize

from airflow_kpo_deferrable.logs.lines import ResumePoint
from airflow_kpo_deferrable.triggers.state import StateStore, TriggerState


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
    assert not store.available
    assert await store.save(TriggerState(uid="u")) is False
    assert await store.load("u") is None
    assert warnings == []
