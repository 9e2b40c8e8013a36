"""The ``/api/v1`` handlers for objects and collections: get, list, create, update, patch, delete, evict.

Why: every client under test (our operator, the provider's, ``kubernetes``, ``kubernetes_asyncio``, ``kubectl``)
speaks this protocol; the handlers translate it to store calls and nothing else (moto's ``responses`` over its
``models``: the store knows no HTTP). Facts:

* Lists are in (namespace, name) order; ``limit`` + ``continue`` page them with ``remainingItemCount``; selectors
  filter lists, watches and deletecollection alike; ``as=Table`` gets server-side printed Tables.
* PUT with a stale ``metadata.resourceVersion`` is 409 Conflict; PATCH takes JSON patch, merge patch and strategic
  merge patch (``patching``). The ``status`` subresource writes status only; the main resource never writes status.
* DELETE answers the object (pods, namespaces: they may linger while ending) or a Success Status (other kinds);
  ``gracePeriodSeconds`` from the query or the body, ``preconditions`` from the body. ``pods/eviction`` is a
  delete with the eviction's ``deleteOptions``.
* A Pod body that does not decode into the Pod type is 400 (``decoding``), before validation's 422.
* ``pods/log`` and ``pods/exec`` have their own routes (``logs``, ``exec``); here they are 404.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..decoding import check_pod_types
from ..errors import ApiError
from ..kinds import KIND_OF, NAMESPACED
from ..patching import apply_patch
from ..selectors import matcher
from ..store import Store
from ..tables import table
from .requests import (
    NOT_FOUND,
    TARGET_KEY,
    Target,
    after_token,
    continue_token,
    json_response,
    query_bool,
    read_body,
    table_include,
)
from .watch import Watch


class Resources:
    """The handlers of ``/api/v1`` objects and collections, built from the store alone."""

    def __init__(self, store: Store, bookmark_interval: float) -> None:
        self.store = store
        self.bookmark_interval = bookmark_interval

    async def handle(self, request: web.Request) -> web.StreamResponse:
        target = request[TARGET_KEY]
        if target.sub in ("log", "exec"):  # only reached for paths the kubelet routes do not match
            raise ApiError(404, "NotFound", NOT_FOUND)
        if target.kind in NAMESPACED and target.namespace is None and (target.name or request.method != "GET"):
            raise ApiError(404, "NotFound", NOT_FOUND)
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
                return await Watch(self.store, self.bookmark_interval, target, match, request).run()
            return self._list(request, target, match)
        if method == "POST":
            body = await read_body(request)
            if target.kind == "pods":
                check_pod_types(body)
            created = self.store.create(target.kind, target.namespace, body)
            return json_response(created, 201)
        if method == "DELETE":
            options = await read_body(request)
            deleted = []
            for obj in self.store.select(target.kind, target.namespace, request.query.get("labelSelector", ""),
                                         request.query.get("fieldSelector", "")):
                with contextlib.suppress(ApiError):
                    deleted.append(self._delete(target.kind, obj, request, options))
            return json_response({"kind": KIND_OF[target.kind] + "List", "apiVersion": "v1",
                          "metadata": {"resourceVersion": str(self.store.resource_version)}, "items": deleted})
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _list(self, request: web.Request, target: Target, match: Callable[[dict[str, Any]], bool]) -> web.Response:
        items = [obj for obj in self.store.select(target.kind, target.namespace) if match(obj)]
        metadata: dict[str, Any] = {"resourceVersion": str(self.store.resource_version)}
        if token := request.query.get("continue"):
            after = after_token(token)
            items = [obj for obj in items if (obj["metadata"].get("namespace", ""), obj["metadata"]["name"]) > after]
        limit = int(request.query.get("limit") or 0)
        if 0 < limit < len(items):
            last = items[limit - 1]["metadata"]
            metadata["continue"] = continue_token(last.get("namespace", ""), last["name"])
            metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        include = table_include(request)
        if include is not None:
            return json_response(table(target.kind, items, metadata["resourceVersion"], include) | {"metadata": metadata})
        return json_response({"kind": KIND_OF[target.kind] + "List", "apiVersion": "v1", "metadata": metadata,
                      "items": items})

    # -- single objects -------------------------------------------------------------------------------------------

    async def _item(self, request: web.Request, target: Target) -> web.StreamResponse:
        kind, namespace, name, sub = target.kind, target.namespace, target.name, target.sub
        assert name is not None
        if sub not in (None, "status", "eviction"):
            raise ApiError(404, "NotFound", NOT_FOUND)
        method = request.method
        if sub == "eviction":
            if method != "POST":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on eviction")
            body = await read_body(request)
            self._delete(kind, self.store.peek(kind, namespace, name), request, body.get("deleteOptions") or {})
            return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)
        if method == "GET":
            obj = self.store.peek(kind, namespace, name)
            include = table_include(request)
            if include is not None:
                return json_response(table(kind, [obj], obj["metadata"]["resourceVersion"], include))
            return json_response(obj)
        if method in ("PUT", "PATCH"):
            return json_response(await self._write(request, target))
        if method == "DELETE":
            return json_response(self._delete(kind, self.store.peek(kind, namespace, name), request, await read_body(request)))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    async def _write(self, request: web.Request, target: Target) -> dict[str, Any]:
        current = self.store.peek(target.kind, target.namespace, target.name or "")
        body = await read_body(request)
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
        if target.kind == "pods":
            check_pod_types(result)
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


