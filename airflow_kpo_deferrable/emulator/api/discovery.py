"""Discovery and health: ``/version``, ``/api``, ``/apis``, ``/api/v1`` and ``/healthz``, ``/livez``, ``/readyz``.

Why: kubectl and the generated clients discover what the server offers before they send anything; kubectl picks
resources, short names (``po``, ``cm``) and categories (``all``) from ``/api/v1``. Facts: clients ask with and
without the trailing slash (the Python clients use ``/version/``, ``/api/``, ``/apis/``), so both are served; the
subresources (log, exec, status, eviction) are listed like the API server lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..kinds import KIND_OF, KINDS, NAMESPACED, SHORT_NAMES
from .requests import json_response

VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.0-kpo-emulator", "gitCommit": "0" * 40,
    "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
    "platform": "linux/amd64",
}
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SUBRESOURCES = (("pods/log", "Pod", ["get"]), ("pods/exec", "PodExecOptions", ["create", "get"]),
                ("pods/status", "Pod", ["get", "patch", "update"]), ("pods/eviction", "Eviction", ["create"]),
                ("namespaces/status", "Namespace", ["get"]))


def resource_list() -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for kind in KINDS:
        entry = {"name": kind, "singularName": KIND_OF[kind].lower(), "namespaced": kind in NAMESPACED,
                 "kind": KIND_OF[kind], "verbs": VERBS}
        if kind in SHORT_NAMES:
            entry["shortNames"] = SHORT_NAMES[kind]
        if kind == "pods":
            entry["categories"] = ["all"]
        resources.append(entry)
    for name, kind, verbs in SUBRESOURCES:
        resources.append({"name": name, "singularName": "", "namespaced": name.startswith("pods"), "kind": kind,
                          "verbs": verbs})
    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": resources}


def add_discovery(app: web.Application, server_address: Callable[[], str]) -> None:
    """Routes for discovery and health; ``server_address()`` is ``host:port`` as clients reach the server."""

    async def version(request: web.Request) -> web.Response:
        return json_response(VERSION)

    async def api(request: web.Request) -> web.Response:
        return json_response({"kind": "APIVersions", "versions": ["v1"],
                              "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                              "serverAddress": server_address()}]})

    async def apis(request: web.Request) -> web.Response:
        return json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})

    async def api_v1(request: web.Request) -> web.Response:
        return json_response(resource_list())

    async def healthy(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    for path, handler in (("/version", version), ("/api", api), ("/apis", apis), ("/api/v1", api_v1)):
        app.router.add_get(path, handler)
        app.router.add_get(path + "/", handler)
    for path in ("/healthz", "/livez", "/readyz"):
        app.router.add_get(path, healthy)
