"""What a failed pod leaves for the task log: its events and its spec (``log_events_on_failure``,
``log_events_on_startup``, ``log_pod_spec_on_failure``) — pure formatting, plus one sync and one async reader.

Why: the reason a pod never ran is rarely in its status — "0/3 nodes are available: 3 Insufficient memory", "Failed
to pull image ...: no such host" are the scheduler's and the kubelet's events. The provider logs them; so do we, from
the worker's resume path and (``aread_pod_events``) the triggerer's, through the same formatting.

Facts it handles:

* Events are found with ``fieldSelector=involvedObject.name=<pod>,involvedObject.uid=<uid>``: the uid keeps the
  events of an earlier pod of the same name (an earlier try with a fixed name) out. Events outlive their pod (about an
  hour), so they are read even when the pod is gone.
* A repeated event is one object with ``count`` and first/last times (the recorders aggregate); newer events set only
  ``eventTime`` (events.k8s.io), older ones only ``firstTimestamp``/``lastTimestamp``: order by the latest of them.
* Bounded: only the last ``MAX_EVENTS`` lines are written (a crash-looping pod can have hundreds), with a line saying
  how many earlier ones were left out; messages are cut at ``MAX_MESSAGE`` characters.
* Which reasons count as "startup" (``log_events_on_startup``): the pod never got its containers running — schedule
  and startup timeouts, Unschedulable, image-pull and container-config errors. The provider logs events while the pod
  is pending; here the trigger waits, so they are logged once, when such a reason decides the outcome.
* The pod spec is logged as the provider does, except env ``value`` strings, which are replaced by ``<redacted>``:
  DAG authors put tokens there, and the task log is readable by everyone who can see the task. Names, ``valueFrom``
  references (Secret/ConfigMap names and keys, never their contents) and everything else are kept.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from airflow_kpo_deferrable import outcome
from airflow_kpo_deferrable.outcome import Outcome, PodResult

MAX_EVENTS = 50
MAX_MESSAGE = 1000
REDACTED = "<redacted>"
STARTUP_REASONS = frozenset(
    {
        outcome.SCHEDULE_TIMEOUT,
        outcome.STARTUP_TIMEOUT,
        outcome.UNSCHEDULABLE,
        outcome.ERR_IMAGE_PULL,
        outcome.IMAGE_PULL_BACK_OFF,
        outcome.INVALID_IMAGE_NAME,
        outcome.ERR_IMAGE_NEVER_PULL,
        outcome.CREATE_CONTAINER_CONFIG_ERROR,
        outcome.CREATE_CONTAINER_ERROR,
    }
)


@dataclass(frozen=True)
class FailureDetails:
    """What to log about a finished pod; both False for a success. Built by ``details_for``."""

    events: bool
    spec: bool


def details_for(result: PodResult, *, on_failure: bool, on_startup: bool, spec_on_failure: bool) -> FailureDetails:
    """The operator's three flags applied to an outcome: failures (any non-success) log events with
    ``on_failure``, startup failures (``STARTUP_REASONS``) also with ``on_startup``; the spec with ``spec_on_failure``."""
    if result.outcome is Outcome.SUCCEEDED:
        return FailureDetails(events=False, spec=False)
    startup = on_startup and result.reason in STARTUP_REASONS
    return FailureDetails(events=on_failure or startup, spec=spec_on_failure)


def event_selector(pod_name: str, pod_uid: str | None) -> str:
    """The fieldSelector for one pod's events (the uid, when known, excludes an earlier pod of the same name)."""
    selector = f"involvedObject.name={pod_name}"
    return f"{selector},involvedObject.uid={pod_uid}" if pod_uid else selector


def _latest(event: Mapping[str, Any]) -> str:
    """RFC 3339 times in UTC sort as text; the latest of the times an event carries."""
    times = (event.get("eventTime"), event.get("lastTimestamp"), event.get("firstTimestamp"),
             (event.get("metadata") or {}).get("creationTimestamp"))
    return max((str(t) for t in times if t), default="")


def _event_line(event: Mapping[str, Any]) -> str:
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or "unknown"
    first = event.get("firstTimestamp") or event.get("eventTime") or "?"
    last = event.get("lastTimestamp") or event.get("eventTime") or first
    count = event.get("count") or (event.get("series") or {}).get("count") or 1
    field = (event.get("involvedObject") or {}).get("fieldPath")
    message = " ".join(str(event.get("message") or "").split())
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "..."
    where = f" {field}" if field else ""
    return (
        f"{event.get('type') or 'Normal'} {event.get('reason') or '?'} from {component}{where} "
        f"(count {count}, first {first}, last {last}): {message}"
    )


