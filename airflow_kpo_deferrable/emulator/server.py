"""The ``Emulator``: the HTTP server, the store, the faults and the node assembled and run on one asyncio loop.

Why: our operator, the provider's, the ``kubernetes``/``kubernetes_asyncio`` clients and ``kubectl`` must all accept
it as a cluster; nothing in our own code knows it is not a real one. This is the top layer: it builds the
handlers of ``api`` from the store and the node (``kubelet.Kubelet``, or None for runtime ``none``) and owns
their lifecycle; no other module imports it.

Facts it keeps: requests are counted by verb and resource like the audit log ("list pods", "watch pods", "get
pods/log"), and faults (``faults.Faults``) apply to them; the ``/emulator/...`` side channel is neither counted
nor faulted. Errors anywhere below become ``metav1.Status`` bodies here. With ``tls`` it serves HTTPS with a
self-signed CA written into the kubeconfig. The kubelet starts after the server listens and stops (killing every
process it started) before it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import shutil
import ssl
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from .api.discovery import add_discovery
from .api.exec import PodExec
from .api.logs import PodLogs
from .api.openapi import add_openapi
from .api.requests import TARGET_KEY, Target, error_response
from .api.resources import Resources
from .api.side_channel import add_side_channel
from .credentials import make_tls, write_kubeconfig
from .errors import ApiError
from .faults import Faults
from .kubelet import RUNTIMES as NODE_RUNTIMES
from .kubelet import Kubelet
from .store import Store

RUNTIMES = (*NODE_RUNTIMES, "none")


class Emulator:
    """A Kubernetes API emulator on loopback with a simulated kubelet; an async context manager.

    ``runtime``: ``process`` runs containers' commands as local processes, ``scripted`` plays pod annotations,
    ``none`` has no kubelet (pods stay Pending). ``isolation``: None detects whether containers can have their own
    PID and mount namespaces (root on Linux), False turns that off (then ``pods/exec`` and volume mounts are
    refused), True requires it. Use ``in_thread()`` from synchronous code.
    """

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, runtime: str = "process", tls: bool = False,
        kubeconfig_path: Path | str | None = None, workdir: Path | str | None = None,
        bookmark_interval: float = 60.0, history_limit: int = 10_000, isolation: bool | None = None,
    ) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        self.host, self.port, self.runtime, self.tls = host, port, runtime, tls
        self.bookmark_interval = bookmark_interval
        self.isolation = isolation
        self._own_dir = Path(tempfile.mkdtemp(prefix="kpo-emulator-"))
        self.kubeconfig_path = Path(kubeconfig_path) if kubeconfig_path else self._own_dir / "kubeconfig"
        self.workdir = Path(workdir) if workdir else None
        self.store = Store(history_limit)
        self.faults = Faults(self.store)
        self.kubelet: Kubelet | None = None
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
        if self.runtime != "none":
            self.kubelet = Kubelet(self.store, self.runtime, workdir=self.workdir, isolation=self.isolation)
        ssl_context, ca_pem = None, None
        if self.tls:
            files = make_tls(self._own_dir / "tls", self.host)
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(files.cert_path, files.key_path)
            ca_pem = files.ca_pem
        self._runner = web.AppRunner(self._app(), handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=ssl_context, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"{scheme}://{host}:{self.port}"
        write_kubeconfig(self.kubeconfig_path, self.url, ca_pem)
        if self.kubelet is not None:
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

    # -- the application ------------------------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._api_middleware], client_max_size=64 * 1024**2)
        # pods/log and pods/exec are the kubelet's (the API server proxies them on a real cluster)
        pod = "/api/v1/namespaces/{namespace}/pods/{name}"
        app.router.add_get(pod + "/log", PodLogs(self.store, self.kubelet, self.faults).handle)
        exec_ = PodExec(self.store, self.kubelet).handle
        app.router.add_route("GET", pod + "/exec", exec_)
        app.router.add_route("POST", pod + "/exec", exec_)
        add_discovery(app, lambda: f"{self.host}:{self.port}")  # before the catch-all: it serves /api/v1/ too
        add_openapi(app)
        app.router.add_route("*", "/api/v1/{tail:.*}", Resources(self.store, self.bookmark_interval).handle)
        add_side_channel(app, self.store, self.kubelet, self.faults, self._counters)
        return app

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
            return error_response(error)
