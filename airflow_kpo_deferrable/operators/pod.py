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
* On resume a success stays a success even when the pod was already deleted or garbage-collected (provider #66715),
  except with ``do_xcom_push``: then the result is gone and the task fails saying so.
* ``do_xcom_push``: the base container's end decides (the sidecar keeps the pod Running, so no wait on the pod's
  phase can hang, provider #37298/#32458). After a success the result is read over exec from the sidecar
  (``xcom.sync``; invalid JSON or over 16 MiB fails naming the pod) and returned, so Airflow pushes it (and its keys
  with ``multiple_outputs``); after any outcome the sidecar is told to stop so the pod ends. The sidecar's log is
  never copied (as the provider).
* No orphan pod (README "No orphan pods"): before creating, the try checks it still runs and applies the reattach
  plan to earlier tries' pods (``durable``/``reattach_on_restart``: adopt one still running, or delete them:
  ``reattach``); right after creating it checks again and deletes its pod if the try was marked or cleared
  meanwhile; right before deferring it reads the pod once more and finishes on the worker when it already ended.
  A pod on a lost node is force-deleted (``node_loss``).
* By default the trigger ends the task (``finish.finish_mode`` says when a worker resumes it instead, and the task
  log says which); the end rules — skip, delete, the failure message — are ``finish.py``'s, for both places.
  ``end_from_trigger`` is a property, False while plugin listeners are installed: Airflow refuses to parse a DAG
  holding a task with it True then.
* ``callbacks`` (``KubernetesPodOperatorCallback`` classes), ``progress_callback`` and ``log_formatter`` are called on
  the worker at the provider's moments (``operators/callbacks.py``; the rules in ``callbacks.py``), so a task with
  any of them resumes on a worker. A callback that raises fails the task with its error, as in the provider; the pod
  is cleaned up first (deleted unless ``keep_pod`` when it has not ended; ``on_finish_action`` once it has).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowSkipException, TaskDeferralError
from kubernetes.client import CoreV1Api, V1Pod
from kubernetes.client.exceptions import ApiException
from tenacity import Retrying

