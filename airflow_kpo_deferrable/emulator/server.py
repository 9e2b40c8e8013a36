"""The emulator's HTTP API server (aiohttp) and the ``Emulator`` that runs it with the simulated kubelet.

Why: our operator, the provider's, the ``kubernetes``/``kubernetes_asyncio`` clients and ``kubectl`` must all accept it
as a cluster, so it speaks the real ``/api/v1`` protocol; nothing in our own code knows it is not a real one.

Protocol facts it keeps (the ones watchers and ``kubectl`` depend on):

* A watch (``?watch=true``) from ``resourceVersion`` "" or "0" starts with a synthetic ADDED per existing object; from
  any other version it replays the stored changes after it. A version older than the retained history is not an HTTP
  error: the answer is 200 with one ``ERROR`` event holding a 410 ``Expired`` Status, then the stream ends — that is
  what clients' "relist on 410" code is written for.
* Selectors apply to transitions: an object that stops matching is sent as DELETED, one that starts matching as
  ADDED (a ``status.phase=Running`` watch sees the pod leave when it finishes).
* ``allowWatchBookmarks`` sends BOOKMARK events every ``bookmark_interval`` seconds while nothing else is sent;
  ``timeoutSeconds`` ends the stream cleanly (default 30 to 60 minutes, like the API server's min-request-timeout).
* Each change is serialized once and the same bytes go to every watch; each watch has a bounded queue and is ended
  (as the API server ends too-slow watchers) if it falls 10,000 changes behind.
* Errors are ``metav1.Status`` bodies; ``Accept: ...;as=Table`` gets server-side printed Tables (``kubectl get``).
* Requests are counted by verb and resource like the audit log ("list pods", "watch pods", "get pods/log"); the
  ``/emulator/...`` side channel (counters, faults, evict, lose-node) is neither counted nor faulted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import random
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from . import podexec, podlog
from .credentials import make_tls, write_kubeconfig
from .errors import ApiError, Gone, not_found
from .faults import Faults
from .patching import apply_patch
from .podlog import query_bool
from .selectors import matcher
from .store import KIND_OF, KINDS, NAMESPACED, Change, Store
from .tables import table

VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.0-kpo-emulator", "gitCommit": "0" * 40,
    "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
    "platform": "linux/amd64",
}
WATCH_QUEUE_LIMIT = 10_000
RUNTIMES = ("process", "scripted", "none")
_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SHORT_NAMES = {"pods": ["po"], "events": ["ev"], "namespaces": ["ns"], "nodes": ["no"], "configmaps": ["cm"]}


def _resource_list() -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for kind in KINDS:
        entry = {"name": kind, "singularName": KIND_OF[kind].lower(), "namespaced": kind in NAMESPACED,
                 "kind": KIND_OF[kind], "verbs": _VERBS}
        if kind in SHORT_NAMES:
            entry["shortNames"] = SHORT_NAMES[kind]
        if kind == "pods":
            entry["categories"] = ["all"]
        resources.append(entry)
    for name, kind, verbs in (("pods/log", "Pod", ["get"]), ("pods/exec", "PodExecOptions", ["create", "get"]),
                              ("pods/status", "Pod", ["get", "patch", "update"]),
                              ("pods/eviction", "Eviction", ["create"]), ("namespaces/status", "Namespace", ["get"])):
        resources.append({"name": name, "singularName": "", "namespaced": name.startswith("pods"), "kind": kind,
                          "verbs": verbs})
    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": resources}


@dataclass(frozen=True)
class Target:
    """What an ``/api/v1/...`` path names."""

    kind: str
    namespace: str | None
    name: str | None
    sub: str | None

    @classmethod
    def parse(cls, tail: str) -> Target:
        parts = [part for part in tail.split("/") if part]
        if len(parts) >= 3 and parts[0] == "namespaces" and parts[2] not in ("status", "finalize"):
            kind, namespace, rest = parts[2], parts[1], parts[3:]
        else:
            kind, namespace, rest = (parts[0] if parts else ""), None, parts[1:]
        if kind not in KINDS or len(rest) > 2:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return cls(kind, namespace, rest[0] if rest else None, rest[1] if len(rest) > 1 else None)

    @property
    def resource(self) -> str:
        return f"{self.kind}/{self.sub}" if self.sub else self.kind

    def verb(self, method: str, query: Any) -> str:
        if method == "GET" and self.name is None:
            return "watch" if query_bool(query, "watch") else "list"
        if self.name is None:
            return {"POST": "create", "DELETE": "deletecollection"}.get(method, method.lower())
        return {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "POST": "create"}.get(
            method, method.lower())


TARGET_KEY = web.RequestKey("target", Target)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")), status=status, content_type="application/json")


def _error_response(error: ApiError) -> web.Response:
    response = _json(error.status(), error.code)
    response.headers.update(error.headers)
    return response


def _table_include(request: web.Request) -> str | None:
    """The row-object mode when the client asked for a Table (``kubectl get``), else None."""
    if "as=Table" not in request.headers.get("Accept", ""):
        return None
    return request.query.get("includeObject", "Metadata")


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "BadRequest", "the body of the request could not be decoded as JSON") from None


def _continue_token(namespace: str, name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([namespace, name]).encode()).decode()


def _after_token(token: str) -> tuple[str, str]:
    try:
        namespace, name = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(namespace), str(name)
    except ValueError:
        raise ApiError(400, "BadRequest", "continue key is not valid: illegal base64 data") from None


class Api:
    """The request handlers for ``/api/v1``; state lives in the store, the kubelet and the faults."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.store = emulator.store

    async def handle(self, request: web.Request) -> web.StreamResponse:
        target = request[TARGET_KEY]
        if target.sub in ("log", "exec"):  # only reached for paths the kubelet routes do not match
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if target.kind in NAMESPACED and target.namespace is None and (target.name or request.method != "GET"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if target.name is None:
            return await self._collection(request, target)
        return await self._item(request, target)

    # -- collections ----------------------------------------------------------------------------------------------

    async def _collection(self, request: web.Request, target: Target) -> web.StreamResponse:
        method = request.method
        if method == "GET":
            match = matcher(target.kind, request.query.get("labelSelector", ""),
                            request.query.get("fieldSelector", ""))
            if query_bool(request.query, "watch"):
                return await Watch(self.store, self.emulator.bookmark_interval, target, match, request).run()
            return self._list(request, target, match)
        if method == "POST":
            created = self.store.create(target.kind, target.namespace, await _body(request))
            return _json(created, 201)
        if method == "DELETE":
            options = await _body(request)
            deleted = []
            for obj in self.store.select(target.kind, target.namespace, request.query.get("labelSelector", ""),
                                         request.query.get("fieldSelector", "")):
                with contextlib.suppress(ApiError):
                    deleted.append(self._delete(target.kind, obj, request, options))
            return _json({"kind": KIND_OF[target.kind] + "List", "apiVersion": "v1",
                          "metadata": {"resourceVersion": str(self.store.resource_version)}, "items": deleted})
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _list(self, request: web.Request, target: Target, match: Callable[[dict[str, Any]], bool]) -> web.Response:
        items = [obj for obj in self.store.select(target.kind, target.namespace) if match(obj)]
        metadata: dict[str, Any] = {"resourceVersion": str(self.store.resource_version)}
        if token := request.query.get("continue"):
            after = _after_token(token)
            items = [obj for obj in items if (obj["metadata"].get("namespace", ""), obj["metadata"]["name"]) > after]
        limit = int(request.query.get("limit") or 0)
        if 0 < limit < len(items):
            last = items[limit - 1]["metadata"]
            metadata["continue"] = _continue_token(last.get("namespace", ""), last["name"])
            metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        include = _table_include(request)
        if include is not None:
            return _json(table(target.kind, items, metadata["resourceVersion"], include) | {"metadata": metadata})
        return _json({"kind": KIND_OF[target.kind] + "List", "apiVersion": "v1", "metadata": metadata,
                      "items": items})

    # -- single objects -------------------------------------------------------------------------------------------

    async def _item(self, request: web.Request, target: Target) -> web.StreamResponse:
        kind, namespace, name, sub = target.kind, target.namespace, target.name, target.sub
        assert name is not None
        if sub not in (None, "status", "eviction"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        method = request.method
        if sub == "eviction":
            if method != "POST":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on eviction")
            body = await _body(request)
            self._delete(kind, self.store.peek(kind, namespace, name), request, body.get("deleteOptions") or {})
            return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)
        if method == "GET":
            obj = self.store.peek(kind, namespace, name)
            include = _table_include(request)
            if include is not None:
                return _json(table(kind, [obj], obj["metadata"]["resourceVersion"], include))
            return _json(obj)
        if method in ("PUT", "PATCH"):
            return _json(await self._write(request, target))
        if method == "DELETE":
            return _json(self._delete(kind, self.store.peek(kind, namespace, name), request, await _body(request)))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    async def _write(self, request: web.Request, target: Target) -> dict[str, Any]:
        current = self.store.peek(target.kind, target.namespace, target.name or "")
        body = await _body(request)
        if request.method == "PUT":
            wanted = (body.get("metadata") or {}).get("resourceVersion")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {target.kind} "{target.name}": '
                                                "the object has been modified; please apply your changes to the "
                                                "latest version and try again",
                               {"name": target.name, "kind": target.kind})
            result = body
        else:
            result = apply_patch(request.content_type, current, body)
        if target.sub == "status":  # the status subresource writes status only
            result = {**current, "status": result.get("status", current.get("status"))}
        elif "status" in current:  # the main resource never writes status
            result = {**result, "status": current["status"]}

        def replace(obj: dict[str, Any]) -> None:
            obj.clear()
            obj.update(result)

        return self.store.update(target.kind, target.namespace, target.name or "", replace, validate=True)

    def _delete(self, kind: str, obj: dict[str, Any], request: web.Request, options: dict[str, Any]) -> dict[str, Any]:
        grace = request.query.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
        metadata = obj["metadata"]
        deleted = self.store.delete(kind, metadata.get("namespace"), metadata["name"],
                                    None if grace is None else int(grace), options.get("preconditions"))
        if kind in ("pods", "namespaces"):
            return deleted
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": metadata["name"], "kind": kind, "uid": metadata.get("uid")}}


