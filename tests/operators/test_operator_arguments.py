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
