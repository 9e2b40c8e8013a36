"""What the operator is told: every ``__init__`` parameter of the provider's ``KubernetesPodOperator``, checked.

Why: moving from the official provider (apache-airflow-providers-cncf-kubernetes 10.25.0) should be a one-line import
change, so every parameter it takes is accepted here with its name, default and meaning, its templated fields are
the provider's, and ``build_pod_request_obj(context)`` returns the pod ``execute`` would create (no cluster call), as
the provider's does. ``KubernetesPodOperator`` (``operators/pod.py``) adds what the operator does with them.

Facts it handles:

* Bad arguments fail at DAG parse when they need no rendering (a value with no Jinja in it), and all of them again
  after rendering, before any pod exists — one ``PodSpecError`` listing every problem.
* ``do_xcom_push`` defaults to False as in the provider (``BaseOperator``'s default is True).
* ``reattach_on_restart`` is deprecated for ``durable`` (Airflow 3.3): ``durable`` wins when both are given, else
  ``reattach_on_restart``, else True; ``reattach_on_restart`` always mirrors ``durable``.
* ``is_delete_operator_pod`` is accepted and ignored, as the provider has done since 10.0 (``on_finish_action``
  decides); a warning says so.
* ``env_vars`` given as a dict becomes ``V1EnvVar`` objects before rendering, so names are templated as well as
  values; ``kubernetes.client`` models inside templated fields are rendered field by field (the provider's list).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from airflow.exceptions import AirflowProviderDeprecationWarning
from airflow.sdk import BaseOperator
from kubernetes import client as k8s

from airflow_kpo_deferrable.hooks.kubernetes import (
    ClusterTarget,
    KubernetesHook,
    in_cluster_namespace,
    resolve_cluster_config,
    uses_in_cluster_config,
)
from airflow_kpo_deferrable.operators.behaviour import behaviour_problems
from airflow_kpo_deferrable.operators.templating import NESTED_TEMPLATE_FIELDS, has_template
from airflow_kpo_deferrable.podspec import PodArguments, PodIdentity, PodSpecError, Problem
from airflow_kpo_deferrable.podspec.plan import PodContext, build_pod

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context

_POD_ARGUMENTS = tuple(PodArguments.model_fields)
_BEHAVIOUR = (
    "kubernetes_conn_id",
    "in_cluster",
    "cluster_context",
    "config_file",
    "reattach_on_restart",
    "durable",
    "startup_timeout_seconds",
    "startup_check_interval_seconds",
    "schedule_timeout_seconds",
    "get_logs",
    "base_container_status_polling_interval",
    "init_container_logs",
    "container_logs",
    "random_name_suffix",
    "log_events_on_failure",
    "log_events_on_startup",
    "skip_on_exit_code",
    "deferrable",
    "poll_interval",
    "log_pod_spec_on_failure",
    "on_finish_action",
    "on_kill_action",
    "is_delete_operator_pod",
    "callbacks",
    "progress_callback",
    "logging_interval",
    "trigger_kwargs",
    "container_name_log_prefix_enabled",
    "log_formatter",
)


class KubernetesPodArguments(BaseOperator):
    """The provider's ``KubernetesPodOperator`` parameters, defaults and templated fields, validated."""

    BASE_CONTAINER_NAME = "base"
    template_fields: Sequence[str] = (
        "image",
        "name",
        "hostname",
        "cmds",
        "annotations",
        "arguments",
        "env_vars",
        "labels",
        "config_file",
        "pod_template_file",
        "pod_template_dict",
        "namespace",
        "container_resources",
        "volumes",
        "volume_mounts",
        "cluster_context",
        "env_from",
        "configmaps",
        "node_selector",
        "kubernetes_conn_id",
        "base_container_name",
        "trigger_kwargs",
    )
    template_fields_renderers = {"env_vars": "py"}

    def __init__(
        self,
        *,
        kubernetes_conn_id: str | None = "kubernetes_default",
        namespace: str | None = None,
        image: str | None = None,
        name: str | None = None,
        random_name_suffix: bool = True,
        cmds: list[str] | None = None,
        arguments: list[str] | None = None,
        ports: list[k8s.V1ContainerPort] | None = None,
        volume_mounts: list[k8s.V1VolumeMount] | None = None,
        volumes: list[k8s.V1Volume] | None = None,
        env_vars: list[k8s.V1EnvVar] | dict[str, str] | None = None,
        env_from: list[k8s.V1EnvFromSource] | None = None,
        secrets: list[Any] | None = None,
        in_cluster: bool | None = None,
        cluster_context: str | None = None,
        labels: dict | None = None,
        reattach_on_restart: bool | None = None,
        durable: bool | None = None,
        startup_timeout_seconds: int = 120,
        startup_check_interval_seconds: int = 5,
        schedule_timeout_seconds: int | None = None,
        get_logs: bool = True,
        base_container_name: str | None = None,
        base_container_status_polling_interval: float = 1,
        init_container_logs: Iterable[str] | str | Literal[True] | None = None,
        container_logs: Iterable[str] | str | Literal[True] | None = None,
        image_pull_policy: str | None = None,
        annotations: dict | None = None,
        container_resources: k8s.V1ResourceRequirements | None = None,
        affinity: k8s.V1Affinity | None = None,
        config_file: str | None = None,
        runtime_class_name: str | None = None,
        node_selector: dict | None = None,
        image_pull_secrets: list[k8s.V1LocalObjectReference] | str | None = None,
        service_account_name: str | None = None,
        automount_service_account_token: bool | None = None,
        hostnetwork: bool = False,
        host_aliases: list[k8s.V1HostAlias] | None = None,
        tolerations: list[k8s.V1Toleration] | None = None,
        security_context: k8s.V1PodSecurityContext | dict | None = None,
        container_security_context: k8s.V1SecurityContext | dict | None = None,
        xcom_sidecar_container_security_context: k8s.V1SecurityContext | dict | None = None,
        dnspolicy: str | None = None,
        dns_config: k8s.V1PodDNSConfig | None = None,
        hostname: str | None = None,
        subdomain: str | None = None,
        schedulername: str | None = None,
        full_pod_spec: k8s.V1Pod | None = None,
        init_containers: list[k8s.V1Container] | None = None,
        log_events_on_failure: bool = False,
        log_events_on_startup: bool = True,
        do_xcom_push: bool = False,
        pod_template_file: str | None = None,
        pod_template_dict: dict | None = None,
        priority_class_name: str | None = None,
        pod_runtime_info_envs: list[k8s.V1EnvVar] | None = None,
        termination_grace_period: int | None = None,
        configmaps: list[str] | None = None,
        skip_on_exit_code: int | Container[int] | None = None,
        deferrable: bool = True,
        poll_interval: float = 2,
        log_pod_spec_on_failure: bool = True,
        on_finish_action: str = "delete_pod",
        on_kill_action: str = "delete_pod",
        is_delete_operator_pod: bool | None = None,
        termination_message_policy: str = "File",
        active_deadline_seconds: int | None = None,
        callbacks: list[type] | type | None = None,
        progress_callback: Callable[[str], None] | None = None,
        logging_interval: int | None = None,
        trigger_kwargs: dict | None = None,
        container_name_log_prefix_enabled: bool = True,
        log_formatter: Callable[[str, str], str] | None = None,
        **kwargs: Any,
    ) -> None:
        if reattach_on_restart is not None:
            warnings.warn(
                "`reattach_on_restart` is deprecated; use `durable` instead.",
                AirflowProviderDeprecationWarning,
                stacklevel=2,
            )
        if is_delete_operator_pod is not None:
            warnings.warn(
                "`is_delete_operator_pod` has no effect (as in the provider since 10.0); use `on_finish_action`.",
                AirflowProviderDeprecationWarning,
                stacklevel=2,
            )
        reattach_given = reattach_on_restart
        if durable is None:
            durable = True if reattach_on_restart is None else reattach_on_restart
        super().__init__(**kwargs)
        self._reattach_given = reattach_given
        self.kubernetes_conn_id = kubernetes_conn_id
        self.namespace = namespace
        self.image = image
        self.name = name
        self.random_name_suffix = random_name_suffix
        self.cmds = cmds
        self.arguments = arguments
        self.ports = ports
        self.volume_mounts = volume_mounts
        self.volumes = volumes
        self.env_vars = env_vars
        self.env_from = env_from
        self.secrets = secrets or []
        self.in_cluster = in_cluster
        self.cluster_context = cluster_context
        self.labels = labels
        self.durable = durable
        self.reattach_on_restart = durable
        self.startup_timeout_seconds = startup_timeout_seconds
        self.startup_check_interval_seconds = startup_check_interval_seconds
        self._schedule_timeout_given = schedule_timeout_seconds
        self.schedule_timeout_seconds = schedule_timeout_seconds or startup_timeout_seconds
        self.get_logs = get_logs
        self.base_container_name = base_container_name or self.BASE_CONTAINER_NAME
        self.base_container_status_polling_interval = base_container_status_polling_interval
        self.init_container_logs = init_container_logs
        self.container_logs = container_logs
        self.image_pull_policy = image_pull_policy
        self.annotations = annotations
        self.container_resources = container_resources
        self.affinity = affinity
        self.config_file = config_file
        self.runtime_class_name = runtime_class_name
        self.node_selector = node_selector
        self.image_pull_secrets = image_pull_secrets
        self.service_account_name = service_account_name
        self.automount_service_account_token = automount_service_account_token
        self.hostnetwork = hostnetwork
        self.host_aliases = host_aliases
        self.tolerations = tolerations
        self.security_context = security_context
        self.container_security_context = container_security_context
        self.xcom_sidecar_container_security_context = xcom_sidecar_container_security_context
        self.dnspolicy = dnspolicy
        self.dns_config = dns_config
        self.hostname = hostname
        self.subdomain = subdomain
        self.schedulername = schedulername
        self.full_pod_spec = full_pod_spec
        self.init_containers = init_containers
        self.log_events_on_failure = log_events_on_failure
        self.log_events_on_startup = log_events_on_startup
        self.do_xcom_push = do_xcom_push
        self.pod_template_file = pod_template_file
        self.pod_template_dict = pod_template_dict
        self.priority_class_name = priority_class_name
        self.pod_runtime_info_envs = pod_runtime_info_envs
        self.termination_grace_period = termination_grace_period
        self.configmaps = configmaps
        self._skip_on_exit_code_given = skip_on_exit_code
        self.skip_on_exit_code = self._exit_codes(skip_on_exit_code)
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.log_pod_spec_on_failure = log_pod_spec_on_failure
        self.on_finish_action = on_finish_action
        self.on_kill_action = on_kill_action
        self.is_delete_operator_pod = is_delete_operator_pod
        self.termination_message_policy = termination_message_policy
        self.active_deadline_seconds = active_deadline_seconds
        self.callbacks = [] if not callbacks else callbacks if isinstance(callbacks, list) else [callbacks]
        self._callbacks_given = callbacks
        self.progress_callback = progress_callback
        self.logging_interval = logging_interval
        self.trigger_kwargs = trigger_kwargs
        self.container_name_log_prefix_enabled = container_name_log_prefix_enabled
        self.log_formatter = log_formatter
        self._check(rendered=False)

    @staticmethod
    def _exit_codes(value: Any) -> list[int]:
        if value is None:
            return []
        return list(value) if isinstance(value, Container) and not isinstance(value, str) else [value]

    # -- checks ------------------------------------------------------------------------------------------------

    def _behaviour_values(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in _BEHAVIOUR}
        values["skip_on_exit_code"] = self._skip_on_exit_code_given
        values["callbacks"] = self._callbacks_given
        values["schedule_timeout_seconds"] = self._schedule_timeout_given
        values["reattach_on_restart"] = self._reattach_given
        return values

    def _check(self, *, rendered: bool) -> None:
        """Raise one ``PodSpecError`` for every bad argument; before rendering, skip values holding templates."""
        behaviour = self._behaviour_values()
        pod = self._pod_argument_values()
        if not rendered:
            templated = set(self.template_fields)
            behaviour = {k: v for k, v in behaviour.items() if k not in templated or not has_template(v)}
            pod = {k: v for k, v in pod.items() if k not in templated or not has_template(v)}
        problems: list[Problem] = behaviour_problems(behaviour)
        try:
            arguments = PodArguments(**pod)
        except PodSpecError as error:
            problems += error.problems
        else:
            # At parse, the merged pod's rules too when it needs no I/O and no rendering (after rendering, plan runs
            # them on the pod it builds).
            whole = not rendered and len(pod) == len(self._pod_argument_values()) and not arguments.pod_template_file
            if whole and not problems:
                try:
                    build_pod(
                        arguments,
                        PodContext(
                            self.task_id,
                            container_logs=self.container_logs,
                            init_container_logs=self.init_container_logs,
                        ),
                    )
                except PodSpecError as error:
                    problems += error.problems
        if problems:
            raise PodSpecError(problems)

    def _pod_argument_values(self) -> dict[str, Any]:
        """Every pod-shaping argument by its ``PodArguments`` field (the same names as the operator's)."""
        return {
            "image": self.image,
            "cmds": self.cmds,
            "arguments": self.arguments,
            "env_vars": self.env_vars,
            "env_from": self.env_from,
            "labels": self.labels,
            "annotations": self.annotations,
            "container_resources": self.container_resources,
            "volumes": self.volumes,
            "volume_mounts": self.volume_mounts,
            "node_selector": self.node_selector,
            "affinity": self.affinity,
            "tolerations": self.tolerations,
            "service_account_name": self.service_account_name,
            "image_pull_secrets": self.image_pull_secrets,
            "image_pull_policy": self.image_pull_policy,
            "security_context": self.security_context,
            "container_security_context": self.container_security_context,
            "init_containers": self.init_containers,
            "pod_template_file": self.pod_template_file,
            "pod_template_dict": self.pod_template_dict,
            "full_pod_spec": self.full_pod_spec,
            "active_deadline_seconds": self.active_deadline_seconds,
            "termination_grace_period": self.termination_grace_period,
            "base_container_name": self.base_container_name,
            "name": self.name,
            "namespace": self.namespace,
            "ports": self.ports,
            "hostnetwork": self.hostnetwork,
            "dnspolicy": self.dnspolicy,
            "dns_config": self.dns_config,
            "hostname": self.hostname,
            "subdomain": self.subdomain,
            "schedulername": self.schedulername,
            "host_aliases": self.host_aliases,
            "runtime_class_name": self.runtime_class_name,
            "priority_class_name": self.priority_class_name,
            "automount_service_account_token": self.automount_service_account_token,
            "pod_runtime_info_envs": self.pod_runtime_info_envs,
            "termination_message_policy": self.termination_message_policy,
            "configmaps": self.configmaps,
            "secrets": self.secrets,
            "do_xcom_push": self.do_xcom_push,
            "xcom_sidecar_container_security_context": self.xcom_sidecar_container_security_context,
        }

    def pod_arguments(self) -> PodArguments:
        """Every argument checked (after templating) and the pod-shaping ones as one model; raises before any I/O."""
        self._check(rendered=True)
        return PodArguments(**self._pod_argument_values())

    # -- building ----------------------------------------------------------------------------------------------

    @property
    def cluster(self) -> ClusterTarget:
        return ClusterTarget(
            conn_id=self.kubernetes_conn_id,
            config_file=self.config_file,
            in_cluster=self.in_cluster,
            cluster_context=self.cluster_context,
        )

    @staticmethod
    def identity(context: Context) -> PodIdentity:
        return PodIdentity.of(context["ti"])

    def build_pod_request_obj(self, context: Context | None = None) -> k8s.V1Pod:
        """The pod ``execute`` would create for ``context`` (identity labels only with a context), then the
        ``pod_mutation_hook`` cluster policy applied, as the provider does. Reads the connection, never the cluster.
        """
        return self.pod_for(self.identity(context) if context else None, KubernetesHook(self.cluster).extras)

    def pod_for(
        self, identity: PodIdentity | None, extras: Mapping[str, Any], *, name_suffix: str | None = None
    ) -> k8s.V1Pod:
        """The pod for this task try, given the connection's extras (read by the caller: sync on a worker, awaited in
        the triggerer), with the ``pod_mutation_hook`` cluster policy applied. No cluster call."""
        from airflow import settings

        config = resolve_cluster_config(self.cluster, extras)

        def extra(name: str) -> Any:
            return extras.get(name) or extras.get(f"extra__kubernetes__{name}")

        def json_extra(name: str) -> Any:
            return json.loads(extra(name)) if isinstance(extra(name), str) else extra(name) or None

        context = PodContext(
            task_id=self.task_id,
            identity=identity,
            random_name_suffix=self.random_name_suffix,
            name_suffix=name_suffix,
            namespace_fallback=config.namespace or in_cluster_namespace() or "default",
            in_cluster=uses_in_cluster_config(config),
            xcom_sidecar_image=extra("xcom_sidecar_container_image"),
            xcom_sidecar_resources=json_extra("xcom_sidecar_container_resources"),
            xcom_sidecar_security_context=json_extra("xcom_sidecar_container_security_context"),
            container_logs=self.container_logs,
            init_container_logs=self.init_container_logs,
        )
        pod = build_pod(self.pod_arguments(), context)
        settings.pod_mutation_hook(pod)
        return pod

    # -- rendering ---------------------------------------------------------------------------------------------

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Iterable[str],
        context: Context,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        # Rendering a dict renders its values only; as V1EnvVar objects the names are rendered too.
        if (
            parent is self
            and isinstance(self.env_vars, dict)
            and all(isinstance(v, str) for v in self.env_vars.values())
        ):
            self.env_vars = [k8s.V1EnvVar(name=k, value=v) for k, v in self.env_vars.items()]
        super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)

    def _render_nested_template_fields(
        self, value: Any, context: Context, jinja_env: jinja2.Environment, seen_oids: set[int]
    ) -> None:
        fields = NESTED_TEMPLATE_FIELDS.get(type(value))
        if fields and id(value) not in seen_oids:
            seen_oids.add(id(value))
            self._do_render_template_fields(value, fields, context, jinja_env, seen_oids)
            return
        super()._render_nested_template_fields(value, context, jinja_env, seen_oids)
