"""``start_from_trigger=True`` at DAG parse: what may start from the triggerer, and that the triggerer builds the pod
``execute`` would.

The trigger kwargs go through JSON exactly as the trigger row stores them, then ``PodStartTrigger`` rebuilds the
operator from them; the pod it builds must equal the pod the DAG's own operator builds for the same try. Starting for
real (scheduler → triggerer, templates rendered there, restarts) is in ``tests/e2e/test_finish_in_triggerer.py``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from airflow.sdk import DAG
from kubernetes.client import ApiClient
from kubernetes.client import models as k8s

from airflow_kpo_deferrable import KubernetesPodOperator, Secret
from airflow_kpo_deferrable.podspec import PodSpecError
from airflow_kpo_deferrable.podspec.names import try_suffix
from airflow_kpo_deferrable.triggers.start import PodStartTrigger
from tests.support.podspec import IDENTITY

EXTRAS = {"namespace": "from-connection", "xcom_sidecar_container_image": "alpine:3.20"}

ARGUMENT_SETS: dict[str, dict[str, Any]] = {
    "minimal": {"image": "busybox:1.36"},
    "models and dicts": {
        "image": "busybox:1.36",
        "cmds": ["sh", "-c"],
        "arguments": ["echo hi"],
        "env_vars": {"A": "1", "B": "two"},
        "labels": {"team": "data"},
        "annotations": {"note": "x"},
        "container_resources": k8s.V1ResourceRequirements(requests={"cpu": "100m"}, limits={"memory": "1Gi"}),
        "volumes": [k8s.V1Volume(name="cache", empty_dir=k8s.V1EmptyDirVolumeSource())],
        "volume_mounts": [k8s.V1VolumeMount(name="cache", mount_path="/cache")],
        "tolerations": [k8s.V1Toleration(key="gpu", operator="Exists")],
        "node_selector": {"disk": "ssd"},
        "security_context": {"runAsUser": 1000},
        "init_containers": [k8s.V1Container(name="init", image="busybox:1.36", command=["true"])],
        "skip_on_exit_code": 42,
        "do_xcom_push": True,
        "termination_grace_period": 5,
        "random_name_suffix": True,
    },
    "secrets and templates": {
        "image": "busybox:1.36",
        "name": "My_Pod",
        "namespace": "jobs",
        "secrets": [Secret("env", "token", "api", "key"), Secret("volume", "/etc/creds", "creds")],
        "env_vars": [k8s.V1EnvVar(name="X", value_from=k8s.V1EnvVarSource(
            field_ref=k8s.V1ObjectFieldSelector(field_path="metadata.name")))],
        "pod_template_dict": {"spec": {"containers": [{"name": "base", "image": "ignored"}],
                                       "priorityClassName": "low"}},
        "full_pod_spec": k8s.V1Pod(metadata=k8s.V1ObjectMeta(labels={"from": "full"})),
        "execution_timeout": timedelta(minutes=5),
        "random_name_suffix": False,
    },
}


def through_the_trigger_row(operator: KubernetesPodOperator) -> KubernetesPodOperator:
    kwargs = json.loads(json.dumps(operator.start_trigger_args.trigger_kwargs))
    return PodStartTrigger(**kwargs).operator(operator.task_id)


@pytest.mark.parametrize("arguments", ARGUMENT_SETS.values(), ids=ARGUMENT_SETS.keys())
def test_the_triggerer_builds_the_pod_execute_would(arguments: dict[str, Any]) -> None:
    operator = KubernetesPodOperator(task_id=IDENTITY.task_id, start_from_trigger=True, **arguments)
    assert operator.start_from_trigger is True
    assert operator.start_trigger_args.next_method == "resume"
    rebuilt = through_the_trigger_row(operator)
    suffix = try_suffix(IDENTITY)
    api = ApiClient()
    ours = api.sanitize_for_serialization(operator.pod_for(IDENTITY, EXTRAS, name_suffix=suffix))
    theirs = api.sanitize_for_serialization(rebuilt.pod_for(IDENTITY, EXTRAS, name_suffix=suffix))
    assert theirs == ours
    assert rebuilt.execution_timeout == operator.execution_timeout


def test_only_arguments_that_differ_from_their_defaults_travel() -> None:
    operator = KubernetesPodOperator(task_id="t", image="busybox:1.36", start_from_trigger=True)
    kwargs = operator.start_trigger_args.trigger_kwargs
    assert kwargs["image"] == "busybox:1.36"
    assert "get_logs" not in kwargs and "namespace" not in kwargs and "callbacks" not in kwargs
    assert set(kwargs) >= {"finish_in_triggerer", "finish_reason"}


def test_the_finish_mode_is_decided_at_parse_and_carried() -> None:
    operator = KubernetesPodOperator(task_id="t", image="busybox:1.36", do_xcom_push=True, start_from_trigger=True)
    kwargs = operator.start_trigger_args.trigger_kwargs
    assert kwargs["finish_in_triggerer"] is False and kwargs["finish_reason"] == operator.finish_mode().reason


def test_without_start_from_trigger_nothing_changes() -> None:
    operator = KubernetesPodOperator(task_id="t", image="busybox:1.36")
    assert operator.start_from_trigger is False and operator.start_trigger_args is None


def test_an_xcom_arg_is_refused_naming_the_argument() -> None:
    """A worker start takes it (resolved when rendered, as in the provider); the triggerer's start cannot."""
    with DAG(dag_id="d", schedule=None, start_date=datetime(2026, 1, 1)):
        upstream = KubernetesPodOperator(task_id="up", image="busybox:1.36", do_xcom_push=True)
        on_a_worker = KubernetesPodOperator(task_id="w", image="busybox:1.36", arguments=upstream.output)
        assert on_a_worker.upstream_task_ids == {"up"}
        with pytest.raises(PodSpecError) as caught:
            KubernetesPodOperator(task_id="t", image="busybox:1.36", arguments=upstream.output,
                                  start_from_trigger=True)
    text = str(caught.value)
    assert "arguments=" in text and "XComArg" in text and "ti.xcom_pull" in text and "start_from_trigger=False" in text


