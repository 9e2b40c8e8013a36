"""``KubernetesPodOperator``: what it does with the provider's arguments — deferral through one shared watch, logs.

Why: moving from the official provider should be a one-line import change, so argument names, defaults, templated
fields (``operators/arguments.py``), the ``kubernetes_default`` connection and XCom keys match its operator, and the
pod created is the one ``build_pod_request_obj`` returns. What differs is how the task waits
(a ``PodTrigger`` on the shared watch, or the same wait on the worker when ``deferrable=False``) and how the end is
reported (a typed reason, the last log lines).

Facts it handles:

* Every argument error is raised before any pod exists: at DAG parse when the value needs no rendering, and in
  ``build_pod_request_obj`` (called first by ``execute``) after rendering.
* The pod name and namespace go to XCom (``pod_name``, ``pod_namespace``) before deferring, so the pod can always be
  found, including by ``resume_execution`` when Airflow fails the task without calling our resume method
  (``next_method="__fail__"`` after a trigger crash): there the pod is deleted per ``on_finish_action`` before the
  error is re-raised, so no pod is orphaned.
* No defer ``timeout`` is passed: Airflow would bypass the resume method (and so the pod's deletion). Deadlines are
  absolute times enforced in the trigger, including ``execution_timeout``, which Airflow does not enforce while a task
  is deferred.
* A create that failed on the wire may have succeeded on the server: a 409 on retry is resolved by reading the pod and
  accepting it only if it carries this task try's identity labels — never two pods for one try.
* On resume a success stays a success even when the pod was already deleted or garbage-collected (provider #66715).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, TaskDeferralError
from kubernetes.client import CoreV1Api, V1Pod
from kubernetes.client.exceptions import ApiException
from tenacity import Retrying

from airflow_kpo_deferrable.api_rules import delete_is_fine, delete_options, retry_policy
from airflow_kpo_deferrable.hooks.kubernetes import KubernetesHook
from airflow_kpo_deferrable.logs.lines import selected_containers
from airflow_kpo_deferrable.logs.sync import copy_logs
from airflow_kpo_deferrable.operators.arguments import KubernetesPodArguments
from airflow_kpo_deferrable.outcome import Outcome, PodResult, describe
from airflow_kpo_deferrable.podspec import PodIdentity, identity_labels
from airflow_kpo_deferrable.triggers.pod import PodTrigger, wait_blocking

if TYPE_CHECKING:
    from airflow.sdk import Context



class PodFailure(AirflowException):
    """The pod did not succeed; carries the typed result for callers and callbacks."""

    def __init__(self, message: str, result: PodResult) -> None:
        super().__init__(message)
        self.result = result


def _retrying() -> Retrying:
    return Retrying(**retry_policy())


class KubernetesPodOperator(KubernetesPodArguments):
    """Run a task in a Kubernetes pod; wait for it in the triggerer (``deferrable=True``, the default).

    Takes every parameter of the provider's operator (``operators/arguments.py``; the README's reference).
    """

    ui_color = "#4a90d9"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._created: tuple[str, str, str | None] | None = None

    # -- execute -----------------------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        identity = self.identity(context)
        pod = self.build_pod_request_obj(context)
        name, namespace = pod.metadata.name, pod.metadata.namespace
        hook = KubernetesHook(self.cluster)

        created = self._create_pod(hook.core_v1(), pod, identity)
        uid = created.metadata.uid
        self._created = (name, namespace, uid)
        context["ti"].xcom_push(key="pod_name", value=name)
        context["ti"].xcom_push(key="pod_namespace", value=namespace)
        self.log.info("Created pod %s in namespace %s", name, namespace)

        trigger = self._trigger(name, namespace, uid)
        if not self.deferrable:
            try:
                result = wait_blocking(trigger)
            except BaseException:  # execution_timeout or a kill while waiting on the worker: no orphan pod
                self.on_kill()
                raise
            return self._finish(context, result, name, namespace)
        self.defer(trigger=trigger, method_name="resume")

    def _trigger(self, name: str, namespace: str, uid: str | None) -> PodTrigger:
        now = datetime.now(UTC)
        return PodTrigger(
            pod_name=name,
            namespace=namespace,
            pod_uid=uid,
            cluster=self.cluster.to_dict(),
            base_container=self.base_container_name,
            schedule_deadline=now + timedelta(seconds=self.schedule_timeout_seconds),
            startup_timeout_seconds=self.startup_timeout_seconds,
            execution_deadline=now + self.execution_timeout if self.execution_timeout else None,
            on_kill_action=self.on_kill_action,
            termination_grace_period=self.termination_grace_period,
        )

    def _create_pod(self, api: CoreV1Api, pod: V1Pod, identity: PodIdentity) -> V1Pod:
        namespace = pod.metadata.namespace
        for attempt in _retrying():
            with attempt:
                try:
                    return api.create_namespaced_pod(namespace, pod)
                except ApiException as error:
                    if error.status != 409 or attempt.retry_state.attempt_number == 1:
                        raise
        # A retried create answered 409: the earlier attempt reached the server. Accept only our own pod.
        existing = api.read_namespaced_pod(pod.metadata.name, namespace)
        ours = identity_labels(identity)
        if any((existing.metadata.labels or {}).get(k) != v for k, v in ours.items()):
            raise AirflowException(f"pod {pod.metadata.name} already exists in {namespace} and is not this task's")
        return existing

    # -- resume ------------------------------------------------------------------------------------------------

    def resume(self, context: Context, event: dict[str, Any]) -> Any:
        return self._finish(context, PodResult.from_dict(event), event["pod_name"], event["namespace"])

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except TaskDeferralError:
            # Airflow failed the deferral without our resume method (trigger crash or timeout): remove the pod.
            ti = context["ti"]
            name = ti.xcom_pull(task_ids=ti.task_id, key="pod_name", map_indexes=ti.map_index)
            namespace = ti.xcom_pull(task_ids=ti.task_id, key="pod_namespace", map_indexes=ti.map_index)
            if name and namespace and self.on_finish_action != "keep_pod":
                self._delete_pod(KubernetesHook(self.cluster).core_v1(), name, namespace, None)
            raise

    def _finish(self, context: Context, result: PodResult, name: str, namespace: str) -> Any:
        api = KubernetesHook(self.cluster).core_v1()
        pod = self._read_pod(api, name, namespace)
        tail: list[str] = []
        if self.get_logs and pod is not None:
            tail = self._copy_logs(api, pod)
        elif self.get_logs:
            self.log.warning("Pod %s in %s no longer exists: its logs cannot be read", name, namespace)
        self._apply_finish_action(api, result, pod, name, namespace)
        if result.outcome is Outcome.SUCCEEDED:
            self.log.info("Pod %s succeeded", name)
            return None
        message = describe(result, name, namespace)
        if tail:
            message += "\nLast log lines:\n" + "\n".join(tail)
        raise PodFailure(message, result)

    def _read_pod(self, api: CoreV1Api, name: str, namespace: str) -> V1Pod | None:
        for attempt in _retrying():
            with attempt:
                try:
                    return api.read_namespaced_pod(name, namespace)
                except ApiException as error:
                    if error.status == 404:
                        return None
                    raise
        return None

    def _copy_logs(self, api: CoreV1Api, pod: V1Pod) -> list[str]:
        containers = [c.name for c in pod.spec.containers]
        inits = [c.name for c in pod.spec.init_containers or []]
        selected = selected_containers(inits, self.init_container_logs, []) + selected_containers(
            containers, self.container_logs, [self.base_container_name]
        )
        copies = copy_logs(
            api, pod.metadata.name, pod.metadata.namespace, selected, self.log.info, warn=self.log.warning
        )
        base = next((c for c in copies if c.container == self.base_container_name), None)
        return list(base.tail) if base else []

    def _apply_finish_action(
        self, api: CoreV1Api, result: PodResult, pod: V1Pod | None, name: str, namespace: str
    ) -> None:
        delete = self.on_finish_action == "delete_pod" or (
            self.on_finish_action == "delete_succeeded_pod" and result.outcome is Outcome.SUCCEEDED
        )
        if pod is None:
            return
        if delete:
            self._delete_pod(api, name, namespace, pod.metadata.uid)
            self.log.info("Deleted pod %s (on_finish_action=%s)", name, self.on_finish_action)
        else:
            self.log.info("Keeping pod %s in %s (on_finish_action=%s)", name, namespace, self.on_finish_action)

    def _delete_pod(self, api: CoreV1Api, name: str, namespace: str, uid: str | None) -> None:
        options = delete_options(uid, self.termination_grace_period)
        for attempt in _retrying():
            with attempt:
                try:
                    api.delete_namespaced_pod(name, namespace, body=options)
                except ApiException as error:
                    if not delete_is_fine(error):
                        raise

    # -- kill (non-deferrable mode; deferred tasks are killed through PodTrigger.on_kill) -----------------------

    def on_kill(self) -> None:
        if self._created is None or self.on_kill_action != "delete_pod":
            return
        name, namespace, uid = self._created
        self._delete_pod(KubernetesHook(self.cluster).core_v1(), name, namespace, uid)
        self.log.info("Deleted pod %s in %s because the task was killed", name, namespace)
