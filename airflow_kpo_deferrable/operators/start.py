"""``start_from_trigger=True``: the triggerer creates the pod, so the task never takes a worker slot at all.

Why: once a task finishes in the triggerer, most of its worker time is the create stint (a worker process starts,
parses the DAG file, creates the pod, defers: about 2 s, benchmarks/e2e_slots). Airflow 3.3's scheduler can defer a
task straight to a trigger (``StartTriggerArgs``, ``TaskInstance.defer_task``) without any worker; the trigger
(``triggers/start.py``) then builds and creates the pod and waits for it as ``PodTrigger`` does.

What this module decides, at DAG parse (pure, no I/O): whether a task can start that way, and the trigger kwargs.

Facts it handles (read from apache-airflow-core 3.3.2: ``models/taskinstance.py`` ``defer_task``,
``jobs/triggerer_job_runner.py``, ``triggers/base.py``):

* The trigger kwargs are fixed when the DAG is serialised: they are the operator's arguments *as given* (unrendered)
  as JSON — ``kubernetes.client`` models as their camelCase dicts, ``Secret``s as their fields, ``execution_timeout``
  in seconds. Only arguments that differ from their defaults travel.
* The triggerer renders, with the task's template context, the trigger kwargs that are also the operator's
  ``template_fields`` (so ``{{ ds }}``, ``{{ run_id }}``, ``{{ params }}``, ``{{ ti.try_number }}`` work as on a
  worker). It has no DAG-level ``user_defined_macros``/``user_defined_filters`` (they are not serialised). A dict
  ``env_vars`` travels as a list of ``{"name", "value"}`` so names are rendered too, as on a worker.
* What cannot travel as JSON or run without a worker is refused here, naming the argument and the fix: Python
  callables (``callbacks``, ``progress_callback``, ``log_formatter``, ``on_execute_callback``), ``XComArg`` values
  (Airflow does not resolve them for a task started from the triggerer), ``pod_template_file`` (the triggerer may
  have no DAG files; use ``pod_template_dict``), and ``deferrable=False``.
* Where the task ends follows ``finish.finish_mode`` as for a worker start, decided here and carried with its reason
  (plugin listeners are a DAG-processor fact; ``on_success_callback`` is not carried): with ``do_xcom_push``, success callbacks or listeners a worker still resumes the task to
  finish it — one worker stint instead of two.
* Mapped tasks (``.partial(...).expand(...)``) start on a worker: Airflow reads ``start_trigger_args`` from the class
  for them, and the class has none.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from airflow.triggers.base import StartTriggerArgs

from airflow_kpo_deferrable.finish import FinishMode
from airflow_kpo_deferrable.operators.arguments import KubernetesPodArguments
from airflow_kpo_deferrable.operators.templating import holds_xcom_arg
from airflow_kpo_deferrable.podspec.convert import plain
from airflow_kpo_deferrable.podspec.problems import PodSpecError, Problem

TRIGGER_CLASSPATH = "airflow_kpo_deferrable.triggers.start.PodStartTrigger"
RESUME_METHOD = "resume"

_SIGNATURE = inspect.signature(KubernetesPodArguments.__init__).parameters
ARGUMENT_NAMES = tuple(name for name, p in _SIGNATURE.items() if p.kind is inspect.Parameter.KEYWORD_ONLY)
# Arguments the operator keeps normalised: the value given is carried instead (the private attribute's name).
_AS_GIVEN = {
    "skip_on_exit_code": "_skip_on_exit_code_given",
    "callbacks": "_callbacks_given",
    "schedule_timeout_seconds": "_schedule_timeout_given",
    "reattach_on_restart": None,  # ``durable`` carries it
    "is_delete_operator_pod": None,  # no effect; its warning was given at parse
}
_NO_PYTHON = ("callbacks", "progress_callback", "log_formatter")


def start_problems(operator: Any) -> list[Problem]:
    """Why this task cannot start from the triggerer (empty when it can)."""
    problems = []
    if not operator.deferrable:
        problems.append(Problem("start_from_trigger", "start_from_trigger=True needs deferrable=True (the default)"))
    for name in _NO_PYTHON:
        if getattr(operator, _AS_GIVEN.get(name) or name):  # ``callbacks`` as given (the attribute is a list)
            problems.append(_refuse(name, "is Python code, which only a worker can run"))
    if operator.on_execute_callback:
        problems.append(_refuse("on_execute_callback", "runs on a worker before execute"))
    if operator.pod_template_file:
        problems.append(_refuse(
            "pod_template_file", "the triggerer may not have that file (pass its content as pod_template_dict)"))
    return problems


def _refuse(name: str, why: str) -> Problem:
    return Problem(name, f"{name} is set, and {why}; with start_from_trigger=True the triggerer starts the task "
                         f"(no worker): remove {name} or set start_from_trigger=False")


def start_trigger_args(operator: Any, mode: FinishMode) -> StartTriggerArgs:
    """Airflow's ``StartTriggerArgs`` for this task; raises ``PodSpecError`` naming every argument that cannot go."""
    problems = start_problems(operator)
    kwargs: dict[str, Any] = {}
    for name in ARGUMENT_NAMES:
        attribute = _AS_GIVEN.get(name, name)
        value = None if attribute is None else getattr(operator, attribute)
        if name in _NO_PYTHON or value == _SIGNATURE[name].default or (name == "secrets" and not value):
            continue
        try:
            kwargs[name] = _json(name, value)
        except PodSpecError as error:
            problems += error.problems
    if problems:
        raise PodSpecError(problems)
    kwargs["finish_in_triggerer"], kwargs["finish_reason"] = mode.in_triggerer, mode.reason
    if operator.execution_timeout is not None:
        kwargs["execution_timeout"] = operator.execution_timeout.total_seconds()
    return StartTriggerArgs(trigger_cls=TRIGGER_CLASSPATH, trigger_kwargs=kwargs, next_method=RESUME_METHOD)


def _json(name: str, value: Any) -> Any:
    """``value`` as the JSON the trigger row holds, or a ``PodSpecError`` saying why it cannot be."""
    if holds_xcom_arg(value):
        raise PodSpecError([Problem(name, (
            f"{name}={value!r} is an XComArg, which Airflow does not resolve for a task started from the triggerer: "
            f"use a template such as \"{{{{ ti.xcom_pull(task_ids='...') }}}}\" or set start_from_trigger=False"))])
    if name == "secrets":
        value = [secret_fields(secret) for secret in value]
    elif name == "env_vars" and isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        value = [{"name": k, "value": v} for k, v in value.items()]
    try:
        data = plain(value)
        json.dumps(data)
    except (TypeError, ValueError, AttributeError) as error:
        raise PodSpecError([Problem(name, (
            f"{name}={value!r} cannot travel to the triggerer as JSON ({error}); with start_from_trigger=True every "
            "argument must be plain data or kubernetes.client models"))]) from None
    return data


def secret_fields(secret: Any) -> dict[str, Any]:
    """A ``Secret`` (ours or the provider's) as the keyword arguments of ours."""
    fields = ("deploy_type", "deploy_target", "secret", "key", "items")
    return {f: plain(getattr(secret, f, None)) for f in fields}
