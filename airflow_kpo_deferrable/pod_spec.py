"""Operator arguments → the pod to create: validation, names, identity labels, template merge. No I/O but one read.

Why: every mistake in a pod argument should fail the task before any pod exists, with a message that names the
argument, the bad value, the rule and the fix — not as a 422 from the API server minutes later, or as a pod that
never starts. And the pod must always carry labels that identify the task try, so it can be found and recognised.

Facts it handles:

* Arguments take what the provider's ``KubernetesPodOperator`` takes: ``kubernetes.client`` ``V1...`` objects or
  plain dicts/lists (camelCase as in the API, or the client's snake_case names), ``env_vars`` as a ``{name: value}``
  dict, ``image_pull_secrets`` as ``"a,b"``. kubernetes 37's models are pydantic models with ``extra="forbid"``, so
  validating through them catches misspelt fields too. Everything is normalised to camelCase JSON dicts.
* Numbers are valid quantities in YAML (``cpu: 1``) but the client models want strings: they are turned into strings.
* Layers, lowest first: ``pod_template_file``, ``pod_template_dict``, ``full_pod_spec``, the operator's arguments,
  the identity labels. Dicts merge key by key; lists of named things merge by name (containers field by field;
  a volume, env var, mount or pull secret of the same name is replaced whole, as its sources are exclusive);
  ``tolerations`` and ``envFrom`` add up; any other list is replaced. The base container is the one named
  ``base_container_name`` (created when no layer has it). ``restartPolicy`` is ``Never`` unless a template sets it.
* Server-set fields (``status``, ``uid``, ``resourceVersion``...) of a template copied from a live pod are dropped.
* Label values derived from Airflow ids (run ids contain ``:`` and ``+``) are made label-safe; whenever a value had to
  change it gets a short hash suffix, so two distinct ids never share a label value.
* The only I/O is reading ``pod_template_file`` when the request is validated.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import shlex
import string
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from kubernetes.client import (
    ApiClient,
    V1Affinity,
    V1Container,
    V1EnvFromSource,
    V1EnvVar,
    V1LocalObjectReference,
    V1Pod,
    V1PodSecurityContext,
    V1ResourceRequirements,
    V1SecurityContext,
    V1Toleration,
    V1Volume,
    V1VolumeMount,
)
from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "airflow-kpo-deferrable"
MANAGED_BY_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"

MAX_NAME_LENGTH = 63
SUFFIX_LENGTH = 8
PULL_POLICIES = ("Always", "IfNotPresent", "Never")

_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# The portable (pre-1.32 strict) rule: a C identifier that may also contain '-' and '.'.
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_QUANTITY = re.compile(r"(?P<number>[+-]?(\d+(\.\d*)?|\.\d+))(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?")
_IMAGE = re.compile(
    r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"(?::[0-9]+)?/)?"  # registry
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"  # repository path
    r"(?::[\w][\w.-]{0,127})?"  # tag
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"  # digest
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": "1e-9", "u": "1e-6", "m": "1e-3", "": "1", "k": "1e3", "M": "1e6", "G": "1e9", "T": "1e12"}
_DECIMAL |= {"P": "1e15", "E": "1e18"}
# Lists merged item by item on this key; any other list of an upper layer replaces the lower one.
_LIST_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}
_MERGED_ITEMS = frozenset({"containers", "initContainers", "ephemeralContainers"})
_ADDED_LISTS = frozenset({"tolerations", "envFrom"})
_QUANTITY_MAPS = frozenset({"limits", "requests", "overhead"})
_SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
    "selfLink",
)


class PodSpecError(ValueError):
    """One or more pod arguments are invalid; the message lists every problem with its fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        if len(problems) == 1:
            text = f"Invalid pod argument: {problems[0]}"
        else:
            text = f"{len(problems)} invalid pod arguments:\n" + "\n".join(f"- {p}" for p in problems)
        super().__init__(text)


