"""The worker's calls of ``callbacks``, ``progress_callback`` and ``log_formatter``, with the provider's keywords.

Why: ``operators/pod.py`` calls the user's code at the provider's moments; what is passed (``client``, ``mode``,
``operator``, ``context``, the pod as a ``V1Pod``) is built here, once. The rules — which hooks, when, and why such a
task resumes on a worker — are ``airflow_kpo_deferrable.callbacks``'.

The operator's ``progress_callback`` argument is called with the line alone (``progress_callback(line)``, its
``Callable[[str], None]`` type; the provider's 10.25.0 stores it without calling it, its earlier releases called it
so). A callbacks class's ``progress_callback`` gets the provider's keywords: ``line``, ``client``, ``mode``,
``container_name``, ``timestamp`` (the line's stamp) and ``pod``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubernetes.client import CoreV1Api, V1Pod

from airflow_kpo_deferrable.callbacks import Callbacks, ExecutionMode, has_started, stamp_time
from airflow_kpo_deferrable.logs.lines import HookFailed, LineOutput, LineSink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context


def call(operator: BaseOperator, hook: str, context: Context | None, client: CoreV1Api, **kwargs: Any) -> None:
    """Call ``hook`` of every callbacks class with the provider's keywords (``mode`` sync: this is the worker)."""
    Callbacks(operator.callbacks).call(
        hook, client=client, mode=ExecutionMode.SYNC, operator=operator, context=context, **kwargs
    )


def client_created(operator: BaseOperator, client: CoreV1Api) -> None:
    """``on_sync_client_creation``: the provider passes only the client and the operator."""
    Callbacks(operator.callbacks).call("on_sync_client_creation", client=client, operator=operator)


def line_output(operator: BaseOperator, sink: LineSink, client: CoreV1Api, pod: V1Pod) -> LineOutput:
    """How the worker writes ``pod``'s lines: formatted or prefixed, each seen first by the progress callbacks."""
    classes = Callbacks(operator.callbacks)
    function = operator.progress_callback

    def progress(container: str, line: str, stamp: int | None) -> None:
        if function is not None:
            function(line)
        classes.call(
            "progress_callback", line=line, client=client, mode=ExecutionMode.SYNC, container_name=container,
            timestamp=stamp_time(stamp), pod=pod,
        )

    return LineOutput(
        sink,
        prefix_enabled=operator.container_name_log_prefix_enabled,
        formatter=operator.log_formatter,
        progress=progress if function is not None or classes else None,
    )


def starting_observer(
    operator: BaseOperator, context: Context, client: CoreV1Api, read_pod: Callable[[], V1Pod | None]
) -> Callable[[dict[str, Any] | None], None] | None:
    """For the wait on the worker (``deferrable=False``): ``on_pod_starting`` once, when the pod leaves Pending, with
    the pod read again (the provider's ``find_pod``). What it raises comes out of the wait as ``HookFailed``."""
    if not operator.callbacks:
        return None
    called = False

    def observe(pod: dict[str, Any] | None) -> None:
        nonlocal called
        if called or not has_started(pod):
            return
        called = True
        try:
            call(operator, "on_pod_starting", context, client, pod=read_pod())
        except Exception as error:
            raise HookFailed(error) from error

    return observe
