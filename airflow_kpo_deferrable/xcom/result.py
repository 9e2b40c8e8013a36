"""The XCom sidecar contract's pure half: what to run in the sidecar, how much to accept, what the answer means.

Why one module: the worker (``xcom.sync``) and the triggerer (``xcom.aio``) must read and judge the result the same
way. Facts (the provider's contract, 10.25.0):

* The result is read with ``/bin/sh -c 'if [ -s /airflow/xcom/return.json ]; then cat ...; else echo
  __airflow_xcom_result_empty__; fi'`` in ``airflow-xcom-sidecar``: a missing or empty file is the sentinel, and the
  task's XCom is then None (the provider's behaviour), not an error.
* The sidecar is stopped by writing ``kill -2 $(pgrep -u $(id -u) -f 'sh')`` to an exec'd ``/bin/sh``: its trap
  exits 0 on SIGINT, so the pod ends (Succeeded when the base container did). The exec'd shell is hit too, so the
  kill's own exit status means nothing.
* A result over ``MAX_RESULT_BYTES`` (16 MiB) or that is not JSON fails the task with an ``XComError`` naming the
  pod, the file and the fix; readers stop reading at the limit (``too_large``), so memory stays bounded.
* Do not parse a preloaded exec answer: the ``kubernetes`` client turns JSON output into a Python repr.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_kpo_deferrable.podspec.xcom import SIDECAR_NAME, XCOM_RESULT_PATH

EMPTY_RESULT = "__airflow_xcom_result_empty__"
READ_COMMAND = [
    "/bin/sh", "-c",
    f"if [ -s {XCOM_RESULT_PATH} ]; then cat {XCOM_RESULT_PATH}; else echo {EMPTY_RESULT}; fi",
]
KILL_SHELL = ["/bin/sh"]
KILL_INPUT = "kill -2 $(pgrep -u $(id -u) -f 'sh')\n"
MAX_RESULT_BYTES = 16 * 1024 * 1024
READ_TIMEOUT_SECONDS = 120.0

__all__ = ["EMPTY_RESULT", "KILL_INPUT", "KILL_SHELL", "MAX_RESULT_BYTES", "READ_COMMAND", "SIDECAR_NAME",
           "XComError", "parse_result", "sidecar_missing", "sidecar_state", "too_large"]


class XComError(Exception):
    """The result of a ``do_xcom_push`` pod could not be read or is not valid; the message names the pod."""


def _where(name: str, namespace: str) -> str:
    return f"pod {namespace}/{name}"


def too_large(size: int, name: str, namespace: str, limit: int = MAX_RESULT_BYTES) -> XComError | None:
    """The error for a result of ``size`` bytes (so far), or None while it is within ``limit``."""
    if size <= limit:
        return None
    return XComError(
        f"{_where(name, namespace)} wrote more than {limit} bytes to {XCOM_RESULT_PATH} (the do_xcom_push limit): "
        "return a smaller value (e.g. a path or URL to the data) instead of the data itself"
    )


def parse_result(raw: bytes, name: str, namespace: str, limit: int = MAX_RESULT_BYTES) -> Any:
    """The task's XCom value from what the read command printed: None for no result, else the parsed JSON."""
    error = too_large(len(raw), name, namespace, limit)
    if error is not None:
        raise error
    text = raw.decode("utf-8", "replace")
    if not text.strip() or text.strip() == EMPTY_RESULT:
        return None
    try:
        return json.loads(text)
    except ValueError as failure:  # JSONDecodeError, or an integer too long for Python to convert
        shown = text if len(text) <= 200 else text[:200] + "..."
        why = (f"{failure.msg} at line {failure.lineno} column {failure.colno}"
               if isinstance(failure, json.JSONDecodeError) else str(failure).split(";")[0])
        raise XComError(
            f"{_where(name, namespace)} wrote invalid JSON to {XCOM_RESULT_PATH}: {why} (the file starts "
            f"{shown!r}); write it with json.dump(...)"
        ) from None


def sidecar_state(pod: dict[str, Any]) -> str:
    """The sidecar's state in a pod (``to_dict()`` snake_case or API camelCase): running, waiting, terminated, absent."""
    status = pod.get("status") or {}
    statuses = status.get("container_statuses") or status.get("containerStatuses") or []
    sidecar = next((s for s in statuses if s.get("name") == SIDECAR_NAME), None)
    if sidecar is None:
        spec = pod.get("spec") or {}
        declared = any(c.get("name") == SIDECAR_NAME for c in spec.get("containers") or [])
        return "waiting" if declared and status.get("phase") in (None, "Pending", "Running") else "absent"
    state = {key: value for key, value in (sidecar.get("state") or {}).items() if value}
    return next(iter(state), "waiting")


def sidecar_missing(name: str, namespace: str, why: str) -> XComError:
    return XComError(
        f"{_where(name, namespace)}: the XCom result cannot be read: {why}. The {SIDECAR_NAME} container must be "
        "running when the base container ends (do_xcom_push=True adds it; do not remove it in a pod template)"
    )
