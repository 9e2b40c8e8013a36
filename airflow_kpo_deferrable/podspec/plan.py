"""Arguments → the pod to create, in one step: load the template, merge once, add secrets and XCom, check once.

Why: the operator's ``execute`` and ``build_pod_request_obj`` must produce the same pod, and the checks that need the
merged pod must run on exactly what is sent. This is the one place that combines the layers, in the provider's order:
templates, then the arguments (``merge``), then name and namespace, then secrets, then the XCom sidecar, then labels.

Facts it handles:

* The base container is the one named ``base_container_name`` (created when no layer has it). ``restartPolicy`` is
  always ``Never`` and the base container's ``terminationMessagePolicy`` is the argument's (default ``File``), as
  the provider sets them over any template.
* The name: the ``name`` argument, else the template's ``metadata.name``, else the task id (slugified); then a random
  ``-xxxxxxxx`` suffix when ``random_name_suffix``. The namespace: the argument, else the template's, else the
  caller's fallback (the connection's ``namespace`` extra, the pod's own namespace in a cluster, or ``default``).
* Labels: the arguments' over the template's, then the task try's identity labels (they win), ``airflow_version``,
  ``airflow_kpo_in_cluster`` and our ``app.kubernetes.io/managed-by`` label.
* Reading ``pod_template_file`` is the only I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes.client import V1Pod

from airflow_kpo_deferrable.podspec.arguments import PodArguments
from airflow_kpo_deferrable.podspec.checks import merged_problems
from airflow_kpo_deferrable.podspec.convert import deserialize
from airflow_kpo_deferrable.podspec.merge import merge_pods
from airflow_kpo_deferrable.podspec.names import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    PodIdentity,
    airflow_labels,
    identity_labels,
    pod_name,
)
from airflow_kpo_deferrable.podspec.problems import PodSpecError
from airflow_kpo_deferrable.podspec.secrets import attach_secrets
from airflow_kpo_deferrable.podspec.templates import read_template_file, template
from airflow_kpo_deferrable.podspec.xcom import add_xcom_sidecar


@dataclass(frozen=True)
class PodContext:
    """What shapes the pod besides the pod arguments: the task try, the connection's settings, log selection."""

    task_id: str
    identity: PodIdentity | None = None
    random_name_suffix: bool = True
    name_suffix: str | None = None  # instead of a random one (``names.try_suffix``)
    namespace_fallback: str = "default"
    in_cluster: bool = False
    xcom_sidecar_image: str | None = None
    xcom_sidecar_resources: dict[str, Any] | None = None
    xcom_sidecar_security_context: dict[str, Any] | None = None
    container_logs: Any = None
    init_container_logs: Any = None


def _given(fields: dict[str, Any]) -> dict[str, Any]:
    """Only the arguments that were given, so an unset one never overrides a template's value."""
    return {key: value for key, value in fields.items() if value is not None}


def overlay(arguments: PodArguments) -> dict[str, Any]:
    """The operator's arguments as a (sparse) pod layer, with the provider's derived lists."""
    env = [*(arguments.env_vars or []), *(arguments.pod_runtime_info_envs or [])]
    env_from = [*(arguments.env_from or []), *({"configMapRef": {"name": c}} for c in arguments.configmaps or [])]
    container = _given(
        {
            "name": arguments.base_container_name,
            "image": arguments.image,
            "command": arguments.cmds,
            "args": arguments.arguments,
            "ports": arguments.ports,
            "env": env or None,
            "envFrom": env_from or None,
            "resources": arguments.container_resources,
            "volumeMounts": arguments.volume_mounts,
            "imagePullPolicy": arguments.image_pull_policy,
            "securityContext": arguments.container_security_context,
            "terminationMessagePolicy": arguments.termination_message_policy,
        }
    )
    spec = {
        "containers": [container],
        "initContainers": arguments.init_containers,
        "volumes": arguments.volumes,
        "nodeSelector": arguments.node_selector,
        "affinity": arguments.affinity,
        "tolerations": arguments.tolerations,
        "hostAliases": arguments.host_aliases,
        "runtimeClassName": arguments.runtime_class_name,
        "serviceAccountName": arguments.service_account_name,
        "automountServiceAccountToken": arguments.automount_service_account_token,
        "imagePullSecrets": arguments.image_pull_secrets,
        "hostNetwork": arguments.hostnetwork or None,  # False is the default: it never overrides a template
        "hostname": arguments.hostname,
        "subdomain": arguments.subdomain,
        "securityContext": arguments.security_context,
        "dnsPolicy": arguments.dnspolicy,
        "dnsConfig": arguments.dns_config,
        "schedulerName": arguments.schedulername,
        "restartPolicy": "Never",
        "priorityClassName": arguments.priority_class_name,
        "activeDeadlineSeconds": arguments.active_deadline_seconds,
        "terminationGracePeriodSeconds": arguments.termination_grace_period,
    }
    metadata = {"labels": arguments.labels, "annotations": arguments.annotations}
    return {"metadata": _given(metadata), "spec": _given(spec)}


def template_layers(arguments: PodArguments) -> list[dict[str, Any]]:
    """The templates, lowest first (file, dict, full spec); reads ``pod_template_file``."""
    layers = [layer for layer in (arguments.pod_template_dict, arguments.full_pod_spec) if layer]
    if arguments.pod_template_file:
        layers.insert(0, template("pod_template_file", read_template_file(arguments.pod_template_file)))
    return layers


def pod_dict(arguments: PodArguments, context: PodContext) -> dict[str, Any]:
    """The pod to create as camelCase API data; raises one ``PodSpecError`` with every problem found."""
    pod: dict[str, Any] = {}
    for layer in [*template_layers(arguments), overlay(arguments)]:
        pod = merge_pods(pod, layer)
    pod = {"apiVersion": "v1", "kind": "Pod", **pod}
    pod["spec"].setdefault("hostNetwork", False)  # the provider always sends it
    metadata = pod["metadata"]
    metadata["name"] = pod_name(arguments.name or metadata.get("name"), context.task_id, context.random_name_suffix,
                                context.name_suffix)
    metadata["namespace"] = arguments.namespace or metadata.get("namespace") or context.namespace_fallback
    attach_secrets(pod, arguments.secrets or [], arguments.base_container_name)
    if arguments.do_xcom_push:
        add_xcom_sidecar(
            pod,
            arguments.base_container_name,
            image=context.xcom_sidecar_image,
            resources=context.xcom_sidecar_resources,
            security_context=arguments.xcom_sidecar_container_security_context
            if arguments.xcom_sidecar_container_security_context is not None
            else context.xcom_sidecar_security_context,
        )
    problems = merged_problems(
        pod,
        arguments.base_container_name,
        container_logs=context.container_logs,
        init_container_logs=context.init_container_logs,
    )
    if problems:
        raise PodSpecError(problems)
    labels = metadata.setdefault("labels", {})
    if context.identity is not None:
        labels.update(identity_labels(context.identity))
    labels.update(airflow_labels(context.in_cluster))
    labels[MANAGED_BY_LABEL] = MANAGED_BY_VALUE
    return pod


def build_pod(arguments: PodArguments, context: PodContext) -> V1Pod:
    """The pod to create as the sync client's ``V1Pod``."""
    return deserialize(pod_dict(arguments, context), "V1Pod")
