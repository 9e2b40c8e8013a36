"""Conformance with ``kubectl``: ``get -w`` through a pod's phases, ``delete --wait``, ``-o json -l``, server errors.

(``kubectl logs -f`` and ``kubectl exec`` are in test_logs.py and test_exec.py.)
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from typing import Any

import pytest
from kubernetes.client import ApiException, CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from tests.support.emulator import kubectl, needs_kubectl, wait_for

pytestmark = [pytest.mark.timeout(60), needs_kubectl]


def pod(name: str, command: list[str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 10,
            "containers": [{"name": "base", "image": "busybox:1.36", "command": command}],
        },
    }


def test_get_watch_follows_a_pod_through_its_phases(api: CoreV1Api, emulator: Emulator) -> None:
    api.create_namespaced_pod("default", pod("anchor", ["sleep", "30"]))
    env = {**os.environ, "KUBECONFIG": str(emulator.kubeconfig_path)}
    watcher = subprocess.Popen(["kubectl", "get", "pods", "-w"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in watcher.stdout], daemon=True).start()
    rows: list[list[str]] = []
    try:
        deadline = time.monotonic() + 20
        header = lines.get(timeout=20).split()
        assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        assert lines.get(timeout=20).split()[0] == "anchor"  # listed: the watch starts right after
        api.create_namespaced_pod("default", pod("phases", ["sh", "-c", "sleep 0.5"]))
        while not rows or rows[-1][2] != "Completed":
            row = lines.get(timeout=max(deadline - time.monotonic(), 0.1)).split()
            if row[0] == "phases":
                rows.append(row)
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)
    statuses = list(dict.fromkeys(row[2] for row in rows))  # first sighting of each, in order
    assert statuses == ["Pending", "ContainerCreating", "Running", "Completed"], rows
    assert next(row for row in rows if row[2] == "Running")[1] == "1/1"
    assert rows[-1][1:4] == ["0/1", "Completed", "0"]


def test_delete_waits_until_the_pod_is_gone(api: CoreV1Api, emulator: Emulator) -> None:
    slow_exit = "trap 'sleep 1; exit 0' TERM; echo trapped; while true; do sleep 0.05; done"
    api.create_namespaced_pod("default", pod("doomed", ["sh", "-c", slow_exit]))
    wait_for(api, "doomed", lambda p: p.status.phase == "Running")
    wait_for(api, "doomed", lambda p: "trapped" in api.read_namespaced_pod_log("doomed", "default"))
    begun = time.monotonic()
    result = kubectl(emulator, "delete", "pod", "doomed", "--wait=true", "--timeout=20s")
    took = time.monotonic() - begun
    assert (result.returncode, result.stdout, result.stderr) == (0, 'pod "doomed" deleted\n', "")
    assert 1 <= took < 10  # it waited for the container's own exit, not for the whole grace period
    with pytest.raises(ApiException) as gone:
        api.read_namespaced_pod("doomed", "default")
    assert gone.value.status == 404


def test_get_json_with_label_selectors(api: CoreV1Api, emulator: Emulator) -> None:
    api.create_namespaced_pod("default", pod("web-1", ["sleep", "30"], {"app": "web", "tier": "front"}))
    api.create_namespaced_pod("default", pod("web-2", ["sleep", "30"], {"app": "web"}))
    api.create_namespaced_pod("default", pod("db-1", ["sleep", "30"], {"app": "db", "tier": "back"}))

    def selected(selector: str) -> list[str]:
        result = kubectl(emulator, "get", "pods", "-o", "json", "-l", selector)
        assert result.returncode == 0, result.stderr
        listing = json.loads(result.stdout)
        assert listing["kind"] == "List" and all(item["kind"] == "Pod" for item in listing["items"])
        return sorted(item["metadata"]["name"] for item in listing["items"])

    assert selected("app=web") == ["web-1", "web-2"]
    assert selected("app in (web,db),tier") == ["db-1", "web-1"]
    assert selected("!tier") == ["web-2"]
    assert selected("app notin (web)") == ["db-1"]
    assert selected("app=none") == []
    bad = kubectl(emulator, "get", "pods", "-l", "env IN (a)")
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error from server (BadRequest): ")
    assert bad.stderr.rstrip().endswith(
        "unable to parse requirement: found 'IN', expected: in, notin, =, ==, !=, gt, lt")


def test_get_missing_pod_error_text(emulator: Emulator) -> None:
    result = kubectl(emulator, "get", "pod", "missing")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == 'Error from server (NotFound): pods "missing" not found\n'
