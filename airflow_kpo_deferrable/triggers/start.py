"""``PodStartTrigger``: creates a task's pod from the triggerer (``start_from_trigger=True``), then waits for it.

Why: with ``start_from_trigger`` Airflow's scheduler defers the task straight to this trigger; no worker process
starts, parses the DAG or creates the pod (``operators/start.py`` says which tasks can, and what its kwargs hold).
After the create this is a ``PodTrigger`` (live logs, finish in the triggerer or a worker resume, ``on_kill``), built
by the operator's own ``_trigger`` so both starts wait the same way.

Facts it handles:

* The kwargs are the operator's arguments, already rendered by the triggerer (those in ``template_fields``). The
  operator is rebuilt from them here, so every argument check and the pod built are ``execute``'s own
  (``pod_for``: same merge, same ``pod_mutation_hook``); a bad rendered value fails the task before any pod exists,
  with the same message a worker would give.
* Reading the connection is awaited; building the pod (pure, but it may read the in-cluster namespace file and runs
  the user's ``pod_mutation_hook``) runs in a worker thread, never on the triggerer's loop.
* ``run()`` may run again for the same try (triggerer restart or redistribution) and must not start a second pod:
  the name's suffix comes from the task try (``names.try_suffix``), so a second create answers 409 and the pod found
  is adopted when it carries this try's identity labels (a stranger's pod of that name fails the task). A pod
  already finished *and deleted by us* before the restart is found in the decided-outcome record — its Event
  (``triggers/record.py``), read once here with one GET before creating, never through the supervisor — and is then
  finished from the record, not re-run. (Without RBAC for Events the record is an XCom, not read here.)
* There is no deferring worker, so a worker resume (the fallbacks in ``finish.finish_mode``) needs no settle hold.
* With ``execution_timeout`` Airflow times the deferral out at the task's start + ``execution_timeout``
  (``timeout_after``) and cancels the trigger without ``on_kill``; the trigger's own execution deadline is never later,
  so it ends the task first, deleting the pod. Should Airflow's check still win, the worker that fails the task
  (``resume_execution``) finds the pod by its derived name and deletes it.
* ``on_kill`` before the wait began deletes the pod this try may have created (identity labels checked).
* The provider's ``pod_name`` / ``pod_namespace`` XComs are not pushed (each would be one more synchronous call in
  the triggerer's supervisor loop): the pod's name is derived from the try, and the task log names it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from airflow.triggers.base import BaseTrigger, TaskFailedEvent, TriggerEvent
from kubernetes_asyncio.client.exceptions import ApiException
from tenacity import AsyncRetrying

from airflow_kpo_deferrable.api_rules import retry_policy
from airflow_kpo_deferrable.finish import FinishMode
from airflow_kpo_deferrable.hooks.kubernetes import async_core_v1, connection_extras
from airflow_kpo_deferrable.node_loss import delete_grace_period
from airflow_kpo_deferrable.operators.pod import KubernetesPodOperator
from airflow_kpo_deferrable.operators.start import TRIGGER_CLASSPATH
from airflow_kpo_deferrable.podspec import PodIdentity, Secret
from airflow_kpo_deferrable.podspec.names import carries_identity, try_suffix
from airflow_kpo_deferrable.triggers.finisher import delete_pod_async
from airflow_kpo_deferrable.triggers.pod import PodTrigger
from airflow_kpo_deferrable.triggers.state import StateStore


class PodClash(Exception):
    """A pod of the name this try derives exists and belongs to someone else."""


class PodStartTrigger(BaseTrigger):
    """Create this task try's pod (or find the one an earlier run of this trigger created), then wait for it."""

    def __init__(self, **arguments: Any) -> None:
        super().__init__()
        for name in arguments:
            if hasattr(self, name):  # the triggerer renders attributes by name: none may shadow BaseTrigger's own
                raise TypeError(f"PodStartTrigger argument {name!r} shadows a trigger attribute")
        self._names = sorted(arguments)
        for name, value in arguments.items():
            setattr(self, name, value)
        self._inner: PodTrigger | None = None
        self._creating: tuple[KubernetesPodOperator, str, str, PodIdentity] | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return TRIGGER_CLASSPATH, {name: getattr(self, name) for name in self._names}

    def operator(self, task_id: str) -> KubernetesPodOperator:
        """The operator the DAG declared, rebuilt from the (rendered) arguments; raises its own argument errors."""
        arguments = {name: getattr(self, name) for name in self._names}
        timeout = arguments.pop("execution_timeout", None)
        arguments.pop("finish_reason", None)
        secrets = [Secret(**fields) for fields in arguments.pop("secrets", None) or []]
        return KubernetesPodOperator(
            task_id=task_id, secrets=secrets, execution_timeout=timedelta(seconds=timeout) if timeout else None,
            **arguments,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        ti = self.task_instance
        identity = PodIdentity.of(ti)
        try:
            operator = self.operator(ti.task_id)
            extras = await connection_extras(operator.cluster.conn_id)
            pod = await asyncio.to_thread(
                functools.partial(operator.pod_for, identity, extras, name_suffix=try_suffix(identity)))
        except Exception as error:  # noqa: BLE001 - no pod exists: the task fails with the reason, as on a worker
            for line in f"The pod could not be built, so none was created: {error}".splitlines():
                self.log.error("%s", line)
            yield TaskFailedEvent()
            return
        name, namespace = pod.metadata.name, pod.metadata.namespace
        self._creating = (operator, name, namespace, identity)
        mode = FinishMode(bool(self.finish_in_triggerer), str(self.finish_reason))  # decided at DAG parse
        self.log.info("Started from the triggerer (start_from_trigger=True): no worker created this pod")
        self.log.info("Finish mode: %s", mode.reason)
        store = StateStore(ti, self.log.warning, functools.partial(async_core_v1, operator.cluster), namespace, name)
        record = await store.load(None, pod=name, xcom=False)  # no supervisor call at a start
        if record is not None and record.decided is not None:
            uid = record.uid
            self.log.info("Pod %s in namespace %s was created and decided before a triggerer restart", name, namespace)
        else:
            try:
                uid = await self._create(operator, pod, identity)
            except Exception as error:  # noqa: BLE001 - the create failed for good: no pod of ours runs
                self.log.error("Could not create pod %s in namespace %s: %s", name, namespace, error)
                yield TaskFailedEvent()
                return
        inner = operator._trigger(pod, uid, mode, worker_deferred=False)
        timeout_after = getattr(self, "timeout_after", None)  # set by the triggerer (not by dag.test or tests)
        if timeout_after is not None and inner.execution_deadline is not None:
            # Airflow's own timeout for this deferral is the task's start + execution_timeout, a little before the
            # deadline counted from the create: end it ourselves (pod deleted, typed reason) before Airflow cancels us.
            inner.execution_deadline = min(inner.execution_deadline, timeout_after)
        inner.task_instance = ti
        inner.trigger_id, inner.triggerer_job_id = self.trigger_id, getattr(self, "triggerer_job_id", None)
        self._inner = inner
        async for event in inner.run():
            yield event

    async def _create(self, operator: KubernetesPodOperator, pod: Any, identity: PodIdentity) -> str | None:
        """Create the pod; a 409 means this try made it already (a retried create, or before a restart): adopt it."""
        api = await async_core_v1(operator.cluster)
        name, namespace = pod.metadata.name, pod.metadata.namespace
        body = api.api_client.sanitize_for_serialization(pod)
        async for attempt in AsyncRetrying(**retry_policy()):
            with attempt:
                try:
                    created = await api.create_namespaced_pod(namespace, body)
                except ApiException as error:
                    if error.status != 409:
                        raise
                else:
                    self.log.info("Created pod %s in namespace %s", name, namespace)
                    return created.metadata.uid
        existing = await api.read_namespaced_pod(name, namespace)
        if not carries_identity(existing.metadata.labels, identity):
            raise PodClash(f"pod {name} already exists in {namespace} and is not this task try's")
        self.log.info("Pod %s in namespace %s exists already (created by this try before): waiting for it", name,
                      namespace)
        return existing.metadata.uid

    async def on_kill(self) -> None:
        if self._inner is not None:
            await self._inner.on_kill()
            return
        if self._creating is None:
            return
        operator, name, namespace, identity = self._creating
        if operator.on_kill_action != "delete_pod":
            return
        api = await async_core_v1(operator.cluster)
        try:
            found = await api.read_namespaced_pod(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return
            raise
        if carries_identity(found.metadata.labels, identity):
            await delete_pod_async(operator.cluster, name, namespace, found.metadata.uid,
                                   delete_grace_period(False, operator.termination_grace_period))
            self.log.info("Deleted pod %s in namespace %s because the task was killed", name, namespace)
