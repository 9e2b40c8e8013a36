"""Operator arguments → pod: accepted forms, every validation rule's message, names, identity labels, template layers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import (
    ApiClient,
    V1Affinity,
    V1Container,
    V1EnvVar,
    V1LocalObjectReference,
    V1NodeAffinity,
    V1NodeSelector,
    V1NodeSelectorRequirement,
    V1NodeSelectorTerm,
    V1ObjectMeta,
    V1Pod,
    V1PodSecurityContext,
    V1PodSpec,
    V1ResourceRequirements,
    V1Toleration,
    V1Volume,
    V1VolumeMount,
)

from airflow_kpo_deferrable.podspec import (
    MANAGED_BY_LABEL,
    MANAGED_BY_SELECTOR,
    PYDANTIC_MODELS,
    PodIdentity,
    PodArguments,
    PodSpecError,
    build_pod,
    identity_labels,
    pod_dict,
    pod_name,
)

# Kubernetes' own rules, written out independently of the module under test.
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

IDENTITY = PodIdentity(
    dag_id="etl", task_id="load", run_id="scheduled__2025-03-01T00:00:00+00:00", map_index=-1, try_number=2
)


def request(**arguments: Any) -> PodArguments:
    """The way the operator builds it: every field passed, unset ones as None."""
    values: dict[str, Any] = dict.fromkeys(PodArguments.model_fields)
    values["base_container_name"] = "base"
    return PodArguments(**values | arguments)


def base_container(pod: dict[str, Any], name: str = "base") -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == name)


# -- accepted forms ------------------------------------------------------------------------------------------------

AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["batch"]}]}]
        }
    }
}
# (argument, forms that must all normalise to `expected`, expected)
FORMS = [
    (
        "env_vars",
        [
            {"A": "1", "B": "x"},
            [V1EnvVar(name="A", value="1"), V1EnvVar(name="B", value="x")],
            [{"name": "A", "value": "1"}, {"name": "B", "value": "x"}],
        ],
        [{"name": "A", "value": "1"}, {"name": "B", "value": "x"}],
    ),
    (
        "container_resources",
        [
            V1ResourceRequirements(limits={"cpu": "1", "memory": "1Gi"}, requests={"cpu": "500m"}),
            {"limits": {"cpu": 1, "memory": "1Gi"}, "requests": {"cpu": "500m"}},
        ],
        {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}},
    ),
    (
        "volume_mounts",
        [
            [V1VolumeMount(name="data", mount_path="/data", read_only=True)],
            [{"name": "data", "mountPath": "/data", "readOnly": True}],
            [{"name": "data", "mount_path": "/data", "read_only": True}],
        ],
        [{"name": "data", "mountPath": "/data", "readOnly": True}],
    ),
    (
        "tolerations",
        [
            [V1Toleration(key="dedicated", operator="Equal", value="batch", effect="NoSchedule")],
            [{"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}],
        ],
        [{"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}],
    ),
    (
        "affinity",
        [
            V1Affinity(
                node_affinity=V1NodeAffinity(
                    required_during_scheduling_ignored_during_execution=V1NodeSelector(
                        node_selector_terms=[
                            V1NodeSelectorTerm(
                                match_expressions=[
                                    V1NodeSelectorRequirement(key="pool", operator="In", values=["batch"])
                                ]
                            )
                        ]
                    )
                )
            ),
            AFFINITY,
        ],
        AFFINITY,
    ),
    (
        "image_pull_secrets",
        ["regcred, other", ["regcred", "other"], [V1LocalObjectReference(name="regcred"), {"name": "other"}]],
        [{"name": "regcred"}, {"name": "other"}],
    ),
    (
        "security_context",
        [V1PodSecurityContext(run_as_user=1000, fs_group=2000), {"runAsUser": 1000, "fsGroup": 2000}],
        {"runAsUser": 1000, "fsGroup": 2000},
    ),
    (
        "init_containers",
        [
            [V1Container(name="init", image="busybox:1.36", command=["true"])],
            [{"name": "init", "image": "busybox:1.36", "command": ["true"]}],
        ],
        [{"name": "init", "image": "busybox:1.36", "command": ["true"]}],
    ),
]


@pytest.mark.parametrize(("argument", "forms", "expected"), FORMS, ids=[f[0] for f in FORMS])
def test_every_accepted_form_normalises_to_api_json(argument: str, forms: list, expected: Any) -> None:
    if not PYDANTIC_MODELS:  # kubernetes < 37 (the provider's pin): plain model classes read camelCase keys only
        forms = [f for f in forms if not (isinstance(f, list) and f and isinstance(f[0], dict) and "mount_path" in f[0])]
    extra = {"volumes": [{"name": "data", "emptyDir": {}}]} if argument == "volume_mounts" else {}
    for form in forms:
        assert getattr(request(image="busybox:1.36", **{argument: form}, **extra), argument) == expected


def test_empty_arguments_mean_not_given() -> None:
    made = request(image="busybox", cmds=[], env_vars={}, labels={}, volumes=[])
    assert (made.cmds, made.env_vars, made.labels, made.volumes) == (None, None, None, None)


def test_user_objects_are_not_modified() -> None:
    resources = {"limits": {"cpu": 1}}
    request(image="busybox", container_resources=resources)
    assert resources == {"limits": {"cpu": 1}}


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "python:3.12-slim",
        "ghcr.io/acme/etl:1.2.3",
        "localhost:5000/team/app",
        "registry.example.com:443/a/b_c/d@sha256:" + "0f" * 32,
        "quay.io/org/app:v1.0@sha256:" + "ab" * 32,
        "my-registry.local/ns/image-name:Tag_1",
    ],
)
def test_valid_images(image: str) -> None:
    assert request(image=image).image == image


# -- validation ----------------------------------------------------------------------------------------------------

# (id, arguments, fragments the message must contain)
INVALID = [
    ("no image", {}, ["image is required", "image="]),
    ("uppercase image", {"image": "Busybox:1.36"}, ["'Busybox:1.36'", "not a valid image reference", "lowercase"]),
    ("image with a space", {"image": "python 3.12"}, ["'python 3.12'", "no spaces"]),
    ("empty image", {"image": "  "}, ["image is empty"]),
    (
        "cmds as a bare string",
        {"cmds": "echo hello"},
        ["cmds", "bare string 'echo hello'", "common mistake", "cmds=['echo', 'hello']"],
    ),
    ("arguments as a bare string", {"arguments": "-c print(1)"}, ["arguments", "bare string"]),
    ("a number in arguments", {"arguments": ["--retries", 3]}, ["arguments[1] is 3", "quote it"]),
    ("label value too long", {"labels": {"team": "x" * 64}}, ["labels['team']", "at most 63", "64"]),
    ("label value characters", {"labels": {"owner": "jane@example.com"}}, ["'jane@example.com'", "letters, digits"]),
    ("label value not a string", {"labels": {"version": 3}}, ["labels['version']", "must be a string", "'3'"]),
    ("label key", {"labels": {"my label": "x"}}, ["labels key 'my label'", "name part"]),
    ("label key prefix", {"labels": {"Example.COM/team": "x"}}, ["'Example.COM/team'", "prefix", "DNS subdomain"]),
    ("node selector value", {"node_selector": {"pool": "batch jobs"}}, ["node_selector['pool']", "'batch jobs'"]),
    ("annotation key", {"annotations": {"/x": "y"}}, ["annotations key '/x'", "prefix"]),
    ("annotation value", {"annotations": {"retries": 3}}, ["annotations['retries']", "must be a string"]),
    (
        "pull policy",
        {"image_pull_policy": "always"},
        ["'always'", "Always, IfNotPresent, Never", "did you mean 'Always'"],
    ),
    ("env var name", {"env_vars": {"1ST": "x"}}, ["'1ST'", "not a valid variable name", "MY_VAR"]),
    ("env var value", {"env_vars": {"RETRIES": 3}}, ["env_vars['RETRIES']", "value 3", "quote it"]),
    ("env var list item", {"env_vars": [{"name": "A", "value": 1}]}, ["env_vars[0].value", "valid string"]),
    ("env vars as a string", {"env_vars": "A=1"}, ["env_vars must be a list", "bare string 'A=1'"]),
    (
        "cpu quantity",
        {"container_resources": {"limits": {"cpu": "1 core"}}},
        ["container_resources.limits.cpu", "'1 core'", "500m"],
    ),
    ("memory quantity", {"container_resources": {"requests": {"memory": "1GB"}}}, ["requests.memory", "'1GB'", "1Gi"]),
    (
        "request above limit",
        {"container_resources": {"limits": {"memory": "512Mi"}, "requests": {"memory": "1Gi"}}},
        ["requests.memory (1Gi) exceeds limits.memory (512Mi)"],
    ),
    (
        "unknown resources field",
        {"container_resources": {"limit": {"cpu": "1"}}},
        ["container_resources.limit", "unknown field 'limit'"],
    ),
    (
        "misspelt mount field",
        {"volume_mounts": [{"name": "d", "mountpath": "/d"}], "volumes": [{"name": "d", "emptyDir": {}}]},
        ["volume_mounts[0].mountpath", "unknown field"],
    ),
    (
        "mount without volume",
        {"volume_mounts": [{"name": "cache", "mountPath": "/cache"}]},
        ["'cache'", "no volume of that name", "volumes"],
    ),
    ("service account", {"service_account_name": "ETL_Runner"}, ["'ETL_Runner'", "lowercase DNS subdomain"]),
    ("base container name", {"base_container_name": "Main"}, ["base_container_name='Main'", "lowercase"]),
    ("active deadline", {"active_deadline_seconds": 0}, ["active_deadline_seconds=0", ">= 1"]),
    ("grace period", {"termination_grace_period": "30"}, ["termination_grace_period='30'", "whole number"]),
    ("toleration type", {"tolerations": {"key": "x"}}, ["tolerations must be a list", "V1Toleration"]),
    (
        "template file missing",
        {"pod_template_file": "/nonexistent/pod.yaml"},
        ["pod_template_file", "no file at '/nonexistent/pod.yaml'"],
    ),
    (
        "template dict kind",
        {"pod_template_dict": {"apiVersion": "apps/v1", "kind": "Deployment"}},
        ["pod_template_dict", "kind is 'Deployment'", "kind: Pod"],
    ),
    (
        "template dict field",
        {"pod_template_dict": {"spec": {"containers": [{"name": "base", "image": "x", "imagePulPolicy": "Always"}]}}},
        ["pod_template_dict.spec.containers[0].imagePulPolicy", "unknown field"],
    ),
    ("not an argument", {"imagee": "x"}, ["imagee: not a pod argument"]),
]


OLD_CLIENT_WORDING = [
    {"env_vars": [{"name": "A", "value": 1}]},
    {"volume_mounts": [{"name": "d", "mountpath": "/d"}], "volumes": [{"name": "d", "emptyDir": {}}]},
]


@pytest.mark.parametrize(("arguments", "fragments"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_arguments_are_explained(arguments: dict[str, Any], fragments: list[str]) -> None:
    if not PYDANTIC_MODELS and arguments in OLD_CLIENT_WORDING:
        pytest.skip("kubernetes < 37 models word this differently (1 becomes '1'; a missing field is named first)")
    arguments = {"image": "busybox:1.36"} | arguments if "image" not in arguments and arguments else arguments
    with pytest.raises(PodSpecError) as caught:
        pod_dict(request(**arguments), IDENTITY, name="p")
    assert isinstance(caught.value, ValueError)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(PodSpecError) as caught:
        request(
            image="Bad Image", cmds="ls -l", labels={"a": "b c"}, image_pull_policy="sometimes", env_vars={"A B": "1"}
        )
    assert len(caught.value.problems) == 5
    text = str(caught.value)
    assert text.startswith("5 invalid pod arguments:")
    for name in ("image=", "cmds", "labels", "image_pull_policy", "env_vars"):
        assert name in text


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_template_file_that_is_not_yaml_or_not_a_pod(tmp_path: Path) -> None:
    def build(text: str, file: str = "pod.yaml") -> None:
        pod_dict(request(pod_template_file=write(tmp_path / file, text)), IDENTITY, name="p")

    with pytest.raises(PodSpecError, match="is not valid YAML") as caught:
        build("spec: [unclosed\n")
    assert len(caught.value.problems) == 1 and "line 2, column 1" in str(caught.value)
    with pytest.raises(PodSpecError, match="holds list, not a Pod manifest"):
        build("- a\n- b\n")
    with pytest.raises(PodSpecError, match="kind is 'Job'"):
        build("apiVersion: batch/v1\nkind: Job\n")


# -- names and labels ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "task_id", "expected"),
    [
        (None, "load", "load"),
        (None, "Load_Customers.v2", "load-customers-v2"),
        (None, "__weird__", "weird"),
        (None, "___", "pod"),
        ("my-pod.v1", "ignored", "my-pod.v1"),
        (None, "t" * 100, "t" * 63),
        ("a" * 62 + "-b", "ignored", "a" * 62),
    ],
)
def test_pod_name_without_suffix(name: str | None, task_id: str, expected: str) -> None:
    assert pod_name(name, task_id, False) == expected


@pytest.mark.parametrize(
    ("name", "task_id"), [(None, "load_data"), (None, "x" * 200), ("my-pod", "t"), ("p" * 250, "t")]
)
def test_pod_name_with_suffix(name: str | None, task_id: str) -> None:
    first, second = pod_name(name, task_id, True), pod_name(name, task_id, True)
    assert first != second
    for made in (first, second):
        assert len(made) <= 63 and DNS_SUBDOMAIN.match(made)
        assert re.fullmatch(r".+-[a-z0-9]{8}", made)
        assert made[:-9] == (name or task_id.replace("_", "-"))[: len(made) - 9]


@pytest.mark.parametrize("name", ["My_Pod", "pod!", "-pod", "pod-", "a" * 254])
def test_invalid_user_pod_name(name: str) -> None:
    with pytest.raises(PodSpecError, match="not a valid pod name.*lowercase"):
        pod_name(name, "task", True)


def test_identity_labels() -> None:
    labels = identity_labels(IDENTITY)
    assert set(labels) == {"dag_id", "task_id", "run_id", "try_number", "kubernetes_pod_operator", MANAGED_BY_LABEL}
    assert labels["dag_id"] == "etl" and labels["task_id"] == "load" and labels["try_number"] == "2"
    assert labels["kubernetes_pod_operator"] == "True"
    assert MANAGED_BY_SELECTOR == f"{MANAGED_BY_LABEL}={labels[MANAGED_BY_LABEL]}"
    assert labels["run_id"].startswith("scheduled__2025-03-01T00")
    assert all(LABEL_VALUE.match(value) and len(value) <= 63 for value in labels.values())


def test_map_index_label_like_the_provider() -> None:
    mapped = identity_labels(PodIdentity("etl", "load", "r", map_index=0, try_number=1))
    assert mapped["map_index"] == "0"
    assert "map_index" not in identity_labels(PodIdentity("etl", "load", "r", map_index=-1, try_number=1))


def test_identity_label_values_stay_distinct_and_valid() -> None:
    long_a = "group." * 15 + "task_a"
    long_b = "group." * 15 + "task_b"
    run_ids = [
        "manual__2025-03-01T10:00:00+00:00",
        "manual__2025-03-01T10:00:00-00:00",
        "manual__2025-03-01T10-00-00-00-00",
    ]
    values = [identity_labels(PodIdentity("d", task, "r", -1, 1))["task_id"] for task in (long_a, long_b)]
    values += [identity_labels(PodIdentity("d", "t", run, -1, 1))["run_id"] for run in run_ids]
    assert len(set(values)) == len(values)
    assert all(LABEL_VALUE.match(value) and len(value) <= 63 for value in values)
    assert identity_labels(PodIdentity("d", "t", run_ids[0], -1, 1)) == identity_labels(
        PodIdentity("d", "t", run_ids[0], -1, 1)
    )


# -- building the pod ----------------------------------------------------------------------------------------------


def test_build_pod_from_arguments() -> None:
    made = request(
        image="python:3.12-slim",
        cmds=["python", "-c"],
        arguments=["print('hi')"],
        env_vars={"STAGE": "prod"},
        labels={"team": "data", "dag_id": "spoofed"},
        annotations={"example.com/owner": "jane"},
        container_resources={"requests": {"cpu": "250m", "memory": "256Mi"}},
        volumes=[V1Volume(name="scratch", empty_dir={})],
        volume_mounts=[V1VolumeMount(name="scratch", mount_path="/scratch")],
        node_selector={"pool": "batch"},
        service_account_name="etl-runner",
        image_pull_policy="IfNotPresent",
        container_security_context={"allowPrivilegeEscalation": False},
        active_deadline_seconds=3600,
        termination_grace_period=10,
    )
    pod = build_pod(made, IDENTITY, name="load-ab12cd34")
    assert isinstance(pod, V1Pod)
    pod.metadata.namespace = "jobs"  # what the operator does
    data = ApiClient().sanitize_for_serialization(pod)
    assert data == pod_dict(made, IDENTITY, name="load-ab12cd34") | {
        "metadata": pod_dict(made, IDENTITY, name="load-ab12cd34")["metadata"] | {"namespace": "jobs"}
    }
    assert data["apiVersion"] == "v1" and data["kind"] == "Pod"
    assert data["metadata"]["name"] == "load-ab12cd34"
    assert data["metadata"]["labels"] == identity_labels(IDENTITY) | {"team": "data"}  # identity wins over "spoofed"
    assert data["metadata"]["annotations"] == {"example.com/owner": "jane"}
    spec = data["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] == 3600 and spec["terminationGracePeriodSeconds"] == 10
    assert spec["nodeSelector"] == {"pool": "batch"} and spec["serviceAccountName"] == "etl-runner"
    assert spec["volumes"] == [{"name": "scratch", "emptyDir": {}}]
    assert spec["containers"] == [
        {
            "name": "base",
            "image": "python:3.12-slim",
            "command": ["python", "-c"],
            "args": ["print('hi')"],
            "env": [{"name": "STAGE", "value": "prod"}],
            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
            "imagePullPolicy": "IfNotPresent",
            "securityContext": {"allowPrivilegeEscalation": False},
        }
    ]


TEMPLATE = """\
apiVersion: v1
kind: Pod
metadata:
  name: from-template
  namespace: templates
  uid: 0c1e5e39-0000-4000-8000-000000000000
  resourceVersion: "4711"
  creationTimestamp: "2025-01-01T00:00:00Z"
  labels:
    team: platform
    tier: batch
  annotations:
    example.com/cost-center: "42"
