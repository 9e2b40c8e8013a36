"""Faults for streamed answers, through the HTTP side channel: exactly N errors, a pods/log body cut after N bytes."""

from __future__ import annotations

import json
import urllib.request

import pytest
import urllib3
from kubernetes.client import ApiException, CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from tests.support.emulator import wait_for

pytestmark = pytest.mark.timeout(60)


def post_faults(emulator: Emulator, body: object) -> int:
    request = urllib.request.Request(f"{emulator.url}/emulator/faults", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def finished_pod(api: CoreV1Api) -> None:
    api.create_namespaced_pod("default", {
        "metadata": {"name": "counting"},
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": "base", "image": "busybox:1.36", "command": ["seq", "1", "2000"]}]},
    })
    wait_for(api, "counting", lambda pod: pod.status.phase == "Succeeded", timeout=30)


def test_error_rate_with_a_count_faults_exactly_that_many_answers(api: CoreV1Api, emulator: Emulator) -> None:
    finished_pod(api)
    rule = {"op": "error_rate", "status": 500, "count": 1, "verbs": ["get"], "resources": ["pods/log"]}
    assert post_faults(emulator, rule) == 200
    with pytest.raises(ApiException) as failed:
        api.read_namespaced_pod_log("counting", "default")
    assert failed.value.status == 500
    assert api.read_namespaced_pod_log("counting", "default").splitlines()[-1] == "2000"


def test_cut_streams_breaks_a_log_body_after_that_many_bytes(api: CoreV1Api, emulator: Emulator) -> None:
    finished_pod(api)
    assert post_faults(emulator, {"op": "cut_streams", "after_bytes": 1000}) == 200
    response = api.read_namespaced_pod_log("counting", "default", _preload_content=False)
    received = bytearray()
    with pytest.raises(urllib3.exceptions.ProtocolError, match="ended prematurely"):
        for chunk in response.stream(256):
            received += chunk
    assert len(received) == 1000
    whole = api.read_namespaced_pod_log("counting", "default")  # one token: the next read is whole
    assert whole.splitlines() == [str(n) for n in range(1, 2001)]
