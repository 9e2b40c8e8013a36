"""Pod templates (``pod_template_file``, ``pod_template_dict``, ``full_pod_spec``) → validated camelCase pod dicts.

Why: a template is a whole pod manifest the arguments are merged onto; it is checked against the ``V1Pod`` model the
same way the arguments are, so a misspelt field in a template is reported with its path.

Facts it handles:

* Server-set fields (``status``, ``uid``, ``resourceVersion``...) of a template copied from a live pod are dropped.
* ``read_template_file`` is the package's only I/O; a YAML error is one problem (line and column, the parser's
  reason), however many lines the parser's own message has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import V1Pod

from airflow_kpo_deferrable.podspec.convert import convert, plain
from airflow_kpo_deferrable.podspec.problems import PodSpecError, Problem

SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "managedFields",
    "selfLink",
)
_FIX = "give the path of a readable YAML Pod manifest on the worker (absolute, or relative to the DAG run's cwd)"


def _yaml_reason(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    return " ".join(str(error).split())


def read_template_file(path_text: str) -> dict[str, Any]:
    """The manifest in ``pod_template_file`` as a dict (not yet validated)."""
    path = Path(path_text).expanduser()
    problem = None
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        problem = f"pod_template_file: no file at {path_text!r}; {_FIX}"
    except OSError as error:
        problem = f"pod_template_file: cannot read {path_text!r} ({error.strerror}); {_FIX}"
    except yaml.YAMLError as error:
        problem = f"pod_template_file: {path_text!r} is not valid YAML ({_yaml_reason(error)}); fix the file"
    else:
        if isinstance(document, dict):
            return document
        problem = f"pod_template_file: {path_text!r} holds {type(document).__name__}, not a Pod manifest"
    raise PodSpecError([Problem("pod_template_file", problem)])


def template(argument: str, document: Any) -> dict[str, Any]:
    """A template (``V1Pod`` or manifest dict) validated as a pod, without the fields only a server sets."""
    data = plain(document)
    if not isinstance(data, dict):
        message = f"{argument}: expected a V1Pod or a dict of a Pod manifest, got {type(document).__name__}"
        raise PodSpecError([Problem(argument, message)])
    kind = data.get("kind")
    if kind not in (None, "Pod"):
        message = f"{argument}: kind is {kind!r}; give a Pod manifest (kind: Pod, apiVersion: v1)"
        raise PodSpecError([Problem(argument, message)])
    pod = convert(argument, data, V1Pod)
    pod.pop("status", None)
    metadata = pod.get("metadata") or {}
    for key in SERVER_METADATA:
        metadata.pop(key, None)
    return pod
