"""``xcom.result``: the pure half of the contract (no cluster)."""

from __future__ import annotations

import pytest

from airflow_kpo_deferrable.xcom.result import EMPTY_RESULT, XComError, parse_result, too_large


def test_json_values_of_every_kind() -> None:
    assert parse_result(b'{"a": [1, 2]}\n', "p", "ns") == {"a": [1, 2]}
    assert parse_result(b"42", "p", "ns") == 42
    assert parse_result(b'"text"', "p", "ns") == "text"


def test_no_file_or_an_empty_one_is_none() -> None:
    assert parse_result(f"{EMPTY_RESULT}\n".encode(), "p", "ns") is None
    assert parse_result(b"", "p", "ns") is None


def test_invalid_json_names_the_pod_the_file_and_the_fix() -> None:
    with pytest.raises(XComError) as error:
        parse_result(b"{'a': 1}", "calc", "jobs")
    message = str(error.value)
    assert message.startswith("pod jobs/calc wrote invalid JSON to /airflow/xcom/return.json: ")
    assert "line 1 column 2" in message and "{'a': 1}" in message and "json.dump" in message


def test_over_the_limit_is_refused() -> None:
    assert too_large(10, "p", "ns", limit=10) is None
    with pytest.raises(XComError) as error:
        parse_result(b"[" + b"1," * 10 + b"1]", "big", "ns", limit=16)
    assert "pod ns/big wrote more than 16 bytes to /airflow/xcom/return.json" in str(error.value)


def test_a_number_python_cannot_convert_is_invalid_json_not_a_crash() -> None:
    with pytest.raises(XComError, match="pod ns/p wrote invalid JSON .*Exceeds the limit"):
        parse_result(b"1" * 5000, "p", "ns")


def test_the_sidecar_state_in_either_spelling() -> None:
    from airflow_kpo_deferrable.xcom.result import sidecar_state

    def pod(state: dict | None, phase: str = "Running") -> dict:
        statuses = [] if state is None else [{"name": "airflow-xcom-sidecar", "state": state}]
        return {"spec": {"containers": [{"name": "base"}, {"name": "airflow-xcom-sidecar"}]},
                "status": {"phase": phase, "containerStatuses": statuses}}

    assert sidecar_state(pod({"running": {"startedAt": "x"}})) == "running"
    assert sidecar_state(pod({"waiting": {"reason": "ContainerCreating"}})) == "waiting"
    assert sidecar_state(pod({"terminated": {"exitCode": 0}})) == "terminated"
    assert sidecar_state(pod(None, "Pending")) == "waiting"  # not reported yet
    assert sidecar_state({"spec": {"containers": [{"name": "base"}]}, "status": {"phase": "Running"}}) == "absent"
    snake = {"status": {"container_statuses": [{"name": "airflow-xcom-sidecar",
                                                "state": {"running": {"started_at": "x"}, "waiting": None,
                                                          "terminated": None}}]}}
    assert sidecar_state(snake) == "running"
