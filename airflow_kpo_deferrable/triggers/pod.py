"""``PodTrigger``: waits in the triggerer for one pod to end and yields exactly one event.

Why a trigger of our own: the provider's trigger polls each pod with a fresh API client per request. This one
subscribes to the process-wide shared watch (``watcher.py``) and only decides; the decision rules are pure functions
in ``outcome.py``.

Facts it handles:

* Trigger kwargs are stored as plain JSON in the metadata DB. They carry a ``ClusterTarget`` (connection id, config
  file path, context) and never credentials: the connection is resolved here, in the triggerer.
* ``run()`` starts over after a triggerer restart or redistribution, possibly on another triggerer. It only watches
  the pod named in its kwargs (never creates one), and every deadline is an absolute time fixed on the worker, so a
  restart neither duplicates pods nor resets clocks.
* A deadline decided from cached watch state is confirmed with one GET before it is reported: an overloaded or
  disconnected triggerer must not turn a running pod into a false timeout (provider bug #40018).
* ``on_kill`` runs only when a user marks the deferred task failed/success or clears it: it deletes the pod per
  ``on_kill_action`` (provider bug #62398 left it running). ``cleanup`` runs on every exit, restarts included, so it
  never touches the pod.
* The event carries the pod's name and namespace, because ``dag.test()`` drops the defer kwargs.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent
from kubernetes_asyncio.client.exceptions import ApiException
from tenacity import AsyncRetrying

from airflow_kpo_deferrable.api_rules import delete_is_fine, delete_options, retry_policy
from airflow_kpo_deferrable.hooks.kubernetes import ClusterTarget, async_core_v1, close_async_clients
from airflow_kpo_deferrable.outcome import Deadlines, Outcome, PodResult, evaluate, next_check
from airflow_kpo_deferrable.podspec import MANAGED_BY_SELECTOR
from airflow_kpo_deferrable.watcher import REGISTRY, PodWatcher, Subscription, WatcherRegistry, WatchKey

NO_DEADLINES = Deadlines(schedule=None, startup_timeout_seconds=None, execution=None)
UNSEEN_POD: dict[str, Any] = {"metadata": {}, "status": {}}
CONFIRM_RETRY_SECONDS = 5.0


def _now() -> datetime:
    return datetime.now(UTC)


class PodTrigger(BaseTrigger):
    """Wait for ``namespace/pod_name`` (uid ``pod_uid``) to end; yield one event with a ``PodResult``."""

    def __init__(
        self,
        *,
        pod_name: str,
        namespace: str,
        pod_uid: str | None,
        cluster: dict[str, Any],
        base_container: str = "base",
        schedule_deadline: datetime | None = None,
        startup_timeout_seconds: float | None = None,
        execution_deadline: datetime | None = None,
        on_kill_action: str = "delete_pod",
        termination_grace_period: int | None = None,
    ) -> None:
        super().__init__()
        self.pod_name = pod_name
        self.namespace = namespace
        self.pod_uid = pod_uid
        self.cluster = cluster
        self.base_container = base_container
        self.schedule_deadline = schedule_deadline
        self.startup_timeout_seconds = startup_timeout_seconds
        self.execution_deadline = execution_deadline
        self.on_kill_action = on_kill_action
        self.termination_grace_period = termination_grace_period

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "pod_name": self.pod_name,
                "namespace": self.namespace,
                "pod_uid": self.pod_uid,
                "cluster": self.cluster,
                "base_container": self.base_container,
                "schedule_deadline": self.schedule_deadline,
                "startup_timeout_seconds": self.startup_timeout_seconds,
                "execution_deadline": self.execution_deadline,
                "on_kill_action": self.on_kill_action,
                "termination_grace_period": self.termination_grace_period,
            },
        )

    @property
    def deadlines(self) -> Deadlines:
        return Deadlines(
            schedule=self.schedule_deadline,
            startup_timeout_seconds=self.startup_timeout_seconds,
            execution=self.execution_deadline,
        )

    @functools.cached_property
    def _target(self) -> ClusterTarget:
        return ClusterTarget.from_dict(self.cluster)

    def _watch_key(self) -> WatchKey:
        return WatchKey(cluster=self._target, namespace=self.namespace, selector=MANAGED_BY_SELECTOR)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        self.log.info("Waiting for pod %s in namespace %s", self.pod_name, self.namespace)
        result = await self.wait()
        self.log.info("Pod %s: %s", self.pod_name, result.outcome.value + (f" ({result.reason})" if result.reason else ""))
        yield TriggerEvent({**result.to_dict(), "pod_name": self.pod_name, "namespace": self.namespace})

    async def wait(self, registry: WatcherRegistry = REGISTRY) -> PodResult:
        """Wait for the pod's outcome through the shared watch. Also used by the operator when not deferring."""
        factory = functools.partial(async_core_v1, self._target)
        async with registry.subscription(self._watch_key(), factory, self.pod_name, self.pod_uid) as (watcher, sub):
            return await self._wait(watcher, sub)

    async def _wait(self, watcher: PodWatcher, sub: Subscription) -> PodResult:
        while True:
            if sub.error is not None:
                return PodResult(outcome=Outcome.ERROR, reason=None, exit_code=None, message=sub.error, container=None)
            now = _now()
            result = self._decide(sub, now)
            if result is not None and self._needs_confirmation(sub, now):
                result = await self._confirm(watcher, sub, result)
            if result is not None:
                return result
            wake = next_check(sub.pod, self.base_container, self.deadlines, now)
            await sub.changed(None if wake is None else max((wake - now).total_seconds(), 0.0))

    def _decide(self, sub: Subscription, now: datetime) -> PodResult | None:
        # A pod not seen yet (API unreachable since the restart) has no state: only the execution deadline applies.
        result = evaluate(sub.pod or UNSEEN_POD, self.base_container, self.deadlines, now)
        if result is not None or not sub.gone:
            return result
        return PodResult(
            outcome=Outcome.DELETED,
            reason=None,
            exit_code=None,
            message=f"pod {self.pod_name} in namespace {self.namespace} was deleted before it finished",
            container=None,
        )

    def _needs_confirmation(self, sub: Subscription, now: datetime) -> bool:
        """A result reached only because a clock ran out may rest on stale state: those are confirmed."""
        if sub.gone or sub.pod is None:
            return False
        return evaluate(sub.pod, self.base_container, NO_DEADLINES, now) is None

    async def _confirm(self, watcher: PodWatcher, sub: Subscription, result: PodResult) -> PodResult | None:
        try:
            fresh = await watcher.fetch(self.pod_name)
        except Exception as error:  # API unreachable: a hard execution deadline still ends the wait
            self.log.warning("Could not confirm %s of pod %s: %s", result.reason, self.pod_name, error)
            if self.execution_deadline is not None and _now() >= self.execution_deadline:
                return result
            await sub.changed(CONFIRM_RETRY_SECONDS)
            return None
        if fresh is None:
            sub.mark_gone(None)
            return None
        sub.update(fresh)
        return evaluate(fresh, self.base_container, self.deadlines, _now())

    async def on_kill(self) -> None:
        if self.on_kill_action != "delete_pod":
            self.log.info("on_kill_action=%s: leaving pod %s", self.on_kill_action, self.pod_name)
            return
        await delete_pod_async(
            self._target, self.pod_name, self.namespace, self.pod_uid, self.termination_grace_period
        )
        self.log.info("Deleted pod %s in namespace %s because the task was killed", self.pod_name, self.namespace)


async def delete_pod_async(
    target: ClusterTarget, name: str, namespace: str, uid: str | None, grace_period: int | None
) -> None:
    """Delete our pod; the uid precondition guarantees a same-named newer pod is never hit. Gone already is fine.

    The async twin of the operator's delete: same options, same fine answers, same retry policy (``api_rules``).
    """
    api = await async_core_v1(target)
    options = delete_options(uid, grace_period)
    async for attempt in AsyncRetrying(**retry_policy()):
        with attempt:
            try:
                await api.delete_namespaced_pod(name, namespace, body=options)
            except ApiException as error:
                if not delete_is_fine(error):
                    raise


def wait_blocking(trigger: PodTrigger) -> PodResult:
    """Block this thread until the trigger's wait ends (the operator's non-deferrable mode): same watch, same decisions.

    A private registry and fresh clients, closed at the end: the loop is ours alone and ends with the wait.
    """

    async def wait() -> PodResult:
        try:
            return await trigger.wait(WatcherRegistry())
        finally:
            await close_async_clients()

    return asyncio.run(wait())
