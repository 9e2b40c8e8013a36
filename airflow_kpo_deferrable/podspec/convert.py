"""``kubernetes.client`` models and plain dicts → camelCase API data, validated against the client's model types.

Why: the provider's arguments accept ``V1...`` objects or plain dicts/lists (camelCase as in the API, or the client's
snake_case names); everything downstream (merge, checks, the pod we send) works on one form, camelCase JSON dicts.

Facts it handles:

* kubernetes >= 37 generates pydantic models with ``extra="forbid"``: validating through them catches misspelt fields
  with their path. Older clients (the official provider pins kubernetes < 37) have plain classes; their deserializer
  still checks required fields and types but drops unknown keys silently, so dropped keys are reported here.
* The client's deserializer is private (``ApiClient.__deserialize``) but exists in every release; this module is its
  one call site.
"""

from __future__ import annotations

import functools
import shlex
from typing import Any, get_args, get_origin

from kubernetes.client import ApiClient, V1Pod
from pydantic import TypeAdapter, ValidationError

from airflow_kpo_deferrable.podspec.problems import PodSpecError, Problem
from airflow_kpo_deferrable.podspec.quantities import stringify_quantities

PYDANTIC_MODELS = hasattr(V1Pod, "model_validate")


@functools.cache
def _api() -> ApiClient:
    return ApiClient()


@functools.cache
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def plain(value: Any) -> Any:
    """Model objects (anywhere inside) → their camelCase dicts; plain data is copied."""
    return _api().sanitize_for_serialization(value)


def deserialize(data: Any, type_name: str) -> Any:
    """The client's own deserializer (every kubernetes release has it; ``model_validate`` only exists from 37 on)."""
    return _api()._ApiClient__deserialize(data, type_name)


def path_text(argument: str, loc: tuple[Any, ...]) -> str:
    text = argument
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _model_problems(argument: str, error: ValidationError) -> list[Problem]:
    problems = []
    for detail in error.errors():
        loc = tuple(p for p in detail["loc"] if not str(p).startswith("function-"))
        where = path_text(argument, loc)
        if detail["type"] == "extra_forbidden":
            message = f"{where}: unknown field {str(loc[-1])!r}; check its spelling against the Kubernetes API"
        elif detail["type"] == "missing":
            message = f"{where}: this required field is missing"
        else:
            message = f"{where}: {detail['msg']} (got {detail['input']!r})"
        problems.append(Problem(argument, message))
    return problems


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
        return [
            p for i, (a, b) in enumerate(zip(given, kept, strict=False)) for p in _dropped_fields(f"{path}[{i}]", a, b)
        ]
    return []


def convert(argument: str, value: Any, annotation: Any) -> Any:
    """Validate ``value`` against a kubernetes model type and return it as camelCase JSON data."""
    data = stringify_quantities(plain(value))
    if not PYDANTIC_MODELS:
        try:
            kept = plain(deserialize(data, _type_name(annotation)))
        except (ValueError, TypeError, AttributeError) as error:
            raise PodSpecError([Problem(argument, f"{argument}: {error}")]) from None
        if dropped := _dropped_fields(argument, data, kept):  # the old deserializer drops unknown keys silently
            raise PodSpecError([Problem(argument, p) for p in dropped])
        return kept
    try:
        model = _adapter(annotation).validate_python(data)
    except ValidationError as error:
        raise PodSpecError(_model_problems(argument, error)) from None
    return plain(model)


def require_list(argument: str, value: Any, element: str) -> None:
    """Raise unless ``value`` is a list or tuple; a bare string gets the list it was probably meant to be."""
    if isinstance(value, str) and value.strip().startswith("[") and value.strip().endswith("]"):
        # A template such as "{{ params.args }}" renders to the text of a list unless the DAG renders native objects.
        message = (
            f"{argument} is the string {value!r}, the text of a list: a Jinja template renders to a string; set "
            f"render_template_as_native_obj=True on the DAG so {argument} renders to a list, or pass the list itself"
        )
        raise PodSpecError([Problem(argument, message)])
    if isinstance(value, str):
        # A bare string is the classic mistake (cmds="echo hi"): Kubernetes would need one item per word.
        words = shlex.split(value) if element == "strings" else [value]
        message = (
            f"{argument} must be a list of {element}, got the bare string {value!r} (a common mistake); "
            f"write a list instead: {argument}={words!r}"
        )
        raise PodSpecError([Problem(argument, message)])
    if not isinstance(value, list | tuple):
        message = f"{argument} must be a list of {element}, got {type(value).__name__} {value!r}"
        raise PodSpecError([Problem(argument, message)])
