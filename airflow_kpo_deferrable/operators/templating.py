"""Which operator argument values rendering changes, and which fields of ``kubernetes.client`` models it renders.

Why: an argument is checked at DAG parse only when rendering cannot change it (a bad value is refused before any
pod exists, a templated one after rendering), so "will rendering change this?" must have one answer for every
caller — the operator's parse-time check and ``start_from_trigger``'s refusal of ``XComArg`` values.

Facts it handles:

* Jinja markup counts anywhere inside a value, model objects included (their camelCase data is searched).
* An ``XComArg`` (``task.output``) is resolved when the task's templates are rendered, as the provider's operator
  does for its templated fields; so it is "templated" too.
* Inside templated fields only some fields of ``kubernetes.client`` models are rendered — the provider's list.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.definitions._internal.mixins import ResolveMixin
from kubernetes import client as k8s

from airflow_kpo_deferrable.podspec.convert import plain

# Fields of kubernetes.client models inside templated fields that are rendered (the provider's choice).
NESTED_TEMPLATE_FIELDS: dict[type, tuple[str, ...]] = {
    k8s.V1EnvVar: ("value", "name"),
    k8s.V1ResourceRequirements: ("limits", "requests"),
    k8s.V1Volume: ("name", "persistent_volume_claim", "config_map"),
    k8s.V1VolumeMount: ("name", "sub_path"),
    k8s.V1PersistentVolumeClaimVolumeSource: ("claim_name",),
    k8s.V1ConfigMapVolumeSource: ("name",),
    k8s.V1EnvFromSource: ("config_map_ref",),
    k8s.V1ConfigMapEnvSource: ("name",),
}


def has_template(value: Any) -> bool:
    """Whether ``value`` (anywhere inside, models included) holds Jinja markup or an ``XComArg``: rendering changes it."""
    if holds_xcom_arg(value):
        return True
    try:
        data = plain(value) if not isinstance(value, str) else value
    except (AttributeError, TypeError):  # not model data at all: PodArguments will say so
        return False
    if isinstance(data, str):
        return "{{" in data or "{%" in data or "{#" in data
    if isinstance(data, dict):
        return any(has_template(k) or has_template(v) for k, v in data.items())
    if isinstance(data, list | tuple):
        return any(has_template(v) for v in data)
    return False


def holds_xcom_arg(value: Any) -> bool:
    """Whether ``value`` is or holds (in lists and dict values) an ``XComArg``, resolved only when rendered."""
    if isinstance(value, ResolveMixin):
        return True
    if isinstance(value, dict):
        return any(holds_xcom_arg(v) for v in value.values())
    return isinstance(value, list | tuple) and any(holds_xcom_arg(v) for v in value)
