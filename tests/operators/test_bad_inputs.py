"""Bad inputs: each is refused before any pod exists, with a message naming the argument, the value and the fix.

``AT_PARSE``: refused when the DAG file is parsed (``__init__``), since the value needs no rendering.
``AT_RUN``: values that only exist after rendering (or in a template file, or a kubeconfig): ``execute`` against an
emulator refuses them, and the emulator saw no ``create pods``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import models as k8s

from airflow_kpo_deferrable import KubernetesPodOperator, Secret
from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.hooks.kubernetes import ClusterConfigError
from airflow_kpo_deferrable.podspec import PodSpecError
from tests.support.operators import operator_on, render_and_execute

IMAGE = "busybox:1.36"

# (id, arguments, fragments the message must contain)
AT_PARSE: list[tuple[str, dict[str, Any], list[str]]] = [
    # timing
    (
        "startup timeout as a string",
        {"startup_timeout_seconds": "60"},
        ["startup_timeout_seconds='60'", "startup_timeout_seconds=60"],
    ),
    ("startup timeout of 0", {"startup_timeout_seconds": 0}, ["startup_timeout_seconds=0", "greater than 0"]),
    ("negative startup timeout", {"startup_timeout_seconds": -5}, ["startup_timeout_seconds=-5", "greater than 0"]),
    ("startup timeout as a bool", {"startup_timeout_seconds": True}, ["startup_timeout_seconds=True", "not bool"]),
    ("fractional startup timeout", {"startup_timeout_seconds": 1.5}, ["startup_timeout_seconds=1.5", "whole number"]),
    (
        "schedule timeout as a string",
        {"schedule_timeout_seconds": "120"},
        ["schedule_timeout_seconds='120'", "or None"],
    ),
    ("schedule timeout of 0", {"schedule_timeout_seconds": 0}, ["schedule_timeout_seconds=0", "greater than 0"]),
    ("negative schedule timeout", {"schedule_timeout_seconds": -1}, ["schedule_timeout_seconds=-1", "greater than 0"]),
    ("poll interval of 0", {"poll_interval": 0}, ["poll_interval=0", "greater than 0"]),
    ("poll interval as a string", {"poll_interval": "2"}, ["poll_interval='2'", "number of seconds"]),
    ("startup check interval of 0", {"startup_check_interval_seconds": 0}, ["startup_check_interval_seconds=0"]),
    (
        "negative status polling interval",
        {"base_container_status_polling_interval": -1},
        ["base_container_status_polling_interval=-1", "greater than 0"],
    ),
    ("logging interval of 0", {"logging_interval": 0}, ["logging_interval=0", "greater than 0"]),
    ("logging interval as a string", {"logging_interval": "30"}, ["logging_interval='30'", "logging_interval=30"]),
    # behaviour
    ("skip exit code as a string", {"skip_on_exit_code": "100"}, ["skip_on_exit_code='100'", "exit code (int)"]),
    ("skip exit codes with a string", {"skip_on_exit_code": [100, "x"]}, ["skip_on_exit_code=[100, 'x']", "0-255"]),
    ("skip exit code out of range", {"skip_on_exit_code": 300}, ["skip_on_exit_code=300", "0-255"]),
    ("unknown on_finish_action", {"on_finish_action": "delete"}, ["on_finish_action='delete'", "delete_succeeded_pod"]),
    ("unknown on_kill_action", {"on_kill_action": "delete_succeeded_pod"}, ["on_kill_action=", "delete_pod, keep_pod"]),
    ("get_logs as a string", {"get_logs": "yes"}, ["get_logs='yes'", "True or False"]),
    ("deferrable as a string", {"deferrable": "true"}, ["deferrable='true'", "True or False"]),
    ("random_name_suffix None", {"random_name_suffix": None}, ["random_name_suffix=None", "True or False"]),
    ("in_cluster as a string", {"in_cluster": "false"}, ["in_cluster='false'", "True or False"]),
    ("durable as a string", {"durable": "yes"}, ["durable='yes'", "True or False"]),
    ("container_logs as a number", {"container_logs": 5}, ["container_logs=5", "container name"]),
    ("container_logs as a dict", {"container_logs": {"a": 1}}, ["container_logs={'a': 1}", "list of names"]),
    ("init_container_logs numbers", {"init_container_logs": [1, 2]}, ["init_container_logs=[1, 2]", "True for all"]),
    ("callbacks instance", {"callbacks": object()}, ["callbacks=", "the class, not an instance"]),
    ("progress_callback a string", {"progress_callback": "print"}, ["progress_callback='print'", "function"]),
    ("log_formatter a number", {"log_formatter": 42}, ["log_formatter=42", "function"]),
    ("trigger_kwargs a list", {"trigger_kwargs": ["a"]}, ["trigger_kwargs=['a']", "must be a dict"]),
    ("cluster_context a number", {"cluster_context": 5}, ["cluster_context=5", "non-empty string"]),
    ("config_file empty", {"config_file": " "}, ["config_file=' '", "non-empty string"]),
    # the pod
    ("no image", {"image": None}, ["image is required", "image='repository:tag'"]),
    ("uppercase image", {"image": "Busybox:1.36"}, ["image='Busybox:1.36'", "lowercase repository"]),
    ("image with a space", {"image": "python 3.12"}, ["image='python 3.12'", "no spaces"]),
    ("image a number", {"image": 3}, ["image must be a string", "python:3.12-slim"]),
    ("cmds a bare string", {"cmds": "echo hi"}, ["bare string 'echo hi'", "cmds=['echo', 'hi']"]),
    ("arguments a bare string", {"arguments": "-c print(1)"}, ["arguments", "bare string"]),
    ("a number in arguments", {"arguments": ["--retries", 3]}, ["arguments[1] is 3", "quote it"]),
    ("label key with a space", {"labels": {"bad key": "x"}}, ["labels key 'bad key'", "name part"]),
    ("label value too long", {"labels": {"team": "x" * 64}}, ["labels['team']", "at most 63"]),
    ("label value a number", {"labels": {"version": 3}}, ["labels['version'] = 3", "quote it: '3'"]),
    ("node selector None value", {"node_selector": {"pool": None}}, ["node_selector['pool'] is None", "write ''"]),
    ("annotation value a number", {"annotations": {"retries": 3}}, ["annotations['retries']", "must be a string"]),
    ("pull policy case", {"image_pull_policy": "always"}, ["image_pull_policy='always'", "did you mean 'Always'"]),
    ("dns policy case", {"dnspolicy": "clusterfirst"}, ["dnspolicy='clusterfirst'", "did you mean 'ClusterFirst'"]),
    (
        "termination message policy",
        {"termination_message_policy": "file"},
        ["termination_message_policy='file'", "did you mean 'File'"],
    ),
    ("env var name", {"env_vars": {"1ST": "x"}}, ["'1ST' is not a valid variable name", "MY_VAR"]),
    ("env var value a number", {"env_vars": {"RETRIES": 3}}, ["env_vars['RETRIES']", "quote it"]),
    ("cpu quantity", {"container_resources": {"limits": {"cpu": "1 core"}}}, ["limits.cpu", "'1 core'", "500m"]),
    (
        "request above limit",
        {"container_resources": {"limits": {"memory": "512Mi"}, "requests": {"memory": "1Gi"}}},
        ["requests.memory (1Gi) exceeds limits.memory (512Mi)"],
    ),
    ("hostname", {"hostname": "Worker_1"}, ["hostname='Worker_1'", "DNS label"]),
    ("namespace with a space", {"namespace": "Data Jobs"}, ["namespace='Data Jobs'", "DNS-1123 label"]),
    ("namespace too long", {"namespace": "a" * 64}, ["namespace='aaaa", "DNS-1123 label"]),
    ("pod name", {"name": "My Pod"}, ["name='My Pod'", "not a valid pod name"]),
    ("configmaps a bare string", {"configmaps": "etl-env"}, ["configmaps must be a list", "configmaps=['etl-env']"]),
    ("configmap name", {"configmaps": ["Etl Env"]}, ["configmaps[0]='Etl Env'", "ConfigMap"]),
    ("secrets of strings", {"secrets": ["db"]}, ["secrets[0] is 'db', not a Secret", "airflow_kpo_deferrable.Secret"]),
    ("hostnetwork a string", {"hostnetwork": "yes"}, ["hostnetwork='yes'", "True or False"]),
    ("automount token a string", {"automount_service_account_token": "false"}, ["automount_service_account_token="]),
    ("do_xcom_push a string", {"do_xcom_push": "yes"}, ["do_xcom_push='yes'", "True or False"]),
    ("port not a number", {"ports": [{"containerPort": "http"}]}, ["ports", "'http'"]),
    ("dns_config misspelt", {"dns_config": {"nameserver": ["1.1.1.1"]}}, ["dns_config.nameserver", "unknown field"]),
    (
        "xcom sidecar security context misspelt",
        {"xcom_sidecar_container_security_context": {"runAsUsr": 1}},
        ["xcom_sidecar_container_security_context.runAsUsr", "unknown field"],
    ),
    ("active deadline 0", {"active_deadline_seconds": 0}, ["active_deadline_seconds=0", ">= 1"]),
    ("negative grace period", {"termination_grace_period": -1}, ["termination_grace_period=-1", ">= 0"]),
    ("base container name", {"base_container_name": "Main"}, ["base_container_name='Main'", "lowercase"]),
    ("template dict kind", {"pod_template_dict": {"kind": "Deployment"}}, ["kind is 'Deployment'", "kind: Pod"]),
    ("full_pod_spec a number", {"full_pod_spec": 5}, ["full_pod_spec: expected a V1Pod", "got int"]),
    # the API server's rules on the whole pod
    (
        "toleration operator Equals",
        {"tolerations": [{"key": "gpu", "operator": "Equals", "value": "x"}]},
        ["tolerations[0].operator='Equals'", "'Exists' or 'Equal'"],
    ),
    (
        "affinity operator Equals",
        {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]}
                        ]
                    }
                }
            }
        },
        ["matchExpressions[0].operator='Equals'", "In, NotIn, Exists, DoesNotExist, Gt, Lt"],
    ),
    (
        "duplicate volume names",
        {"volumes": [k8s.V1Volume(name="d", empty_dir={}), k8s.V1Volume(name="d", empty_dir={})]},
        ["2 volumes are named 'd'", "unique"],
    ),
    (
        "init container without an image",
        {"init_containers": [k8s.V1Container(name="init", command=["true"])]},
        ["init container 'init' has no image", "give it one"],
    ),
    ("container_logs naming no container", {"container_logs": "sidecar"}, ["container_logs='sidecar'", "['base']"]),
    (
        "init_container_logs naming no init container",
        {"init_container_logs": ["setup"]},
        ["init_container_logs=['setup']", "init containers are []"],
    ),
    (
        "mount without a volume",
        {"volume_mounts": [k8s.V1VolumeMount(name="cache", mount_path="/cache")]},
        ["volume mount 'cache'", "no volume of that name"],
    ),
]


@pytest.mark.parametrize(("arguments", "fragments"), [c[1:] for c in AT_PARSE], ids=[c[0] for c in AT_PARSE])
def test_refused_at_dag_parse(arguments: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(PodSpecError) as caught:
        KubernetesPodOperator(**{"task_id": "t", "image": IMAGE} | arguments)
    text = str(caught.value)
    assert len(caught.value.problems) == 1, text
    for fragment in fragments:
        assert fragment in text


@pytest.mark.parametrize(
    ("build", "fragments"),
    [
        (lambda: Secret("file", "/x", "s"), ["deploy_type='file'", "'env' or 'volume'"]),
        (lambda: Secret("env", None, "s", key="k"), ["key='k'", "needs a deploy_target"]),
    ],
    ids=["secret deploy type", "secret key without a target"],
)
def test_bad_secrets_are_refused_when_made(build: Any, fragments: list[str]) -> None:
    with pytest.raises(PodSpecError) as caught:
        build()
    assert all(fragment in str(caught.value) for fragment in fragments)


def test_every_problem_of_a_task_is_reported_at_once() -> None:
    with pytest.raises(PodSpecError) as caught:
        KubernetesPodOperator(
            task_id="t", image="Bad Image", startup_timeout_seconds="60", poll_interval=0, labels={"a b": "c"}
        )
    assert [p.argument for p in caught.value.problems] == [
        "startup_timeout_seconds",
        "poll_interval",
        "image",
        "labels",
    ]


def test_templated_values_wait_for_rendering() -> None:
    KubernetesPodOperator(task_id="t", image="{{ params.image }}", namespace="{{ params.ns }}", cmds="{{ params.c }}")


TEMPLATE_INIT_WITHOUT_IMAGE = """\
apiVersion: v1
kind: Pod
spec:
  initContainers: [{name: setup, command: ["true"]}]
  containers: [{name: base, image: busybox:1.36}]
