"""Live logs and finishing in the trigger, against the emulator: lines while the pod runs, each exactly once.

The trigger's log is read as Airflow reads it: the records its logger emits (one record per container line).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import pytest
from airflow.triggers.base import TaskFailedEvent, TaskSkippedEvent, TaskSuccessEvent

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.hooks.kubernetes import ClusterTarget, async_core_v1
from airflow_kpo_deferrable.logs.aio import copy_container_log_async
from airflow_kpo_deferrable.logs.lines import ResumePoint
from airflow_kpo_deferrable.triggers.live_logs import DEFAULT_MAX_LOG_STREAMS, set_max_log_streams
from airflow_kpo_deferrable.triggers.pod import PodTrigger
from airflow_kpo_deferrable.triggers.state import resume_points_on_pod
from tests.support.log_reads import expected_lines
from tests.support.scripted_cluster import create_pod, scenario

FINISH = {"on_finish_action": "delete_pod", "skip_on_exit_code": [42]}


class Records(logging.Handler):
    """Every record of the trigger's logger, with the time it arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((time.monotonic(), record.getMessage()))

    def lines(self, prefix: str = "base line ") -> list[str]:
        return [text for _, text in self.seen if text.startswith(prefix)]


def _trigger(target: ClusterTarget, pod: dict[str, Any], records: Records, **kwargs: Any) -> PodTrigger:
    trigger = PodTrigger(
        pod_name=pod["name"], namespace="default", pod_uid=pod["uid"], cluster=target.to_dict(),
        log_containers=["base"], live_logs=True, **kwargs,
    )
    logger = logging.getLogger(f"test.trigger.{pod['name']}")
    logger.addHandler(records)
    logger.setLevel(logging.INFO)
    trigger._log = logger  # the logger Airflow's LoggingMixin would create, as a stdlib one we can read
    return trigger


async def _events(trigger: PodTrigger, timeout: float = 60) -> list[Any]:
    async def collect() -> list[Any]:
        return [event async for event in trigger.run()]

    return await asyncio.wait_for(collect(), timeout)


async def _exists(target: ClusterTarget, name: str) -> bool:
    api = await async_core_v1(target)
    pods = await api.list_namespaced_pod("default", field_selector=f"metadata.name={name}")
    return bool(pods.items)


async def test_lines_arrive_while_the_pod_runs_then_the_trigger_ends_the_task(target: ClusterTarget) -> None:
    values = {"log_lines": 20, "log_interval": 0.2, "duration": 4}
    pod = await create_pod(target, "live", annotations=scenario(**values))
    records = Records()
    started = time.monotonic()
    events = await _events(_trigger(target, pod, records, finish=FINISH))
    ended = time.monotonic()
    assert [type(e) for e in events] == [TaskSuccessEvent]
    assert records.lines() == expected_lines(values)  # every line once, in order
    first_line = next(at for at, text in records.seen if text.startswith("base line "))
    assert first_line - started < 0.6 * (ended - started), "the first line came only at the end"
    assert any("Finished in the triggerer: the task ends success" in text for _, text in records.seen)
    assert not await _exists(target, "live")


async def test_a_stream_cut_midway_loses_and_repeats_nothing(target: ClusterTarget, emulator: Emulator) -> None:
    values = {"log_lines": 200, "log_interval": 0.01, "duration": 2.5}
    emulator.faults.cut_streams(2_000, count=3)
    pod = await create_pod(target, "cut", annotations=scenario(**values))
    records = Records()
    events = await _events(_trigger(target, pod, records, finish=FINISH))
    assert [type(e) for e in events] == [TaskSuccessEvent]
    assert records.lines() == expected_lines(values)


@pytest.mark.parametrize(("exit_code", "event"), [(42, TaskSkippedEvent), (3, TaskFailedEvent)])
async def test_a_failed_pod_skips_or_fails_with_the_reason_and_last_lines(
    target: ClusterTarget, exit_code: int, event: type
) -> None:
    values = {"log_lines": 3, "duration": 0.5, "exit_code": exit_code}
    pod = await create_pod(target, f"exit-{exit_code}", annotations=scenario(**values))
    records = Records()
    events = await _events(_trigger(target, pod, records, finish=FINISH))
    assert [type(e) for e in events] == [event]
    texts = [text for _, text in records.seen]
    assert any(f"exit code {exit_code})" in text for text in texts), texts
    assert "Last log lines:" in texts
    assert texts.count("base line 3") == 2  # live, then in the tail after the reason


