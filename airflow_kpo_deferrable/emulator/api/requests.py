"""Reading requests and writing answers the way the API server does, for every handler in one place.

Why: booleans, integers, bodies, continue tokens and paths are parsed the same everywhere, and a wrong value must
be the API server's 400, never a 500. Facts: booleans read like Go's ``strconv.ParseBool`` (1, t, T, true, TRUE,
True and the false spellings; empty means false; anything else is 400); a body that is not JSON is 400; a continue
token is opaque base64 of the last (namespace, name) served; ``Accept: ...;as=Table`` asks for a server-side Table
(``kubectl get``), with ``includeObject`` Metadata by default. ``Target`` is what an ``/api/v1/...`` path names,
and its ``verb`` is the audit log's (get, list, watch, create, update, patch, delete, deletecollection).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .. import protobuf
from ..errors import ApiError
from ..kinds import KINDS

_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}
NOT_FOUND = "the server could not find the requested resource"


def query_bool(query: Any, name: str) -> bool:
    """A boolean query parameter as Go's ``strconv.ParseBool`` reads it."""
    value = query.get(name)
    if value is None or value == "":
        return False
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ApiError(400, "BadRequest", f"invalid value for {name}: {value!r}: use true or false")


def query_int(query: Any, name: str) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, "BadRequest", f"invalid value for {name}: {value!r}: must be an integer") from None


async def read_body(request: web.Request) -> Any:
    """The JSON body (``{}`` when empty); a protobuf body of a kind kubectl sends that way is decoded."""
    raw = await request.read()
    if request.content_type == protobuf.MEDIA_TYPE:
        return protobuf.decode(raw)
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "BadRequest", "the body of the request could not be decoded as JSON") from None


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")), status=status, content_type="application/json")


def error_response(error: ApiError) -> web.Response:
    response = json_response(error.status(), error.code)
    response.headers.update(error.headers)
    return response


def table_include(request: web.Request) -> str | None:
    """The row-object mode when the client asked for a Table (``kubectl get``), else None."""
    if "as=Table" not in request.headers.get("Accept", ""):
        return None
    return request.query.get("includeObject", "Metadata")


def continue_token(namespace: str, name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([namespace, name]).encode()).decode()


def after_token(token: str) -> tuple[str, str]:
    try:
        namespace, name = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(namespace), str(name)
    except ValueError:
        raise ApiError(400, "BadRequest", "continue key is not valid: illegal base64 data") from None


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
            raise ApiError(404, "NotFound", NOT_FOUND)
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
