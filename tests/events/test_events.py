"""Events and spec in a failed task's log: the pure formatting rules, and both readers against the emulator's
scheduler and kubelet events (real HTTP, unmodified kubernetes and kubernetes_asyncio clients)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kubernetes.client import CoreV1Api
from kubernetes_asyncio.client import CoreV1Api as AsyncCoreV1Api
from kubernetes_asyncio.config import new_client_from_config

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.events import (
    MAX_EVENTS,
    REDACTED,
    alog_failure,
    aread_pod_events,
    details_for,
    format_events,
    format_pod_spec,
    log_failure_sync,
    read_pod_events,
)
from airflow_kpo_deferrable.outcome import Outcome, PodResult


def _event(reason: str, last: str, count: int = 1, message: str = "m", kind: str = "Warning") -> dict:
    return {"reason": reason, "message": message, "type": kind, "count": count, "firstTimestamp": last,
            "lastTimestamp": last, "source": {"component": "kubelet"}, "involvedObject": {"name": "p"}}


def test_events_are_ordered_by_their_latest_time_with_count_and_times() -> None:
    lines = format_events([_event("Started", "2026-01-01T00:00:09Z", 3), _event("Pulled", "2026-01-01T00:00:02Z")], "p")
    assert lines[0] == "Events of pod p (2):"
    assert "Pulled" in lines[1] and "Started" in lines[2]
    assert "Warning Started from kubelet (count 3, first 2026-01-01T00:00:09Z, last 2026-01-01T00:00:09Z): m" in lines[2]


def test_only_the_last_events_are_written_and_the_rest_counted() -> None:
    events = [_event(f"R{i:03}", f"2026-01-01T00:{i // 60:02}:{i % 60:02}Z") for i in range(MAX_EVENTS + 7)]
    lines = format_events(events, "p")
    assert len(lines) == MAX_EVENTS + 2
    assert "(7 earlier events left out)" in lines[1]
    assert f"R{MAX_EVENTS + 6:03}" in lines[-1] and "R006" not in "\n".join(lines)


def test_a_pod_without_events_says_so() -> None:
    assert format_events([], "p") == ["Pod p has no events"]


@pytest.mark.parametrize(
    ("outcome", "reason", "flags", "expected"),
    [
        (Outcome.SUCCEEDED, None, (True, True, True), (False, False)),
        (Outcome.FAILED, "Error", (False, True, False), (False, False)),
        (Outcome.FAILED, "Error", (True, True, False), (True, False)),
        (Outcome.FAILED, "Unschedulable", (False, True, True), (True, True)),
        (Outcome.TIMEOUT, "StartupTimeout", (False, False, True), (False, True)),
        (Outcome.FAILED, "ErrImagePull", (False, True, False), (True, False)),
    ],
)
def test_which_details_each_flag_asks_for(outcome, reason, flags, expected) -> None:
    result = PodResult(outcome, reason, None, None, None)
    details = details_for(result, on_failure=flags[0], on_startup=flags[1], spec_on_failure=flags[2])
    assert (details.events, details.spec) == expected


def test_the_spec_is_logged_without_env_values_but_with_references() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"phase": "Failed"},
           "spec": {"containers": [{"name": "base", "env": [
               {"name": "TOKEN", "value": "s3cr3t"},
               {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}]}]}}
    text = "\n".join(format_pod_spec(pod))
    assert "s3cr3t" not in text and REDACTED in text and "TOKEN" in text
    assert "secretKeyRef" in text and "phase" not in text
    assert pod["spec"]["containers"][0]["env"][0]["value"] == "s3cr3t"  # the caller's pod is left alone


def _pod(name: str, **spec: object) -> dict:
    return {"metadata": {"name": name}, "spec": {"restartPolicy": "Never", "containers": [
        {"name": "base", "image": "busybox", "command": ["true"], "env": [{"name": "K", "value": "hidden"}]}]} | spec}


def _wait_for_event(kube: CoreV1Api, name: str, uid: str, reason: str) -> list[dict]:
    end, seen = time.monotonic() + 60, []
    while time.monotonic() < end:
        seen = read_pod_events(kube, name, "default", uid)
        if any(e.get("reason") == reason for e in seen):
            return seen
        time.sleep(0.2)
    raise AssertionError(f"no {reason} event for {name} within 60 s; saw {[e.get('reason') for e in seen]}")


def test_the_sync_reader_finds_the_schedulers_event_of_this_pod_only(kube: CoreV1Api) -> None:
    first = kube.create_namespaced_pod("default", _pod("stuck", nodeSelector={"disktype": "none"}))
    _wait_for_event(kube, "stuck", first.metadata.uid, "FailedScheduling")
    kube.delete_namespaced_pod("stuck", "default", grace_period_seconds=0)
    end = time.monotonic() + 60
    while kube.list_namespaced_pod("default", field_selector="metadata.name=stuck").items:
        assert time.monotonic() < end, "pod stuck was not deleted within 60 s"
        time.sleep(0.2)
    second = kube.create_namespaced_pod("default", _pod("stuck"))
    events = _wait_for_event(kube, "stuck", second.metadata.uid, "Scheduled")
    assert all(e["involvedObject"]["uid"] == second.metadata.uid for e in events)
    assert "FailedScheduling" not in [e["reason"] for e in events]
    kube.delete_namespaced_pod("stuck", "default", grace_period_seconds=0)


def test_a_failed_pods_log_gets_its_spec_and_the_schedulers_lines(kube: CoreV1Api) -> None:
    created = kube.create_namespaced_pod("default", _pod("never", nodeSelector={"disktype": "none"}))
    _wait_for_event(kube, "never", created.metadata.uid, "FailedScheduling")
    written: list[str] = []
    result = PodResult(Outcome.FAILED, "Unschedulable", None, None, None)
    details = details_for(result, on_failure=False, on_startup=True, spec_on_failure=True)
    log_failure_sync(written.append, kube, kube.read_namespaced_pod("never", "default"), "never", "default", details)
    text = "\n".join(written)
    assert "Spec of pod never:" in text and "nodeSelector" in text and "hidden" not in text
    assert "Warning FailedScheduling from default-scheduler (count" in text
    assert "0/1 nodes are available" in text
    kube.delete_namespaced_pod("never", "default", grace_period_seconds=0)


def test_a_failing_events_read_is_reported_not_raised(kube: CoreV1Api, emulator: Emulator) -> None:
    written: list[str] = []
    details = details_for(PodResult(Outcome.FAILED, "Error", 1, None, None), on_failure=True, on_startup=False,
                          spec_on_failure=False)
    log_failure_sync(written.append, kube, None, "bad name!", "no such namespace!", details)
    assert written and written[0].startswith("Could not read the events of pod bad name!"), written


async def test_the_async_reader_and_writer_see_the_kubelets_pull_failure(kube: CoreV1Api, emulator: Emulator) -> None:
    pod = _pod("nopull")
    pod["spec"]["containers"][0]["image"] = "registry.invalid/nothing:1"
    created = kube.create_namespaced_pod("default", pod)
    _wait_for_event(kube, "nopull", created.metadata.uid, "Failed")
    body = kube.api_client.sanitize_for_serialization(kube.read_namespaced_pod("nopull", "default"))
    details = details_for(PodResult(Outcome.FAILED, "ErrImagePull", None, None, None), on_failure=False,
                          on_startup=True, spec_on_failure=True)
    written: list[str] = []
    client = await new_client_from_config(config_file=str(Path(emulator.kubeconfig_path)))
    try:
        events = await aread_pod_events(AsyncCoreV1Api(client), "nopull", "default", created.metadata.uid)
        await alog_failure(written.append, AsyncCoreV1Api(client), body, "nopull", "default", created.metadata.uid,
                           details)
    finally:
        await client.close()
    lines = "\n".join(format_events(events, "nopull"))
    assert 'Failed to pull image "registry.invalid/nothing:1"' in lines, lines
    logged = "\n".join(written)
    assert "Spec of pod nopull:" in logged and 'Failed to pull image "registry.invalid/nothing:1"' in logged
    assert "hidden" not in logged
    kube.delete_namespaced_pod("nopull", "default", grace_period_seconds=0)
