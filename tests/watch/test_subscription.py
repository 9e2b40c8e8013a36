"""What a ``Subscription`` promises its waiter: coalesced updates, uid identity, a final error."""

from __future__ import annotations

from typing import Any

from airflow_kpo_deferrable.watcher import Subscription


def pod(uid: str, phase: str) -> dict[str, Any]:
    return {"metadata": {"name": "p", "uid": uid}, "status": {"phase": phase}}


async def test_updates_coalesce_into_the_newest_state_and_one_wake() -> None:
    sub = Subscription("p", "u1")
    for phase in ("Pending", "Running", "Succeeded"):
        sub.update(pod("u1", phase))
    assert await sub.changed(0.1) is True
    assert await sub.changed(0.05) is False  # three updates, one wake
    assert sub.pod is not None and sub.pod["status"]["phase"] == "Succeeded"


async def test_another_pod_with_our_name_reads_as_gone() -> None:
    sub = Subscription("p", "u1")
    sub.update(pod("u1", "Running"))
    sub.update(pod("u2", "Pending"))
    assert sub.gone
    assert sub.pod is not None and sub.pod["metadata"]["uid"] == "u1"  # the last state of *our* pod


async def test_an_error_is_final() -> None:
    sub = Subscription("p", "u1")
    sub.fail("forbidden")
    sub.update(pod("u1", "Running"))
    sub.mark_gone(None)
    sub.fail("something else")
    assert (sub.error, sub.pod, sub.gone) == ("forbidden", None, False)
