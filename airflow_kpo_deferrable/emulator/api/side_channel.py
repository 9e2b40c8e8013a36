"""The ``/emulator/...`` side channel: counters, faults and pod faults for tests and benchmarks in other processes.

Why: a test driving the emulator over HTTP (``python -m airflow_kpo_deferrable.emulator``) needs what in-process
tests call directly: ``GET /emulator/counters``, ``POST /emulator/counters/reset``, ``POST /emulator/faults`` (one
``Faults`` operation or a list), ``POST /emulator/pods/{namespace}/{name}/evict|lose-node``. These requests are
neither counted nor faulted (the middleware only looks at ``/api/v1/``). Without a node (runtime ``none``) the pod
faults are 400.
"""

from __future__ import annotations

from collections import Counter

from aiohttp import web

from ..errors import ApiError, not_found
from ..faults import Faults
from ..store import Store
from .node import Node
from .requests import json_response, read_body


def add_side_channel(app: web.Application, store: Store, node: Node | None, faults: Faults,
                     counters: Counter[str]) -> None:
    async def read_counters(request: web.Request) -> web.Response:
        return json_response(dict(counters))

    async def reset(request: web.Request) -> web.Response:
        counters.clear()
        return json_response({})

    async def apply_faults(request: web.Request) -> web.Response:
        body = await read_body(request)
        results = [faults.apply(op) for op in (body if isinstance(body, list) else [body])]
        return json_response({"results": results})

    async def pod_fault(request: web.Request) -> web.Response:
        namespace, name, action = (request.match_info[k] for k in ("namespace", "name", "action"))
        if node is None:
            raise ApiError(400, "BadRequest", "this emulator runs without a kubelet (runtime none)")
        store.peek("pods", namespace, name)
        if action == "evict":
            node.evict(namespace, name)
        elif action == "lose-node":
            node.lose_node(namespace, name)
        else:
            raise not_found("actions", action)
        return json_response({})

    app.router.add_get("/emulator/counters", read_counters)
    app.router.add_post("/emulator/counters/reset", reset)
    app.router.add_post("/emulator/faults", apply_faults)
    app.router.add_post("/emulator/pods/{namespace}/{name}/{action}", pod_fault)
