"""Object validation with the API server's own 422 messages.

Why: our operator promises to reject bad names and labels *before* a pod is created; tests prove that by sending the
same input straight to the emulator and comparing, so the emulator has to reject exactly what a real API server
rejects, with the same ``Pod "x" is invalid: ...`` message and ``details.causes`` that ``kubectl`` prints.

Covered: object names (RFC 1123 subdomain; namespaces and container names RFC 1123 labels), label keys and values,
annotation keys, and for pods: at least one container, container name, image and duplicate names, restartPolicy,
volumes (names, duplicates) and volumeMounts (a known volume, a unique mountPath), tolerations (operator Equal or
Exists, key/value/effect rules), node affinity (node selector terms and requirement operators In, NotIn, Exists,
DoesNotExist, Gt, Lt; matchFields), pod (anti-)affinity terms (topologyKey, label selectors, weights), and the
immutability of a pod's spec on update (only images, activeDeadlineSeconds and added tolerations may change).
Messages are apimachinery's ``field.Error`` texts (``Required value``, ``Invalid value: "x": ...``, ``Unsupported
value: "x": supported values: ...``, ``Duplicate value``, ``Not found``, ``Forbidden``) at the API server's paths.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import ApiError
from .kinds import KIND_OF

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = rf"{DNS1123_LABEL}(\.{DNS1123_LABEL})*"
QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE = rf"({QUALIFIED_NAME})?"

SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    f"'{DNS1123_SUBDOMAIN}')"
)
LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end "
    f"with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '{DNS1123_LABEL}')"
)
QUALIFIED_NAME_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
    f"character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '{QUALIFIED_NAME}')"
)
LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation "
    f"is '{LABEL_VALUE}')"
)
RESTART_POLICIES = ("Always", "OnFailure", "Never")
MUTABLE_POD_SPEC = (
    "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
    "tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


class Problems:
    """Collects field errors; ``raise_for`` renders them as one 422 like the API server's aggregate."""

    def __init__(self) -> None:
        self.causes: list[dict[str, str]] = []

    def add(self, field: str, reason: str, message: str) -> None:
        self.causes.append({"reason": reason, "message": message, "field": field})

    def invalid(self, field: str, value: Any, why: str) -> None:
        shown = f'"{value}"' if isinstance(value, str) else str(value)
        self.add(field, "FieldValueInvalid", f"Invalid value: {shown}: {why}")

    def required(self, field: str, why: str = "") -> None:
        self.add(field, "FieldValueRequired", f"Required value: {why}" if why else "Required value")

    def not_supported(self, field: str, value: str, supported: tuple[str, ...]) -> None:
        values = ", ".join(f'"{v}"' for v in supported)
        self.add(field, "FieldValueNotSupported", f'Unsupported value: "{value}": supported values: {values}')

    def raise_for(self, kind: str, name: str) -> None:
        if not self.causes:
            return
        texts = [f"{cause['field']}: {cause['message']}" for cause in self.causes]
        joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
        display = KIND_OF.get(kind, kind)
        raise ApiError(
            422, "Invalid", f'{display} "{name}" is invalid: {joined}',
            {"name": name, "kind": display, "causes": self.causes},
        )


# The apimachinery checks (k8s.io/apimachinery/pkg/util/validation): every failed rule adds its own message.


def _checked(value: str, limit: int, pattern: str, message: str) -> list[str]:
    errors = [f"must be no more than {limit} characters"] if len(value) > limit else []
    return errors + ([] if re.fullmatch(pattern, value) else [message])


def dns1123_subdomain_errors(value: str) -> list[str]:
    return _checked(value, 253, DNS1123_SUBDOMAIN, SUBDOMAIN_MESSAGE)


def dns1123_label_errors(value: str) -> list[str]:
    return _checked(value, 63, DNS1123_LABEL, LABEL_MESSAGE)


def label_value_errors(value: str) -> list[str]:
    return _checked(value, 63, LABEL_VALUE, LABEL_VALUE_MESSAGE)


