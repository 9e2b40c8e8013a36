"""The triggerer's log reader (kubernetes_asyncio, chunked raw responses) against the emulator's HTTP and faults."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.logs.aio import copy_container_log_async
from airflow_kpo_deferrable.logs.lines import LogCopy
from tests.support import async_emulator
from tests.support.log_reads import (
    LINES_OVER_A_SECOND,
    LONG_LINES,
    MANY_LINES_ONE_STAMP,
    expected_lines,
    joined,
    log_bytes,
    log_pod,
)

emulator = async_emulator.emulator
api = async_emulator.api


async def pod_reaches(api: CoreV1Api, name: str, check: Any, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check(pod := await api.read_namespaced_pod(name, "default")):
        assert loop.time() < deadline, f"pod {name} never got there; last status: {pod.status}"
        await asyncio.sleep(0.05)


async def finished_pod(api: CoreV1Api, name: str, values: dict[str, Any]) -> None:
    await api.create_namespaced_pod("default", log_pod(name, **values))
    await pod_reaches(api, name, lambda pod: pod.status.phase == "Succeeded")


async def read(api: CoreV1Api, name: str, warnings: list[str] | None = None) -> tuple[list[str], LogCopy]:
    out: list[str] = []
    copy = await copy_container_log_async(
        api, name, "default", "base", out.append, warn=(warnings if warnings is not None else []).append
    )
    return out, copy


async def test_a_single_500_on_the_log_read_loses_nothing(emulator: Emulator, api: CoreV1Api) -> None:
    await finished_pod(api, "five-hundred", MANY_LINES_ONE_STAMP)
    emulator.reset_counters()
    emulator.faults.error_rate(500, count=1, verbs={"get"}, resources={"pods/log"})
    out, copy = await read(api, "five-hundred")
    assert out == expected_lines(MANY_LINES_ONE_STAMP)
    assert (copy.unavailable, emulator.counters().get("get pods/log")) == (None, 2)


@pytest.mark.parametrize("cuts", [1, 3])
@pytest.mark.parametrize("values", [MANY_LINES_ONE_STAMP, LINES_OVER_A_SECOND], ids=["one-stamp", "many-stamps"])
async def test_a_stream_broken_midway_is_resumed_without_loss_or_repeat(
    emulator: Emulator, api: CoreV1Api, values: dict[str, Any], cuts: int
) -> None:
    await finished_pod(api, "cut", values)
    emulator.faults.cut_streams(log_bytes(values) // 2, count=cuts)
    out, copy = await read(api, "cut")
    assert out == expected_lines(values)
    assert (copy.unavailable, copy.resumed) == (None, cuts)


async def test_a_long_line_broken_in_its_middle_arrives_whole_once(emulator: Emulator, api: CoreV1Api) -> None:
    await finished_pod(api, "long", LONG_LINES)
    emulator.faults.cut_streams(450_000)
    out, copy = await read(api, "long")
    assert joined(out) == expected_lines(LONG_LINES)
    assert (copy.lines, copy.resumed) == (4, 1)


async def test_a_followed_log_broken_while_the_container_runs_is_resumed(emulator: Emulator, api: CoreV1Api) -> None:
    """The triggerer's live logs: follow a running container; a cut stream resumes and ends when the container does."""
    values = {"log_lines": 200, "log_interval": 0.01, "duration": 2}
    await api.create_namespaced_pod("default", log_pod("live", **values))
    await pod_reaches(api, "live", lambda pod: pod.status.phase == "Running")
    emulator.faults.cut_streams(log_bytes(values) // 3)
    out: list[str] = []
    copy = await copy_container_log_async(api, "live", "default", "base", out.append, follow=True)
    assert out == expected_lines(values)
    assert (copy.unavailable, copy.resumed) == (None, 1)


async def test_a_deleted_pod_is_a_warning_naming_the_container(emulator: Emulator, api: CoreV1Api) -> None:
    warnings: list[str] = []
    out, copy = await read(api, "never-existed", warnings)
    assert out == []
    assert copy.unavailable == "the pod no longer exists (404)"
    assert len(warnings) == 1 and "'base'" in warnings[0] and "404" in warnings[0]


async def test_a_container_that_never_started_is_a_warning_naming_why(emulator: Emulator, api: CoreV1Api) -> None:
    await api.create_namespaced_pod("default", log_pod("nopull", failure="ErrImagePull"))
    await pod_reaches(api, "nopull", lambda pod: bool(pod.status.container_statuses), timeout=30)
    warnings: list[str] = []
    _, copy = await read(api, "nopull", warnings)
    assert copy.unavailable is not None and copy.unavailable.startswith("the container has no log (400")
    assert "waiting to start" in warnings[0] and "'base'" in warnings[0]
