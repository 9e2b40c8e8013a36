"""``do_xcom_push=True`` in-process on the worker (``deferrable=False``) against the emulator's process runtime.

The real XCom sidecar runs: the base container writes ``/airflow/xcom/return.json``, the operator reads it over exec
and stops the sidecar; the end to end run through real Airflow (deferred, downstream pull) is tests/e2e.
"""

from __future__ import annotations

import json
import time

import kubernetes
import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.operators.pod import PodFailure
from airflow_kpo_deferrable.xcom.result import XComError
from tests.support.operators import operator_on, render_and_execute

pytestmark = pytest.mark.timeout(120)


def xcom_task(emulator: Emulator, name: str, script: str, **arguments: object) -> object:
    return operator_on(emulator, name=name, image="busybox:1.36", cmds=["sh", "-c"], arguments=[script],
                       do_xcom_push=True, on_finish_action="keep_pod", **arguments)


def final_pod(emulator: Emulator, name: str) -> kubernetes.client.V1Pod:
    """The kept pod once it has ended (the stopped sidecar lets it end)."""
    client = kubernetes.config.new_client_from_config(config_file=str(emulator.kubeconfig_path))
    try:
        api = CoreV1Api(client)
        deadline = time.monotonic() + 30
        while True:
            pod = api.read_namespaced_pod(name, "default")
            if pod.status.phase in ("Succeeded", "Failed") or time.monotonic() > deadline:
                return pod
            time.sleep(0.1)
    finally:
        client.close()


def test_the_result_is_the_return_value_and_the_pod_ends(emulator: Emulator) -> None:
    value = {"rows": 3, "names": ["a", "b"]}
    operator = xcom_task(emulator, "xcom-ok", f"echo '{json.dumps(value)}' > /airflow/xcom/return.json")
    assert render_and_execute(operator) == value
    pod = final_pod(emulator, "xcom-ok")
    assert pod.status.phase == "Succeeded"  # the sidecar was stopped: no pod left running


def test_no_result_file_is_none(emulator: Emulator) -> None:
    assert render_and_execute(xcom_task(emulator, "xcom-none", "echo nothing to return")) is None
    assert final_pod(emulator, "xcom-none").status.phase == "Succeeded"


def test_a_failing_base_container_fails_typed_without_hanging(emulator: Emulator) -> None:
    operator = xcom_task(emulator, "xcom-fail", "echo broken >&2; exit 3")
    began = time.monotonic()
    with pytest.raises(PodFailure) as failure:
        render_and_execute(operator)
    assert time.monotonic() - began < 60
    assert (failure.value.result.reason, failure.value.result.exit_code) == ("Error", 3)
    assert final_pod(emulator, "xcom-fail").status.phase == "Failed"  # the sidecar was stopped here too


def test_invalid_json_fails_naming_the_pod(emulator: Emulator) -> None:
    operator = xcom_task(emulator, "xcom-bad", "echo '{not json' > /airflow/xcom/return.json")
    with pytest.raises(XComError, match="pod default/xcom-bad wrote invalid JSON to /airflow/xcom/return.json"):
        render_and_execute(operator)
    assert final_pod(emulator, "xcom-bad").status.phase == "Succeeded"