@dataclass(frozen=True)
class PodIdentity:
    """Which task try a pod belongs to."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int


# -- names and labels --------------------------------------------------------------------------------------------


def safe_label_value(value: str) -> str:
    """``value`` as a valid label value; a changed value gets a hash suffix so distinct inputs stay distinct."""
    cleaned = re.sub(r"[^-A-Za-z0-9_.]", "-", value).strip("-_.")
    if cleaned == value and len(value) <= MAX_NAME_LENGTH:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:SUFFIX_LENGTH]
    head = cleaned[: MAX_NAME_LENGTH - SUFFIX_LENGTH - 1].rstrip("-_.")
    return f"{head}-{digest}" if head else digest


def identity_labels(identity: PodIdentity) -> dict[str, str]:
    """The labels that say which task try owns a pod (the provider's names) plus our managed-by label."""
    labels = {
        "dag_id": identity.dag_id,
        "task_id": identity.task_id,
        "run_id": identity.run_id,
        "kubernetes_pod_operator": "True",
        "try_number": str(identity.try_number),
    }
    if identity.map_index >= 0:
        labels["map_index"] = str(identity.map_index)
    safe = {key: safe_label_value(value) for key, value in labels.items()}
    return safe | {MANAGED_BY_LABEL: MANAGED_BY_VALUE}


def pod_name(name: str | None, task_id: str, random_suffix: bool) -> str:
    """The pod's name: ``name`` (must be valid) or the task id made valid, plus ``-xxxxxxxx`` when ``random_suffix``.

    At most 63 characters (it becomes the pod's hostname): the base is shortened, never the suffix.
    """
    if name:
        if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
            raise PodSpecError(
                [
                    (
                        f"name={name!r} is not a valid pod name: use only lowercase letters, digits, '-' and '.', "
                        "starting and ending with a letter or digit (e.g. 'my-task')"
                    )
                ]
            )
        base = name
    else:
        base = re.sub(r"[^a-z0-9-]+", "-", task_id.lower()).strip("-") or "pod"
    if not random_suffix:
        return base[:MAX_NAME_LENGTH].rstrip("-.")
    alphabet = string.ascii_lowercase + string.digits
    suffix = "".join(secrets.choice(alphabet) for _ in range(SUFFIX_LENGTH))
    return f"{base[: MAX_NAME_LENGTH - SUFFIX_LENGTH - 1].rstrip('-.')}-{suffix}"


def _qualified_name_problem(key: Any) -> str | None:
    """Why ``key`` is not a valid label/annotation key (``[prefix/]name``), or None."""
    if not isinstance(key, str):
        return "a key must be a string"
    prefix, _, name = key.rpartition("/")
    if "/" in key and not prefix:
        return "the prefix before '/' is empty"
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return "the prefix before '/' must be a lowercase DNS subdomain such as 'example.com'"
    if not name or len(name) > MAX_NAME_LENGTH or not _LABEL_NAME.fullmatch(name):
        return (
            "the name part must be 1-63 characters of letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def _label_value_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"a label value must be a string; quote it: {str(value)!r}"
    if len(value) > MAX_NAME_LENGTH:
        return f"a label value has at most 63 characters (this has {len(value)}); shorten it or use an annotation"
    if value and not _LABEL_NAME.fullmatch(value):
        return (
            "a label value may contain only letters, digits, '-', '_' and '.', and must start and end with "
            "a letter or digit; replace the other characters or use an annotation"
        )
    return None


# -- conversion to camelCase API dicts ----------------------------------------------------------------------------


@functools.cache
def _api() -> ApiClient:
    return ApiClient()


@functools.cache
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def _plain(value: Any) -> Any:
    """Model objects (anywhere inside) → their camelCase dicts; plain data is copied."""
    return _api().sanitize_for_serialization(value)


def _stringify_quantities(value: Any) -> Any:
    """``cpu: 1`` is a valid quantity in YAML and the API, but the client models want the string ``"1"``."""
    if isinstance(value, list):
        return [_stringify_quantities(item) for item in value]
    if not isinstance(value, dict):
        return value
    result = {}
    for key, item in value.items():
        if key in _QUANTITY_MAPS and isinstance(item, dict):
            item = {k: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for k, v in item.items()}
        elif key == "sizeLimit" and isinstance(item, int | float) and not isinstance(item, bool):
            item = str(item)
        result[key] = _stringify_quantities(item)
    return result


def _path(argument: str, loc: tuple[Any, ...]) -> str:
    text = argument
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _model_problems(argument: str, error: ValidationError) -> list[str]:
    problems = []
    for detail in error.errors():
        loc = tuple(p for p in detail["loc"] if not str(p).startswith("function-"))
        where = _path(argument, loc)
        if detail["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown field {str(loc[-1])!r}; check its spelling against the Kubernetes API")
        elif detail["type"] == "missing":
            problems.append(f"{where}: this required field is missing")
        else:
            problems.append(f"{where}: {detail['msg']} (got {detail['input']!r})")
    return problems


# kubernetes >= 37 generates pydantic models: full validation with field paths. Older clients (the official provider
# pins them) have plain classes: their own deserializer still checks required fields and types.
PYDANTIC_MODELS = hasattr(V1Pod, "model_validate")


def _deserialize(data: Any, type_name: str) -> Any:
    """The client's own deserializer (every kubernetes release has it; ``model_validate`` only exists from 37 on)."""
    return _api()._ApiClient__deserialize(data, type_name)


def _type_name(annotation: Any) -> str:
    """``V1EnvVar`` → "V1EnvVar", ``list[V1EnvVar]`` → "list[V1EnvVar]": the client deserializer's type names."""
    if get_origin(annotation) is list:
        return f"list[{get_args(annotation)[0].__name__}]"
    return annotation.__name__


def _dropped_fields(path: str, given: Any, kept: Any) -> list[str]:
    """Keys of ``given`` that the deserialized ``kept`` lost: fields the model does not know."""
    if isinstance(given, dict) and isinstance(kept, dict):
        problems = []
        for key, value in given.items():
            if value is None:
                continue
            if key not in kept:
                problems.append(f"{path}.{key}: unknown field {key!r}; check its spelling against the Kubernetes API")
            else:
                problems += _dropped_fields(f"{path}.{key}", value, kept[key])
        return problems
    if isinstance(given, list) and isinstance(kept, list):
        return [p for i, (a, b) in enumerate(zip(given, kept, strict=False)) for p in _dropped_fields(f"{path}[{i}]", a, b)]
    return []


def _convert(argument: str, value: Any, annotation: Any) -> Any:
    """Validate ``value`` against a kubernetes model type and return it as camelCase JSON data."""
    data = _stringify_quantities(_plain(value))
    if not PYDANTIC_MODELS:
        try:
            kept = _plain(_deserialize(data, _type_name(annotation)))
        except (ValueError, TypeError, AttributeError) as error:
            raise _invalid([f"{argument}: {error}"]) from None
        if problems := _dropped_fields(argument, data, kept):  # the old deserializer drops unknown keys silently
            raise _invalid(problems)
        return kept
    try:
        model = _adapter(annotation).validate_python(data)
    except ValidationError as error:
        raise _invalid(_model_problems(argument, error)) from None
    return _plain(model)


def _invalid(problems: list[str]) -> PydanticCustomError:
    return PydanticCustomError("pod_argument", "{problems}", {"problems": "\n".join(problems)})


def _require_list(argument: str, value: Any, element: str) -> None:
    if isinstance(value, str):
        # A bare string is the classic mistake (cmds="echo hi"): Kubernetes would need one item per word.
        words = shlex.split(value) if element == "strings" else [value]
        problem = (
            f"{argument} must be a list of {element}, got the bare string {value!r} (a common mistake); "
            f"write a list instead: {argument}={words!r}"
        )
        raise _invalid([problem])
    if not isinstance(value, list | tuple):
        raise _invalid([f"{argument} must be a list of {element}, got {type(value).__name__} {value!r}"])


def _quantity(text: str) -> Decimal | None:
    match = _QUANTITY.fullmatch(text)
    if not match:
        return None
    number, suffix = Decimal(match["number"]), match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * Decimal(_DECIMAL[suffix])
    try:
        return number * Decimal(10) ** int(suffix[1:])
    except (InvalidOperation, ValueError):
        return None


def _resource_problems(where: str, resources: dict[str, Any]) -> list[str]:
    problems = []
    parsed: dict[str, dict[str, Decimal]] = {}
    for kind in ("limits", "requests"):
        for resource, text in (resources.get(kind) or {}).items():
            amount = _quantity(text)
            if amount is None or amount < 0:
                problems.append(
                    f"{where}.{kind}.{resource}: {text!r} is not a Kubernetes quantity; "
                    "write e.g. '500m' or '2' for CPU and '512Mi' or '1Gi' for memory"
                )
            else:
                parsed.setdefault(kind, {})[resource] = amount
    for resource, request in parsed.get("requests", {}).items():
        limit = parsed.get("limits", {}).get(resource)
        if limit is not None and request > limit:
            problems.append(
                f"{where}: requests.{resource} ({resources['requests'][resource]}) exceeds limits.{resource} "
                f"({resources['limits'][resource]}); a request must not be larger than its limit"
            )
    return problems


def _template_from_file(path_text: str) -> dict[str, Any]:
    path = Path(path_text).expanduser()
    fix = "give the path of a readable YAML Pod manifest on the worker (absolute, or relative to the DAG run's cwd)"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise _invalid([f"pod_template_file: no file at {path_text!r}; {fix}"]) from None
    except OSError as error:
        raise _invalid([f"pod_template_file: cannot read {path_text!r} ({error.strerror}); {fix}"]) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise _invalid([f"pod_template_file: {path_text!r} is not valid YAML: {error}"]) from None
    if not isinstance(document, dict):
        raise _invalid([f"pod_template_file: {path_text!r} holds {type(document).__name__}, not a Pod manifest"])
    return document


def _template(argument: str, document: Any) -> dict[str, Any]:
    data = _plain(document)
    if not isinstance(data, dict):
        raise _invalid([f"{argument}: expected a V1Pod or a dict of a Pod manifest, got {type(document).__name__}"])
    kind = data.get("kind")
    if kind not in (None, "Pod"):
        raise _invalid([f"{argument}: kind is {kind!r}; give a Pod manifest (kind: Pod, apiVersion: v1)"])
    pod = _convert(argument, data, V1Pod)
    pod.pop("status", None)
    metadata = pod.get("metadata") or {}
    for key in _SERVER_METADATA:
        metadata.pop(key, None)
    return pod


# -- merging -------------------------------------------------------------------------------------------------------


def _merge(lower: Any, upper: Any, key: str | None = None) -> Any:
    """``upper`` over ``lower``: dicts key by key, named lists item by item, ``_ADDED_LISTS`` added up."""
    if upper is None:
        return lower
    if isinstance(lower, dict) and isinstance(upper, dict):
        merged = dict(lower)
        for name, value in upper.items():
            merged[name] = _merge(lower.get(name), value, name)
        return merged
    if isinstance(lower, list) and isinstance(upper, list):
        if key in _LIST_KEYS:
            by = _LIST_KEYS[key]
            merged_list = list(lower)
            for item in upper:
                index = next((i for i, old in enumerate(merged_list) if old.get(by) == item.get(by)), None)
                if index is None:
                    merged_list.append(item)
                elif key in _MERGED_ITEMS:
                    merged_list[index] = _merge(merged_list[index], item)
                else:  # a volume or env var is one choice of source: mixing two would be invalid
                    merged_list[index] = item
            return merged_list
        if key in _ADDED_LISTS:
            return lower + [item for item in upper if item not in lower]
    return upper


def _given(fields: dict[str, Any]) -> dict[str, Any]:
    """Only the arguments that were given, so an unset one never overrides a template's value."""
    return {key: value for key, value in fields.items() if value is not None}


# -- the request ---------------------------------------------------------------------------------------------------


class PodRequest(BaseModel):
    """The pod-shaping operator arguments, validated and normalised to camelCase API data.

    Build it with ``PodRequest(**arguments)``: every problem found is reported together in one ``PodSpecError``.
    """

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

    _base: dict[str, Any] = PrivateAttr(default_factory=dict)

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
        if not isinstance(value, str):
            raise _invalid([f"image must be a string such as 'python:3.12-slim', got {value!r}"])
        if not value.strip():
            raise _invalid(["image is empty; give an image reference such as 'python:3.12-slim'"])
        if not _IMAGE.fullmatch(value):
            raise _invalid(
                [
                    (
                        f"image={value!r} is not a valid image reference: write [registry[:port]/]repository[:tag]"
                        "[@digest] with a lowercase repository and no spaces, e.g. 'ghcr.io/org/app:1.2'"
                    )
                ]
            )
        return value

    @field_validator("cmds", "arguments", mode="before")
    @classmethod
    def _strings(cls, value: Any, info: ValidationInfo) -> list[str] | None:
        if value is None:
            return None
        _require_list(info.field_name, value, "strings")
        bad = [
            f"{info.field_name}[{i}] is {item!r}; quote it" for i, item in enumerate(value) if not isinstance(item, str)
        ]
        if bad:
            raise _invalid([f"{problem} (every item must be a string)" for problem in bad])
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
                raise _invalid(problems)
            value = [{"name": name, "value": item} for name, item in value.items()]
        else:
            _require_list("env_vars", value, "V1EnvVar or {'name': ..., 'value': ...} dicts (or give one dict)")
        env = _convert("env_vars", list(value), list[V1EnvVar])
        bad = [
            f"env_vars: {item['name']!r} is not a valid variable name; use letters, digits, '_', '-' and '.', "
            "not starting with a digit (e.g. 'MY_VAR')"
            for item in env
            if not _ENV_NAME.fullmatch(item["name"])
        ]
        if bad:
            raise _invalid(bad)
        return env

    @field_validator("env_from", "volumes", "volume_mounts", "tolerations", "init_containers", mode="before")
    @classmethod
    def _model_lists(cls, value: Any, info: ValidationInfo) -> list[dict[str, Any]] | None:
        if not value:
            return None
        element = _LIST_MODELS[info.field_name]
        _require_list(info.field_name, value, f"{element.__name__} objects or dicts")
        return _convert(info.field_name, list(value), list[element])

    @field_validator("affinity", "security_context", "container_security_context", mode="before")
    @classmethod
    def _models(cls, value: Any, info: ValidationInfo) -> dict[str, Any] | None:
        if not value:
            return None
        return _convert(info.field_name, value, _MODELS[info.field_name])

    @field_validator("container_resources", mode="before")
    @classmethod
    def _resources(cls, value: Any) -> dict[str, Any] | None:
        if not value:
            return None
        resources = _convert("container_resources", value, V1ResourceRequirements)
        problems = _resource_problems("container_resources", resources)
        if problems:
            raise _invalid(problems)
        return resources

    @field_validator("labels", "node_selector", mode="before")
    @classmethod
    def _labels(cls, value: Any, info: ValidationInfo) -> dict[str, str] | None:
        if not value:
            return None
        if not isinstance(value, dict):
            raise _invalid([f"{info.field_name} must be a dict of strings, got {type(value).__name__} {value!r}"])
        problems = []
        for key, item in value.items():
            if problem := _qualified_name_problem(key):
                problems.append(f"{info.field_name} key {key!r}: {problem}")
            if problem := _label_value_problem(item):
                problems.append(f"{info.field_name}[{key!r}] = {item!r}: {problem}")
        if problems:
            raise _invalid(problems)
        return dict(value)

    @field_validator("annotations", mode="before")
    @classmethod
    def _annotations(cls, value: Any) -> dict[str, str] | None:
        if not value:
            return None
        if not isinstance(value, dict):
            raise _invalid([f"annotations must be a dict of strings, got {type(value).__name__} {value!r}"])
        problems = []
        for key, item in value.items():
            if problem := _qualified_name_problem(key):
                problems.append(f"annotations key {key!r}: {problem}")
            if not isinstance(item, str):
                problems.append(f"annotations[{key!r}] = {item!r}: an annotation value must be a string; quote it")
        size = sum(len(str(k)) + len(str(v)) for k, v in value.items())
        if size > 256 * 1024:
            problems.append(f"annotations total {size} bytes; Kubernetes allows 256 KiB in all")
        if problems:
            raise _invalid(problems)
        return dict(value)

    @field_validator("image_pull_secrets", mode="before")
    @classmethod
    def _pull_secrets(cls, value: Any) -> list[dict[str, Any]] | None:
        if not value:
            return None
        if isinstance(value, str):
            value = [name.strip() for name in value.split(",") if name.strip()]
        _require_list("image_pull_secrets", value, "secret names or V1LocalObjectReference objects")
        refs = [{"name": item} if isinstance(item, str) else item for item in value]
        return _convert("image_pull_secrets", refs, list[V1LocalObjectReference])

    @field_validator("image_pull_policy", mode="before")
    @classmethod
    def _pull_policy(cls, value: Any) -> str | None:
        if value is None:
            return None
        if value not in PULL_POLICIES:
            fix = next((p for p in PULL_POLICIES if isinstance(value, str) and p.lower() == value.lower()), None)
            hint = f"; did you mean {fix!r}?" if fix else ""
            raise _invalid([f"image_pull_policy={value!r} must be one of {', '.join(PULL_POLICIES)}{hint}"])
        return value

    @field_validator("service_account_name", mode="before")
    @classmethod
    def _service_account(cls, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
            raise _invalid(
                [f"service_account_name={value!r} must be a lowercase DNS subdomain such as 'airflow-worker'"]
            )
        return value

    @field_validator("base_container_name", mode="before")
    @classmethod
    def _base_name(cls, value: Any) -> str:
        if value is None:
            return "base"
        if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH or not _DNS_LABEL.fullmatch(value):
            raise _invalid(
                [
                    (
                        f"base_container_name={value!r} must be a container name: up to 63 lowercase letters, "
                        "digits and '-', starting and ending with a letter or digit (e.g. 'base')"
                    )
                ]
            )
        return value

    @field_validator("active_deadline_seconds", "termination_grace_period", mode="before")
    @classmethod
    def _seconds(cls, value: Any, info: ValidationInfo) -> int | None:
        if value is None:
            return None
        minimum = 1 if info.field_name == "active_deadline_seconds" else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _invalid([f"{info.field_name}={value!r} must be a whole number of seconds >= {minimum}"])
        return value

    @field_validator("pod_template_file", mode="before")
    @classmethod
    def _template_file(cls, value: Any) -> str | None:
        if not value:
            return None
        if not isinstance(value, str | Path):
            raise _invalid([f"pod_template_file must be a path, got {type(value).__name__} {value!r}"])
        return str(value)

    @field_validator("pod_template_dict", "full_pod_spec", mode="before")
    @classmethod
    def _template_objects(cls, value: Any, info: ValidationInfo) -> dict[str, Any] | None:
        if not value:
            return None
        return _template(info.field_name, value)

    @model_validator(mode="after")
    def _whole(self) -> PodRequest:
        layers = [self.pod_template_dict, self.full_pod_spec]
        if self.pod_template_file:
            layers.insert(0, _template("pod_template_file", _template_from_file(self.pod_template_file)))
        base: dict[str, Any] = {}
        for layer in layers:
            base = _merge(base, layer)
        self._base = base
        problems = _merged_problems(self, _merge(base, _overlay(self)))
        if problems:
            raise _invalid(problems)
        return self


_LIST_MODELS = {
    "env_from": V1EnvFromSource,
    "volumes": V1Volume,
    "volume_mounts": V1VolumeMount,
    "tolerations": V1Toleration,
    "init_containers": V1Container,
}
_MODELS = {
    "affinity": V1Affinity,
    "security_context": V1PodSecurityContext,
    "container_security_context": V1SecurityContext,
}


def _problems(error: ValidationError) -> list[str]:
    problems = []
    for detail in error.errors():
        if detail["type"] == "pod_argument":
            problems.extend(detail["ctx"]["problems"].split("\n"))
        elif detail["type"] == "extra_forbidden":
            problems.append(f"{detail['loc'][0]}: not a pod argument")
        else:
            problems.append(f"{_path(str(detail['loc'][0]), detail['loc'][1:])}: {detail['msg']}")
    return problems


def _merged_problems(request: PodRequest, pod: dict[str, Any]) -> list[str]:
    """Problems only visible once templates and arguments are combined."""
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    base = next(c for c in containers if c.get("name") == request.base_container_name)
    problems = []
    if not base.get("image"):
        others = [c["name"] for c in containers if c is not base]
        hint = f"; the template's containers are {others}: set base_container_name to one of them" if others else ""
        problems.append(
            f"image is required: no template gives container {request.base_container_name!r} an image; "
            f"set image='repository:tag'{hint}"
        )
    volumes = {v.get("name") for v in spec.get("volumes") or []}
    for container in containers + (spec.get("initContainers") or []):
        where = f"container {container.get('name')!r}"
        for mount in container.get("volumeMounts") or []:
            if mount.get("name") not in volumes:
                problems.append(
                    f"{where}: volume mount {mount.get('name')!r} at {mount.get('mountPath')!r} has no volume of "
                    "that name; add it to volumes or fix the mount's name"
                )
        problems += _resource_problems(f"{where} resources", container.get("resources") or {})
    return problems


def _overlay(request: PodRequest) -> dict[str, Any]:
    """The operator's arguments as a (sparse) pod layer."""
    container = _given(
        {
            "name": request.base_container_name,
            "image": request.image,
            "command": request.cmds,
            "args": request.arguments,
            "env": request.env_vars,
            "envFrom": request.env_from,
            "resources": request.container_resources,
            "volumeMounts": request.volume_mounts,
            "imagePullPolicy": request.image_pull_policy,
            "securityContext": request.container_security_context,
        }
    )
    spec = {
        "containers": [container],
        "initContainers": request.init_containers,
        "volumes": request.volumes,
        "nodeSelector": request.node_selector,
        "affinity": request.affinity,
        "tolerations": request.tolerations,
        "serviceAccountName": request.service_account_name,
        "imagePullSecrets": request.image_pull_secrets,
        "securityContext": request.security_context,
        "activeDeadlineSeconds": request.active_deadline_seconds,
        "terminationGracePeriodSeconds": request.termination_grace_period,
    }
    metadata = {"labels": request.labels, "annotations": request.annotations}
    return {"metadata": _given(metadata), "spec": _given(spec)}


def pod_dict(request: PodRequest, identity: PodIdentity, *, name: str) -> dict[str, Any]:
    """The pod to create as camelCase API data (no namespace: the caller sets it)."""
    pod = _merge(request._base, _overlay(request))
    pod = _merge(pod, {"metadata": {"labels": identity_labels(identity)}})
    pod["apiVersion"], pod["kind"] = "v1", "Pod"
    metadata = pod["metadata"]
    metadata["name"] = name
    metadata.pop("generateName", None)
    pod["spec"].setdefault("restartPolicy", "Never")
    return pod


def build_pod(request: PodRequest, identity: PodIdentity, *, name: str) -> V1Pod:
    """The pod to create as the sync client's ``V1Pod`` (no namespace: the caller sets it)."""
    return _deserialize(pod_dict(request, identity, name=name), "V1Pod")
