"""A small client for Airflow 3.3's public REST API, as the harness (and a user in the UI) uses it.

Why: the end-to-end tests read every outcome the way a user sees it — task states, task logs (worker and trigger
parts), runs, jobs — so the only channel to Airflow is its REST API, never its database or its Python internals.

Facts it handles:

- With ``SIMPLE_AUTH_MANAGER_ALL_ADMINS=True``, ``GET /auth/token`` hands out an admin bearer token without a login.
  Tokens expire; a 401 fetches a new one and repeats the request once.
- A loaded api-server (one worker) can be slow or drop a connection: reads (GET) are repeated on a transport error
  (connect error, read timeout) a few times; writes are not, since a POST may have happened.
- The log endpoint returns structured records (``content``); ``render_log`` turns them into text lines without
  dropping any field a trigger logged (``error_detail`` tracebacks included), only the identity and source location
  Airflow adds to every record. ``task_log_records`` keeps them structured (timestamps for timing assertions).
- A mapped task instance's path ends in ``/<map_index>``; an unmapped one (``map_index=-1``) has no suffix.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from airflow_kpo_deferrable.testing.errors import AirflowApiError

REQUEST_TIMEOUT = 60.0
READ_ATTEMPTS = 3
_RENDERED_APART = frozenset({"timestamp", "event", "level", "logger", "sources"})
_PER_RECORD_NOISE = frozenset({"dag_id", "task_id", "run_id", "map_index", "try_number", "ti_id", "filename", "lineno"})


def render_log(content: Iterable[Any]) -> str:
    """Structured log records (the log endpoint's ``content``) as plain text lines.

    Records are dicts with ``event`` and usually ``timestamp``, ``level``, ``logger``; other keys are rendered as
    ``key=value`` so nothing a trigger logged (including ``error_detail`` tracebacks) is lost, except the task identity
    and source location that Airflow adds to every record.
    """
    lines = []
    for record in content:
        if not isinstance(record, dict):
            lines.append(str(record))
            continue
        extra = {k: v for k, v in record.items() if k not in _RENDERED_APART and k not in _PER_RECORD_NOISE}
        parts = [
            str(record.get("timestamp") or ""),
            f"[{record['level']}]" if record.get("level") else "",
            f"{record['logger']}:" if record.get("logger") else "",
            str(record.get("event", "")),
            " ".join(f"{key}={value}" for key, value in extra.items()),
        ]
        if record.get("sources"):
            parts.append(" ".join(map(str, record["sources"])))
        lines.append(" ".join(part for part in parts if part))
    return "\n".join(lines)


def ti_path(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
    return path if map_index < 0 else f"{path}/{map_index}"


def format_import_errors(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "(none)"
    return "\n".join(f"{error.get('filename')}:\n{error.get('stack_trace')}" for error in errors)


class AirflowRestClient:
    """Admin calls to one api-server at ``url``. Not thread-safe (one ``httpx.Client``); ``close()`` when done."""

    def __init__(self, url: str, timeout: float = REQUEST_TIMEOUT) -> None:
        self.url = url
        self._timeout = timeout
        self._client: httpx.Client | None = None
        self._token: str | None = None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._token = None

    # ------------------------------------------------------------------ transport

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One authenticated request; the response is returned whatever its status."""
        for _ in range(2):
            if self._token is None:
                self._token = self._fetch_token()
            headers = {"Authorization": f"Bearer {self._token}"}
            response = self._send(method, path, headers=headers, **kwargs)
            if response.status_code != 401:
                return response
            self._token = None
        return response

    def api(self, method: str, path: str, json: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        """Call the REST API as admin; returns the decoded JSON (None for an empty body); raises on >= 400."""
        response = self.request(method, path, json=json, params=params)
        if response.status_code >= 400:
            raise AirflowApiError(method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def unauthenticated_get(self, path: str) -> httpx.Response:
        return self._send("GET", path)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=self._timeout)
        attempts = READ_ATTEMPTS if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._client.request(method, path, **kwargs)
            except httpx.TransportError:
                if attempt == attempts:
                    raise
                time.sleep(attempt)
        raise AssertionError("unreachable")

    def _fetch_token(self) -> str:
        response = self._send("GET", "/auth/token")
        if response.status_code >= 400:
            raise AirflowApiError("GET", "/auth/token", response.status_code, response.text)
        return response.json()["access_token"]

    # ------------------------------------------------------------------ resources

    def health(self) -> dict[str, Any]:
        return self.unauthenticated_get("/api/v2/monitor/health").json()

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        response = self.request("GET", f"/api/v2/dags/{dag_id}")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise AirflowApiError("GET", f"/api/v2/dags/{dag_id}", response.status_code, response.text)
        return response.json()

    def import_errors(self) -> list[dict[str, Any]]:
        return self.api("GET", "/api/v2/importErrors", params={"limit": 100})["import_errors"]

    def trigger_dag(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        run = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": dict(conf or {})})
        return run["dag_run_id"]

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"]

    def dag_run_state(self, dag_id: str, run_id: str) -> str:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any] | None:
        path = ti_path(dag_id, run_id, task_id, map_index)
        response = self.request("GET", path)
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise AirflowApiError("GET", path, response.status_code, response.text)
        return response.json()

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return self.api("GET", path, params={"limit": 1000})["task_instances"]

    def task_log_records(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> list[Any]:
        """The structured records of one try's whole log, worker and trigger parts together."""
        body = self.api(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true", "map_index": map_index},
        )
        return body.get("content") or []

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        return render_log(self.task_log_records(dag_id, run_id, task_id, try_number, map_index))

    def mark_task(self, dag_id: str, run_id: str, task_id: str, state: str, map_index: int = -1) -> Any:
        return self.api("PATCH", ti_path(dag_id, run_id, task_id, map_index), json={"new_state": state})

    def alive_triggerer_jobs(self) -> list[dict[str, Any]]:
        params = {"job_type": "TriggererJob", "job_state": "running", "is_alive": "true", "limit": 100}
        return self.api("GET", "/api/v2/jobs", params=params)["jobs"]
