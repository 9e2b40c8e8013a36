"""One shared LIST+WATCH per (cluster, namespace, label selector) in a process, fanned out to every waiting pod.

Why: the provider's trigger GETs each pod every few seconds with a new API client per request, so API load and CPU
grow with the number of waiting pods. Here every trigger in the triggerer subscribes to a ``PodWatcher`` and the
watcher keeps one LIST and one long WATCH open for all of them: API requests stay O(1) in the number of pods.

Facts this module handles:

* LIST gives the current state and a ``resourceVersion``; WATCH continues from it, so no change between the two is
  lost. When a watch ends (server ``timeoutSeconds``, a dropped connection, a proxy idle timeout) we resume from the
  last ``resourceVersion`` seen, bookmarks included (``allowWatchBookmarks``), without a new LIST.
* A ``resourceVersion`` may be too old for the server's history: it answers 410 Gone, either as the HTTP status or as
  an ``ERROR`` event inside a 200 stream. Both become the same ``ApiStatusError(410)`` and reach ``after_watch``, the
  one place that decides between resuming and relisting. On a relist every subscribed pod is re-checked against the
  fresh list: a pod missing from it was deleted while we were not looking.
* ``_preload_content=False`` hands back the raw aiohttp response: kubernetes_asyncio does not check its status, and
  the body is read in chunks and split into lines here, with a cap, instead of ``readline()`` whose buffer limit
  breaks on big objects (etcd allows objects up to ~1.5 MiB).
* Pods are kept as plain dicts trimmed to metadata identity and status (what outcome decisions read): no model
  deserialisation and a small cache per pod, which matters at thousands of pods.
* A subscriber that joins late gets the cached state at once; if the pod is not in the cache after the first LIST,
  one GET settles whether it exists (it may have been created after our LIST and its ADDED event is still coming).
* Transient errors (connection, 429, 5xx; the rules are in ``api_rules``) are retried with exponential backoff and
  jitter, honouring Retry-After.
  If RBAC forbids LIST/WATCH but allows GET, the watcher falls back to polling each subscribed pod with the same
  shared client. Errors that retrying cannot fix (401, 403 on GET, a missing namespace) are handed to subscribers.
* The watcher starts with its first subscriber and stops a grace period after the last one leaves, so a burst of
  tasks deferring one after another reuses one warm watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import aiohttp
from kubernetes_asyncio.client import CoreV1Api
from tenacity import AsyncRetrying, RetryCallState

from airflow_kpo_deferrable.api_rules import ApiStatusError, is_transient, retry_policy
from airflow_kpo_deferrable.podspec.names import ANNOTATION_PREFIX
from airflow_kpo_deferrable.raw_response import raise_for_status

log = logging.getLogger(__name__)

ApiFactory = Callable[[], Awaitable[CoreV1Api]]

MAX_EVENT_BYTES = 16 * 1024 * 1024
# A server or proxy that ends every watch at once must not be hammered in a tight loop (client-go backs off too).
MIN_CYCLE_SECONDS = 1.0


@dataclass(frozen=True)
class WatchKey:
    """What makes two waiting pods share one watch."""

    cluster: Hashable
    namespace: str
    selector: str


class WatchPlan(Enum):
    """What the shared watch does after a watch request ended."""

    RESUME = "resume"  # WATCH again from the last resourceVersion seen (bookmarks included): no LIST
    RELIST = "relist"  # LIST for a fresh snapshot and resourceVersion, re-check every subscriber, then WATCH
    POLL = "poll"  # LIST/WATCH forbidden (RBAC allows GET only): GET each subscribed pod every poll interval
    BACK_OFF = "back off"  # a transient error: wait (backoff, Retry-After), then RESUME (or RELIST without a version)
    GIVE_UP = "give up"  # retrying cannot fix it: every subscriber gets the error


@dataclass(frozen=True)
class NextStep:
    plan: WatchPlan
    reason: str


def after_watch(resource_version: str | None, ended_by: BaseException | None) -> NextStep:
    """Resume from ``resource_version`` or relist, decided from how the last LIST/WATCH ended — the only such rule.

    ``ended_by`` is None when the server ended the stream normally (its ``timeoutSeconds``, a restart, a proxy's idle
    timeout). A 410 (``Expired``/``Gone``, as HTTP status or as an ``ERROR`` event in the stream) is the only way to
    a relist once a version is known: resuming from a version the server has compacted away cannot work, and a
    relist is what notices deletions missed meanwhile.
    """
    status = getattr(ended_by, "status", None) if ended_by is not None else None
    if status == 410:
        return NextStep(WatchPlan.RELIST, "resourceVersion too old for the server's history (410): relist")
    if status == 403:
        return NextStep(WatchPlan.POLL, "LIST/WATCH of pods forbidden: poll each pod with GET")
    if ended_by is not None and is_transient(ended_by):
        return NextStep(WatchPlan.BACK_OFF, f"transient error ({ended_by}): back off, then continue")
    if ended_by is not None:
        return NextStep(WatchPlan.GIVE_UP, f"retrying cannot fix {ended_by}")
    if resource_version is None:
        return NextStep(WatchPlan.RELIST, "no resourceVersion yet: list first")
    return NextStep(WatchPlan.RESUME, f"watch ended normally: resume from resourceVersion {resource_version}")


def slim_pod(pod: dict[str, Any]) -> dict[str, Any]:
    """Keep what is read later: identity, deletion mark, status, labels (orphan net), our annotations (log resume)."""
    metadata = pod.get("metadata") or {}
    keep = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "labels")
    slim = {k: metadata[k] for k in keep if k in metadata}
    if ours := {k: v for k, v in (metadata.get("annotations") or {}).items() if k.startswith(ANNOTATION_PREFIX)}:
        slim["annotations"] = ours
    return {"metadata": slim, "status": pod.get("status") or {}}


class Subscription:
    """One waiting pod's view of the shared watch. Guarantees, in the order a waiter relies on them:

    * A late joiner is never blind: ``PodWatcher.subscribe`` returns with the cached state if the watch has seen the
      pod, else (after the first LIST, bounded at 10 s) with the answer of one GET: the pod's state, gone, or an
      error. Only when the API cannot be reached is nothing known yet (``settled`` is False); the watch fills it in.
    * Updates are coalesced: ``pod`` is always the newest state seen and ``changed()`` returns once for any number of
      updates since the previous call. Intermediate states may be skipped; decisions read the newest.
    * Identity is by uid: a pod with our name but another uid (ours was deleted, a new one took the name) reads as
      ``gone``; ``pod`` keeps the last state of *our* pod.
    * ``gone`` is final for this pod, and ``error`` is final for the subscription: once set, later updates are
      ignored, so a waiter that sees an error stops.
    """

    def __init__(self, name: str, uid: str | None) -> None:
        self.name = name
        self.uid = uid
        self.pod: dict[str, Any] | None = None
        self.gone = False
        self.error: str | None = None
        self.joined_at = asyncio.get_running_loop().time()
        self._changed = asyncio.Event()

    def update(self, pod: dict[str, Any]) -> None:
        if self.error is not None:
            return
        if self.uid and pod["metadata"].get("uid") != self.uid:
            # Same name, different pod: ours was deleted and something else took the name.
            self.mark_gone(None)
            return
        self.pod = pod
        self._changed.set()

    def mark_gone(self, last_state: dict[str, Any] | None) -> None:
        if self.error is not None:
            return
        if last_state is not None and (not self.uid or last_state["metadata"].get("uid") == self.uid):
            self.pod = last_state
        self.gone = True
        self._changed.set()

    def fail(self, error: str) -> None:
        if self.error is not None:
            return
        self.error = error
        self._changed.set()

    @property
    def settled(self) -> bool:
        """Whether anything is known yet: a state, a deletion or an error."""
        return self.pod is not None or self.gone or self.error is not None

    async def changed(self, timeout: float | None) -> bool:
        """Wait until the state changes (True) or ``timeout`` seconds pass (False)."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            return False
        self._changed.clear()
        return True


