"""Faults on demand and request counters, seen through the official sync client; then the HTTP side channel.

Faults are set on the emulator's own loop (``emulator.call``), as anything touching its state from a test thread must.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import kubernetes
import pytest
from kubernetes.client import ApiException, CoreV1Api
from kubernetes.watch import Watch

from airflow_kpo_deferrable.emulator import Emulator
from tests.support.emulator import http_json, wait_for

pytestmark = pytest.mark.timeout(60)


def pod(name: str, command: list[str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "base", "image": "busybox:1.36", "command": command or ["sleep", "30"]}],
        },
    }


@pytest.fixture
def raw(emulator: Emulator) -> CoreV1Api:
    """A client that does not retry by itself (urllib3 otherwise retries a 503/429 that carries Retry-After)."""
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(emulator.kubeconfig_path), client_configuration=configuration)
    configuration.retries = False
    return CoreV1Api(kubernetes.client.ApiClient(configuration))


def side_channel(emulator: Emulator, path: str, body: Any = None) -> tuple[int, Any]:
    """GET (no body) or POST JSON to ``/emulator/...``; returns the status and the decoded answer."""
    return http_json(emulator, f"/emulator/{path}", None if body is None else json.dumps(body).encode())


def timed(call: Any) -> tuple[Any, float]:
    begun = time.monotonic()
    result = call()
    return result, time.monotonic() - begun


def test_error_rate_503_with_retry_after_on_a_share(api: CoreV1Api, raw: CoreV1Api, emulator: Emulator) -> None:
    api.create_namespaced_pod("default", pod("target"))
    emulator.call(lambda: emulator.faults.error_rate(503, 0.5, retry_after=2, verbs={"get"}, resources={"pods"}))
    failures = 0
    for _ in range(30):
        try:
            assert raw.read_namespaced_pod("target", "default").metadata.name == "target"
        except ApiException as error:
            failures += 1
            assert error.status == 503 and error.headers["Retry-After"] == "2"
            body = json.loads(error.body)
            assert (body["kind"], body["status"], body["reason"], body["code"]) == (
                "Status", "Failure", "ServiceUnavailable", 503)
            assert body["details"] == {"retryAfterSeconds": 2}
    assert 6 <= failures <= 24, f"{failures} of 30 failed for a share of 0.5"
    assert [p.metadata.name for p in raw.list_namespaced_pod("default").items] == ["target"]  # only "get" is hit
    emulator.call(emulator.faults.clear)
    for _ in range(5):
        raw.read_namespaced_pod("target", "default")


def test_the_sync_client_honours_retry_after(api: CoreV1Api, emulator: Emulator) -> None:
    api.create_namespaced_pod("default", pod("target"))
    emulator.call(lambda: emulator.faults.error_rate(503, 1.0, retry_after=1, verbs={"get"}, seconds=0.5))
    emulator.reset_counters()
    got, took = timed(lambda: api.read_namespaced_pod("target", "default"))
    assert got.metadata.name == "target"
    assert 1 <= took < 10  # urllib3 slept for Retry-After, then the window was over (the counters: one retry)
    assert emulator.counters() == {"get pods": 2}


def test_latency_and_pause(api: CoreV1Api, emulator: Emulator) -> None:
    api.create_namespaced_pod("default", pod("target"))
    _, quick = timed(lambda: api.read_namespaced_pod("target", "default"))
    assert quick < 0.5
    emulator.call(emulator.faults.latency, 1.0)
    got, slow = timed(lambda: api.read_namespaced_pod("target", "default"))
    assert got.metadata.name == "target" and 1.0 <= slow < 10
    emulator.call(emulator.faults.clear)

    emulator.call(emulator.faults.pause, 1.0)
    results: list[tuple[int, float]] = []

    def read() -> None:
        listing, took = timed(lambda: api.list_namespaced_pod("default"))
        results.append((len(listing.items), took))

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(timeout=10)
    assert len(results) == 3
    assert all(count == 1 and 0.7 <= took < 10 for count, took in results), results  # stalled, then answered
    _, after = timed(lambda: api.read_namespaced_pod("target", "default"))
    assert after < 0.5


def test_close_watches_ends_every_watch_stream(api: CoreV1Api, emulator: Emulator) -> None:
    api.create_namespaced_pod("default", pod("anchor"))
    ended: list[tuple[str, float]] = []
    resumed: list[tuple[str, str]] = []
    forever = Watch()

    def bounded(kind: str, list_call: Any) -> None:
        for _ in Watch().stream(list_call, "default", timeout_seconds=30):
            pass
        ended.append((kind, time.monotonic()))

    def resuming() -> None:  # without timeout_seconds this client reconnects from the last version it saw
        for event in forever.stream(api.list_namespaced_pod, "default"):
            resumed.append((event["type"], event["object"].metadata.name))
            if event["object"].metadata.name == "after-close":
                forever.stop()

    threads = [threading.Thread(target=bounded, args=("pods", api.list_namespaced_pod)),
               threading.Thread(target=bounded, args=("events", api.list_namespaced_event)),
               threading.Thread(target=resuming)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while emulator.counters().get("watch pods", 0) < 2 or emulator.counters().get("watch events", 0) < 1:
        assert time.monotonic() < deadline, emulator.counters()
        time.sleep(0.02)
    time.sleep(0.2)  # the streams are answered

    closed_at = time.monotonic()
    assert emulator.call(emulator.faults.close_watches) == 3
    for thread in threads[:2]:
        thread.join(timeout=5)
    assert sorted(kind for kind, _ in ended) == ["events", "pods"]
    assert all(at - closed_at < 10 for _, at in ended)  # well before their 30 s timeout

    api.create_namespaced_pod("default", pod("after-close"))
    threads[2].join(timeout=10)
    assert not threads[2].is_alive()
    assert emulator.counters()["watch pods"] == 3  # the resuming client opened a second watch
    assert resumed.count(("ADDED", "anchor")) == 1  # it resumed from its version: nothing seen twice
    assert ("ADDED", "after-close") in resumed


def test_counters_by_verb_and_resource(api: CoreV1Api, emulator: Emulator) -> None:
    api.create_namespaced_pod("default", pod("counted", ["sh", "-c", "echo hi; sleep 30"]))
    wait_for(api, "counted", lambda p: p.status.phase == "Running")
    emulator.reset_counters()
    assert emulator.counters() == {}

    api.list_namespaced_pod("default")
    api.read_namespaced_pod("counted", "default")
    watch = Watch()
    for _ in watch.stream(api.list_namespaced_pod, "default", timeout_seconds=5):
        watch.stop()
    api.read_namespaced_pod_log("counted", "default")
    api.create_namespaced_pod("default", pod("second"))
    api.patch_namespaced_pod("second", "default", {"metadata": {"labels": {"a": "b"}}})
    api.patch_namespaced_pod_status("counted", "default", {"status": {"conditions": [{"type": "x/y", "status": "True"}]}})
    api.delete_namespaced_pod("second", "default", grace_period_seconds=0)
    api.list_namespaced_event("default")
    api.list_namespaced_event("default")
    with pytest.raises(ApiException):
        api.read_namespaced_pod("missing", "default")  # errors count too, like the audit log

    expected = {"list pods": 1, "get pods": 2, "watch pods": 1, "get pods/log": 1, "create pods": 1,
                "patch pods": 1, "patch pods/status": 1, "delete pods": 1, "list events": 2}
    assert emulator.counters() == expected
    assert side_channel(emulator, "counters") == (200, expected)  # the side channel is not counted itself
    assert side_channel(emulator, "counters") == (200, expected)
    assert side_channel(emulator, "counters/reset", {}) == (200, {})
    assert emulator.counters() == {}


def test_faults_through_the_side_channel(api: CoreV1Api, raw: CoreV1Api, emulator: Emulator) -> None:
    created = api.create_namespaced_pod("default", pod("target"))
    throttle = {"op": "error_rate", "status": 429, "share": 1.0, "retry_after": 1, "verbs": ["list"],
                "resources": ["pods"]}
    assert side_channel(emulator, "faults", throttle) == (200, {"results": [None]})
    with pytest.raises(ApiException) as throttled:
        raw.list_namespaced_pod("default")
    assert throttled.value.status == 429 and throttled.value.headers["Retry-After"] == "1"
    assert json.loads(throttled.value.body)["reason"] == "TooManyRequests"
    assert raw.read_namespaced_pod("target", "default").metadata.name == "target"  # only lists of pods

    status, answer = side_channel(emulator, "faults", [{"op": "clear"}, {"op": "latency", "seconds": 0.4}])
    assert (status, answer) == (200, {"results": [None, None]})
    listing, took = timed(lambda: raw.list_namespaced_pod("default"))
    assert len(listing.items) == 1 and took >= 0.4
    side_channel(emulator, "faults", [{"op": "clear"}, {"op": "pause", "seconds": 0.8}])
    _, took = timed(lambda: raw.read_namespaced_pod("target", "default"))
    assert 0.6 <= took < 10
    assert side_channel(emulator, "counters")[0] == 200  # the side channel is never paused or faulted

    assert side_channel(emulator, "faults", {"op": "expire_history"}) == (200, {"results": [None]})
    with pytest.raises(ApiException) as expired:
        for _ in Watch().stream(api.list_namespaced_pod, "default", resource_version=created.metadata.resource_version,
                                timeout_seconds=5):
            pass
    assert expired.value.status == 410

    status, answer = side_channel(emulator, "faults", {"op": "melt"})
    assert (status, answer["kind"], answer["reason"]) == (400, "Status", "BadRequest")
    assert answer["message"].startswith("unknown fault op 'melt'")
    status, answer = side_channel(emulator, "faults", {"op": "latency", "secs": 1})
    assert status == 400 and answer["message"].startswith("fault latency: ")


def test_evict_and_lose_node_through_the_side_channel(api: CoreV1Api, emulator: Emulator) -> None:
    for name in ("evictee", "stranded"):
        api.create_namespaced_pod("default", pod(name))
        wait_for(api, name, lambda p: p.status.phase == "Running")
    assert side_channel(emulator, "pods/default/evictee/evict", {}) == (200, {})
    evicted = wait_for(api, "evictee", lambda p: p.status.phase == "Failed")
    assert evicted.status.reason == "Evicted"
    assert side_channel(emulator, "pods/default/stranded/lose-node", {}) == (200, {})
    lost = wait_for(api, "stranded", lambda p: p.status.phase == "Unknown")
    assert lost.status.reason == "NodeLost"
    status, answer = side_channel(emulator, "pods/default/missing/evict", {})
    assert (status, answer["reason"], answer["message"]) == (404, "NotFound", 'pods "missing" not found')
    status, answer = side_channel(emulator, "pods/default/evictee/evict", {})
    assert (status, answer["reason"]) == (409, "Conflict")  # it is not running any more
    assert not any(key.startswith("create pods/") or "emulator" in key for key in emulator.counters())
