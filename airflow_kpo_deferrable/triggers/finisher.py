"""Finishing a task in the triggerer: the last logs, ``on_finish_action``, then the event that ends the task.

Why: a worker resume costs a second worker slot and waits for one in a busy deployment; a trigger can end its task
itself (``TaskSuccessEvent`` / ``TaskSkippedEvent`` / ``TaskFailedEvent``, Airflow 3.3.2). The decisions are the
worker's (``finish.py``); this module does the trigger's I/O in their order.

Order, and why (a triggerer may die between any two steps; ``run()`` then starts over):

1. copy what remains of the logs (``LiveLogs.finish``);
2. record the final resume points on the pod; write a failure's events and pod spec (``log_events_on_failure`` …,
   ``events.py``) while the pod exists; then record the decided outcome with the resume points (an Event,
   ``triggers/record.py``, else an XCom: ``triggers/state.py``) — before anything is deleted, so a restarted trigger
   that finds the pod copies nothing twice, and one that finds it gone reads the record and skips waiting and
   copying instead of reporting our own delete as a deletion;
3. apply ``on_finish_action`` (the delete is idempotent: gone already is fine);
4. write the typed end line and the last log lines, one record per line, then return the event. Airflow applies the
   event once; a trigger restarted before that yields the same event again, and after it the task is no longer
   deferred, so the task never ends twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.triggers.base import TaskFailedEvent, TaskSkippedEvent, TaskSuccessEvent, TriggerEvent
from kubernetes_asyncio.client.exceptions import ApiException
from tenacity import AsyncRetrying

from airflow_kpo_deferrable.api_rules import delete_is_fine, delete_options, retry_policy
from airflow_kpo_deferrable.events import alog_failure, details_for
from airflow_kpo_deferrable.finish import TaskEnd, end_message, finish_action_line, should_delete, task_end
from airflow_kpo_deferrable.hooks.kubernetes import ClusterTarget, async_core_v1
from airflow_kpo_deferrable.node_loss import FORCE_DELETE_MESSAGE, delete_grace_period, node_lost_status
from airflow_kpo_deferrable.outcome import PodResult
from airflow_kpo_deferrable.triggers.live_logs import LiveLogs, end_work
from airflow_kpo_deferrable.triggers.state import ResumePointWriter, StateStore, TriggerState

EVENTS: dict[TaskEnd, Callable[[], TriggerEvent]] = {
    TaskEnd.SUCCESS: TaskSuccessEvent,
    TaskEnd.SKIPPED: TaskSkippedEvent,
    TaskEnd.FAILED: TaskFailedEvent,
}


async def finish_in_triggerer(
    trigger: Any,  # the PodTrigger (not imported: it imports this module)
    result: PodResult,
    phase: str | None,
    logs: LiveLogs | None,
    state: TriggerState,
    store: StateStore,
    writer: ResumePointWriter,
) -> TriggerEvent:
    spec: dict[str, Any] = trigger.finish or {}
    log = trigger.log
    tail: list[str] = []
    if state.decided is None:
        if logs is not None:
            await logs.finish()
            tail = logs.tail(trigger.base_container)
            state.logs = logs.resume_points()
            if trigger._last_pod is not None:
                await writer.write(state.logs)
        state.decided = {**result.to_dict(), "phase": phase}
        await _log_failure_details(trigger, result, spec)
        await store.save(state)
    else:
        phase = state.decided.get("phase")
        log.info("The outcome was decided before a triggerer restart; its logs were copied then")

    action = spec.get("on_finish_action", "delete_pod")
    if should_delete(action, result, phase):
        async with end_work():
            lost = node_lost_status((trigger._last_pod or {}).get("status"))
            if lost:
                log.warning(FORCE_DELETE_MESSAGE, trigger.pod_name, trigger.namespace, "phase Unknown")
            await delete_pod_async(
                trigger._target, trigger.pod_name, trigger.namespace, trigger.pod_uid,
                delete_grace_period(lost, trigger.termination_grace_period),
            )
    log.info("%s", finish_action_line(action, should_delete(action, result, phase), trigger.pod_name, trigger.namespace))

    end = task_end(result, spec.get("skip_on_exit_code") or [])
    emit = log.error if end is TaskEnd.FAILED else log.info
    for line in end_message(end, result, trigger.pod_name, trigger.namespace, tail).splitlines():
        emit("%s", line)
    log.info("Finished in the triggerer: the task ends %s (no worker resume)", end.value)
    return EVENTS[end]()


async def _log_failure_details(trigger: Any, result: PodResult, spec: dict[str, Any]) -> None:
    """The pod's events and spec for a failure, as the worker's ``_finish`` writes them (never raises)."""
    details = details_for(
        result,
        on_failure=bool(spec.get("log_events_on_failure", False)),
        on_startup=bool(spec.get("log_events_on_startup", True)),
        spec_on_failure=bool(spec.get("log_pod_spec_on_failure", True)),
    )
    if not details.events and not details.spec:
        return
    api = await async_core_v1(trigger._target)
    pod: dict[str, Any] | None = None
    if details.spec:  # the watch keeps a slim pod: read the whole one for its spec
        try:
            found = await api.read_namespaced_pod(trigger.pod_name, trigger.namespace)
            pod = api.api_client.sanitize_for_serialization(found)
        except Exception as error:  # noqa: BLE001 - the outcome stands; say why the spec is missing
            trigger.log.warning("Could not read pod %s for its spec: %s", trigger.pod_name, error)
    await alog_failure(
        lambda line: trigger.log.info("%s", line), api, pod, trigger.pod_name, trigger.namespace, trigger.pod_uid,
        details,
    )


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
