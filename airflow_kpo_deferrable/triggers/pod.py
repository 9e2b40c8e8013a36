"""``PodTrigger``: waits in the triggerer for one pod to end, follows its logs, and yields exactly one event.

The event either ends the task (``finish`` given: ``triggers/finisher.py`` yields Airflow's task-end events) or
resumes it on a worker (a plain ``TriggerEvent`` with the ``PodResult`` and, when logs were followed, each container's
``log_resume`` point so the worker copies only what follows). Live logs: ``triggers/live_logs.py``; what survives a
triggerer restart: ``triggers/state.py``.

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
  never touches the pod. A pod on a lost node is force-deleted (grace period 0, ``node_loss``).
* ``run()`` also keeps the orphan net going on its shared watch (``orphans``): pods no trigger watches and no task
  instance owns any more are deleted.
* The event carries the pod's name and namespace, because ``dag.test()`` drops the defer kwargs.
* An event is never yielded before ``event_not_before`` (the deferral plus ``DEFER_SETTLE_SECONDS``): Airflow
  3.3.2's scheduler fails a resumed task whose deferring worker's exit it processes only after the trigger fired
  (``scheduler_job_runner.py``, the ``ti_requeued`` check). The hold makes that much less likely, not impossible;
  it applies only when a worker resumes the task (a task that the trigger ends itself has no second worker start
  to race with).
* Before its event the trigger waits until the triggerer's supervisor has read all it logged (``log_drain``):
  Airflow closes a trigger's log file on the state change that follows the event, and lines still unread then
  land in the triggerer's own log, not the task's.
* After a restart the saved state decides: live logs continue after the resume points saved on the pod, and a pod
  found gone is looked up in the decided-outcome record — a decided outcome is finished again (our own delete must
  not read as a deletion). Nothing is read through the triggerer's supervisor while a pod exists.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_kpo_deferrable.finish import pod_phase
from airflow_kpo_deferrable.hooks.kubernetes import ClusterTarget, async_core_v1, close_async_clients
from airflow_kpo_deferrable.node_loss import FORCE_DELETE_MESSAGE, delete_grace_period, node_lost_status
from airflow_kpo_deferrable.orphans import ensure_sweeping
from airflow_kpo_deferrable.outcome import Deadlines, Outcome, PodResult, evaluate, next_check
from airflow_kpo_deferrable.podspec import MANAGED_BY_SELECTOR
from airflow_kpo_deferrable.triggers.finisher import delete_pod_async, finish_in_triggerer
from airflow_kpo_deferrable.triggers.live_logs import LiveLogs
from airflow_kpo_deferrable.triggers.log_drain import logs_read
from airflow_kpo_deferrable.triggers.state import (
    ResumePointWriter,
    StateStore,
    TriggerState,
    resume_points_on_pod,
    resume_points_to_json,
    warm_up_supervisor,
)
from airflow_kpo_deferrable.watcher import REGISTRY, PodWatcher, Subscription, WatcherRegistry, WatchKey

NO_DEADLINES = Deadlines(schedule=None, startup_timeout_seconds=None, execution=None)
# How long after the deferral the first event may fire (README "No orphan pods", fast pods): an event that arrives
# before the scheduler has processed the deferring worker's exit can make it fail the resumed task.
DEFER_SETTLE_SECONDS = 10.0
UNSEEN_POD: dict[str, Any] = {"metadata": {}, "status": {}}
CONFIRM_RETRY_SECONDS = 5.0
DEFAULT_CHECKPOINT_SECONDS = 10.0


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
        event_not_before: datetime | None = None,
        log_containers: list[str] | None = None,
        live_logs: bool = False,
        checkpoint_seconds: float = DEFAULT_CHECKPOINT_SECONDS,
        finish: dict[str, Any] | None = None,
        log_prefix: bool = True,
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
        self.event_not_before = event_not_before
        # The containers whose logs the trigger copies (None: the worker copies them all on resume).
        self.log_containers = log_containers
        self.live_logs = live_logs
        self.checkpoint_seconds = checkpoint_seconds
        # Finish in the triggerer: {"on_finish_action": ..., "skip_on_exit_code": [...]}; None: a worker resumes.
        self.finish = finish
        self.log_prefix = log_prefix  # container_name_log_prefix_enabled
        self._last_pod: dict[str, Any] | None = None

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
                "event_not_before": self.event_not_before,
                "log_containers": self.log_containers,
                "live_logs": self.live_logs,
                "checkpoint_seconds": self.checkpoint_seconds,
                "finish": self.finish,
                "log_prefix": self.log_prefix,
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
        if self.finish is None and not self.log_containers:
            result = await self.wait(sweep=True)
            self._log_result(result)
            await self._hold_event()
            await logs_read()
            yield TriggerEvent(self._event_payload(result))
            return
        # Nothing is read through the triggerer's supervisor here (``triggers/state.py``): live streams start once
        # the pod is first seen, after the resume points a trigger before a restart saved on it.
        store = StateStore(getattr(self, "task_instance", None), self.log.warning,
                           functools.partial(async_core_v1, self._target), self.namespace, self.pod_name)
        if self.finish is not None:  # it will write its decided outcome through the supervisor
            warm_up_supervisor(getattr(self, "task_instance", None), self.log.warning)
        logs = self._logs()
        writer = self._resume_writer()
        observe = self._observer(logs, writer) if logs else None
        background = asyncio.create_task(self._checkpoints(logs, writer)) if logs else None
        try:
            result = await self.wait(observe=observe, sweep=True)
            state = TriggerState(uid=self.pod_uid, logs=resume_points_on_pod(self._last_pod), pod=self.pod_name)
            if result.outcome is Outcome.DELETED:  # maybe our own delete before a triggerer restart
                state = await store.load(self.pod_uid) or state
            if state.decided is not None:  # decided (and maybe deleted by us) before a triggerer restart
                result = PodResult.from_dict(state.decided)
            else:
                self._log_result(result)
            if background is not None:
                background.cancel()
            if logs is not None:
                logs.ready(state.logs)  # the pod may never have been seen (gone since before a restart)
            if self.finish is not None:  # the task ends here: no worker resume, so nothing to race
                end = await finish_in_triggerer(self, result, pod_phase(self._last_pod), logs, state, store, writer)
                await logs_read()
                yield end
                return
            # A worker resumes the task: it copies the logs after where the live streams stopped.
            payload = self._event_payload(result)
            if logs is not None:
                await logs.stop()
                payload["log_resume"] = resume_points_to_json(logs.resume_points())
            await self._hold_event()
            await logs_read()
            yield TriggerEvent(payload)
        finally:
            if background is not None:
                background.cancel()
            if logs is not None:
                await logs.close()

    async def _hold_event(self) -> None:
        """Before an event that a worker resumes from: wait until ``event_not_before`` (fast pods, see above)."""
        if self.event_not_before is not None and (hold := (self.event_not_before - _now()).total_seconds()) > 0:
            self.log.info("Pod %s ended right after the deferral: holding its event %.1f s so it does not overtake "
                          "the deferring worker", self.pod_name, hold)
            await asyncio.sleep(hold)

    def _log_result(self, result: PodResult) -> None:
        self.log.info("Pod %s: %s", self.pod_name, result.outcome.value + (f" ({result.reason})" if result.reason else ""))

    def _event_payload(self, result: PodResult) -> dict[str, Any]:
        return {**result.to_dict(), "pod_name": self.pod_name, "namespace": self.namespace}

    def _logs(self) -> LiveLogs | None:
        if not self.log_containers:
            return None
        return LiveLogs(
            functools.partial(async_core_v1, self._target),
            self.pod_name,
            self.namespace,
            self.log_containers,
            lambda line: self.log.info("%s", line),
            self.log.warning,
            live=self.live_logs,
            prefix_enabled=self.log_prefix,
        )

    def _resume_writer(self) -> ResumePointWriter:
        async def patch(body: dict[str, Any]) -> None:
            api = await async_core_v1(self._target)
            await api.patch_namespaced_pod(self.pod_name, self.namespace, body)

        return ResumePointWriter(patch, self.log.warning)

    def _observer(self, logs: LiveLogs, writer: ResumePointWriter) -> Callable[[dict[str, Any] | None], None]:
        """Told every newer pod state: the first one seen carries the saved resume points; streams start after them."""

        def observe(pod: dict[str, Any] | None) -> None:
            if pod is not None and not logs.is_ready:
                points = resume_points_on_pod(pod)
                if points:
                    self.log.info(
                        "Restarted: the log continues after the last saved line; up to %s s of lines before this "
                        "may repeat", self.checkpoint_seconds,
                    )
                writer.start_from(points)
                logs.ready(points)
            logs.observe(pod)

        return observe

    async def _checkpoints(self, logs: LiveLogs, writer: ResumePointWriter) -> None:
        """Every ``checkpoint_seconds`` while the streams move: their resume points go onto the pod (one PATCH)."""
        while True:
            await asyncio.sleep(self.checkpoint_seconds)
            if logs.is_ready:
                await writer.write(logs.resume_points())

    async def wait(
        self,
        registry: WatcherRegistry = REGISTRY,
        observe: Callable[[dict[str, Any] | None], None] | None = None,
        *,
        sweep: bool = False,
    ) -> PodResult:
        """Wait for the pod's outcome through the shared watch. Also used by the operator when not deferring.

        ``observe`` is told every newer pod state (the live logs start a container's stream once it runs);
        ``sweep`` (the triggerer's ``run``) also keeps the orphan net (``orphans``) going on this watch.
        """
        factory = functools.partial(async_core_v1, self._target)
        async with registry.subscription(self._watch_key(), factory, self.pod_name, self.pod_uid) as (watcher, sub):
            if sweep:
                ensure_sweeping(watcher, functools.partial(delete_pod_async, self._target))
            return await self._wait(watcher, sub, observe)

    async def _wait(
        self, watcher: PodWatcher, sub: Subscription, observe: Callable[[dict[str, Any] | None], None] | None
    ) -> PodResult:
        while True:
            if sub.error is not None:
                return PodResult(outcome=Outcome.ERROR, reason=None, exit_code=None, message=sub.error, container=None)
            self._last_pod = sub.pod or self._last_pod
            if observe is not None:
                observe(sub.pod)
            now = _now()
            result = self._decide(sub, now)
            if result is not None and self._needs_confirmation(sub, now):
                result = await self._confirm(watcher, sub, result)
            if result is not None:
                self._last_pod = sub.pod or self._last_pod
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
        lost = node_lost_status((self._last_pod or {}).get("status"))
        if lost:
            self.log.warning(FORCE_DELETE_MESSAGE, self.pod_name, self.namespace, "phase Unknown")
        await delete_pod_async(
            self._target, self.pod_name, self.namespace, self.pod_uid,
            delete_grace_period(lost, self.termination_grace_period),
        )
        self.log.info("Deleted pod %s in namespace %s because the task was killed", self.pod_name, self.namespace)


def wait_blocking(trigger: PodTrigger, observe: Callable[[dict[str, Any] | None], None] | None = None) -> PodResult:
    """Block this thread until the trigger's wait ends (the operator's non-deferrable mode): same watch, same decisions.

    A private registry and fresh clients, closed at the end: the loop is ours alone and ends with the wait, so
    ``observe`` (told every newer pod state; the operator's ``on_pod_starting``) may block it.
    """

    async def wait() -> PodResult:
        try:
            return await trigger.wait(WatcherRegistry(), observe=observe)
        finally:
            await close_async_clients()

    return asyncio.run(wait())
