"""The pod-shaping operator arguments, validated one by one and normalised to camelCase API data. No I/O.

Why: every mistake in a pod argument should fail the task before any pod exists, with a message that names the
argument, the bad value and the fix — not as a 422 from the API server minutes later, or as a pod that never starts.

Guarantees: ``PodArguments(**values)`` either returns a frozen model whose fields are ``None`` (not given) or
camelCase JSON data ready to merge, or raises one ``PodSpecError`` listing every problem of every argument. An empty
value (``[]``, ``{}``) means "not given". Checks that need the merged pod (an image from a template, a mount's volume)
are not here: ``plan`` runs them once, on the merged pod.

Facts it handles: ``env_vars`` as a ``{name: value}`` dict, ``image_pull_secrets`` as ``"a,b"``, numbers as quantities.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kubernetes.client import (
    V1Affinity,
    V1Container,
    V1ContainerPort,
    V1EnvFromSource,
    V1EnvVar,
    V1HostAlias,
    V1LocalObjectReference,
    V1PodDNSConfig,
    V1PodSecurityContext,
    V1ResourceRequirements,
    V1SecurityContext,
    V1Toleration,
    V1Volume,
    V1VolumeMount,
)
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from airflow_kpo_deferrable.podspec.convert import convert, path_text, require_list
from airflow_kpo_deferrable.podspec.names import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    MAX_NAME_LENGTH,
    label_value_problem,
    pod_name_problem,
    qualified_name_problem,
)
from airflow_kpo_deferrable.podspec.problems import PodSpecError, Problem, fail
from airflow_kpo_deferrable.podspec.quantities import resource_problems
from airflow_kpo_deferrable.podspec.secrets import secret_spec
from airflow_kpo_deferrable.podspec.templates import template

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")

# The portable (pre-1.32 strict) rule: a C identifier that may also contain '-' and '.'.
ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
IMAGE = re.compile(
    r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"(?::[0-9]+)?/)?"  # registry
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"  # repository path
    r"(?::[\w][\w.-]{0,127})?"  # tag
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"  # digest
)

_LIST_MODELS = {
    "env_from": V1EnvFromSource,
    "ports": V1ContainerPort,
    "host_aliases": V1HostAlias,
    "pod_runtime_info_envs": V1EnvVar,
    "volumes": V1Volume,
    "volume_mounts": V1VolumeMount,
    "tolerations": V1Toleration,
    "init_containers": V1Container,
}
_MODELS = {
    "affinity": V1Affinity,
    "security_context": V1PodSecurityContext,
    "container_security_context": V1SecurityContext,
    "xcom_sidecar_container_security_context": V1SecurityContext,
    "dns_config": V1PodDNSConfig,
}
# Arguments that must be one of a fixed set of strings, with the set.
_CHOICES = {
    "image_pull_policy": PULL_POLICIES,
    "dnspolicy": DNS_POLICIES,
    "termination_message_policy": TERMINATION_MESSAGE_POLICIES,
}
# Arguments that name an object: (pattern, what it must be, an example).
_OBJECT_NAMES = {
    "service_account_name": (DNS_SUBDOMAIN, 253, "a lowercase DNS subdomain", "airflow-worker"),
    "runtime_class_name": (DNS_SUBDOMAIN, 253, "a lowercase DNS subdomain", "gvisor"),
    "priority_class_name": (DNS_SUBDOMAIN, 253, "a lowercase DNS subdomain", "high-priority"),
    "hostname": (DNS_LABEL, 63, "a DNS label (up to 63 lowercase letters, digits and '-')", "worker-1"),
    "subdomain": (DNS_LABEL, 63, "a DNS label (up to 63 lowercase letters, digits and '-')", "jobs"),
    "schedulername": (DNS_SUBDOMAIN, 253, "a scheduler's name, a lowercase DNS subdomain", "default-scheduler"),
    "namespace": (DNS_LABEL, 63, "a DNS-1123 label (up to 63 lowercase letters, digits and '-')", "data-jobs"),
}


def image_problem(value: Any, argument: str = "image") -> str | None:
    if not isinstance(value, str):
        return f"{argument} must be a string such as 'python:3.12-slim', got {value!r}"
    if not value.strip():
        return f"{argument} is empty; give an image reference such as 'python:3.12-slim'"
    if not IMAGE.fullmatch(value):
        return (
            f"{argument}={value!r} is not a valid image reference: write [registry[:port]/]repository[:tag]"
            "[@digest] with a lowercase repository and no spaces, e.g. 'ghcr.io/org/app:1.2'"
        )
    return None


class PodArguments(BaseModel):
    """The pod-shaping operator arguments, validated and normalised to camelCase API data."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", frozen=True)

    image: str | None = None
    cmds: list[str] | None = None
    arguments: list[str] | None = None
    env_vars: list[dict[str, Any]] | None = None
    env_from: list[dict[str, Any]] | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    container_resources: dict[str, Any] | None = None
    volumes: list[dict[str, Any]] | None = None
    volume_mounts: list[dict[str, Any]] | None = None
    node_selector: dict[str, str] | None = None
    affinity: dict[str, Any] | None = None
    tolerations: list[dict[str, Any]] | None = None
    service_account_name: str | None = None
    image_pull_secrets: list[dict[str, Any]] | None = None
    image_pull_policy: str | None = None
    security_context: dict[str, Any] | None = None
    container_security_context: dict[str, Any] | None = None
    init_containers: list[dict[str, Any]] | None = None
    pod_template_file: str | None = None
    pod_template_dict: dict[str, Any] | None = None
    full_pod_spec: dict[str, Any] | None = None
    active_deadline_seconds: int | None = None
    termination_grace_period: int | None = None
    base_container_name: str = "base"
    name: str | None = None
    namespace: str | None = None
    ports: list[dict[str, Any]] | None = None
    hostnetwork: bool = False
    dnspolicy: str | None = None
    dns_config: dict[str, Any] | None = None
    hostname: str | None = None
    subdomain: str | None = None
    schedulername: str | None = None
    host_aliases: list[dict[str, Any]] | None = None
    runtime_class_name: str | None = None
    priority_class_name: str | None = None
    automount_service_account_token: bool | None = None
    pod_runtime_info_envs: list[dict[str, Any]] | None = None
    termination_message_policy: str = "File"
    configmaps: list[str] | None = None
    secrets: list[dict[str, Any]] | None = None
    do_xcom_push: bool = False
    xcom_sidecar_container_security_context: dict[str, Any] | None = None

    def __init__(self, **arguments: Any) -> None:
        try:
            super().__init__(**arguments)
        except ValidationError as error:
            raise PodSpecError(_problems(error)) from None

    @field_validator("image", mode="before")
    @classmethod
    def _image(cls, value: Any) -> str | None:
        if value is None:
            return None
        if problem := image_problem(value):
            raise fail(problem)
        return value

    @field_validator("cmds", "arguments", mode="before")
    @classmethod
    def _strings(cls, value: Any, info: ValidationInfo) -> list[str] | None:
        if value is None:
            return None
        require_list(info.field_name, value, "strings")
        bad = [
            f"{info.field_name}[{i}] is {item!r}; quote it (every item must be a string)"
            for i, item in enumerate(value)
            if not isinstance(item, str)
        ]
        if bad:
            raise fail(*bad)
        return list(value) or None

    @field_validator("env_vars", mode="before")
    @classmethod
    def _env_vars(cls, value: Any) -> list[dict[str, Any]] | None:
        if not value:
            return None
        if isinstance(value, dict):
            problems = [
                f"env_vars[{name!r}]: value {item!r} must be a string; quote it"
                for name, item in value.items()
                if not isinstance(item, str)
            ]
            if problems:
                raise fail(*problems)
            value = [{"name": name, "value": item} for name, item in value.items()]
        else:
            require_list("env_vars", value, "V1EnvVar or {'name': ..., 'value': ...} dicts (or give one dict)")
        env = convert("env_vars", list(value), list[V1EnvVar])
        bad = [
            f"env_vars: {item['name']!r} is not a valid variable name; use letters, digits, '_', '-' and '.', "
            "not starting with a digit (e.g. 'MY_VAR')"
            for item in env
            if not ENV_NAME.fullmatch(item["name"])
        ]
        if bad:
            raise fail(*bad)
        return env

    @field_validator(*_LIST_MODELS, mode="before")
    @classmethod
    def _model_lists(cls, value: Any, info: ValidationInfo) -> list[dict[str, Any]] | None:
        if not value:
            return None
        element = _LIST_MODELS[info.field_name]
        require_list(info.field_name, value, f"{element.__name__} objects or dicts")
        return convert(info.field_name, list(value), list[element])

    @field_validator(*_MODELS, mode="before")
    @classmethod
    def _models(cls, value: Any, info: ValidationInfo) -> dict[str, Any] | None:
        if not value:
            return None
        return convert(info.field_name, value, _MODELS[info.field_name])

    @field_validator("container_resources", mode="before")
    @classmethod
    def _resources(cls, value: Any) -> dict[str, Any] | None:
        if not value:
            return None
        resources = convert("container_resources", value, V1ResourceRequirements)
        if problems := resource_problems("container_resources", resources):
            raise fail(*problems)
        return resources

    @field_validator("labels", "node_selector", mode="before")
    @classmethod
    def _labels(cls, value: Any, info: ValidationInfo) -> dict[str, str] | None:
        if not value:
            return None
        if not isinstance(value, dict):
            raise fail(f"{info.field_name} must be a dict of strings, got {type(value).__name__} {value!r}")
        if info.field_name == "labels":  # the provider sends a None label value as "" (an empty value)
            value = {key: "" if item is None else item for key, item in value.items()}
        problems = []
        for key, item in value.items():
            if problem := qualified_name_problem(key):
                problems.append(f"{info.field_name} key {key!r}: {problem}")
            if item is None:
                problems.append(f"{info.field_name}[{key!r}] is None: write '' for an empty value, or remove the key")
            elif problem := label_value_problem(item):
                problems.append(f"{info.field_name}[{key!r}] = {item!r}: {problem}")
        if problems:
            raise fail(*problems)
        return dict(value)

    @field_validator("annotations", mode="before")
    @classmethod
    def _annotations(cls, value: Any) -> dict[str, str] | None:
        if not value:
            return None
        if not isinstance(value, dict):
            raise fail(f"annotations must be a dict of strings, got {type(value).__name__} {value!r}")
        problems = []
        for key, item in value.items():
            if problem := qualified_name_problem(key):
                problems.append(f"annotations key {key!r}: {problem}")
            if not isinstance(item, str):
                problems.append(f"annotations[{key!r}] = {item!r}: an annotation value must be a string; quote it")
        size = sum(len(str(k)) + len(str(v)) for k, v in value.items())
        if size > 256 * 1024:
            problems.append(f"annotations total {size} bytes; Kubernetes allows 256 KiB in all")
        if problems:
            raise fail(*problems)
        return dict(value)

    @field_validator("image_pull_secrets", mode="before")
    @classmethod
    def _pull_secrets(cls, value: Any) -> list[dict[str, Any]] | None:
        if not value:
            return None
        if isinstance(value, str):
            value = [name.strip() for name in value.split(",") if name.strip()]
        require_list("image_pull_secrets", value, "secret names or V1LocalObjectReference objects")
        refs = [{"name": item} if isinstance(item, str) else item for item in value]
        return convert("image_pull_secrets", refs, list[V1LocalObjectReference])

    @field_validator(*_CHOICES, mode="before")
    @classmethod
    def _choice(cls, value: Any, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        choices = _CHOICES[info.field_name]
        if value not in choices:
            fix = next((p for p in choices if isinstance(value, str) and p.lower() == value.lower()), None)
            hint = f"; did you mean {fix!r}?" if fix else ""
            raise fail(f"{info.field_name}={value!r} must be one of {', '.join(choices)}{hint}")
        return value

    @field_validator(*_OBJECT_NAMES, mode="before")
    @classmethod
    def _object_name(cls, value: Any, info: ValidationInfo) -> str | None:
        if value is None or value == "":
            return None
        pattern, longest, rule, example = _OBJECT_NAMES[info.field_name]
        if not isinstance(value, str) or len(value) > longest or not pattern.fullmatch(value):
            raise fail(
                f"{info.field_name}={value!r} must be {rule}, starting and ending with a letter or digit, "
                f"such as {example!r}"
            )
        return value

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> str | None:
        if not value:
            return None
        if problem := pod_name_problem(value):
            raise PodSpecError([problem])
        return value

    @field_validator("hostnetwork", "do_xcom_push", "automount_service_account_token", mode="before")
    @classmethod
    def _bool(cls, value: Any, info: ValidationInfo) -> bool | None:
        if value is None and info.field_name == "automount_service_account_token":
            return None
        if not isinstance(value, bool):
            raise fail(f"{info.field_name}={value!r} must be True or False")
        return value

    @field_validator("configmaps", mode="before")
    @classmethod
    def _configmaps(cls, value: Any) -> list[str] | None:
        if not value:
            return None
        require_list("configmaps", value, "ConfigMap names")
        bad = [
            f"configmaps[{i}]={item!r} must be the name of a ConfigMap (a lowercase DNS subdomain such as 'etl-env')"
            for i, item in enumerate(value)
            if not isinstance(item, str) or len(item) > 253 or not DNS_SUBDOMAIN.fullmatch(item)
        ]
        if bad:
            raise fail(*bad)
        return list(value)

    @field_validator("secrets", mode="before")
    @classmethod
    def _secrets(cls, value: Any) -> list[dict[str, Any]] | None:
        if not value:
            return None
        require_list("secrets", value, "Secret objects")
        specs, problems = [], []
        for index, item in enumerate(value):
            spec, found = secret_spec(index, item)
            problems += found
            if spec is not None:
                specs.append(spec)
        if problems:
            raise PodSpecError(problems)
        return specs

    @field_validator("base_container_name", mode="before")
    @classmethod
    def _base_name(cls, value: Any) -> str:
        if value is None:
            return "base"
        if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH or not DNS_LABEL.fullmatch(value):
            raise fail(
                f"base_container_name={value!r} must be a container name: up to 63 lowercase letters, "
                "digits and '-', starting and ending with a letter or digit (e.g. 'base')"
            )
        return value

    @field_validator("active_deadline_seconds", "termination_grace_period", mode="before")
    @classmethod
    def _seconds(cls, value: Any, info: ValidationInfo) -> int | None:
        if value is None:
            return None
        minimum = 1 if info.field_name == "active_deadline_seconds" else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise fail(f"{info.field_name}={value!r} must be a whole number of seconds >= {minimum}")
        return value

    @field_validator("pod_template_file", mode="before")
    @classmethod
    def _template_file(cls, value: Any) -> str | None:
        if not value:
            return None
        if not isinstance(value, str | Path):
            raise fail(f"pod_template_file must be a path, got {type(value).__name__} {value!r}")
        return str(value)

    @field_validator("pod_template_dict", "full_pod_spec", mode="before")
    @classmethod
    def _template_objects(cls, value: Any, info: ValidationInfo) -> dict[str, Any] | None:
        if not value:
            return None
        return template(info.field_name, value)


def _problems(error: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for detail in error.errors():
        argument = str(detail["loc"][0]) if detail["loc"] else ""
        cause = (detail.get("ctx") or {}).get("error")
        if isinstance(cause, PodSpecError):
            problems.extend(cause.problems)
        elif detail["type"] == "extra_forbidden":
            problems.append(Problem(argument, f"{argument}: not a pod argument"))
        else:
            problems.append(Problem(argument, f"{path_text(argument, detail['loc'][1:])}: {detail['msg']}"))
    return problems
