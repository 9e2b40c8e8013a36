"""How to read the Kubernetes API's answers: which failures to retry, how long to wait, how to delete our pod.

Why: the worker talks to the API with the sync ``kubernetes`` client and the triggerer with ``kubernetes_asyncio``
(and with raw aiohttp responses in the watcher and the log reader). Their exceptions differ, the rules must not:
this module holds the one copy of each rule, as pure functions of an exception or a status, and the tenacity
policies built from them. No I/O here.

Facts it handles:

* Transient: 429 and 500/502/503/504 answers, a status 0 (the sync client's "no HTTP answer"), connection and
  timeout errors from the socket, urllib3 (under ``kubernetes``; a body cut midway is ``ProtocolError``) and aiohttp
  (under ``kubernetes_asyncio``; a body cut midway is ``ClientPayloadError``). Anything else (400, 401, 403, 404,
  409, 410, 422) is an answer retrying cannot change.
* ``Retry-After`` (sent with 429 and 503) is delta-seconds or an HTTP date; it replaces the exponential wait for
  that attempt, with a little jitter so many waiters do not return at once.
* Deleting our pod carries a uid precondition: a pod that was replaced by a same-named newer one answers 409 and is
  left alone. 404 (already gone) and 409 (not ours any more) both mean "nothing of ours to delete": fine.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import urllib3.exceptions
from tenacity import RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
DELETE_FINE_STATUS = frozenset({404, 409})
RETRY_AFTER_JITTER_SECONDS = 0.5

Wait = Callable[[RetryCallState], float]


class ApiStatusError(Exception):
    """A non-2xx answer read from a raw response (``_preload_content=False``), with what retry decisions need."""

    def __init__(self, status: int, body: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body
        self.retry_after = retry_after


def status_of(error: BaseException) -> int | None:
    """The HTTP status of an API error from either client (or ``ApiStatusError``); None for non-HTTP errors."""
    status = getattr(error, "status", None)
    return status if isinstance(status, int) else None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` → seconds to wait (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def retry_after_of(error: BaseException | None) -> float | None:
    """The server's requested wait carried by an API error from either client, if any."""
    if isinstance(error, ApiStatusError):
        return error.retry_after
    headers = getattr(error, "headers", None)
    if headers is None:
        return None
    return parse_retry_after(headers.get("Retry-After"))


def is_transient(error: BaseException) -> bool:
    """Whether asking again may give another answer (throttling, overload, a lost or cut connection)."""
    status = status_of(error)
    if status is not None:
        return status in RETRYABLE_STATUS or status == 0
    return isinstance(error, ConnectionError | TimeoutError | aiohttp.ClientError | urllib3.exceptions.HTTPError)


def delete_is_fine(error: BaseException) -> bool:
    """A delete answered 404 (already gone) or 409 (uid precondition failed: the name now belongs to another pod)."""
    return status_of(error) in DELETE_FINE_STATUS


def delete_options(uid: str | None, grace_period_seconds: int | None) -> dict[str, Any]:
    """The DeleteOptions body (plain JSON, so both clients send it as is) that only ever deletes pod ``uid``."""
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
    if grace_period_seconds is not None:
        body["gracePeriodSeconds"] = grace_period_seconds
    if uid:
        body["preconditions"] = {"uid": uid}
    return body


def honouring_retry_after(default: Wait) -> Wait:
    """A tenacity wait: the server's Retry-After when the last error carries one, else ``default``."""

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = retry_after_of(error)
        if retry_after is not None:
            return retry_after + random.uniform(0, RETRY_AFTER_JITTER_SECONDS)
        return default(state)

    return wait


def retry_policy(*, attempts: int | None = 6, max_wait: float = 10.0, **extra: Any) -> dict[str, Any]:
    """Keyword arguments for ``tenacity.Retrying`` or ``AsyncRetrying``: transient errors only, exponential backoff
    with jitter, Retry-After honoured, the last error re-raised. ``attempts=None`` retries until cancelled."""
    policy: dict[str, Any] = {
        "retry": retry_if_exception(is_transient),
        "wait": honouring_retry_after(wait_exponential_jitter(multiplier=0.5, max=max_wait, jitter=1)),
        "reraise": True,
    }
    if attempts is not None:
        policy["stop"] = stop_after_attempt(attempts)
    return policy | extra