async def test_without_finishing_the_event_hands_the_resume_point_to_the_worker(target: ClusterTarget) -> None:
    values = {"log_lines": 10, "log_interval": 0.05, "duration": 1}
    pod = await create_pod(target, "handover", annotations=scenario(**values))
    records = Records()
    [event] = await _events(_trigger(target, pod, records))
    assert event.payload["outcome"] == "succeeded" and records.lines() == expected_lines(values)
    stamp, count = event.payload["log_resume"]["base"]
    rest: list[str] = []
    api = await async_core_v1(target)
    await copy_container_log_async(api, "handover", "default", "base", rest.append, start_after=ResumePoint(stamp, count))
    assert rest == []  # the worker's copy after the hand-over writes nothing twice
    assert await _exists(target, "handover")  # a worker resume deletes it, not the trigger


async def test_a_pod_over_the_stream_cap_says_so_and_gets_its_log_at_the_end(target: ClusterTarget) -> None:
    values = {"log_lines": 10, "log_interval": 0.1, "duration": 1.5}
    pod = await create_pod(target, "capped", annotations=scenario(**values))
    records = Records()
    set_max_log_streams(0)
    try:
        events = await _events(_trigger(target, pod, records, finish=FINISH))
    finally:
        set_max_log_streams(DEFAULT_MAX_LOG_STREAMS)
    assert [type(e) for e in events] == [TaskSuccessEvent]
    texts = [text for _, text in records.seen]
    said = next(i for i, text in enumerate(texts) if text.startswith("Live logs are off for pod capped"))
    assert "max_log_streams=0" in texts[said]
    first_line = texts.index("base line 1")
    outcome = next(i for i, text in enumerate(texts) if text.startswith("Pod capped: succeeded"))
    assert said < outcome < first_line  # nothing live: the whole log came after the pod ended
    assert records.lines() == expected_lines(values)


async def test_a_restarted_trigger_continues_after_the_point_saved_on_the_pod(target: ClusterTarget) -> None:
    """A triggerer dies mid-stream: the next run reads the resume point from the pod (no supervisor call) and
    writes each line at most once more than the first run had saved."""
    values = {"log_lines": 60, "log_interval": 0.1, "duration": 7}
    pod = await create_pod(target, "restart", annotations=scenario(**values))
    first = Records()
    trigger = _trigger(target, pod, first, finish=FINISH, checkpoint_seconds=0.5)
    running = asyncio.ensure_future(_events(trigger))
    api = await async_core_v1(target)
    saved: dict[str, ResumePoint] = {}
    deadline = time.monotonic() + 30
    while not saved.get("base") and time.monotonic() < deadline:  # until a checkpoint with lines is on the pod
        await asyncio.sleep(0.1)
        found = await api.read_namespaced_pod("restart", "default")
        saved = resume_points_on_pod(api.api_client.sanitize_for_serialization(found))
    running.cancel()  # the triggerer dies
    with contextlib.suppress(asyncio.CancelledError):
        await running
    assert saved.get("base"), f"no resume point on the pod after 30 s; first run logged {first.seen[-5:]}"
    second = Records()
    events = await _events(_trigger(target, pod, second, finish=FINISH, checkpoint_seconds=0.5))
    assert [type(e) for e in events] == [TaskSuccessEvent]
    assert any(text.startswith("Restarted: the log continues") for _, text in second.seen)
    expected = expected_lines(values)
    resumed = second.lines()
    assert resumed and resumed == expected[-len(resumed):], "the restarted copy is not the log's rest, in order"
    # Nothing lost: together the two runs wrote every line; repeats only between the saved point and the kill.
    assert set(first.lines()) | set(resumed) == set(expected)
    repeated = set(first.lines()) & set(resumed)
    assert len(resumed) < len(expected) and len(repeated) < len(first.lines()), "the log was replayed from the start"
    assert not await _exists(target, "restart")
