"""``after_watch``: the one rule for resuming a watch or relisting, with its reason."""

from __future__ import annotations

import aiohttp
import pytest

from airflow_kpo_deferrable.api_rules import ApiStatusError
from airflow_kpo_deferrable.watcher import WatchPlan, after_watch


def test_a_normal_end_resumes_from_the_last_version() -> None:
    step = after_watch("1234", None)
    assert step.plan is WatchPlan.RESUME
    assert "1234" in step.reason


def test_without_a_version_it_lists_first() -> None:
    assert after_watch(None, None).plan is WatchPlan.RELIST


@pytest.mark.parametrize("version", ["1234", None])
def test_410_is_a_relist_whether_sent_as_status_or_as_an_error_event(version: str | None) -> None:
    # The watcher turns an in-stream ERROR event {code: 410} into the same ApiStatusError as an HTTP 410.
    step = after_watch(version, ApiStatusError(410, '{"reason": "Expired"}'))
    assert step.plan is WatchPlan.RELIST
    assert "410" in step.reason


def test_forbidden_list_or_watch_polls() -> None:
    assert after_watch("1", ApiStatusError(403, "forbidden")).plan is WatchPlan.POLL


@pytest.mark.parametrize(
    "error",
    [ApiStatusError(429, "slow down", retry_after=2), ApiStatusError(503, "busy"), aiohttp.ClientPayloadError("cut"),
     ConnectionResetError(), TimeoutError()],
)
def test_transient_errors_back_off_and_keep_the_version(error: BaseException) -> None:
    assert after_watch("1", error).plan is WatchPlan.BACK_OFF


@pytest.mark.parametrize("error", [ApiStatusError(401, "who are you"), ApiStatusError(404, "no namespace"),
                                   ValueError("watch event larger than 16777216 bytes")])
def test_what_retrying_cannot_fix_gives_up(error: BaseException) -> None:
    assert after_watch("1", error).plan is WatchPlan.GIVE_UP
