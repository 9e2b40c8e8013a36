"""Many long pods at once: each mapped task defers while its pod runs, so a few worker slots serve them all.

Trigger it with ``{"pods": 50, "seconds": 600}`` to try the scale this package is built for; the triggerer keeps one
shared watch for all of them instead of polling each pod.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param, task

from airflow_kpo_deferrable import KubernetesPodOperator

with DAG(
    dag_id="example_kpo_fanout",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "pods": Param(10, type="integer", minimum=1, description="How many pods to run at once"),
        "seconds": Param(60, type="integer", minimum=1, description="How long each pod runs"),
    },
    tags=["example", "kubernetes"],
):

    @task
    def shards(params: dict | None = None) -> list[list[str]]:
        pods, seconds = params["pods"], params["seconds"]
        return [[f"import time; time.sleep({seconds}); print('shard {i} done')"] for i in range(pods)]

    KubernetesPodOperator.partial(
        task_id="long_pod",
        name="long-pod",
        # No namespace: the connection's "namespace" extra decides (kpo-demo in docker-compose.yaml), else the
        # kubeconfig context's, else "default".
        image="python:3.12-slim",
        cmds=["python", "-c"],
        labels={"app": "airflow"},
    ).expand(arguments=shards())
