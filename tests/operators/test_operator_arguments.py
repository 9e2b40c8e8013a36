"""Bad operator arguments fail with a clear message before any pod exists (no cluster is reachable here at all)."""

from __future__ import annotations

import pytest

from airflow_kpo_deferrable import KubernetesPodOperator
from airflow_kpo_deferrable.podspec import PodSpecError


def test_unknown_on_finish_action_names_the_choices() -> None:
    with pytest.raises(
        ValueError, match="on_finish_action='delete' is not one of delete_pod, delete_succeeded_pod, delete_active_pod"
    ):
        KubernetesPodOperator(task_id="t", image="busybox", on_finish_action="delete")


def test_pod_arguments_are_validated_together_at_dag_parse() -> None:
    with pytest.raises(PodSpecError) as error:
        KubernetesPodOperator(task_id="t", image="busybox", cmds="echo hi", labels={"bad key": "x"})
    assert len(error.value.problems) == 2
    assert "cmds" in str(error.value) and "labels" in str(error.value)


def test_templated_values_are_checked_after_rendering_only() -> None:
    operator = KubernetesPodOperator(task_id="t", image="{{ params.image }}", cmds="{{ params.cmds }}")
    operator.image, operator.cmds = "Bad Image", "echo hi"  # what rendering may produce
    with pytest.raises(PodSpecError) as error:
        operator.pod_arguments()
    assert {p.argument for p in error.value.problems} == {"image", "cmds"}


def test_provider_defaults_are_kept() -> None:
    operator = KubernetesPodOperator(task_id="t", image="busybox")
    assert operator.kubernetes_conn_id == "kubernetes_default"
    assert (operator.on_finish_action, operator.startup_timeout_seconds, operator.deferrable) == (
        "delete_pod",
        120,
        True,
    )
    assert (operator.do_xcom_push, operator.durable, operator.reattach_on_restart) == (False, True, True)
    assert operator.pod_arguments().image == "busybox"


def test_models_and_env_names_in_templated_fields_are_rendered() -> None:
    from airflow.sdk import DAG
    from kubernetes.client import models as k8s

    from tests.support.operators import task_context

    params = {"name": "STAGE", "value": "prod", "claim": "etl-data", "cpu": "500m"}
    with DAG("render", schedule=None, params=params):
        operator = KubernetesPodOperator(
            task_id="t",
            image="busybox:1.36",
            env_vars={"{{ params.name }}": "{{ params.value }}"},
            volumes=[
                k8s.V1Volume(
                    name="data",
                    persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name="{{ params.claim }}"),
                )
            ],
            container_resources=k8s.V1ResourceRequirements(requests={"cpu": "{{ params.cpu }}"}),
        )
    operator.render_template_fields(task_context(params))
    pod = operator.build_pod_request_obj()
    container = pod.spec.containers[0]
    assert [(e.name, e.value) for e in container.env] == [("STAGE", "prod")]
    assert pod.spec.volumes[0].persistent_volume_claim.claim_name == "etl-data"
    assert container.resources.requests == {"cpu": "500m"}


def test_deprecated_arguments_warn_and_map_like_the_provider() -> None:
    from airflow.exceptions import AirflowProviderDeprecationWarning

    with pytest.warns(AirflowProviderDeprecationWarning, match="reattach_on_restart"):
        operator = KubernetesPodOperator(task_id="t", image="busybox", reattach_on_restart=False)
    assert (operator.durable, operator.reattach_on_restart) == (False, False)
    with pytest.warns(AirflowProviderDeprecationWarning, match="is_delete_operator_pod"):
        operator = KubernetesPodOperator(task_id="t", image="busybox", is_delete_operator_pod=False)
    assert operator.on_finish_action == "delete_pod"
    with pytest.warns(AirflowProviderDeprecationWarning):
        both = KubernetesPodOperator(task_id="t", image="busybox", durable=True, reattach_on_restart=False)
    assert (both.durable, both.reattach_on_restart) == (True, True)  # durable wins
