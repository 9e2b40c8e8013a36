"""The worker's log reader against the emulator's real HTTP and faults: every line exactly once, or a clear warning."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.logs.lines import STALLED_ATTEMPTS
from airflow_kpo_deferrable.logs.sync import copy_container_log, copy_logs
from tests.support.emulator import sync_client, threaded_emulator, wait_for
from tests.support.log_reads import (
    LINES_OVER_A_SECOND,
    LONG_LINES,
    MANY_LINES_ONE_STAMP,
    expected_lines,
    joined,
    log_bytes,
    log_pod,
)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    with threaded_emulator(tmp_path, "scripted") as emu:
        yield emu


@pytest.fixture
def api(emulator: Emulator) -> Iterator[CoreV1Api]:
    with sync_client(emulator) as client:
        yield client


def finished_pod(api: CoreV1Api, name: str, values: dict[str, Any]) -> None:
    api.create_namespaced_pod("default", log_pod(name, **values))
    wait_for(api, name, lambda pod: pod.status.phase == "Succeeded", timeout=60)


def read(api: CoreV1Api, name: str) -> tuple[list[str], Any]:
    out: list[str] = []
    copy = copy_container_log(api, name, "default", "base", out.append)
    return out, copy


def test_a_single_500_on_the_log_read_loses_nothing(emulator: Emulator, api: CoreV1Api) -> None:
    finished_pod(api, "five-hundred", MANY_LINES_ONE_STAMP)
    emulator.reset_counters()
    emulator.call(lambda: emulator.faults.error_rate(500, count=1, verbs={"get"}, resources={"pods/log"}))
    out, copy = read(api, "five-hundred")
    assert out == expected_lines(MANY_LINES_ONE_STAMP)
    assert (copy.unavailable, emulator.counters().get("get pods/log")) == (None, 2)


@pytest.mark.parametrize("cuts", [1, 3])
@pytest.mark.parametrize("values", [MANY_LINES_ONE_STAMP, LINES_OVER_A_SECOND], ids=["one-stamp", "many-stamps"])
def test_a_stream_broken_midway_is_resumed_without_loss_or_repeat(
    emulator: Emulator, api: CoreV1Api, values: dict[str, Any], cuts: int
) -> None:
    finished_pod(api, "cut", values)
    emulator.call(lambda: emulator.faults.cut_streams(log_bytes(values) // 2, count=cuts))
    out, copy = read(api, "cut")
    assert out == expected_lines(values)
    assert (copy.unavailable, copy.resumed) == (None, cuts)


def test_a_long_line_broken_in_its_middle_arrives_whole_once(emulator: Emulator, api: CoreV1Api) -> None:
    finished_pod(api, "long", LONG_LINES)
    emulator.call(lambda: emulator.faults.cut_streams(450_000))
    out, copy = read(api, "long")
    assert joined(out) == expected_lines(LONG_LINES)
    assert (copy.lines, copy.resumed) == (4, 1)


def test_a_deleted_pod_is_a_warning_naming_the_container(emulator: Emulator, api: CoreV1Api) -> None:
    finished_pod(api, "gone", MANY_LINES_ONE_STAMP)
    api.delete_namespaced_pod("gone", "default", grace_period_seconds=0)
    wait_for_absent(api, "gone")
    out: list[str] = []
    warnings: list[str] = []
    [copy] = copy_logs(api, "gone", "default", ["base"], out.append, warn=warnings.append)
    assert out == []
    assert copy.unavailable == "the pod no longer exists (404)"
    assert len(warnings) == 1 and "'base'" in warnings[0] and "404" in warnings[0]
    assert "outcome is the pod's" in warnings[0]


def test_a_container_that_never_started_is_a_warning_naming_why(emulator: Emulator, api: CoreV1Api) -> None:
    api.create_namespaced_pod("default", log_pod("nopull", failure="ErrImagePull"))
    wait_for(api, "nopull", lambda pod: bool(pod.status.container_statuses), timeout=30)
    warnings: list[str] = []
    [copy] = copy_logs(api, "nopull", "default", ["base"], [].append, warn=warnings.append)
    assert copy.unavailable is not None and copy.unavailable.startswith("the container has no log (400")
    assert "waiting to start" in warnings[0] and "'base'" in warnings[0]


def wait_for_absent(api: CoreV1Api, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while any(p.metadata.name == name for p in api.list_namespaced_pod("default").items):
        assert time.monotonic() < deadline, f"pod {name} still exists after {timeout} s"
        time.sleep(0.05)


def test_a_log_that_stays_unreadable_is_a_warning_after_the_retries(emulator: Emulator, api: CoreV1Api) -> None:
    finished_pod(api, "flaky", MANY_LINES_ONE_STAMP)
    emulator.reset_counters()
    emulator.call(lambda: emulator.faults.error_rate(503, verbs={"get"}, resources={"pods/log"}))
    warnings: list[str] = []
    [copy] = copy_logs(api, "flaky", "default", ["base"], [].append, warn=warnings.append)
    assert copy.unavailable is not None and "HTTP 503" in copy.unavailable and "after retries" in copy.unavailable
    assert emulator.counters().get("get pods/log") == STALLED_ATTEMPTS
    assert "'base'" in warnings[0] and "outcome is the pod's" in warnings[0]