async def _json_lines(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """Split a watch stream into JSON objects without aiohttp's line-length limit."""
    buffer = bytearray()
    async for chunk in response.content.iter_any():
        buffer += chunk
        while (end := buffer.find(b"\n")) >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            if line.strip():
                yield json.loads(line)
        if len(buffer) > MAX_EVENT_BYTES:
            raise ValueError(f"watch event larger than {MAX_EVENT_BYTES} bytes")


class PodWatcher:
    """The shared watch for one ``WatchKey``; create through ``WatcherRegistry``. Guarantees:

    * One LIST, then one WATCH at a time for all subscribers, however many: API requests are O(1) in pods waiting.
    * No change is lost between LIST and WATCH or across reconnects: every watch continues from the last
      resourceVersion seen; when that version is too old (410) the watcher relists and re-checks every subscriber,
      so a deletion it could not see is reported as ``gone``. ``after_watch`` is the one rule for which it does.
    * Subscribers get what ``Subscription`` promises (late joiners, coalescing, uid identity, final errors).
    * Transient errors never reach subscribers: they are retried without limit, with backoff and Retry-After. An
      error retrying cannot fix reaches every subscriber as ``error`` and stops the watcher (the next subscriber
      starts a fresh one).
    * It polls instead of watching when LIST/WATCH answer 403 (RBAC allows only GET): each subscribed pod is read
      every ``poll_interval`` seconds with the same shared client. It never goes back to watching by itself.
    * It runs from the first subscriber until ``grace_seconds`` after the last one left.
    """

    def __init__(
        self,
        key: WatchKey,
        api_factory: ApiFactory,
        *,
        on_idle: Callable[[PodWatcher], None],
        grace_seconds: float = 30.0,
        poll_interval: float = 10.0,
        watch_timeout_seconds: int = 290,
    ) -> None:
        self.key = key
        self._api_factory = api_factory
        self._on_idle = on_idle
        self._grace = grace_seconds
        self._poll_interval = poll_interval
        self._watch_timeout = watch_timeout_seconds
        self._cache: dict[str, dict[str, Any]] = {}
        self._subs: dict[str, set[Subscription]] = {}
        self._resource_version: str | None = None
        self._listed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stop_handle: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.polling = False

    # -- subscribers ---------------------------------------------------------------------------------------------

    async def subscribe(self, name: str, uid: str | None) -> Subscription:
        sub = Subscription(name, uid)
        self._subs.setdefault(name, set()).add(sub)
        self._cancel_stop()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"pod-watcher:{self.key.namespace}")
        if name in self._cache:
            sub.update(self._cache[name])
        else:
            await self._settle_unseen(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.name)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.name]
        if not self._subs:
            self._stop_handle = asyncio.get_running_loop().call_later(self._grace, self._stop_if_idle)

    def pods(self) -> list[dict[str, Any]]:
        """Every pod the watch currently knows (slim), subscribed or not: what the orphan net looks at."""
        return list(self._cache.values())

    def watched(self, name: str) -> bool:
        """Whether a trigger in this process waits on pod ``name``."""
        return name in self._subs

    @property
    def active(self) -> bool:
        """Whether the watch loop runs (it stops a grace period after the last subscriber, or on a fatal error)."""
        return self._task is not None

    async def fetch(self, name: str) -> dict[str, Any] | None:
        """One GET: the pod's state now, or None when it does not exist."""
        api = await self._api_factory()
        response = await api.read_namespaced_pod(name, self.key.namespace, _preload_content=False)
        if response.status == 404:
            response.release()
            return None
        await raise_for_status(response)
        return slim_pod(json.loads(await response.read()))

    async def _settle_unseen(self, sub: Subscription) -> None:
        await self._wait_listed()
        if sub.settled or sub.name in self._cache:
            if sub.name in self._cache and not sub.settled:
                sub.update(self._cache[sub.name])
            return
        try:
            pod = await self.fetch(sub.name)
        except ApiStatusError as error:
            if not is_transient(error):
                sub.fail(f"cannot read pod {sub.name} in {self.key.namespace}: {error}")
            return  # transient: the watch will deliver it
        except (aiohttp.ClientError, TimeoutError, ConnectionError):
            return
        if sub.settled:
            return
        if pod is None:
            sub.mark_gone(None)
        else:
            sub.update(pod)

    async def _wait_listed(self) -> None:
        # A watcher that cannot LIST (API down) must not block subscribers forever; they retry on their own clock.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listed.wait(), 10)

    def _cancel_stop(self) -> None:
        if self._stop_handle is not None:
            self._stop_handle.cancel()
            self._stop_handle = None

    def _stop_if_idle(self) -> None:
        self._stop_handle = None
        if not self._subs:
            self.stop()
            self._on_idle(self)

    def stop(self) -> None:
        self._cancel_stop()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    # -- dispatch ------------------------------------------------------------------------------------------------

    def _apply(self, event_type: str, pod: dict[str, Any]) -> None:
        state = slim_pod(pod)
        name = state["metadata"].get("name", "")
        if event_type == "DELETED":
            self._cache.pop(name, None)
            for sub in self._subs.get(name, ()):
                sub.mark_gone(state)
            return
        self._cache[name] = state
        for sub in self._subs.get(name, ()):
            sub.update(state)

    def _replace_all(self, pods: list[dict[str, Any]], list_started: float) -> None:
        """After a (re)LIST: the list is the truth for pods subscribed before it was sent; those missing are gone.

        A subscriber that joined while the LIST was in flight may own a pod created after the LIST's snapshot, so
        its absence proves nothing: one GET settles it.
        """
        fresh = {p["metadata"]["name"]: slim_pod(p) for p in pods}
        self._cache = fresh
        for name, subs in self._subs.items():
            for sub in list(subs):
                if name in fresh:
                    sub.update(fresh[name])
                elif sub.joined_at < list_started:
                    sub.mark_gone(None)
                else:
                    task = asyncio.create_task(self._settle_unseen(sub))
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
        self._listed.set()

    def _fail_all(self, error: str) -> None:
        for subs in self._subs.values():
            for sub in subs:
                sub.fail(error)

    # -- the loop ------------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                started = loop.time()
                retrying = AsyncRetrying(**retry_policy(attempts=None, max_wait=30, before_sleep=self._log_retry))
                await retrying(self._poll_once if self.polling else self._sync_once)
                if (spent := loop.time() - started) < MIN_CYCLE_SECONDS:
                    await asyncio.sleep(MIN_CYCLE_SECONDS - spent)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # fatal: retrying cannot fix it
            log.error("Pod watch for %s stopped: %s", self.key, error)
            self._fail_all(f"watching pods in namespace {self.key.namespace} failed: {error}")
            self._task = None
            self._on_idle(self)

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("Pod watch for namespace %s: %s; retrying", self.key.namespace, error)

    async def _sync_once(self) -> None:
        """LIST if needed, then one WATCH until the server ends it; ``after_watch`` says what comes next."""
        api = await self._api_factory()
        ended_by: Exception | None = None
        try:
            if self._resource_version is None:
                await self._list(api)
            await self._watch(api)
        except Exception as error:  # judged by after_watch; transient and fatal ones are re-raised below
            ended_by = error
        step = after_watch(self._resource_version, ended_by)
        if step.plan is WatchPlan.RELIST:
            if ended_by is not None:
                log.info("Pod watch for namespace %s: %s", self.key.namespace, step.reason)
            self._resource_version = None
        elif step.plan is WatchPlan.POLL:
            log.warning("Pod watch for namespace %s: %s", self.key.namespace, step.reason)
            self.polling = True
            self._listed.set()
        elif ended_by is not None and step.plan in (WatchPlan.BACK_OFF, WatchPlan.GIVE_UP):
            raise ended_by

    async def _list(self, api: CoreV1Api) -> None:
        started = asyncio.get_running_loop().time()
        pods: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            extra = {"_continue": token} if token else {}
            response = await api.list_namespaced_pod(
                self.key.namespace, label_selector=self.key.selector, limit=500, _preload_content=False, **extra
            )
            await raise_for_status(response)
            body = json.loads(await response.read())
            pods.extend(body.get("items") or [])
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                break
        self._resource_version = body["metadata"]["resourceVersion"]
        self._replace_all(pods, started)

    async def _watch(self, api: CoreV1Api) -> None:
        timeout = self._watch_timeout + random.randint(0, 30)
        response = await api.list_namespaced_pod(
            self.key.namespace,
            label_selector=self.key.selector,
            watch=True,
            allow_watch_bookmarks=True,
            resource_version=self._resource_version,
            timeout_seconds=timeout,
            _preload_content=False,
            # No total timeout; a silent connection (half-open TCP) is noticed by the read timeout.
            _request_timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=timeout + 60),
        )
        await raise_for_status(response)
        try:
            async for event in _json_lines(response):
                self._handle_event(event)
        finally:
            response.release()

    def _handle_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":  # e.g. 410 Expired inside a 200 stream: the same error as an HTTP 410, the same path
            raise ApiStatusError(int(obj.get("code") or 500), json.dumps(obj))
        self._resource_version = (obj.get("metadata") or {}).get("resourceVersion", self._resource_version)
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._apply(kind, obj)

    async def _poll_once(self) -> None:
        """RBAC allows GET only: read each subscribed pod, then sleep. Still one shared client."""
        for name in list(self._subs):
            pod = await self.fetch(name)
            if pod is None:
                self._apply("DELETED", {"metadata": {"name": name}})
            else:
                self._cache[name] = pod
                for sub in self._subs.get(name, ()):
                    sub.update(pod)
        await asyncio.sleep(self._poll_interval)


