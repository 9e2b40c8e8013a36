"""Arguments → the pod to create, in one step: load the template, merge once, check once.

Why: the operator's ``execute`` and ``build_pod_request_obj`` must produce the same pod, and the checks that need the
merged pod must run on exactly what is sent. This is the one place that combines the layers.

Facts it handles: the base container is the one named ``base_container_name`` (created when no layer has it);
``restartPolicy`` is ``Never`` unless a template sets it; the pod's name is set here and a template's
``generateName`` is dropped; reading ``pod_template_file`` is the only I/O.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client import V1Pod

from airflow_kpo_deferrable.podspec.arguments import PodArguments
from airflow_kpo_deferrable.podspec.checks import merged_problems
from airflow_kpo_deferrable.podspec.convert import deserialize
from airflow_kpo_deferrable.podspec.merge import merge
from airflow_kpo_deferrable.podspec.names import PodIdentity, identity_labels
from airflow_kpo_deferrable.podspec.problems import PodSpecError
from airflow_kpo_deferrable.podspec.templates import read_template_file, template


def _given(fields: dict[str, Any]) -> dict[str, Any]:
    """Only the arguments that were given, so an unset one never overrides a template's value."""
    return {key: value for key, value in fields.items() if value is not None}


def overlay(arguments: PodArguments) -> dict[str, Any]:
    """The operator's arguments as a (sparse) pod layer."""
    container = _given(
        {
            "name": arguments.base_container_name,
            "image": arguments.image,
            "command": arguments.cmds,
            "args": arguments.arguments,
            "env": arguments.env_vars,
            "envFrom": arguments.env_from,
            "resources": arguments.container_resources,
            "volumeMounts": arguments.volume_mounts,
            "imagePullPolicy": arguments.image_pull_policy,
            "securityContext": arguments.container_security_context,
        }
    )
    spec = {
        "containers": [container],
        "initContainers": arguments.init_containers,
        "volumes": arguments.volumes,
        "nodeSelector": arguments.node_selector,
        "affinity": arguments.affinity,
        "tolerations": arguments.tolerations,
        "serviceAccountName": arguments.service_account_name,
        "imagePullSecrets": arguments.image_pull_secrets,
        "securityContext": arguments.security_context,
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


def pod_dict(arguments: PodArguments, identity: PodIdentity, *, name: str) -> dict[str, Any]:
    """The pod to create as camelCase API data (no namespace: the caller sets it); raises ``PodSpecError``."""
    pod: dict[str, Any] = {}
    for layer in [*template_layers(arguments), overlay(arguments)]:
        pod = merge(pod, layer)
    if problems := merged_problems(pod, arguments.base_container_name):
        raise PodSpecError(problems)
    pod = merge(pod, {"metadata": {"labels": identity_labels(identity)}})
    pod["apiVersion"], pod["kind"] = "v1", "Pod"
    metadata = pod["metadata"]
    metadata["name"] = name
    metadata.pop("generateName", None)
    pod["spec"].setdefault("restartPolicy", "Never")
    return pod


def build_pod(arguments: PodArguments, identity: PodIdentity, *, name: str) -> V1Pod:
    """The pod to create as the sync client's ``V1Pod`` (no namespace: the caller sets it)."""
    return deserialize(pod_dict(arguments, identity, name=name), "V1Pod")