spec:
  restartPolicy: OnFailure
  nodeSelector:
    pool: batch
  tolerations:
    - key: dedicated
      operator: Equal
      value: batch
      effect: NoSchedule
  volumes:
    - name: config
      configMap:
        name: etl-config
  containers:
    - name: base
      image: ghcr.io/acme/etl:1.0
      resources:
        limits:
          cpu: 1
          memory: 1Gi
      env:
        - name: STAGE
          value: dev
        - name: LOG_LEVEL
          value: info
      volumeMounts:
        - name: config
          mountPath: /etc/etl
    - name: log-shipper
      image: fluent/fluent-bit:3.0
status:
  phase: Succeeded
"""


def test_arguments_merge_onto_a_template_file(tmp_path: Path) -> None:
    made = request(
        pod_template_file=write(tmp_path / "pod.yaml", TEMPLATE),
        cmds=["etl", "run"],
        env_vars={"STAGE": "prod", "EXTRA": "1"},
        labels={"team": "data"},
        container_resources={"requests": {"cpu": "500m"}},
        volumes=[{"name": "scratch", "emptyDir": {}}],
        volume_mounts=[{"name": "scratch", "mountPath": "/scratch"}],
        tolerations=[{"key": "gpu", "operator": "Exists"}],
        node_selector={"zone": "a"},
    )
    pod = pod_dict(made, IDENTITY, name="load-1")
    json.dumps(pod)
    assert "status" not in pod
    assert pod["metadata"]["name"] == "load-1"
    assert not {"uid", "resourceVersion", "creationTimestamp"} & set(pod["metadata"])
    assert pod["metadata"]["labels"] == {"team": "data", "tier": "batch"} | identity_labels(IDENTITY)
    assert pod["metadata"]["annotations"] == {"example.com/cost-center": "42"}
    spec = pod["spec"]
    assert spec["restartPolicy"] == "OnFailure"
    assert spec["nodeSelector"] == {"pool": "batch", "zone": "a"}
    assert [t["key"] for t in spec["tolerations"]] == ["dedicated", "gpu"]
    assert [v["name"] for v in spec["volumes"]] == ["config", "scratch"]
    assert [c["name"] for c in spec["containers"]] == ["base", "log-shipper"]
    base = base_container(pod)
    assert base["image"] == "ghcr.io/acme/etl:1.0"
    assert base["command"] == ["etl", "run"]
    assert base["env"] == [
        {"name": "STAGE", "value": "prod"},
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "EXTRA", "value": "1"},
    ]
    assert base["resources"] == {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}
    assert [m["mountPath"] for m in base["volumeMounts"]] == ["/etc/etl", "/scratch"]
    assert isinstance(build_pod(made, IDENTITY, name="load-1"), V1Pod)


def test_template_layers_in_precedence(tmp_path: Path) -> None:
    """File < dict < full_pod_spec < arguments."""
    template_file = write(tmp_path / "pod.yaml", TEMPLATE)
    template_dict = {
        "spec": {"serviceAccountName": "from-dict", "containers": [{"name": "base", "image": "dict/image:1"}]}
    }
    full = V1Pod(
        metadata=V1ObjectMeta(labels={"tier": "full"}),
        spec=V1PodSpec(containers=[V1Container(name="base", image="full/image:1")], service_account_name="from-full"),
    )
    layered = pod_dict(
        request(pod_template_file=template_file, pod_template_dict=template_dict, full_pod_spec=full),
        IDENTITY,
        name="p",
    )
    assert base_container(layered)["image"] == "full/image:1"
    assert layered["spec"]["serviceAccountName"] == "from-full"
    assert layered["metadata"]["labels"]["tier"] == "full"
    assert layered["spec"]["restartPolicy"] == "OnFailure"  # only the file says it
    without_full = pod_dict(
        request(pod_template_file=template_file, pod_template_dict=template_dict), IDENTITY, name="p"
    )
    assert base_container(without_full)["image"] == "dict/image:1"
    argument_wins = pod_dict(
        request(full_pod_spec=full, image="arg/image:1", service_account_name="from-arg"), IDENTITY, name="p"
    )
    assert base_container(argument_wins)["image"] == "arg/image:1"
    assert argument_wins["spec"]["serviceAccountName"] == "from-arg"


def test_base_container_is_added_when_the_template_lacks_it() -> None:
    template = {"spec": {"containers": [{"name": "sidecar", "image": "envoyproxy/envoy:v1.31"}]}}
    pod = pod_dict(request(pod_template_dict=template, image="busybox:1.36"), IDENTITY, name="p")
    assert [(c["name"], c["image"]) for c in pod["spec"]["containers"]] == [
        ("sidecar", "envoyproxy/envoy:v1.31"),
        ("base", "busybox:1.36"),
    ]


def test_template_base_container_with_another_name() -> None:
    template = {"spec": {"containers": [{"name": "main", "image": "ghcr.io/acme/etl:1.0"}]}}
    with pytest.raises(PodSpecError, match=r"containers are \[.main.\]: set base_container_name"):
        pod_dict(request(pod_template_dict=template), IDENTITY, name="p")
    pod = pod_dict(request(pod_template_dict=template, base_container_name="main", cmds=["go"]), IDENTITY, name="p")
    assert pod["spec"]["containers"] == [{"name": "main", "image": "ghcr.io/acme/etl:1.0", "command": ["go"]}]


def test_a_live_pod_as_full_pod_spec() -> None:
    """A pod read back from the API (status, uid, generateName) is a usable template."""
    live = {
        "metadata": {"generateName": "etl-", "name": "etl-x7", "uid": "1", "resourceVersion": "9"},
        "spec": {"containers": [{"name": "base", "image": "busybox:1.36"}], "restartPolicy": "Never", "nodeName": "n1"},
        "status": {"phase": "Succeeded"},
    }
    pod = pod_dict(request(full_pod_spec=live), IDENTITY, name="fresh")
    assert pod["metadata"]["name"] == "fresh" and "generateName" not in pod["metadata"] and "status" not in pod


def test_same_named_volumes_and_env_vars_are_replaced_whole() -> None:
    """Merging a configMap volume with an emptyDir one (or value with valueFrom) would give an invalid pod."""
    template = {
        "spec": {
            "volumes": [{"name": "data", "configMap": {"name": "etl"}}],
            "containers": [
                {
                    "name": "base",
                    "image": "busybox:1.36",
                    "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}}],
                }
            ],
        }
    }
    made = request(pod_template_dict=template, volumes=[{"name": "data", "emptyDir": {}}], env_vars={"TOKEN": "x"})
    pod = pod_dict(made, IDENTITY, name="p")
    assert pod["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]
    assert base_container(pod)["env"] == [{"name": "TOKEN", "value": "x"}]
