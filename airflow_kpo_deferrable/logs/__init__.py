"""Container logs into the task log: every line exactly once, in bounded memory, from the worker or the triggerer.

Why: the provider reads the whole base-container log into memory on resume, ignores the other containers, and turns
any error of the read into a silent loss. Here:

* ``logs.stamps`` — pure: ``timestamps=true`` output back into the container's lines (stamps parsed and stripped).
* ``logs.lines`` — the pure rules, one copy for both sides: the resume point (``sinceTime`` plus exact overlap
  dropping), the retry policy, gone vs unreadable, which containers to copy.
* ``logs.sync`` — the worker's reader (sync ``kubernetes`` client), used when the task resumes.
* ``logs.aio`` — the triggerer's reader (``kubernetes_asyncio``, chunked raw responses, ``follow`` for live logs).

The outcome of a task whose log could not be read is deliberate: the pod's outcome stands, and a WARNING names the
container and why (pod gone: 404; container never started: 400; or still failing after retries).
"""

from airflow_kpo_deferrable.logs.lines import (
    ContainerLogCopy,
    LogCopy,
    ResumePoint,
    selected_containers,
)
from airflow_kpo_deferrable.logs.stamps import StampedDecoder, parse_stamp, since_time

__all__ = [
    "ContainerLogCopy",
    "LogCopy",
    "ResumePoint",
    "StampedDecoder",
    "parse_stamp",
    "selected_containers",
    "since_time",
]
