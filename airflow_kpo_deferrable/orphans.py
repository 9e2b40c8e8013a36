"""No orphan pod: whether a pod's owning task try still runs, asked of Airflow, and the triggerer's safety net.

Why: every pod we create must, within a bounded time, be watched by a live trigger or worker, or be deleted. The
operator covers most paths itself (a check that the try still runs before and right after create, reattach of
earlier tries' pods, ``on_kill``); what remains are windows where no code of ours runs: a worker SIGKILLed right
after create with no retries left, a task marked failed/success or cleared before any triggerer picked its trigger
up (Airflow then drops the trigger row silently: neither ``run()`` nor ``on_kill`` ever runs). For those, the shared
watcher in the triggerer sees every pod with our managed-by label in its namespace; a pod that no trigger of this
triggerer has watched for ``orphan_grace_seconds`` is checked against Airflow, and deleted when its task instance is
in a final state. README "No orphan pods" states the delay this gives and its limits.

Facts it handles:

* Airflow 3.3 lets both a running task and a trigger ask for task instance states (``GetTaskStates``: it is in the
  triggerer's ``ToTriggerSupervisor``); the answer is ``{run_id: {task_id or task_id_mapindex: state}}``. It has no
  try number: the rule is therefore "the task instance reached a final state" (success, failed, skipped,
  upstream_failed, removed). Any other state (running, deferred, queued, scheduled, up_for_retry, a cleared None)
  means a worker, a trigger (perhaps in another triggerer) or the next try (reattach) owns the pod: it is left.
* Identity labels hold label-safe forms. ``run_id`` is matched by making each answered run id label-safe the same
  way; a ``dag_id`` or ``task_id`` that had to be changed to be a label (over 63 characters) finds no answer, and a
  pod without a definite answer is never deleted.
* Finished pods (Succeeded/Failed) are not the net's business: ``keep_pod`` leaves them on purpose, and they hold no
  node resources. The net deletes pods that still run (or sit on a lost node, force-deleted).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow.sdk.exceptions import AirflowException

from airflow_kpo_deferrable.node_loss import FORCE_DELETE_MESSAGE, delete_grace_period, node_lost_status
from airflow_kpo_deferrable.podspec import safe_label_value
from airflow_kpo_deferrable.reattach import FINISHED_PHASES

log = logging.getLogger(__name__)

FINAL_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
CONFIG_SECTION = "kpo_deferrable"
DEFAULT_GRACE_SECONDS = 60.0
MIN_SWEEP_INTERVAL_SECONDS = 2.0


def state_key(task_id: str, map_index: int | None) -> str:
    """The key ``GetTaskStates`` answers a task instance under: ``task_id``, or ``task_id_<map_index>`` when mapped."""
    return task_id if map_index is None or map_index < 0 else f"{task_id}_{map_index}"


def orphaned(state: str | None) -> bool:
    """Whether a pod whose task instance is in ``state`` is owned by nobody: the task instance has finished."""
    return state in FINAL_STATES


# -- the worker's check ------------------------------------------------------------------------------------------


class TryEnded(AirflowException):
    """The running try's task instance is no longer running (marked failed/success or cleared from outside)."""


MISSING = "<unknown>"


def task_state_now(ti: Any) -> str | None:
    """This try's task instance state as Airflow's database has it now, asked through the supervisor.

    ``MISSING`` when it cannot be told (no supervisor, an older Airflow, a failed request): the caller then goes on.
    """
    map_index = ti.map_index if ti.map_index is not None else -1
    try:
        states = ti.get_task_states(dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id], map_index=map_index)
    except Exception as error:  # the check is a safety net; its absence must not fail the task
        log.warning("Could not ask Airflow whether this task try still runs: %s", error)
        return MISSING
    run = (states or {}).get(ti.run_id)
    key = state_key(ti.task_id, map_index)
    if run is None or key not in run:
        return MISSING
    return run[key]


def ensure_running(ti: Any, moment: str) -> None:
    """Raise ``TryEnded`` when this try's task instance is no longer ``running`` (``moment``: for the message)."""
    state = task_state_now(ti)
    if state in (MISSING, "running"):
        return
    raise TryEnded(
        f"task {ti.dag_id}.{ti.task_id} (run {ti.run_id}, map index {ti.map_index}, try {ti.try_number}) is no longer "
        f"running {moment}: its state is {state!r} (marked or cleared from outside)"
    )


# -- the triggerer's safety net ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """The task instance a pod's identity labels name (label-safe forms, see the module docstring)."""

    dag_id: str
    task_id: str
    run_label: str
    map_index: int

    @classmethod
    def of(cls, pod: Mapping[str, Any]) -> Owner | None:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if not all(k in labels for k in ("dag_id", "task_id", "run_id")):
            return None
        try:
            map_index = int(labels.get("map_index", -1))
        except ValueError:
            return None
        return cls(labels["dag_id"], labels["task_id"], labels["run_id"], map_index)


def owner_state(owner: Owner, states: Mapping[str, Mapping[str, str | None]]) -> str | None:
    """The owner's state in a ``GetTaskStates`` answer (None when not answered: then nothing is deleted)."""
    for run_id, tasks in states.items():
        if safe_label_value(run_id) == owner.run_label:
            return tasks.get(state_key(owner.task_id, owner.map_index))
    return None


