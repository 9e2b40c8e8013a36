"""``pods/exec`` over WebSocket: runs a command "in" a running container, as kubectl and the Python clients expect.

Why: the XCom sidecar pattern and users' debugging need ``kubectl exec`` and ``kubernetes.stream.stream``. This
module speaks the channel protocol; the node says where the command runs (``Node.exec_target``) and
``kubelet.process.ExecTarget`` runs it (its own process group inside the container's PID and mount namespaces, in
its working directory with its environment, so its processes, volumes and files are what the command sees).

Protocol facts (as the API server and kubelet speak them):

* Subprotocols ``v5.channel.k8s.io``, ``v4.channel.k8s.io``, ``channel.k8s.io``; the client's first one we know
  wins. kubectl 1.32 asks for v5 first and needs no SPDY; a request that is not a WebSocket upgrade gets 400
  ``Upgrade request required`` (we do not speak SPDY).
* Every frame starts with its channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error/status, 4 resize (ignored: no
  TTY here, ``tty=true`` only merges stderr into stdout), and in v5 255 = "close channel <next byte>" (the client
  closing stdin). Text frames from the Python client carry the same layout.
* Channel 3 ends the stream: v4/v5 send a metav1.Status, ``Success`` or ``NonZeroExitCode`` with an ``ExitCode``
  cause (the Python client's ``returncode`` reads it); v1 sends the error text only on failure. A command that cannot
  be executed is an ``InternalError`` status carrying containerd's ``OCI runtime exec failed`` message.
* Errors before the upgrade are ordinary Status bodies: 400 for a missing command, no stream selected, a bad
  container name, or a container that is not running (``container not found ("base")``); 500 when the node cannot
  isolate containers (the command could reach the host's processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from ..errors import ApiError
from ..kubelet.process import ExecTarget, kill_group
from ..kubelet.sandbox import SandboxError
from ..store import Store
from .containers import choose_container
from .node import Node
from .requests import query_bool

V5, V4, V1 = "v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"
PROTOCOLS = (V5, V4, V1)
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def exit_status(protocol: str, command: list[str], code: int) -> bytes | None:
    """What channel 3 carries when the command ended with ``code`` (None: nothing to send)."""
    failure = (
        f"command terminated with non-zero exit code: error executing command [{' '.join(command)}], exit code {code}"
    )
    if protocol not in (V4, V5):
        return failure.encode() if code else None
    if code == 0:
        return json.dumps({"metadata": {}, "status": "Success"}).encode()
    status = {
        "metadata": {},
        "status": "Failure",
        "message": failure,
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }
    return json.dumps(status).encode()


def start_failure(protocol: str, problem: str) -> bytes:
    """Channel 3 for a command containerd could not start."""
    cause = (
        "error executing command in container: failed to exec in container: failed to start exec "
        f'"{secrets.token_hex(32)}": OCI runtime exec failed: exec failed: unable to start container process: '
        f"{problem}: unknown"
    )
    if protocol not in (V4, V5):
        return cause.encode()
    status = {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {cause}",
        "reason": "InternalError",
        "details": {"causes": [{"message": cause}]},
        "code": 500,
    }
    return json.dumps(status).encode()


@dataclass(frozen=True)
class PodExec:
    """``GET|POST /api/v1/namespaces/{namespace}/pods/{name}/exec`` (WebSocket upgrade only), from store and node."""

    store: Store
    node: Node | None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        query = request.query
        command = query.getall("command", [])
        streams = {key: query_bool(query, key) for key in ("stdin", "stdout", "stderr", "tty")}
        pod = self.store.get("pods", namespace, name)
        container = choose_container(pod, query.get("container", ""))
        if not command:
            raise ApiError(400, "BadRequest", "you must specify at least 1 command")
        if not (streams["stdin"] or streams["stdout"] or streams["stderr"]):
            raise ApiError(400, "BadRequest", "you must specify at least one of stdin, stdout, stderr")
        target = self.node.exec_target(namespace, name, container) if self.node else None
        if target is None:
            raise ApiError(400, "BadRequest", f'container not found ("{container}")')
        socket = web.WebSocketResponse(protocols=PROTOCOLS)
        if not socket.can_prepare(request).ok:
            raise ApiError(400, "BadRequest", "Upgrade request required")
        await socket.prepare(request)
        protocol = socket.ws_protocol or V1
        try:
            await run(socket, protocol, command, target, streams)
        except ConnectionError:  # the client went away; run() already killed the command
            pass
        finally:
            await socket.close()
        return socket


async def run(
    socket: web.WebSocketResponse, protocol: str, command: list[str], target: ExecTarget, streams: dict[str, bool]
) -> None:
    problem = target.problem(command[0])
    if problem:
        await socket.send_bytes(bytes([ERROR]) + start_failure(protocol, problem))
        return
    try:
        process = await target.spawn(command, stdin=streams["stdin"], stdout=streams["stdout"],
                                     stderr=streams["stderr"], tty=streams["tty"])
    except SandboxError as error:  # e.g. the container ended between the check and the exec
        await socket.send_bytes(bytes([ERROR]) + start_failure(protocol, str(error)))
        return
    outputs = [
        pump(stream, channel, socket)
        for stream, channel in ((process.stdout, STDOUT), (process.stderr, STDERR))
        if stream
    ]
    reader = asyncio.create_task(read_client(socket, process, protocol))
    try:
        await asyncio.gather(*outputs)
        code = await process.wait()
    finally:
        reader.cancel()
        if process.returncode is None:  # the client went away first: no orphan process
            kill_group(process)
            await process.wait()
    status = exit_status(protocol, command, code if code >= 0 else 128 - code)
    if status is not None:
        await socket.send_bytes(bytes([ERROR]) + status)


async def pump(stream: asyncio.StreamReader, channel: int, socket: web.WebSocketResponse) -> None:
    while chunk := await stream.read(64 * 1024):
        await socket.send_bytes(bytes([channel]) + chunk)


async def read_client(socket: web.WebSocketResponse, process: asyncio.subprocess.Process, protocol: str) -> None:
    """Client frames: stdin data, v5 stdin close, resize (ignored); a closed socket kills the command."""
    async for message in socket:
        if message.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
            break
        data = message.data if isinstance(message.data, bytes) else message.data.encode()
        if not data:
            continue
        channel, payload = data[0], data[1:]
        if channel == STDIN and process.stdin is not None and payload:
            process.stdin.write(payload)
            with contextlib.suppress(ConnectionError):
                await process.stdin.drain()
        elif channel == CLOSE and protocol == V5 and payload[:1] == bytes([STDIN]) and process.stdin is not None:
            process.stdin.close()
    if process.returncode is None:
        kill_group(process)