def test_a_mapped_task_starts_on_a_worker() -> None:
    """Airflow takes ``start_trigger_args`` of a mapped task from the class, which has none: the scheduler then
    queues it for a worker, which creates the pod as without ``start_from_trigger``."""
    with DAG(dag_id="d", schedule=None, start_date=datetime(2026, 1, 1)):
        mapped = KubernetesPodOperator.partial(task_id="m", image="busybox:1.36", start_from_trigger=True).expand(
            arguments=[["a"], ["b"]])
    assert mapped.start_trigger_args is None


# (id, arguments, fragments the message must contain): each refused at parse, no pod
REFUSED: list[tuple[str, dict[str, Any], list[str]]] = [
    ("not a bool", {"start_from_trigger": "yes"}, ["start_from_trigger='yes'", "True or False"]),
    ("not deferrable", {"deferrable": False}, ["start_from_trigger=True needs deferrable=True"]),
    ("a progress callback", {"progress_callback": print}, ["progress_callback is set", "Python code",
                                                          "start_from_trigger=False"]),
    ("a log formatter", {"log_formatter": lambda c, line: line}, ["log_formatter is set"]),
    ("an on_execute_callback", {"on_execute_callback": print}, ["on_execute_callback is set", "runs on a worker"]),
    ("a pod template file", {"pod_template_file": "/templates/pod.yaml"}, ["pod_template_file is set",
                                                                           "pod_template_dict"]),
    ("a value that is no JSON", {"trigger_kwargs": {"when": object()}}, ["trigger_kwargs=",
                                                                         "cannot travel to the triggerer as JSON"]),
]


@pytest.mark.parametrize(("arguments", "fragments"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_what_cannot_start_from_the_triggerer_is_refused_at_parse(
    arguments: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(PodSpecError) as caught:
        KubernetesPodOperator(**{"task_id": "t", "image": "busybox:1.36", "start_from_trigger": True} | arguments)
    text = str(caught.value)
    assert len(caught.value.problems) == 1, text
    for fragment in fragments:
        assert fragment in text, text