def format_events(events: Iterable[Mapping[str, Any]], pod_name: str, limit: int = MAX_EVENTS) -> list[str]:
    """Log lines for one pod's events (JSON dicts as the API returns them), oldest first, the last ``limit``."""
    ordered = sorted(events, key=_latest)
    if not ordered:
        return [f"Pod {pod_name} has no events"]
    kept = ordered[-limit:]
    lines = [f"Events of pod {pod_name} ({len(ordered)}):"]
    if len(ordered) > len(kept):
        lines.append(f"  ({len(ordered) - len(kept)} earlier events left out)")
    return lines + ["  " + _event_line(event) for event in kept]


def redacted_spec(pod: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the pod (JSON dict) without env ``value`` strings; see the module docstring."""
    copied = copy.deepcopy(dict(pod))
    spec = copied.get("spec") or {}
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            for env in container.get("env") or []:
                if env.get("value") is not None:
                    env["value"] = REDACTED
    return copied


def format_pod_spec(pod: Mapping[str, Any]) -> list[str]:
    """The pod (JSON dict) as YAML lines: metadata and spec, env values redacted, no status."""
    shown = redacted_spec({k: v for k, v in pod.items() if k in ("apiVersion", "kind", "metadata", "spec")})
    text = yaml.safe_dump(shown, sort_keys=False, default_flow_style=False)
    return [f"Spec of pod {(pod.get('metadata') or {}).get('name')}:"] + ["  " + line for line in text.splitlines()]


# -- readers (I/O at the edges) ---------------------------------------------------------------------------------


def read_pod_events(api: Any, pod_name: str, namespace: str, pod_uid: str | None) -> list[dict[str, Any]]:
    """The pod's events as JSON dicts, with a sync ``kubernetes.client.CoreV1Api``."""
    response = api.list_namespaced_event(
        namespace, field_selector=event_selector(pod_name, pod_uid), _preload_content=False
    )
    return list(json.loads(response.data).get("items") or [])


async def aread_pod_events(api: Any, pod_name: str, namespace: str, pod_uid: str | None) -> list[dict[str, Any]]:
    """The pod's events as JSON dicts, with a ``kubernetes_asyncio.client.CoreV1Api`` (the triggerer's)."""
    response = await api.list_namespaced_event(
        namespace, field_selector=event_selector(pod_name, pod_uid), _preload_content=False
    )
    try:
        if response.status >= 300:
            raise RuntimeError(f"listing events answered {response.status}: {(await response.text())[:500]}")
        return list(json.loads(await response.read()).get("items") or [])
    finally:
        response.release()


def log_failure_details(
    write: Callable[[str], None],
    details: FailureDetails,
    pod: Mapping[str, Any] | None,
    events: Callable[[], list[dict[str, Any]]],
    pod_name: str,
) -> None:
    """Write what ``details`` asks for, one line per call; a failed events read is logged, never raised (the task's
    own failure is what matters)."""
    if details.spec and pod is not None:
        for line in format_pod_spec(pod):
            write(line)
    if details.events:
        try:
            found = events()
        except Exception as error:  # noqa: BLE001 - e.g. 403 without RBAC on events: say so, keep the real failure
            write(f"Could not read the events of pod {pod_name}: {error}. (RBAC: 'list' on 'events' is needed)")
            return
        for line in format_events(found, pod_name):
            write(line)


def log_failure_sync(
    write: Callable[[str], None], api: Any, pod: Any, pod_name: str, namespace: str, details: FailureDetails
) -> None:
    """The worker's side: ``pod`` is the ``V1Pod`` read on resume (None when gone), ``api`` a sync ``CoreV1Api``."""
    if not details.events and not details.spec:
        return
    body = api.api_client.sanitize_for_serialization(pod) if pod is not None else None
    uid = pod.metadata.uid if pod is not None else None
    log_failure_details(write, details, body, lambda: read_pod_events(api, pod_name, namespace, uid), pod_name)


async def alog_failure(
    write: Callable[[str], None],
    api: Any,
    pod: Mapping[str, Any] | None,
    pod_name: str,
    namespace: str,
    pod_uid: str | None,
    details: FailureDetails,
) -> None:
    """The triggerer's side: ``pod`` is the pod's JSON dict (as the watch delivers it, None when gone), ``api`` a
    ``kubernetes_asyncio`` ``CoreV1Api``; writes the same lines as ``log_failure_sync``."""
    if not details.events and not details.spec:
        return
    found: list[dict[str, Any]] = []
    failure: Exception | None = None
    if details.events:
        try:
            found = await aread_pod_events(api, pod_name, namespace, pod_uid)
        except Exception as error:  # noqa: BLE001 - reported by log_failure_details, never raised
            failure = error

    def events() -> list[dict[str, Any]]:
        if failure is not None:
            raise failure
        return found

    log_failure_details(write, details, pod, events, pod_name)