class Watch:
    """One watch stream: initial objects or a replay, then live changes, bookmarks, timeout."""

    def __init__(self, store: Store, bookmark_interval: float, target: Target,
                 match: Callable[[dict[str, Any]], bool], request: web.Request) -> None:
        self.store, self.target, self.match, self.request = store, target, match, request
        self.bookmark_interval = bookmark_interval
        query = request.query
        self.bookmarks = query_bool(query, "allowWatchBookmarks")
        # Without timeoutSeconds the API server picks 1x-2x its min-request-timeout (1800 s).
        self.timeout = float(query.get("timeoutSeconds") or 1800 * (1 + random.random()))
        self.table_include = _table_include(request)

    def _selected(self, obj: dict[str, Any]) -> bool:
        namespace = self.target.namespace
        return (namespace is None or obj["metadata"].get("namespace") == namespace) and self.match(obj)

    def _line(self, change: Change) -> bytes | None:
        if change.kind != self.target.kind:
            return None
        now_in = self._selected(change.obj)
        was_in = change.old is not None and change.type == "MODIFIED" and self._selected(change.old)
        if change.type == "MODIFIED":
            kind_of_event = ("MODIFIED" if was_in else "ADDED") if now_in else ("DELETED" if was_in else None)
        else:
            kind_of_event = change.type if now_in else None
        if kind_of_event is None:
            return None
        return self._event(kind_of_event, change.obj, change)

    def _event(self, kind_of_event: str, obj: dict[str, Any], change: Change | None = None) -> bytes:
        if self.table_include is not None:
            printed = table(self.target.kind, [obj], obj["metadata"].get("resourceVersion", ""), self.table_include)
            return json.dumps({"type": kind_of_event, "object": printed}, separators=(",", ":")).encode() + b"\n"
        if change is not None:
            return change.wire(kind_of_event)
        return json.dumps({"type": kind_of_event, "object": obj}, separators=(",", ":")).encode() + b"\n"

    def _bookmark(self) -> bytes:
        obj = {"kind": KIND_OF[self.target.kind], "apiVersion": "v1",
               "metadata": {"resourceVersion": str(self.store.resource_version)}}
        return json.dumps({"type": "BOOKMARK", "object": obj}, separators=(",", ":")).encode() + b"\n"

    async def run(self) -> web.StreamResponse:
        start = self.request.query.get("resourceVersion", "")
        queue = self.store.subscribe(maxsize=WATCH_QUEUE_LIMIT)
        try:
            first = self._first_lines(start)
            response = web.StreamResponse(headers={"Content-Type": "application/json",
                                                   "Cache-Control": "no-cache, private"})
            response.enable_chunked_encoding()
            await response.prepare(self.request)
            if first:
                await response.write(b"".join(first))
            if first is not None and not (first and first[-1].startswith(b'{"type":"ERROR"')):
                await self._stream(queue, response)
            with contextlib.suppress(ConnectionError):
                await response.write_eof()
            return response
        finally:
            self.store.unsubscribe(queue)

    def _first_lines(self, start: str) -> list[bytes]:
        """Synthetic ADDED events for "" / "0", the replay for a version, or the 410 ERROR event."""
        if start in ("", "0"):
            return [self._event("ADDED", obj) for obj in self.store.select(self.target.kind, self.target.namespace)
                    if self.match(obj)]
        try:
            version = int(start)
        except ValueError:
            raise ApiError(400, "BadRequest", f'resourceVersion: Invalid value: "{start}": must be an integer')
        try:
            changes = self.store.changes_since(version)
        except Gone as gone:
            return [json.dumps({"type": "ERROR", "object": gone.status()}, separators=(",", ":")).encode() + b"\n"]
        return [line for change in changes if (line := self._line(change)) is not None]

    async def _stream(self, queue: asyncio.Queue[Change | None], response: web.StreamResponse) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + self.timeout
        while True:
            wait = end - loop.time()
            if self.bookmarks:
                wait = min(wait, self.bookmark_interval)
            if wait <= 0:
                return
            try:
                async with asyncio.timeout(wait):
                    change = await queue.get()
            except TimeoutError:
                if loop.time() >= end:
                    return
                await response.write(self._bookmark())
                continue
            batch = [change]
            while not queue.empty():  # send everything already queued in one write
                batch.append(queue.get_nowait())
            lines = []
            for item in batch:
                if item is None:  # cut off: too slow, or close_watches()
                    if lines:
                        await response.write(b"".join(lines))
                    return
                if (line := self._line(item)) is not None:
                    lines.append(line)
            if lines:
                await response.write(b"".join(lines))


