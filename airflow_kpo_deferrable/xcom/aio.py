"""The triggerer's XCom reader: the same exec steps as ``xcom.sync`` over kubernetes_asyncio's ``WsApiClient``.

Why: a trigger that reads the result itself lets a pod's sidecar stop as soon as the base container ends, without
waiting for a worker slot. Facts: the exec is opened unpreloaded (``_preload_content=False`` gives aiohttp's
WebSocket; a preloaded answer merges stdout with stderr and turns JSON into a repr) and read frame by frame: channel
1 stdout, 2 stderr, 3 the final Status (``WsApiClient.parse_error_data`` gives the exit code); reading stops at the
size limit. The caller owns the ``WsApiClient`` (built from the same configuration as its other clients).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from kubernetes_asyncio.client import CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.stream import WsApiClient
from kubernetes_asyncio.stream.ws_client import ERROR_CHANNEL, STDERR_CHANNEL, STDIN_CHANNEL, STDOUT_CHANNEL

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
    too_large,
)


async def _connect(client: WsApiClient, name: str, namespace: str, command: list[str], *, stdin: bool) -> Any:
    return await CoreV1Api(api_client=client).connect_get_namespaced_pod_exec(
        name, namespace, container=SIDECAR_NAME, command=command, stdin=stdin, stdout=True, stderr=True,
        tty=False, _preload_content=False)


def _refused(error: Exception) -> str:
    status = getattr(error, "status", None)
    return f"exec into {SIDECAR_NAME} was refused ({status or type(error).__name__}: {error})"


async def read_result(client: WsApiClient, name: str, namespace: str, *, limit: int = MAX_RESULT_BYTES,
                      timeout: float = READ_TIMEOUT_SECONDS) -> Any:
    """The pod's XCom value (None when the base container wrote nothing); ``XComError`` when it cannot be had."""
    out, err, code = bytearray(), bytearray(), None
    try:
        async with asyncio.timeout(timeout):
            connecting = await _connect(client, name, namespace, READ_COMMAND, stdin=False)
            async with connecting as socket:
                async for message in socket:
                    data = message.data if isinstance(message.data, bytes) else message.data.encode()
                    if not data:
                        continue
                    channel, payload = data[0], data[1:]
                    if channel == STDOUT_CHANNEL:
                        out += payload
                        if (problem := too_large(len(out), name, namespace, limit)) is not None:
                            raise problem
                    elif channel == STDERR_CHANNEL:
                        err += payload
                    elif channel == ERROR_CHANNEL:
                        code = WsApiClient.parse_error_data(payload)
    except TimeoutError:
        raise XComError(f"pod {namespace}/{name}: reading the XCom result took over {timeout:g}s") from None
    except (ApiException, aiohttp.WSServerHandshakeError) as error:  # a refused upgrade is the handshake error
        raise sidecar_missing(name, namespace, _refused(error)) from None
    if code:
        raise XComError(f"pod {namespace}/{name}: reading the XCom result in {SIDECAR_NAME} exited with {code}: "
                        f"{err.decode('utf-8', 'replace').strip() or 'no error output'}")
    return parse_result(bytes(out), name, namespace, limit)


async def stop_sidecar(client: WsApiClient, name: str, namespace: str, timeout: float = 30.0) -> str | None:
    """Ask the sidecar to exit (SIGINT, its trap exits 0); None when done, else why it could not be asked."""
    try:
        async with asyncio.timeout(timeout):
            connecting = await _connect(client, name, namespace, KILL_SHELL, stdin=True)
            async with connecting as socket:
                await socket.send_bytes(bytes([STDIN_CHANNEL]) + KILL_INPUT.encode())
                async for _ in socket:  # until the shell, hit by its own SIGINT, closes the stream
                    pass
    except TimeoutError:
        return f"the kill command did not finish within {timeout:g}s"
    except Exception as error:  # noqa: BLE001 - best effort; the caller logs it
        return _refused(error)
    return None