def sweep_candidates(
    pods: Iterable[Mapping[str, Any]], watched: Callable[[str], bool], unwatched_since: dict[str, float],
    now: float, grace: float,
) -> list[Mapping[str, Any]]:
    """Pods not finished, not watched here for ``grace`` seconds. Updates ``unwatched_since`` (uid → first seen)."""
    seen: set[str] = set()
    out = []
    for pod in pods:
        metadata = pod.get("metadata") or {}
        uid, name = metadata.get("uid"), metadata.get("name", "")
        status = pod.get("status") or {}
        if not uid or (status.get("phase") in FINISHED_PHASES) or watched(name):
            continue
        if metadata.get("deletionTimestamp") and not node_lost_status(status):
            continue  # already going away
        seen.add(uid)
        first = unwatched_since.setdefault(uid, now)
        if now - first >= grace:
            out.append(pod)
    for uid in list(unwatched_since):
        if uid not in seen:
            del unwatched_since[uid]
    return out


StatesAsker = Callable[[Owner], Awaitable[Mapping[str, Mapping[str, str | None]]]]
Deleter = Callable[[str, str, str | None, int | None], Awaitable[None]]


async def ask_triggerer_supervisor(owner: Owner) -> Mapping[str, Mapping[str, str | None]]:
    """``GetTaskStates`` for the owner's task, all runs, sent from a trigger to the triggerer's supervisor."""
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import GetTaskStates

    message = GetTaskStates(dag_id=owner.dag_id, task_ids=[owner.task_id], map_index=owner.map_index)
    response = await task_runner.SUPERVISOR_COMMS.asend(message)
    return getattr(response, "task_states", None) or {}


class OrphanSweeper:
    """One per shared watcher in the triggerer: every ``interval`` seconds, delete the pods no task instance owns."""

    def __init__(self, namespace: str, *, grace: float, ask: StatesAsker, delete: Deleter) -> None:
        self.namespace = namespace
        self.grace = grace
        self.interval = max(grace / 2, MIN_SWEEP_INTERVAL_SECONDS)
        self._ask = ask
        self._delete = delete
        self._unwatched_since: dict[str, float] = {}

    async def sweep(self, pods: Iterable[Mapping[str, Any]], watched: Callable[[str], bool]) -> list[str]:
        """One pass; returns the names deleted."""
        deleted = []
        for pod in sweep_candidates(pods, watched, self._unwatched_since, time.monotonic(), self.grace):
            owner = Owner.of(pod)
            if owner is None:
                continue
            try:
                state = owner_state(owner, await self._ask(owner))
            except Exception as error:  # no answer, no deletion
                log.warning("Could not ask Airflow about the owner of pod %s: %s", pod["metadata"]["name"], error)
                continue
            if not orphaned(state):
                continue
            deleted.append(await self._remove(pod, owner, state))
        return deleted

    async def _remove(self, pod: Mapping[str, Any], owner: Owner, state: str | None) -> str:
        metadata, status = pod["metadata"], pod.get("status") or {}
        name = metadata["name"]
        lost = node_lost_status(status)
        log.warning(
            "Deleting orphan pod %s in %s: no trigger or worker watches it and its task %s.%s (run %s, map index %s) "
            "is %s",
            name, self.namespace, owner.dag_id, owner.task_id, owner.run_label, owner.map_index, state,
        )
        if lost:
            log.warning(FORCE_DELETE_MESSAGE, name, self.namespace, status.get("reason") or status.get("phase"))
        await self._delete(name, self.namespace, metadata.get("uid"), delete_grace_period(lost, None))
        self._unwatched_since.pop(metadata.get("uid") or "", None)
        return name

    async def run(self, pods: Callable[[], Iterable[Mapping[str, Any]]], watched: Callable[[str], bool],
                  alive: Callable[[], bool]) -> None:
        """Sweep until ``alive()`` turns false (the watcher stopped)."""
        while alive():
            await asyncio.sleep(self.interval)
            if not alive():
                return
            try:
                await self.sweep(list(pods()), watched)
            except Exception as error:  # the net must never take the triggerer's loop down
                log.warning("Orphan sweep in %s failed: %s", self.namespace, error)


def configured_grace() -> float:
    """``[kpo_deferrable] orphan_grace_seconds`` (env ``AIRFLOW__KPO_DEFERRABLE__ORPHAN_GRACE_SECONDS``), default 60."""
    try:
        from airflow.configuration import conf

        return conf.getfloat(CONFIG_SECTION, "orphan_grace_seconds", fallback=DEFAULT_GRACE_SECONDS)
    except Exception:
        return DEFAULT_GRACE_SECONDS


_SWEEPS: weakref.WeakKeyDictionary[Any, asyncio.Task[None]] = weakref.WeakKeyDictionary()


def ensure_sweeping(watcher: Any, delete: Deleter) -> None:
    """Start the net for a shared watcher (``watcher.PodWatcher``) unless it runs already; it ends with the watch."""
    task = _SWEEPS.get(watcher)
    if task is not None and not task.done():
        return
    sweeper = OrphanSweeper(
        watcher.key.namespace, grace=configured_grace(), ask=ask_triggerer_supervisor, delete=delete
    )
    # A fresh context: the net belongs to no task, so its lines go to the triggerer's own log, not to the log of
    # whichever trigger happened to start it.
    _SWEEPS[watcher] = asyncio.create_task(
        sweeper.run(watcher.pods, watcher.watched, lambda: watcher.active),
        name=f"orphan-sweep:{watcher.key.namespace}", context=contextvars.Context(),
    )
