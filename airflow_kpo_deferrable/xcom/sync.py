"""The worker's XCom reader: ``kubernetes.stream`` exec into ``airflow-xcom-sidecar`` to read, then to stop it.

Why here and not in the operator: the same steps run after a deferral (resume) and without one, and the rules they
apply are ``xcom.result``'s. Facts: the exec is read unpreloaded, frame by frame, so the answer is the container's
bytes (a preloaded JSON answer comes back as a Python repr) and reading stops at the size limit; a refused exec
(the sidecar is not running: 400 from the API server) is an ``XComError`` naming the pod; the base container may
end before the sidecar has started (its image is pulled too), so ``wait_for_sidecar`` waits for it, as the
provider's ``await_xcom_sidecar_container_start``; stopping the sidecar is best effort for the caller to log
(``stop_sidecar`` returns the problem instead of raising).
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from airflow_kpo_deferrable.xcom.result import (
    KILL_INPUT,
    KILL_SHELL,
    MAX_RESULT_BYTES,
    READ_COMMAND,
    READ_TIMEOUT_SECONDS,
    SIDECAR_NAME,
    XComError,
    parse_result,
    sidecar_missing,
    sidecar_state,
    too_large,
)


def _exec(api: CoreV1Api, name: str, namespace: str, command: list[str], *, stdin: bool) -> Any:
    return stream(api.connect_get_namespaced_pod_exec, name, namespace, container=SIDECAR_NAME, command=command,
                  stdin=stdin, stdout=True, stderr=True, tty=False, _preload_content=False)


def wait_for_sidecar(api: CoreV1Api, name: str, namespace: str, timeout: float) -> XComError | None:
    """Wait until the sidecar runs (the base container may end before it has started); None then, else why not."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pod = api.read_namespaced_pod(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return sidecar_missing(name, namespace, "the pod no longer exists")
            raise
        state = sidecar_state(pod.to_dict() if hasattr(pod, "to_dict") else pod)
        if state == "running":
            return None
        if state != "waiting" or time.monotonic() > deadline:
            why = f"the {SIDECAR_NAME} container is {state}" + (
                f" after {timeout:g}s" if state == "waiting" else "")
            return sidecar_missing(name, namespace, why)
        time.sleep(1)


def read_result(api: CoreV1Api, name: str, namespace: str, *, limit: int = MAX_RESULT_BYTES,
                timeout: float = READ_TIMEOUT_SECONDS) -> Any:
    """The pod's XCom value (None when the base container wrote nothing); ``XComError`` when it cannot be had."""
    try:
        response = _exec(api, name, namespace, READ_COMMAND, stdin=False)
    except ApiException as error:
        raise sidecar_missing(name, namespace, f"exec into {SIDECAR_NAME} was refused ({error.status}: "
                                               f"{error.reason})") from None
    out, err = bytearray(), []
    deadline = time.monotonic() + timeout
    try:
        while response.is_open():
            if time.monotonic() > deadline:
                raise XComError(f"pod {namespace}/{name}: reading the XCom result took over {timeout:g}s")
            response.update(timeout=1)
            out += response.read_stdout().encode()
            err.append(response.read_stderr())
            if (problem := too_large(len(out), name, namespace, limit)) is not None:
                raise problem
        out += response.read_stdout().encode()
        err.append(response.read_stderr())
        code = response.returncode
    finally:
        response.close()
    if code:
        raise XComError(f"pod {namespace}/{name}: reading the XCom result in {SIDECAR_NAME} exited with {code}: "
                        f"{''.join(err).strip() or 'no error output'}")
    return parse_result(bytes(out), name, namespace, limit)


def stop_sidecar(api: CoreV1Api, name: str, namespace: str, timeout: float = 30.0) -> str | None:
    """Ask the sidecar to exit (SIGINT, its trap exits 0); None when done, else why it could not be asked."""
    try:
        response = _exec(api, name, namespace, KILL_SHELL, stdin=True)
    except ApiException as error:
        return f"exec into {SIDECAR_NAME} was refused ({error.status}: {error.reason})"
    try:
        response.write_stdin(KILL_INPUT)
        deadline = time.monotonic() + timeout
        while response.is_open() and time.monotonic() < deadline:  # the shell dies of its own SIGINT too
            response.update(timeout=1)
        return None if not response.is_open() else f"the kill command did not finish within {timeout:g}s"
    finally:
        response.close()
