"""Helpers for running the operator in-process: a task-instance context, and operators aimed at an emulator."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from airflow.sdk import DAG

from airflow_kpo_deferrable import KubernetesPodOperator
from airflow_kpo_deferrable.emulator import Emulator


def task_context(params: dict[str, Any] | None = None, **ti: Any) -> dict[str, Any]:
    """What ``execute`` reads from Airflow's context: the task instance's identity, XCom pushes recorded."""
    pushed: dict[str, Any] = {}
    instance = SimpleNamespace(
        dag_id="bad_inputs", task_id="t", run_id="manual__2025-01-01T00:00:00+00:00", map_index=-1, try_number=1
    )
    instance.__dict__.update(ti)
    instance.xcom_push = lambda key, value: pushed.__setitem__(key, value)
    instance.pushed = pushed
    return {"ti": instance, "run_id": instance.run_id, "params": params or {}}


def operator_on(emulator: Emulator, params: dict[str, Any] | None = None, **arguments: Any) -> KubernetesPodOperator:
    """An operator in a DAG with ``params``, talking to ``emulator`` (no connection), waiting on the worker."""
    with DAG("bad_inputs", schedule=None, params=params or {}):
        return KubernetesPodOperator(
            **{
                "task_id": "t",
                "kubernetes_conn_id": None,
                "config_file": str(emulator.kubeconfig_path),
                "deferrable": False,
                "random_name_suffix": False,
                **arguments,
            }
        )


def render_and_execute(operator: KubernetesPodOperator, params: dict[str, Any] | None = None) -> Any:
    """Render the templated fields with ``params`` as Airflow's task runner does, then ``execute``."""
    context = task_context(params)
    operator.render_template_fields(context)
    return operator.execute(context)
