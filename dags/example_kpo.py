"""The seed example: one pod prints a line; the task defers while it runs, then copies its log and deletes it.

Moving from the official provider is a one-line import change: this DAG differs from the provider's example only in
the ``from airflow_kpo_deferrable import ...`` line.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_kpo_deferrable import KubernetesPodOperator

with DAG(
    dag_id="example_kpo_hello",
    schedule="@once",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "kubernetes"],
):
    KubernetesPodOperator(
        task_id="run_hello_pod",
        name="hello-pod",
        namespace="default",
        image="python:3.9-slim",
        cmds=["python", "-c"],
        arguments=['print("Hello from KubernetesPodOperator")'],
        labels={"app": "airflow"},
        get_logs=True,
        deferrable=True,
    )
