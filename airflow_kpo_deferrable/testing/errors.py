"""The errors the Airflow test harness raises, in one place so every part (and its users) can catch them.

``AirflowStackError`` means "the stack did not start, or something it waited for did not happen in time"; its message
always carries the evidence (what was seen, component output), because the test that sees it cannot go back and look.
"""

from __future__ import annotations


class AirflowStackError(RuntimeError):
    """The stack did not start, or something it waited for did not happen in time."""


class AirflowApiError(AirflowStackError):
    """The REST API answered with an error status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:2000]}")
        self.status = status
        self.body = body
