"""``/openapi/v3``: enough of the API server's OpenAPI v3 documents for ``kubectl apply -f`` and ``create -f``.

Why: kubectl 1.32 downloads OpenAPI before it sends an object from a file (``--validate`` defaults to strict) and
stops with "failed to download openapi" when ``/openapi/v3`` and ``/openapi/v2`` are both missing. What it reads:

* The root lists each group-version with a ``serverRelativeURL`` (``/openapi/v3/api/v1?hash=...``).
* Validation: when the PATCH operation of the object's kind (matched by ``x-kubernetes-group-version-kind``) takes
  the ``fieldValidation`` query parameter, kubectl leaves validation to the server and sends
  ``fieldValidation=Strict``; so no schemas are needed. (The emulator validates what ``validation`` covers; it does
  not reject unknown fields.)
* Apply's patch: the PATCH request bodies listed here leave out ``application/strategic-merge-patch+json``, so
  kubectl does not look for schemas here and computes the strategic merge patch from its built-in types, as it
  does for any built-in kind; the server still accepts strategic merge patches.

``/openapi/v2`` stays 404: kubectl asks for it only when v3 is missing, and then in protobuf.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from ..kinds import KIND_OF, NAMESPACED
from .discovery import VERSION
from .requests import json_response

QUERY = [{"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
         for name in ("dryRun", "fieldManager", "fieldValidation", "pretty")]
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")
OK = {"200": {"description": "OK"}}


def _operation(kind: str, action: str, bodies: tuple[str, ...] = ()) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"{action}{KIND_OF[kind]}",
        "parameters": QUERY if bodies else [],
        "responses": OK,
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": KIND_OF[kind]},
    }
    if bodies:
        operation["requestBody"] = {"content": {media: {"schema": {"type": "object"}} for media in bodies}}
    return operation


def core_v1() -> dict[str, Any]:
    """The ``api/v1`` document: for each kind, its collection (list, create) and item (get, replace, patch, delete)."""
    paths: dict[str, Any] = {}
    for kind in KIND_OF:
        collection = f"/api/v1/namespaces/{{namespace}}/{kind}" if kind in NAMESPACED else f"/api/v1/{kind}"
        paths[collection] = {"get": _operation(kind, "list"), "post": _operation(kind, "post", ("application/json",))}
        paths[collection + "/{name}"] = {
            "get": _operation(kind, "get"),
            "put": _operation(kind, "put", ("application/json",)),
            "patch": _operation(kind, "patch", PATCH_TYPES),
            "delete": _operation(kind, "delete"),
        }
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]}, "paths": paths,
            "components": {"schemas": {}}}


def add_openapi(app: web.Application) -> None:
    document = core_v1()
    digest = hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest()[:128].upper()
    root = {"paths": {"api/v1": {"serverRelativeURL": f"/openapi/v3/api/v1?hash={digest}"}}}

    async def index(request: web.Request) -> web.Response:
        return json_response(root)

    async def group_version(request: web.Request) -> web.Response:
        return json_response(document)

    app.router.add_get("/openapi/v3", index)
    app.router.add_get("/openapi/v3/api/v1", group_version)