class WatcherRegistry:
    """The process-wide set of shared watchers (the triggerer runs every trigger in one event loop)."""

    def __init__(self, **watcher_options: Any) -> None:
        self._watchers: dict[WatchKey, PodWatcher] = {}
        self._options = watcher_options  # PodWatcher keyword arguments: grace_seconds, poll_interval, ...

    def watcher(self, key: WatchKey, api_factory: ApiFactory) -> PodWatcher:
        watcher = self._watchers.get(key)
        if watcher is None:
            watcher = PodWatcher(key, api_factory, on_idle=self._forget, **self._options)
            self._watchers[key] = watcher
        return watcher

    def _forget(self, watcher: PodWatcher) -> None:
        if self._watchers.get(watcher.key) is watcher:
            del self._watchers[watcher.key]

    def __len__(self) -> int:
        return len(self._watchers)

    @contextlib.asynccontextmanager
    async def subscription(
        self, key: WatchKey, api_factory: ApiFactory, name: str, uid: str | None
    ) -> AsyncIterator[tuple[PodWatcher, Subscription]]:
        watcher = self.watcher(key, api_factory)
        sub = await watcher.subscribe(name, uid)
        try:
            yield watcher, sub
        finally:
            watcher.unsubscribe(sub)


REGISTRY = WatcherRegistry()