class Emulator:
    """A Kubernetes API emulator on loopback with a simulated kubelet; an async context manager.

    ``runtime``: ``process`` runs containers' commands as local processes, ``scripted`` plays pod annotations,
    ``none`` has no kubelet (pods stay Pending). Use ``in_thread()`` from synchronous code.
    """

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, runtime: str = "process", tls: bool = False,
        kubeconfig_path: Path | str | None = None, workdir: Path | str | None = None,
        bookmark_interval: float = 60.0, history_limit: int = 10_000,
    ) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        self.host, self.port, self.runtime, self.tls = host, port, runtime, tls
        self.bookmark_interval = bookmark_interval
        self._own_dir = Path(tempfile.mkdtemp(prefix="kpo-emulator-"))
        self.kubeconfig_path = Path(kubeconfig_path) if kubeconfig_path else self._own_dir / "kubeconfig"
        self.workdir = Path(workdir) if workdir else None
        self.store = Store(history_limit)
        self.faults = Faults(self.store)
        self.kubelet: Any = None
        self.url = ""
        self._counters: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- counters -------------------------------------------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def reset_counters(self) -> None:
        self._counters.clear()

    # -- lifecycle ------------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Emulator:
        self._loop = asyncio.get_running_loop()
        app = web.Application(middlewares=[self._api_middleware], client_max_size=64 * 1024**2)
        self._add_kubelet_routes(app)
        self._add_discovery(app)  # before the catch-all: it serves /api/v1/ too
        app.router.add_route("*", "/api/v1/{tail:.*}", Api(self).handle)
        self._add_side_channel(app)
        ssl_context, ca_pem = None, None
        if self.tls:
            import ssl

            files = make_tls(self._own_dir / "tls", self.host)
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(files.cert_path, files.key_path)
            ca_pem = files.ca_pem
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=ssl_context, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"{scheme}://{host}:{self.port}"
        write_kubeconfig(self.kubeconfig_path, self.url, ca_pem)
        if self.runtime != "none":
            from .kubelet import Kubelet

            self.kubelet = Kubelet(self.store, self.runtime, workdir=self.workdir)
            await self.kubelet.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.kubelet is not None:
            await self.kubelet.stop()
        self.store.cut_off_all(lambda queue: True)
        if self._runner is not None:
            await self._runner.cleanup()
        shutil.rmtree(self._own_dir, ignore_errors=True)

    @classmethod
    @contextmanager
    def in_thread(cls, **kwargs: Any) -> Iterator[Emulator]:
        """Run an emulator on its own loop in a daemon thread (for synchronous tests and scripts)."""
        emulator = cls(**kwargs)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="kpo-emulator", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(emulator.__aenter__(), loop).result(timeout=60)
            yield emulator
        finally:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(emulator.__aexit__(None, None, None), loop).result(timeout=60)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` (sync, or a coroutine function) on the emulator's loop from another thread."""
        if self._loop is None:
            raise RuntimeError("the emulator is not running")

        async def run() -> Any:
            result = fn(*args)
            return await result if inspect.isawaitable(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    # -- routes besides /api/v1 -----------------------------------------------------------------------------------

    @web.middleware
    async def _api_middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        try:
            if request.path.startswith("/api/v1/") and request.path != "/api/v1/":
                target = Target.parse(request.path[len("/api/v1/"):])
                request[TARGET_KEY] = target
                verb = target.verb(request.method, request.query)
                self._counters[f"{verb} {target.resource}"] += 1
                if delay := self.faults.delay():
                    await asyncio.sleep(delay)
                if error := self.faults.error_for(verb, target.resource):
                    raise error
            return await handler(request)
        except ApiError as error:
            return _error_response(error)

    def _add_kubelet_routes(self, app: web.Application) -> None:
        """pods/log and pods/exec are served by the kubelet half (the API server proxies them on a real cluster)."""

        async def log(request: web.Request) -> web.StreamResponse:
            return await podlog.handle(request, self)

        async def exec_(request: web.Request) -> web.StreamResponse:
            return await podexec.handle(request, self)

        base = "/api/v1/namespaces/{namespace}/pods/{name}"
        app.router.add_get(base + "/log", log)
        app.router.add_route("GET", base + "/exec", exec_)
        app.router.add_route("POST", base + "/exec", exec_)

    def _add_discovery(self, app: web.Application) -> None:
        async def version(request: web.Request) -> web.Response:
            return _json(VERSION)

        async def api(request: web.Request) -> web.Response:
            address = f"{self.host}:{self.port}"
            return _json({"kind": "APIVersions", "versions": ["v1"],
                          "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]})

        async def apis(request: web.Request) -> web.Response:
            return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})

        async def api_v1(request: web.Request) -> web.Response:
            return _json(_resource_list())

        async def healthy(request: web.Request) -> web.Response:
            return web.Response(text="ok")

        # clients ask both ways: the generated Python clients use /version/, /api/, /apis/ and /api/v1/
        for path, handler in (("/version", version), ("/api", api), ("/apis", apis), ("/api/v1", api_v1)):
            app.router.add_get(path, handler)
            app.router.add_get(path + "/", handler)
        for path in ("/healthz", "/livez", "/readyz"):
            app.router.add_get(path, healthy)

    def _add_side_channel(self, app: web.Application) -> None:
        async def counters(request: web.Request) -> web.Response:
            return _json(self.counters())

        async def reset(request: web.Request) -> web.Response:
            self.reset_counters()
            return _json({})

        async def faults(request: web.Request) -> web.Response:
            body = await _body(request)
            results = [self.faults.apply(op) for op in (body if isinstance(body, list) else [body])]
            return _json({"results": results})

        async def pod_fault(request: web.Request) -> web.Response:
            namespace, name, action = (request.match_info[k] for k in ("namespace", "name", "action"))
            if self.kubelet is None:
                raise ApiError(400, "BadRequest", "this emulator runs without a kubelet (runtime none)")
            self.store.peek("pods", namespace, name)
            if action == "evict":
                self.kubelet.evict(namespace, name)
            elif action == "lose-node":
                self.kubelet.lose_node(namespace, name)
            else:
                raise not_found("actions", action)
            return _json({})

        app.router.add_get("/emulator/counters", counters)
        app.router.add_post("/emulator/counters/reset", reset)
        app.router.add_post("/emulator/faults", faults)
        app.router.add_post("/emulator/pods/{namespace}/{name}/{action}", pod_fault)
