"""Scenario annotations: how a test tells the simulated node what should happen to a pod or one of its containers.

Why a module of its own: the users' tests write them (``scenario(exit_code=3)``), the scripted runtime plays them,
both runtimes read the container failures and the pod worker the pod failures; the keys, defaults and messages
must be one definition.

Keys (prefix ``emulator.kpo.dev/``; a ``.<container>`` suffix limits a key to that container): ``duration`` (seconds,
scripted default 1), ``exit-code`` (0), ``log-lines`` (2), ``log-line-bytes`` (short text lines by default),
``log-interval`` (default: lines spread over the duration), ``start-delay`` (seconds in ContainerCreating, 0.1),
``failure``. Container failures: ``ErrImagePull``, ``InvalidImageName``, ``CreateContainerConfigError``,
``OOMKilled``. Pod failures (``Unschedulable``, ``Evicted``, ``NodeLost``, ``DeadlineExceeded``) take no container
suffix. A misspelt key or a bad value is a ``ScenarioError`` naming the annotation (the kubelet shows it as
CreateContainerConfigError), never silently ignored.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ANNOTATION_PREFIX = "emulator.kpo.dev/"

class Failure(StrEnum):
    ERR_IMAGE_PULL = "ErrImagePull"
    INVALID_IMAGE_NAME = "InvalidImageName"
    CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
    UNSCHEDULABLE = "Unschedulable"
    OOM_KILLED = "OOMKilled"
    EVICTED = "Evicted"
    NODE_LOST = "NodeLost"
    DEADLINE_EXCEEDED = "DeadlineExceeded"


POD_FAILURES = {Failure.UNSCHEDULABLE, Failure.EVICTED, Failure.NODE_LOST, Failure.DEADLINE_EXCEEDED}


class Scenario(BaseModel):
    """What the annotations ask of one container (or, for ``failure`` in ``POD_FAILURES``, of its pod)."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=lambda name: name.replace("_", "-"))

    duration: float | None = Field(None, ge=0)
    exit_code: int = Field(0, ge=0, le=255)
    log_lines: int = Field(2, ge=0)
    log_line_bytes: int | None = Field(None, ge=1)
    log_interval: float | None = Field(None, ge=0)
    start_delay: float = Field(0.1, ge=0)
    failure: Failure | None = None


class ScenarioError(ValueError):
    """Bad scenario annotations; the kubelet shows the message as CreateContainerConfigError."""


def scenario_values(annotations: dict[str, str], container: str, containers: list[str]) -> dict[str, str]:
    """The scenario keys for ``container``: suffixed keys override plain ones; a suffix must name a container."""
    plain: dict[str, str] = {}
    suffixed: dict[str, str] = {}
    for key, value in annotations.items():
        if not key.startswith(ANNOTATION_PREFIX):
            continue
        name, _, target = key[len(ANNOTATION_PREFIX) :].partition(".")
        if target and target not in containers:
            raise ScenarioError(f"annotation {key}: no container {target!r} in the pod; containers: {containers}")
        if not target:
            plain[name] = value
        elif target == container:
            if name == "failure" and value in POD_FAILURES:
                raise ScenarioError(f"annotation {key}: {value} happens to the pod: use {ANNOTATION_PREFIX}failure")
            suffixed[name] = value
    return plain | suffixed


def scenario_for(annotations: dict[str, str], container: str, containers: list[str]) -> Scenario:
    values = scenario_values(annotations, container, containers)
    try:
        return Scenario.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"annotation {ANNOTATION_PREFIX}{e['loc'][0]}: {e['msg']} (got {e.get('input')!r})" for e in error.errors()
        )
        raise ScenarioError(problems) from None


def pod_failure(annotations: dict[str, str]) -> Failure | None:
    """The pod-level failure the annotations ask for (Unschedulable, Evicted, NodeLost, DeadlineExceeded)."""
    value = annotations.get(ANNOTATION_PREFIX + "failure")
    return Failure(value) if value in POD_FAILURES else None



def pod_duration(annotations: dict[str, str]) -> float:
    """The pod-level ``duration`` (default 1 s); a bad value counts as the default (the containers report it)."""
    try:
        return float(annotations.get(ANNOTATION_PREFIX + "duration", 1.0))
    except ValueError:
        return 1.0


def scenario(**values: object) -> dict[str, str]:
    """Scenario annotations from keywords: ``scenario(exit_code=3)`` → ``{"emulator.kpo.dev/exit-code": "3"}``.

    Per-container keys keep their dot: ``scenario(**{"duration.sidecar": 60})``.
    """
    return {ANNOTATION_PREFIX + key.replace("_", "-"): str(value) for key, value in values.items()}