"""
TEMPLATE_WITH_VOLUME = """\
spec:
  volumes: [{name: data, emptyDir: {}}]
  tolerations: [{key: gpu, operator: Equals}]
  containers: [{name: base, image: busybox:1.36}]
"""

# (id, arguments, params to render with, template file text or None, fragments)
AT_RUN: list[tuple[str, dict[str, Any], dict[str, Any], str | None, list[str]]] = [
    (
        "arguments rendered to the text of a list",
        {"image": IMAGE, "arguments": "{{ params.args }}"},
        {"args": ["echo", "hi"]},
        None,
        ["arguments is the string \"['echo', 'hi']\"", "render_template_as_native_obj=True"],
    ),
    ("rendered image", {"image": "{{ params.image }}"}, {"image": "Bad Image"}, None, ["image='Bad Image'"]),
    (
        "rendered namespace",
        {"image": IMAGE, "namespace": "{{ params.ns }}"},
        {"ns": "Bad_NS"},
        None,
        ["namespace='Bad_NS'"],
    ),
    (
        "rendered label value",
        {"image": IMAGE, "labels": {"team": "{{ params.team }}"}},
        {"team": "data team"},
        None,
        ["labels['team'] = 'data team'", "letters, digits"],
    ),
    (
        "rendered env var name",
        {"image": IMAGE, "env_vars": {"{{ params.name }}": "1"}},
        {"name": "1X"},
        None,
        ["'1X' is not a valid variable name"],
    ),
    ("rendered cmds", {"image": IMAGE, "cmds": "{{ params.cmd }}"}, {"cmd": "echo hi"}, None, ["cmds=['echo', 'hi']"]),
    (
        "rendered cpu",
        {"image": IMAGE, "container_resources": {"limits": {"cpu": "{{ params.cpu }}"}}},
        {"cpu": "1 core"},
        None,
        ["'1 core' is not a Kubernetes quantity"],
    ),
    (
        "rendered hostname",
        {"image": IMAGE, "hostname": "{{ params.h }}"},
        {"h": "Bad_Host"},
        None,
        ["hostname='Bad_Host'"],
    ),
    (
        "rendered base container name",
        {"image": IMAGE, "base_container_name": "{{ params.b }}"},
        {"b": "Main"},
        None,
        ["base_container_name='Main'"],
    ),
    (
        "rendered configmaps",
        {"image": IMAGE, "configmaps": "{{ params.cm }}"},
        {"cm": "etl-env"},
        None,
        ["configmaps must be a list", "bare string 'etl-env'"],
    ),
    (
        "rendered template dict image",
        {"pod_template_dict": {"spec": {"containers": [{"name": "base", "image": "{{ params.i }}"}]}}},
        {"i": ""},
        None,
        ["no template gives container 'base' an image"],
    ),
    (
        "missing template file",
        {"pod_template_file": "/nonexistent/pod.yaml"},
        {},
        None,
        ["no file at '/nonexistent/pod.yaml'"],
    ),
    ("template file not YAML", {}, {}, "spec: [unclosed\n", ["is not valid YAML (line 2, column 1"]),
    ("template file not a pod", {}, {}, "apiVersion: batch/v1\nkind: Job\n", ["kind is 'Job'"]),
    (
        "template init container without image",
        {},
        {},
        TEMPLATE_INIT_WITHOUT_IMAGE,
        ["init container 'setup' has no image"],
    ),
    (
        "template volume also in the arguments",
        {"volumes": [k8s.V1Volume(name="data", empty_dir={})], "tolerations": None},
        {},
        TEMPLATE_WITH_VOLUME,
        ["2 volumes are named 'data'", "tolerations[0].operator='Equals'"],
    ),
    (
        "container_logs naming no container of the template",
        {"container_logs": ["log-shipper"]},
        {},
        TEMPLATE_INIT_WITHOUT_IMAGE.replace(
            'initContainers: [{name: setup, command: ["true"]}]', "restartPolicy: Never"
        ),
        ["container_logs=['log-shipper']", "containers are ['base']"],
    ),
]


@pytest.mark.parametrize(
    ("arguments", "params", "template", "fragments"), [c[1:] for c in AT_RUN], ids=[c[0] for c in AT_RUN]
)
def test_refused_before_any_create(
    emulator: Emulator,
    tmp_path: Path,
    arguments: dict[str, Any],
    params: dict[str, Any],
    template: str | None,
    fragments: list[str],
) -> None:
    if template is not None:
        (tmp_path / "pod.yaml").write_text(template)
        arguments = {"pod_template_file": str(tmp_path / "pod.yaml"), **arguments}
    operator = operator_on(emulator, params, **arguments)
    emulator.reset_counters()
    with pytest.raises(PodSpecError) as caught:
        render_and_execute(operator, params)
    text = str(caught.value)
    for fragment in fragments:
        assert fragment in text
    if template is not None and "YAML" in text:
        assert len(caught.value.problems) == 1  # one YAML error is one problem, not a bullet per line
    assert "create pods" not in emulator.counters()


def test_cluster_context_not_in_the_kubeconfig(emulator: Emulator) -> None:
    operator = operator_on(emulator, image=IMAGE, cluster_context="prod")
    emulator.reset_counters()
    with pytest.raises(ClusterConfigError) as caught:
        render_and_execute(operator)
    assert "cluster_context='prod' is not a context of the kubeconfig" in str(caught.value)
    assert "its contexts are [" in str(caught.value) and "set cluster_context" in str(caught.value)
    assert "create pods" not in emulator.counters()


def test_a_good_pod_still_runs(emulator: Emulator) -> None:
    """The same path with good arguments creates the pod and succeeds (so the refusals above are not vacuous)."""
    operator = operator_on(emulator, image=IMAGE, cmds=["sh", "-c", "echo hi"], labels={"flag": None})
    emulator.reset_counters()
    render_and_execute(operator)
    assert emulator.counters().get("create pods") == 1


def test_the_suite_has_enough_bad_inputs() -> None:
    assert len(AT_PARSE) + len(AT_RUN) + 3 >= 60
