"""The API rules both clients share: transient or not, Retry-After, delete options, fine delete answers."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import pytest
import urllib3
from kubernetes.client.exceptions import ApiException as SyncApiException
from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException
from tenacity import Retrying

from airflow_kpo_deferrable.api_rules import (
    ApiStatusError,
    delete_is_fine,
    delete_options,
    is_transient,
    parse_retry_after,
    retry_after_of,
    retry_policy,
)


@pytest.mark.parametrize("client_error", [SyncApiException, AsyncApiException])
@pytest.mark.parametrize(("status", "transient"), [(429, True), (500, True), (503, True), (504, True), (0, True),
                                                   (400, False), (401, False), (403, False), (404, False),
                                                   (409, False), (410, False), (422, False)])
def test_the_same_statuses_are_transient_for_both_clients(client_error: type, status: int, transient: bool) -> None:
    assert is_transient(client_error(status=status, reason="x")) is transient
    assert is_transient(ApiStatusError(status, "x")) is transient or status == 0


@pytest.mark.parametrize("error", [ConnectionResetError(), TimeoutError(), aiohttp.ClientPayloadError("cut"),
                                   urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead")])
def test_lost_and_cut_connections_are_transient(error: BaseException) -> None:
    assert is_transient(error)


def test_retry_after_as_seconds_or_http_date() -> None:
    assert parse_retry_after("3") == 3.0
    now = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 May 2024 10:00:05 GMT", now) == 5.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    error = SyncApiException(status=429, reason="TooManyRequests")
    error.headers = {"Retry-After": "2"}
    assert retry_after_of(error) == 2.0
    assert retry_after_of(ApiStatusError(503, "", retry_after=4)) == 4


def test_delete_options_only_ever_delete_our_pod() -> None:
    assert delete_options("u-1", 0) == {
        "apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "preconditions": {"uid": "u-1"}
    }
    assert delete_options(None, None) == {"apiVersion": "v1", "kind": "DeleteOptions"}
    assert delete_is_fine(SyncApiException(status=404)) and delete_is_fine(AsyncApiException(status=409))
    assert not delete_is_fine(SyncApiException(status=500))


def test_the_policy_retries_transient_errors_and_reraises_the_rest() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise SyncApiException(status=503)
        return "ok"

    assert Retrying(**retry_policy(sleep=lambda _: None))(flaky) == "ok"
    assert len(calls) == 3
    with pytest.raises(SyncApiException):
        Retrying(**retry_policy(sleep=lambda _: None))(lambda: (_ for _ in ()).throw(SyncApiException(status=403)))