def qualified_name_errors(value: str) -> list[str]:
    """``IsQualifiedName``: label and annotation keys, ``[prefix/]name``."""
    parts = value.split("/")
    if len(parts) > 2:
        return ["a qualified name " + QUALIFIED_NAME_MESSAGE.removeprefix("name part ")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    errors: list[str] = []
    if len(parts) == 2:
        prefix = parts[0]
        errors += ["prefix part " + e for e in dns1123_subdomain_errors(prefix)] if prefix else [
            "prefix part must be non-empty"]
    name = parts[-1]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    if not re.fullmatch(QUALIFIED_NAME, name):
        errors.append(QUALIFIED_NAME_MESSAGE)
    return errors


def _name(problems: Problems, field: str, value: str, label_only: bool) -> None:
    for message in (dns1123_label_errors if label_only else dns1123_subdomain_errors)(value):
        problems.invalid(field, value, message)


def _qualified_key(problems: Problems, field: str, key: str, checked: str | None = None) -> None:
    for message in qualified_name_errors(key if checked is None else checked):
        problems.invalid(field, key, message)


def _metadata(problems: Problems, kind: str, metadata: dict[str, Any]) -> None:
    name = metadata.get("name") or ""
    if not name:
        problems.add("metadata.name", "FieldValueRequired", "Required value: name or generateName is required")
    else:
        _name(problems, "metadata.name", name, label_only=kind == "namespaces")
    for key, value in (metadata.get("labels") or {}).items():
        _qualified_key(problems, "metadata.labels", key)
        if not isinstance(value, str):
            problems.invalid("metadata.labels", value, "label values must be strings")
            continue
        for message in label_value_errors(value):
            problems.invalid("metadata.labels", value, message)
    for key in metadata.get("annotations") or {}:
        _qualified_key(problems, "metadata.annotations", key, checked=key.lower())


def _containers(
    problems: Problems, field: str, containers: list[dict[str, Any]], seen: set[str], volumes: set[str]
) -> None:
    for index, container in enumerate(containers):
        path = f"{field}[{index}]"
        name = container.get("name") or ""
        if not name:
            problems.add(f"{path}.name", "FieldValueRequired", "Required value")
        elif name in seen:
            problems.add(f"{path}.name", "FieldValueDuplicate", f'Duplicate value: "{name}"')
        else:
            _name(problems, f"{path}.name", name, label_only=True)
        seen.add(name)
        if not container.get("image"):
            problems.add(f"{path}.image", "FieldValueRequired", "Required value")
        _volume_mounts(problems, path, container.get("volumeMounts") or [], volumes)


TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _volumes(problems: Problems, volumes: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for index, volume in enumerate(volumes):
        field, name = f"spec.volumes[{index}].name", volume.get("name") or ""
        if not name:
            problems.required(field)
        else:
            _name(problems, field, name, label_only=True)
        if name in names:
            problems.add(field, "FieldValueDuplicate", f'Duplicate value: "{name}"')
        names.add(name)
    return names


def _volume_mounts(problems: Problems, path: str, mounts: list[dict[str, Any]], volumes: set[str]) -> None:
    seen: set[str] = set()
    for index, mount in enumerate(mounts):
        field = f"{path}.volumeMounts[{index}]"
        name, mount_path = mount.get("name") or "", mount.get("mountPath") or ""
        if not name:
            problems.required(f"{field}.name")
        if name not in volumes:
            problems.add(f"{field}.name", "FieldValueNotFound", f'Not found: "{name}"')
        if not mount_path:
            problems.required(f"{field}.mountPath")
        if mount_path in seen:
            problems.invalid(f"{field}.mountPath", mount_path, "must be unique")
        seen.add(mount_path)


def _go_toleration(toleration: dict[str, Any]) -> str:
    """How Go's ``%#v`` prints the internal Toleration an Invalid error carries."""
    seconds = "(*int64)(nil)" if toleration.get("tolerationSeconds") is None else "(*int64)(0xc000a1b2c8)"
    parts = [f'{key.capitalize()}:"{toleration.get(key) or ""}"' for key in ("key", "operator", "value", "effect")]
    return "core.Toleration{" + ", ".join(parts) + f", TolerationSeconds:{seconds}}}"


def _tolerations(problems: Problems, tolerations: list[dict[str, Any]]) -> None:
    for index, toleration in enumerate(tolerations):
        path = f"spec.tolerations[{index}]"
        key, operator = toleration.get("key") or "", toleration.get("operator") or ""
        value, effect = toleration.get("value") or "", toleration.get("effect") or ""
        if key:
            _qualified_key(problems, f"{path}.key", key)
        if not key and operator != "Exists":
            problems.invalid(f"{path}.operator", operator,
                             'operator must be Exists when `key` is empty, which means "match all values and all keys"')
        if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
            problems.invalid(f"{path}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set")
        if operator in ("Equal", ""):
            for message in label_value_errors(value):
                problems.invalid(f"{path}.operator", value, message)
        elif operator == "Exists":
            if value:
                problems.add(f"{path}.operator", "FieldValueInvalid", f"Invalid value: {_go_toleration(toleration)}: "
                             "value must be empty when `operator` is 'Exists'")
        else:
            problems.not_supported(f"{path}.operator", operator, TOLERATION_OPERATORS)
        if effect and effect not in TAINT_EFFECTS:
            problems.not_supported(f"{path}.effect", effect, TAINT_EFFECTS)


def _requirement(problems: Problems, path: str, requirement: dict[str, Any], *, numeric: bool,
                 label_values: bool) -> None:
    """A node selector requirement (``numeric``: Gt/Lt allowed) or a label selector requirement."""
    operator, values = requirement.get("operator") or "", requirement.get("values") or []
    if operator in ("In", "NotIn"):
        if not values:
            problems.required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'")
    elif operator in ("Exists", "DoesNotExist"):
        if values:
            problems.add(f"{path}.values", "FieldValueForbidden",
                         "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
    elif numeric and operator in ("Gt", "Lt"):
        if len(values) != 1:
            problems.required(f"{path}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'")
    else:
        problems.invalid(f"{path}.operator", operator, "not a valid selector operator")
    _qualified_key(problems, f"{path}.key", requirement.get("key") or "")
    if label_values:
        for position, value in enumerate(values):
            for message in label_value_errors(value if isinstance(value, str) else str(value)):
                problems.invalid(f"{path}.values[{position}]", value, message)


def _node_selector_term(problems: Problems, path: str, term: dict[str, Any]) -> None:
    for index, requirement in enumerate(term.get("matchExpressions") or []):
        _requirement(problems, f"{path}.matchExpressions[{index}]", requirement, numeric=True, label_values=False)
    for index, requirement in enumerate(term.get("matchFields") or []):
        field = f"{path}.matchFields[{index}]"
        operator, values = requirement.get("operator") or "", requirement.get("values") or []
        if operator in ("In", "NotIn"):
            if len(values) != 1:
                problems.required(f"{field}.values",
                                  "must be only one value when `operator` is 'In' or 'NotIn' for node field selector")
        else:
            problems.invalid(f"{field}.operator", operator, "not a valid selector operator")
        if requirement.get("key") != "metadata.name":
            problems.invalid(f"{field}.key", requirement.get("key") or "", "not a valid field selector key")


def _weight(problems: Problems, path: str, weight: Any) -> None:
    if not isinstance(weight, int) or not 1 <= weight <= 100:
        problems.invalid(f"{path}.weight", weight or 0, "must be in the range 1-100")


def _pod_affinity_term(problems: Problems, path: str, term: dict[str, Any]) -> None:
    selector = term.get("labelSelector") or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        _qualified_key(problems, f"{path}.labelSelector.matchLabels", key)
        for message in label_value_errors(value if isinstance(value, str) else str(value)):
            problems.invalid(f"{path}.labelSelector.matchLabels", value, message)
    for index, requirement in enumerate(selector.get("matchExpressions") or []):
        _requirement(problems, f"{path}.labelSelector.matchExpressions[{index}]", requirement, numeric=False,
                     label_values=True)
    for namespace in term.get("namespaces") or []:
        _name(problems, f"{path}.namespace", namespace, label_only=True)
    topology = term.get("topologyKey") or ""
    if not topology:
        problems.required(f"{path}.topologyKey", "can not be empty")
    _qualified_key(problems, f"{path}.topologyKey", topology)


def _affinity(problems: Problems, affinity: dict[str, Any]) -> None:
    node = affinity.get("nodeAffinity") or {}
    path = "spec.affinity.nodeAffinity"
    required = node.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is not None:
        terms = required.get("nodeSelectorTerms") or []
        field = f"{path}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
        if not terms:
            problems.required(field, "must have at least one node selector term")
        for index, term in enumerate(terms):
            _node_selector_term(problems, f"{field}[{index}]", term)
    for index, term in enumerate(node.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
        field = f"{path}.preferredDuringSchedulingIgnoredDuringExecution[{index}]"
        _weight(problems, field, term.get("weight"))
        _node_selector_term(problems, f"{field}.preference", term.get("preference") or {})
    for kind in ("podAffinity", "podAntiAffinity"):
        pods = affinity.get(kind) or {}
        path = f"spec.affinity.{kind}"
        for index, term in enumerate(pods.get("requiredDuringSchedulingIgnoredDuringExecution") or []):
            _pod_affinity_term(problems, f"{path}.requiredDuringSchedulingIgnoredDuringExecution[{index}]", term)
        for index, weighted in enumerate(pods.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
            field = f"{path}.preferredDuringSchedulingIgnoredDuringExecution[{index}]"
            _weight(problems, field, weighted.get("weight"))
            _pod_affinity_term(problems, f"{field}.podAffinityTerm", weighted.get("podAffinityTerm") or {})


def _pod_spec(problems: Problems, spec: dict[str, Any]) -> None:
    volumes = _volumes(problems, spec.get("volumes") or [])
    containers = spec.get("containers") or []
    if not containers:
        problems.add("spec.containers", "FieldValueRequired", "Required value")
    seen: set[str] = set()
    _containers(problems, "spec.containers", containers, seen, volumes)
    _containers(problems, "spec.initContainers", spec.get("initContainers") or [], seen, volumes)
    policy = spec.get("restartPolicy", "Always")
    if policy not in RESTART_POLICIES:
        problems.not_supported("spec.restartPolicy", policy, RESTART_POLICIES)
    _tolerations(problems, spec.get("tolerations") or [])
    _affinity(problems, spec.get("affinity") or {})


def validate_create(kind: str, obj: dict[str, Any]) -> None:
    """Raise the API server's 422 for an object that may not be created."""
    problems = Problems()
    metadata = obj.get("metadata") or {}
    _metadata(problems, kind, metadata)
    if kind == "pods":
        _pod_spec(problems, obj.get("spec") or {})
    problems.raise_for(kind, metadata.get("name") or "")


def _without_images(spec: dict[str, Any]) -> dict[str, Any]:
    stripped = {k: v for k, v in spec.items() if k not in ("activeDeadlineSeconds", "tolerations")}
    for key in ("containers", "initContainers"):
        if key in stripped:
            stripped[key] = [{k: v for k, v in c.items() if k != "image"} for c in stripped[key]]
    return stripped


def validate_update(kind: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Raise the API server's 422 for an update that changes what may not change."""
    problems = Problems()
    _metadata(problems, kind, new.get("metadata") or {})
    if kind == "pods" and _without_images(old.get("spec") or {}) != _without_images(new.get("spec") or {}):
        problems.add("spec", "FieldValueForbidden", MUTABLE_POD_SPEC.removeprefix("spec: "))
    problems.raise_for(kind, (old.get("metadata") or {}).get("name", ""))