from airflow_kpo_deferrable.api_rules import delete_is_fine, delete_options, retry_policy
from airflow_kpo_deferrable.callbacks import lines_on_worker, python_callables
from airflow_kpo_deferrable.events import details_for, log_failure_sync
from airflow_kpo_deferrable.finish import (
    FinishMode,
    TaskEnd,
    end_message,
    finish_action_line,
    finish_mode,
    log_containers,
    should_delete,
    task_end,
)
from airflow_kpo_deferrable.hooks.kubernetes import KubernetesHook
from airflow_kpo_deferrable.logs.lines import HookFailed
from airflow_kpo_deferrable.logs.sync import copy_logs
from airflow_kpo_deferrable.node_loss import FORCE_DELETE_MESSAGE, delete_grace_period, node_lost_model
from airflow_kpo_deferrable.operators import callbacks as hooks
from airflow_kpo_deferrable.operators import start
from airflow_kpo_deferrable.operators.adoption import adopt_or_clear
from airflow_kpo_deferrable.operators.arguments import KubernetesPodArguments
from airflow_kpo_deferrable.orphans import TryEnded, ensure_running
from airflow_kpo_deferrable.outcome import Outcome, PodResult, evaluate
from airflow_kpo_deferrable.podspec import PodIdentity
from airflow_kpo_deferrable.podspec.names import carries_identity, try_suffix
from airflow_kpo_deferrable.podspec.problems import fail
from airflow_kpo_deferrable.podspec.xcom import SIDECAR_NAME
from airflow_kpo_deferrable.triggers.pod import (
    DEFAULT_CHECKPOINT_SECONDS,
    DEFER_SETTLE_SECONDS,
    NO_DEADLINES,
    PodTrigger,
    wait_blocking,
)
from airflow_kpo_deferrable.triggers.state import resume_points_from_json
from airflow_kpo_deferrable.xcom.result import XComError, sidecar_missing
from airflow_kpo_deferrable.xcom.sync import read_result, stop_sidecar, wait_for_sidecar

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

    Takes every parameter of the provider's operator (``operators/arguments.py``; the README's reference), and:

    :param finish_in_triggerer: end the task in the triggerer when the pod ends (logs, ``on_finish_action``, the
        task's state), with no worker resume. Default True; a worker resumes the task instead when False, when
        plugin listeners are installed, with ``do_xcom_push=True``, with ``on_success_callback`` /
        ``on_skipped_callback`` set, or with ``callbacks``, ``progress_callback`` or ``log_formatter`` set
        (``finish.finish_mode``).
    :param start_from_trigger: the triggerer creates the pod, with no worker at all to start the task (Airflow's
        ``start_from_trigger``; ``operators/start.py`` says what it needs). Default False.
    """

    ui_color = "#4a90d9"

    def __init__(self, *, finish_in_triggerer: bool = True, start_from_trigger: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for flag, value, off in (("finish_in_triggerer", finish_in_triggerer, "a worker resumes the task to finish it"),
                                 ("start_from_trigger", start_from_trigger, "a worker creates the pod")):
            if not isinstance(value, bool):
                raise fail(f"{flag}={value!r} must be True or False (False: {off})")
        self.finish_in_triggerer = finish_in_triggerer
        if start_from_trigger:
            self.start_trigger_args = start.start_trigger_args(self, self.finish_mode())
            self.start_from_trigger = True
        self._created: tuple[str, str, str | None] | None = None
        self._creating: tuple[str, str, PodIdentity] | None = None

    @property
    def end_from_trigger(self) -> bool:
        """Airflow's flag for tasks that a trigger ends; False with plugin listeners, or DAG parsing would fail."""
        return self.finish_in_triggerer and not listeners_installed()

    def finish_mode(self) -> FinishMode:
        return finish_mode(
            wanted=self.finish_in_triggerer,
            deferrable=self.deferrable,
            listeners=listeners_installed(),
            do_xcom_push=self.do_xcom_push,
            success_callbacks=bool(self.on_success_callback or getattr(self, "on_skipped_callback", None)),
            python_callables=python_callables(self.callbacks, self.progress_callback, self.log_formatter),
        )

    def _api(self) -> CoreV1Api:
        """A new worker client; the callbacks' ``on_sync_client_creation`` is told of each, as in the provider."""
        api = KubernetesHook(self.cluster).core_v1()
        hooks.client_created(self, api)
        return api

    def _delete_unless_kept(self, api: CoreV1Api, name: str, namespace: str, uid: str | None) -> None:
        """A try that fails before its pod ended (a callback raised, Airflow failed the deferral): no orphan pod."""
        if self.on_finish_action != "keep_pod":
            self._delete_pod(api, name, namespace, uid)

    # -- execute -----------------------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        identity = self.identity(context)
        pod = self.build_pod_request_obj(context)
        name, namespace = pod.metadata.name, pod.metadata.namespace
        api = self._api()
        hooks.call(self, "on_pod_manifest_created", context, api, pod_request=pod)
        ti = context["ti"]
        ensure_running(ti, "before its pod is created")
        adopted = adopt_or_clear(
            api, namespace, identity, reattach=self.durable, on_finish_action=self.on_finish_action,
            delete=lambda found, uid, lost: self._delete_pod(api, found, namespace, uid, lost=lost),
            retrying=_retrying, log=self.log,
        )
        if adopted is not None:
            created, name = adopted, adopted.metadata.name
            self.log.info("Adopted pod %s in namespace %s (durable=True): not creating one", name, namespace)
        else:
            self._creating = (name, namespace, identity)  # a kill inside the create must still find the pod
            created = self._create_pod(api, pod, identity)
            self.log.info("Created pod %s in namespace %s", name, namespace)
        uid = created.metadata.uid
        self._created = (name, namespace, uid)
        ti.xcom_push(key="pod_name", value=name)
        ti.xcom_push(key="pod_namespace", value=namespace)
        try:
            ensure_running(ti, "after its pod was created")
        except TryEnded:
            self._delete_pod(api, name, namespace, uid)
            self.log.warning("Deleted pod %s in %s: this task try no longer runs", name, namespace)
            raise
        try:
            hooks.call(self, "on_pod_creation", context, api, pod=created)
        except Exception:  # the task fails with the callback's error (as the provider), leaving no pod running
            self._delete_unless_kept(api, name, namespace, uid)
            raise

        mode = self.finish_mode()
        self.log.info("Finish mode: %s", mode.reason)
        trigger = self._trigger(created, uid, mode)  # an adopted pod has its own name
        if not self.deferrable:
            observe = hooks.starting_observer(self, context, api, lambda: self._read_pod(api, name, namespace))
            try:
                result = wait_blocking(trigger, observe)
            except HookFailed as failed:  # on_pod_starting raised
                self._delete_unless_kept(api, name, namespace, uid)
                raise failed.error from None
            except BaseException:  # execution_timeout or a kill while waiting on the worker: no orphan pod
                self.on_kill()
                raise
            return self._finish(context, result, name, namespace)
        ended = self._ended_already(api, name, namespace)
        if ended is not None:
            self.log.info("Pod %s ended before deferring (%s): finishing on the worker", name, ended.outcome.value)
            return self._finish(context, ended, name, namespace)
        self.defer(trigger=trigger, method_name="resume")

    def _ended_already(self, api: CoreV1Api, name: str, namespace: str) -> PodResult | None:
        """One more read right before deferring (the provider's #58684): a pod that has already ended is finished
        here, so no trigger event can race the deferring worker process (README "No orphan pods", fast pods)."""
        pod = self._read_pod(api, name, namespace)
        if pod is None:
            return None
        return evaluate(api.api_client.sanitize_for_serialization(pod), self.base_container_name, NO_DEADLINES,
                        datetime.now(UTC))

    def _trigger(self, pod: V1Pod, uid: str | None, mode: FinishMode, *, worker_deferred: bool = True) -> PodTrigger:
        """The trigger that waits for ``pod``; ``worker_deferred`` False when no worker deferred the task (the
        triggerer created the pod: no deferring worker for a resume to race with)."""
        now = datetime.now(UTC)
        name, namespace = pod.metadata.name, pod.metadata.namespace
        # With a log_formatter or progress callbacks every line is copied on the worker (callbacks.lines_on_worker).
        lines_here = lines_on_worker(self.callbacks, self.progress_callback, self.log_formatter)
        logged = self._log_containers(pod) if self.get_logs and self.deferrable and not lines_here else None
        finish = None
        if mode.in_triggerer:
            finish = {
                "on_finish_action": self.on_finish_action,
                "skip_on_exit_code": list(self.skip_on_exit_code),
                "log_events_on_failure": self.log_events_on_failure,
                "log_events_on_startup": self.log_events_on_startup,
                "log_pod_spec_on_failure": self.log_pod_spec_on_failure,
            }
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
            event_not_before=None if mode.in_triggerer or not worker_deferred
            else now + timedelta(seconds=DEFER_SETTLE_SECONDS),
            log_containers=logged,
            live_logs=bool(logged),
            checkpoint_seconds=float(self.logging_interval or DEFAULT_CHECKPOINT_SECONDS),
            finish=finish,
            log_prefix=self.container_name_log_prefix_enabled,
        )

    def _log_containers(self, pod: V1Pod) -> list[str]:
        return log_containers(
            [c.name for c in pod.spec.init_containers or []],
            [c.name for c in pod.spec.containers if c.name != SIDECAR_NAME],  # as the provider
            self.init_container_logs,
            self.container_logs,
            self.base_container_name,
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
        if not carries_identity(existing.metadata.labels, identity):
            raise AirflowException(f"pod {pod.metadata.name} already exists in {namespace} and is not this task's")
        return existing

    # -- resume ------------------------------------------------------------------------------------------------

    def resume(self, context: Context, event: dict[str, Any]) -> Any:
        self.log.info("Resumed on a worker to finish pod %s", event["pod_name"])
        after = resume_points_from_json(event.get("log_resume"))
        return self._finish(context, PodResult.from_dict(event), event["pod_name"], event["namespace"], after, event)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except TaskDeferralError:
            # Airflow failed the deferral without our resume method (trigger crash or timeout): remove the pod.
            if self.start_from_trigger:  # the triggerer created it: no XCom, its name comes from the try
                self._delete_try_pod(context)
                raise
            ti = context["ti"]
            name = ti.xcom_pull(task_ids=ti.task_id, key="pod_name", map_indexes=ti.map_index)
            namespace = ti.xcom_pull(task_ids=ti.task_id, key="pod_namespace", map_indexes=ti.map_index)
            if name and namespace:
                self._delete_unless_kept(self._api(), name, namespace, None)
            raise

    def _delete_try_pod(self, context: Context) -> None:
        """Delete this try's pod found by the name ``PodStartTrigger`` derived, if it carries this try's labels."""
        identity = self.identity(context)
        named = self.pod_for(identity, KubernetesHook(self.cluster).extras, name_suffix=try_suffix(identity))
        api = self._api()
        pod = self._read_pod(api, named.metadata.name, named.metadata.namespace)
        if pod is not None and carries_identity(pod.metadata.labels, identity):
            self._delete_unless_kept(api, pod.metadata.name, pod.metadata.namespace, pod.metadata.uid)

    def _finish(
        self,
        context: Context,
        result: PodResult,
        name: str,
        namespace: str,
        after: dict[str, Any] | None = None,
        event: dict[str, Any] | None = None,
    ) -> Any:
        api = self._api()
        pod = self._read_pod(api, name, namespace)
        value, xcom_error = None, None
        if self.do_xcom_push:  # before the logs: a followed sidecar log would not end while the sidecar runs
            value, xcom_error = self._collect_xcom(api, pod, result, name, namespace)
        tail: list[str] = []
        failure: BaseException | None = None  # a callback's error: the pod is cleaned up, then the task fails with it
        try:
            if event is not None and pod is not None:
                hooks.call(self, "on_operator_resuming", context, api, pod=pod, event=event)
            if self.get_logs and pod is not None:
                tail = self._copy_logs(api, pod, after)
            elif self.get_logs:
                self.log.warning("Pod %s in %s no longer exists: its logs cannot be read", name, namespace)
            if pod is not None:  # the provider's order: completion, then teardown (before the pod is deleted)
                hooks.call(self, "on_pod_completion", context, api, pod=pod)
                hooks.call(self, "on_pod_teardown", context, api, pod=pod)
        except HookFailed as failed:  # log_formatter or a progress callback
            failure = failed.error
        except Exception as error:  # noqa: BLE001 — re-raised below, once the pod is cleaned up
            failure = error
        log_failure_sync(self.log.info, api, pod, name, namespace, details_for(
            result, on_failure=self.log_events_on_failure, on_startup=self.log_events_on_startup,
            spec_on_failure=self.log_pod_spec_on_failure))
        self._apply_finish_action(api, result, pod, name, namespace)
        if failure is not None:
            raise failure
        if pod is not None:
            hooks.call(self, "on_pod_cleanup", context, api, pod=pod)
        end = task_end(result, self.skip_on_exit_code)
        message = end_message(end, result, name, namespace, tail)
        if end is TaskEnd.SUCCESS:
            if xcom_error is not None:
                raise xcom_error
            self.log.info("%s", message)
            return value
        if end is TaskEnd.SKIPPED:
            raise AirflowSkipException(message)
        raise PodFailure(message, result)

    def _collect_xcom(
        self, api: CoreV1Api, pod: V1Pod | None, result: PodResult, name: str, namespace: str
    ) -> tuple[Any, XComError | None]:
        """Read the result (only after a success), then stop the sidecar whatever happened, so the pod can end."""
        if pod is None:
            return None, sidecar_missing(name, namespace, "the pod no longer exists")
        problem = wait_for_sidecar(api, name, namespace, float(self.startup_timeout_seconds))
        if problem is not None:
            return None, problem
        value, error = None, None
        if result.outcome is Outcome.SUCCEEDED:
            try:
                value = read_result(api, name, namespace)
            except XComError as failure:
                error = failure
        problem = stop_sidecar(api, name, namespace)
        if problem:
            self.log.warning("Could not stop the %s container of pod %s: %s", SIDECAR_NAME, name, problem)
        return value, error

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

    def _copy_logs(self, api: CoreV1Api, pod: V1Pod, after: dict[str, Any] | None = None) -> list[str]:
        copies = copy_logs(
            api, pod.metadata.name, pod.metadata.namespace, self._log_containers(pod), self.log.info,
            warn=self.log.warning, start_after=after, output=hooks.line_output(self, self.log.info, api, pod),
        )
        base = next((c for c in copies if c.container == self.base_container_name), None)
        return list(base.tail) if base else []

    def _apply_finish_action(
        self, api: CoreV1Api, result: PodResult, pod: V1Pod | None, name: str, namespace: str
    ) -> None:
        if pod is None:
            return
        delete = should_delete(self.on_finish_action, result, pod.status.phase if pod.status else None)
        if delete:
            self._delete_pod(api, name, namespace, pod.metadata.uid, lost=node_lost_model(pod))
        self.log.info("%s", finish_action_line(self.on_finish_action, delete, name, namespace))

    def _delete_pod(self, api: CoreV1Api, name: str, namespace: str, uid: str | None, *, lost: bool = False) -> None:
        if lost:
            self.log.warning(FORCE_DELETE_MESSAGE, name, namespace, "phase Unknown")
        options = delete_options(uid, delete_grace_period(lost, self.termination_grace_period))
        for attempt in _retrying():
            with attempt:
                try:
                    api.delete_namespaced_pod(name, namespace, body=options)
                except ApiException as error:
                    if not delete_is_fine(error):
                        raise

    # -- kill (non-deferrable mode; deferred tasks are killed through PodTrigger.on_kill) -----------------------

    def on_kill(self) -> None:
        if self.on_kill_action != "delete_pod":
            return
        api = self._api()
        if self._created is None and self._creating is not None:
            # Killed inside the create call: the pod may exist without us having its uid. Delete it only if it
            # carries this try's identity (with random_name_suffix=False the name alone proves nothing).
            name, namespace, identity = self._creating
            pod = self._read_pod(api, name, namespace)
            if pod is None or not carries_identity(pod.metadata.labels, identity):
                return
            self._created = (name, namespace, pod.metadata.uid)
        if self._created is None:
            return
        name, namespace, uid = self._created
        self._delete_pod(api, name, namespace, uid)
        self.log.info("Deleted pod %s in %s because the task was killed", name, namespace)


def listeners_installed() -> bool:
    """Whether plugin listeners are installed: the check ``dag_processing/dagbag.py`` makes for ``end_from_trigger``."""
    try:
        from airflow.listeners.listener import get_listener_manager
    except ImportError:  # a worker without airflow-core: the Task SDK's own manager
        from airflow.sdk.listener import get_listener_manager
    return bool(get_listener_manager().has_listeners)
