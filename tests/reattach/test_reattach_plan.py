"""The reattach plan: what a new try does with earlier tries' pods (pure rules, one row per case)."""

from __future__ import annotations

import pytest

from airflow_kpo_deferrable.node_loss import delete_grace_period, node_lost, node_lost_status
from airflow_kpo_deferrable.podspec import PodIdentity
from airflow_kpo_deferrable.reattach import EarlierPod, ReattachError, identity_selector, plan_reattach


def pod(name: str, phase: str | None = "Running", try_number: int = 1, deleting: bool = False,
        lost: bool = False) -> EarlierPod:
    return EarlierPod(name=name, uid=f"uid-{name}", try_number=try_number, phase=phase, deleting=deleting, lost=lost)


def plan(*pods: EarlierPod, reattach: bool = True, on_finish_action: str = "delete_pod"):
    return plan_reattach(list(pods), try_number=2, reattach=reattach, on_finish_action=on_finish_action)


def test_nothing_found_means_create() -> None:
    assert plan().adopt is None and plan().delete == ()


@pytest.mark.parametrize("phase", ["Pending", "Running", None])
def test_one_running_pod_of_an_earlier_try_is_adopted(phase: str | None) -> None:
    result = plan(pod("a", phase))
    assert result.adopt == pod("a", phase) and result.delete == ()
    assert any("adopting running pod a of try 1" in note for note in result.notes)


def test_without_reattach_running_pods_are_deleted_before_creating() -> None:
    result = plan(pod("a"), pod("b", "Pending"), reattach=False)
    assert result.adopt is None
    assert {p.name for p in result.delete} == {"a", "b"}


def test_two_running_pods_are_a_clear_error_naming_both() -> None:
    with pytest.raises(ReattachError, match=r"found 2 running pods.*a \(try 1, Running\), b \(try 1, Pending\)"):
        plan(pod("a"), pod("b", "Pending"))


@pytest.mark.parametrize(
    ("action", "phase", "deleted"),
    [
        ("delete_pod", "Succeeded", True),
        ("delete_pod", "Failed", True),
        ("delete_succeeded_pod", "Succeeded", True),
        ("delete_succeeded_pod", "Failed", False),
        ("keep_pod", "Succeeded", False),
        ("keep_pod", "Failed", False),
    ],
)
def test_finished_pods_are_never_adopted_and_get_the_on_finish_action(action: str, phase: str, deleted: bool) -> None:
    result = plan(pod("old", phase), on_finish_action=action)
    assert result.adopt is None
    assert [p.name for p in result.delete] == (["old"] if deleted else [])


def test_a_finished_pod_beside_a_running_one_does_not_block_adoption() -> None:
    result = plan(pod("old", "Failed"), pod("live", try_number=2))
    assert result.adopt is not None and result.adopt.name == "live"
    assert [p.name for p in result.delete] == ["old"]


def test_pods_being_deleted_are_left_to_go_but_a_lost_node_pod_is_deleted_not_adopted() -> None:
    assert plan(pod("going", deleting=True)).adopt is None
    assert plan(pod("going", deleting=True)).delete == ()
    result = plan(pod("lost", "Unknown", lost=True), pod("going-lost", "Unknown", deleting=True, lost=True))
    assert result.adopt is None
    assert {p.name for p in result.delete} == {"lost", "going-lost"}


def test_identity_selector_matches_every_try_of_this_task_instance_only() -> None:
    unmapped = identity_selector(PodIdentity(dag_id="d", task_id="t", run_id="r", map_index=-1, try_number=3))
    assert "try_number" not in unmapped and "!map_index" in unmapped.split(",")
    assert {"dag_id=d", "task_id=t", "run_id=r"} <= set(unmapped.split(","))
    mapped = identity_selector(PodIdentity(dag_id="d", task_id="t", run_id="r", map_index=4, try_number=1))
    assert "map_index=4" in mapped.split(",") and "!map_index" not in mapped


def test_node_loss_forces_a_zero_grace_period() -> None:
    assert node_lost("Unknown", None) and node_lost("Running", "NodeLost") and not node_lost("Running", None)
    assert node_lost_status({"phase": "Unknown", "reason": "NodeLost"}) and not node_lost_status(None)
    assert delete_grace_period(True, 30) == 0
    assert delete_grace_period(False, 30) == 30 and delete_grace_period(False, None) is None
