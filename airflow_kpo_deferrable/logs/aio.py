"""Copy a container's log into a sink from the triggerer's event loop (``kubernetes_asyncio``), losing nothing.

The async twin of ``logs.sync``: the same ``ContainerLogCopy`` decides (decoding, resuming after a broken read with
``sinceTime``, dropping the repeated lines, the retry budget, gone vs unreadable); this module only does the I/O.
The body is read with ``_preload_content=False`` from ``response.content`` in chunks, so a GiB log never sits in
memory and the loop is never blocked by one big read; the copy yields to the loop after every chunk, since aiohttp
hands back already-buffered chunks without yielding and a fast API server would otherwise let one big copy hold the
loop (and every other trigger) for as long as its buffer stays full. ``follow=True`` streams a running container's log until the
container ends (the triggerer's live logs); a follow stream that breaks resumes like any other read.

Outcome of a log that cannot be read: as in ``logs.sync``, never an exception — ``LogCopy.unavailable`` says why,
and ``copy_container_log_async`` warns through ``warn`` naming the container; the pod's outcome stands.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from kubernetes_asyncio.client import CoreV1Api
from tenacity import AsyncRetrying

from airflow_kpo_deferrable.logs.lines import (
    CHUNK_BYTES,
    LOG_PATH,
    ContainerLogCopy,
    LineSink,
    LogCopy,
    ResumePoint,
    retry_policy,
    unavailable_warning,
)
from airflow_kpo_deferrable.raw_response import raise_for_status

__all__ = ["copy_container_log_async", "drive_copy_async"]

log = logging.getLogger(__name__)

# No total timeout (a followed log lasts as long as the container); a silent connection is noticed by the read timeout.
READ_TIMEOUT_SECONDS = 120


async def _open(api: CoreV1Api, pod_name: str, namespace: str, query: dict[str, str]) -> aiohttp.ClientResponse:
    """GET pods/log with ``query`` (``sinceTime`` included, which the generated method does not take); raw response."""
    response = await api.api_client.call_api(
        LOG_PATH,
        "GET",
        path_params={"namespace": namespace, "name": pod_name},
        query_params=list(query.items()),
        header_params={"Accept": "text/plain"},
        auth_settings=["BearerToken"],
        _preload_content=False,
        _return_http_data_only=True,
        _request_timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=READ_TIMEOUT_SECONDS),
    )
    await raise_for_status(response)
    return response


async def copy_container_log_async(
    api: CoreV1Api,
    pod_name: str,
    namespace: str,
    container: str,
    sink: LineSink,
    *,
    prefix: str = "",
    follow: bool = False,
    start_after: ResumePoint | None = None,
    warn: LineSink | None = None,
) -> LogCopy:
    """Copy one container's log into ``sink`` line by line; a broken read resumes where it broke, nothing repeated.

    ``start_after`` (a ``LogCopy.resume_point`` from an earlier copy) skips what that copy already wrote.

    Never raises for an API answer (cancellation passes through): an unreadable log is reported through ``warn``.
    """
    copy = ContainerLogCopy(container, sink, prefix=prefix, follow=follow, start_after=start_after)
    return await drive_copy_async(api, pod_name, namespace, copy, warn=warn)


async def drive_copy_async(
    api: CoreV1Api, pod_name: str, namespace: str, copy: ContainerLogCopy, *, warn: LineSink | None = None
) -> LogCopy:
    """Run ``copy`` to its end (the caller keeps it: its ``result.resume_point`` is current at every await).

    A cancellation passes through with ``copy`` consistent: every line handed to the sink is counted in it.
    """
    try:
        async for attempt in AsyncRetrying(**retry_policy(copy)):
            with attempt:
                copy.restart()
                response = await _open(api, pod_name, namespace, copy.query())
                try:
                    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                        copy.feed(chunk)
                        await asyncio.sleep(0)  # buffered chunks come back without yielding: let the loop run
                finally:
                    response.release()
                copy.finish()
    except Exception as error:  # noqa: BLE001 — every failure becomes a reason; the pod's outcome stands
        copy.give_up(error)
        (warn or log.warning)(unavailable_warning(pod_name, namespace, copy.result))
    return copy.result
