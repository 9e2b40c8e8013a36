"""API errors rendered as the ``metav1.Status`` bodies the real API server sends.

Why a module of its own: the store, the selectors, validation and the kubelet's handlers all raise these, and the
clients under test (``kubernetes``, ``kubernetes_asyncio``, ``kubectl``) parse the body: ``reason`` drives their
``IsNotFound``/``IsConflict`` checks and ``kubectl`` prints ``message`` verbatim, so both must read like the real ones.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer: HTTP ``code``, machine ``reason`` (NotFound, Conflict, Invalid, ...) and a human message."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers: dict[str, str] = {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


class Gone(ApiError):
    """A resourceVersion older than the retained history: the client must LIST again."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(410, "Expired", f"too old resource version: {requested} ({oldest})")


def not_found(kind: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{kind} "{name}" not found', {"name": name, "kind": kind})


def already_exists(kind: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{kind} "{name}" already exists', {"name": name, "kind": kind})


def conflict(kind: str, name: str, why: str) -> ApiError:
    message = f'Operation cannot be fulfilled on {kind} "{name}": {why}'
    return ApiError(409, "Conflict", message, {"name": name, "kind": kind})
