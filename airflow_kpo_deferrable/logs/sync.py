"""Copy a finished pod's container logs into the task log on the worker (sync ``kubernetes`` client).

The rules — decoding, resuming without loss or repeat, retrying, what counts as gone — are in ``logs.lines``; this
module only does the I/O: one ``pods/log`` request per read, streamed in chunks, retried with the shared policy.

Outcome of a log that cannot be read (a deliberate choice): the task's outcome is the pod's. A log that is gone
(404: the pod was deleted; 400: the container never started) or that stays unreadable after retries is reported as a
WARNING naming the container and the reason, and the task still succeeds or fails as its pod did. Failing a task
whose pod succeeded because its log could not be fetched would make a flaky API server rerun work that is done.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException
from tenacity import Retrying

from airflow_kpo_deferrable.logs.lines import (
    CHUNK_BYTES,
    LOG_PATH,
    ContainerLogCopy,
    HookFailed,
    LineOutput,
    LineSink,
    LogCopy,
    ResumePoint,
    StampedSink,
    line_prefix,
    retry_policy,
    unavailable_warning,
)

__all__ = ["copy_container_log", "copy_logs"]

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = (30, 120)  # connect, read: a read that stalls for two minutes is treated as broken and resumed


def _open(api: CoreV1Api, pod_name: str, namespace: str, query: dict[str, str]) -> Any:
    """GET pods/log with ``query`` (``sinceTime`` included, which the generated method does not take); raw response.

    kubernetes >= 35 (openapi-generator 7) serialises through ``param_serialize``; older releases take the legacy
    ``call_api`` arguments. Both raise ``ApiException`` on a non-2xx answer.
    """
    client = api.api_client
    path_params = {"namespace": namespace, "name": pod_name}
    headers = {"Accept": "text/plain"}
    if hasattr(client, "param_serialize"):
        request = client.param_serialize(
            "GET", LOG_PATH, path_params=path_params, query_params=list(query.items()), header_params=headers,
            auth_settings=["BearerToken"],
        )
        response = client.call_api(*request, _request_timeout=REQUEST_TIMEOUT)
        if not 200 <= response.status <= 299:
            response.read()
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response
    return client.call_api(
        LOG_PATH, "GET", path_params, list(query.items()), headers, auth_settings=["BearerToken"],
        _preload_content=False, _return_http_data_only=True, _request_timeout=REQUEST_TIMEOUT,
    )


def _chunks(response: Any) -> Iterator[bytes]:
    yield from response.stream(CHUNK_BYTES, decode_content=True)


def copy_container_log(
    api: CoreV1Api,
    pod_name: str,
    namespace: str,
    container: str,
    sink: LineSink,
    *,
    prefix: str = "",
    start_after: ResumePoint | None = None,
    write: StampedSink | None = None,
) -> LogCopy:
    """Copy one container's whole log into ``sink``, line by line; a broken read resumes where it broke.

    Never raises for an API answer: a log that cannot be read ends with ``unavailable`` set to the reason.
    ``start_after`` (a ``LogCopy.resume_point`` from an earlier copy, e.g. the triggerer's) skips what it wrote.
    ``write`` (``LineOutput.writer``) replaces ``sink`` and ``prefix``; what it raises (``HookFailed``) propagates.
    """
    copy = ContainerLogCopy(container, sink, prefix=prefix, start_after=start_after, write=write)
    try:
        for attempt in Retrying(**retry_policy(copy)):
            with attempt:
                copy.restart()
                response = _open(api, pod_name, namespace, copy.query())
                try:
                    for chunk in _chunks(response):
                        copy.feed(chunk)
                finally:
                    response.release_conn()
                copy.finish()
    except HookFailed:
        raise
    except Exception as error:  # noqa: BLE001 — every failure becomes a reason; the pod's outcome stands
        copy.give_up(error)
    return copy.result


def copy_logs(
    api: CoreV1Api,
    pod_name: str,
    namespace: str,
    containers: list[str],
    sink: LineSink,
    warn: LineSink | None = None,
    start_after: Mapping[str, ResumePoint] | None = None,
    output: LineOutput | None = None,
) -> list[LogCopy]:
    """Copy several containers' logs in order; with more than one, each line is prefixed by its container.

    ``start_after`` maps a container to where an earlier copy (the triggerer's live logs) stopped: only what follows
    is written.

    ``output`` (the operator's ``container_name_log_prefix_enabled``, ``log_formatter``, progress callbacks) decides
    how each line is written; a hook that raises stops the copy with ``HookFailed``.

    A container whose log could not be read is reported through ``warn`` (a WARNING), naming it and why.
    """
    warn = warn or log.warning
    output = output or LineOutput(sink)
    copies = []
    for container in containers:
        prefix = line_prefix(containers, container, output.prefix_enabled)
        after = (start_after or {}).get(container)
        write = output.writer(containers, container) if output.hooked else None
        copy = copy_container_log(
            api, pod_name, namespace, container, output.sink, prefix=prefix, start_after=after, write=write
        )
        if copy.unavailable:
            warn(unavailable_warning(pod_name, namespace, copy))
        copies.append(copy)
    return copies

