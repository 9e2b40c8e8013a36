"""``runtime="none"`` (``--runtime none``): the API server alone, no scheduler and no kubelet.

For tests of controllers and clients that only need the API: pods are stored and stay Pending, unscheduled, with no
events, logs are empty, exec and the pod faults have no node to go to.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
from kubernetes.client import ApiException, CoreV1Api
from kubernetes.stream import stream

from airflow_kpo_deferrable.emulator import Emulator

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[tuple[Emulator, CoreV1Api]]:
    with Emulator.in_thread(runtime="none", kubeconfig_path=tmp_path / "kubeconfig") as emulator:
        client = kubernetes.config.new_client_from_config(config_file=str(emulator.kubeconfig_path))
        yield emulator, CoreV1Api(client)
        client.close()


def pod(name: str, node: str | None = None) -> dict:
    spec = {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox:1.36", "command": ["true"]}]}
    return {"metadata": {"name": name}, "spec": spec | ({"nodeName": node} if node else {})}


def test_pods_stay_pending_unscheduled_without_events(bare: tuple[Emulator, CoreV1Api]) -> None:
    emulator, api = bare
    assert emulator.kubelet is None
    api.create_namespaced_pod("default", pod("waiting"))
    time.sleep(0.5)  # a kubelet would have scheduled it within milliseconds
    current = api.read_namespaced_pod("waiting", "default")
    assert (current.status.phase, current.spec.node_name, current.status.conditions) == ("Pending", None, None)
    assert api.list_namespaced_event("default").items == []


def test_logs_are_empty_exec_and_pod_faults_have_no_node(bare: tuple[Emulator, CoreV1Api]) -> None:
    emulator, api = bare
    api.create_namespaced_pod("default", pod("bound", node="emulator-node"))
    assert api.read_namespaced_pod_log("bound", "default") == ""
    with pytest.raises(ApiException) as refused:
        stream(api.connect_get_namespaced_pod_exec, "bound", "default", command=["true"], stdout=True,
               stderr=True, stdin=False, tty=False, _preload_content=True)
    assert "Handshake status 400" in refused.value.reason
    assert 'container not found (\\"base\\")' in refused.value.reason
    request = urllib.request.Request(emulator.url + "/emulator/pods/default/bound/evict", data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as no_node:
        urllib.request.urlopen(request, timeout=10)
    body = json.loads(no_node.value.read())
    assert (no_node.value.code, body["message"]) == (400, "this emulator runs without a kubelet (runtime none)")
