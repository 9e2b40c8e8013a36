"""Checks on the merged pod: what only shows once templates and arguments are combined, and the API server's rules.

Why: a template may give the base container its image, or a volume a mount refers to, so these rules can only be
checked on the whole pod — once, in ``plan``, right before it is created. The API-server rules here (every container
has an image, volume and container names are unique, toleration and selector operators, the namespace name) are the
ones a real server answers with a 422 or 404 at create; the pod would otherwise wait out its schedule timeout or the
task would fail with a raw client error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from airflow_kpo_deferrable.podspec.names import DNS_LABEL
from airflow_kpo_deferrable.podspec.problems import Problem
from airflow_kpo_deferrable.podspec.quantities import resource_problems

TOLERATION_OPERATORS = ("Exists", "Equal")
NODE_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
LABEL_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _image_problems(spec: dict[str, Any], base_container_name: str) -> list[Problem]:
    containers = spec.get("containers") or []
    problems = []
    for kind, items in (("container", containers), ("init container", spec.get("initContainers") or [])):
        for container in items:
            if container.get("image"):
                continue
            if container.get("name") == base_container_name and kind == "container":
                others = [c["name"] for c in containers if c is not container]
                hint = (
                    f"; the template's containers are {others}: set base_container_name to one of them"
                    if others
                    else ""
                )
                message = (
                    f"image is required: no template gives container {base_container_name!r} an image; "
                    f"set image='repository:tag'{hint}"
                )
                problems.append(Problem("image", message))
            else:
                message = f"{kind} {container.get('name')!r} has no image; give it one (e.g. 'busybox:1.36')"
                problems.append(Problem("init_containers" if kind == "init container" else "pod_template", message))
    return problems


def _duplicates(spec: dict[str, Any]) -> list[Problem]:
    problems = []
    volumes = Counter(v.get("name") for v in spec.get("volumes") or [])
    for name, count in volumes.items():
        if count > 1:
            message = (
                f"volumes: {count} volumes are named {name!r} (from the template and the arguments together); "
                "a pod's volume names must be unique: rename one, or drop it from the template or from volumes"
            )
            problems.append(Problem("volumes", message))
    containers = Counter(c.get("name") for c in (spec.get("containers") or []) + (spec.get("initContainers") or []))
    for name, count in containers.items():
        if count > 1:
            message = (
                f"{count} containers (including init containers) are named {name!r}; container names must be unique"
            )
            problems.append(Problem("init_containers", message))
    return problems


def _toleration_problems(spec: dict[str, Any]) -> list[Problem]:
    problems = []
    for i, toleration in enumerate(spec.get("tolerations") or []):
        operator = toleration.get("operator")
        if operator is not None and operator not in TOLERATION_OPERATORS:
            message = f"tolerations[{i}].operator={operator!r} must be 'Exists' or 'Equal' (the default)"
            problems.append(Problem("tolerations", message))
        elif operator == "Exists" and toleration.get("value"):
            message = f"tolerations[{i}]: operator 'Exists' takes no value (got {toleration['value']!r}); drop it"
            problems.append(Problem("tolerations", message))
    return problems


def _requirement_problems(where: str, requirements: Iterable[Any], operators: tuple[str, ...]) -> list[Problem]:
    problems = []
    for i, requirement in enumerate(requirements or []):
        operator = requirement.get("operator")
        if operator not in operators:
            message = f"{where}[{i}].operator={operator!r} must be one of {', '.join(operators)}"
            problems.append(Problem("affinity", message))
    return problems


def _affinity_problems(spec: dict[str, Any]) -> list[Problem]:
    affinity = spec.get("affinity") or {}
    node = affinity.get("nodeAffinity") or {}
    terms = list((node.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or [])
    paths = [f"affinity.nodeAffinity.required...nodeSelectorTerms[{i}]" for i in range(len(terms))]
    for i, preferred in enumerate(node.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
        terms.append(preferred.get("preference") or {})
        paths.append(f"affinity.nodeAffinity.preferred...[{i}].preference")
    problems = []
    for path, term in zip(paths, terms, strict=True):
        for field in ("matchExpressions", "matchFields"):
            problems += _requirement_problems(f"{path}.{field}", term.get(field), NODE_SELECTOR_OPERATORS)
    for kind in ("podAffinity", "podAntiAffinity"):
        pod = affinity.get(kind) or {}
        pod_terms = list(pod.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
        pod_terms += [
            w.get("podAffinityTerm") or {} for w in pod.get("preferredDuringSchedulingIgnoredDuringExecution") or []
        ]
        for i, term in enumerate(pod_terms):
            selector = term.get("labelSelector") or {}
            where = f"affinity.{kind} term {i} labelSelector.matchExpressions"
            problems += _requirement_problems(where, selector.get("matchExpressions"), LABEL_SELECTOR_OPERATORS)
            if not term.get("topologyKey"):
                problems.append(
                    Problem("affinity", f"affinity.{kind} term {i} needs a topologyKey (e.g. 'kubernetes.io/hostname')")
                )
    return problems


def _mount_problems(spec: dict[str, Any]) -> list[Problem]:
    volumes = {v.get("name") for v in spec.get("volumes") or []}
    problems = []
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        where = f"container {container.get('name')!r}"
        for mount in container.get("volumeMounts") or []:
            if mount.get("name") not in volumes:
                message = (
                    f"{where}: volume mount {mount.get('name')!r} at {mount.get('mountPath')!r} has no volume of "
                    "that name; add it to volumes or fix the mount's name"
                )
                problems.append(Problem("volume_mounts", message))
        found = resource_problems(f"{where} resources", container.get("resources") or {})
        problems += [Problem("container_resources", p) for p in found]
    return problems


def _log_selection_problems(argument: str, choice: Any, available: list[str]) -> list[Problem]:
    if choice is None or choice is True or choice is False:
        return []
    wanted = [choice] if isinstance(choice, str) else list(choice)
    missing = [name for name in wanted if name not in available]
    if not missing:
        return []
    message = (
        f"{argument}={choice!r} names {missing}, which the pod does not have; its "
        f"{'init ' if argument.startswith('init') else ''}containers are {available} (or pass True for all)"
    )
    return [Problem(argument, message)]


def merged_problems(
    pod: dict[str, Any], base_container_name: str, *, container_logs: Any = None, init_container_logs: Any = None
) -> list[Problem]:
    """Problems of the merged pod (camelCase data) whose base container is ``base_container_name``."""
    spec = pod.get("spec") or {}
    namespace = (pod.get("metadata") or {}).get("namespace")
    problems = _image_problems(spec, base_container_name)
    problems += _duplicates(spec) + _toleration_problems(spec) + _affinity_problems(spec) + _mount_problems(spec)
    if namespace is not None and (len(namespace) > 63 or not DNS_LABEL.fullmatch(namespace)):
        message = (
            f"namespace={namespace!r} is not a valid namespace name: a DNS-1123 label of up to 63 lowercase "
            "letters, digits and '-', starting and ending with a letter or digit (e.g. 'data-jobs')"
        )
        problems.append(Problem("namespace", message))
    names = [c.get("name") for c in spec.get("containers") or []]
    problems += _log_selection_problems("container_logs", container_logs, names)
    inits = [c.get("name") for c in spec.get("initContainers") or []]
    problems += _log_selection_problems("init_container_logs", init_container_logs, inits)
    return problems
