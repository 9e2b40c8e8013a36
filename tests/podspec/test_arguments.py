"""Each pod argument: accepted forms (models, dicts, snake_case), every validation rule's message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import (
    V1Affinity,
    V1Container,
    V1EnvVar,
    V1LocalObjectReference,
    V1NodeAffinity,
    V1NodeSelector,
    V1NodeSelectorRequirement,
    V1NodeSelectorTerm,
    V1PodSecurityContext,
    V1ResourceRequirements,
    V1Toleration,
    V1VolumeMount,
)

from airflow_kpo_deferrable.podspec import (
    PYDANTIC_MODELS,
    PodSpecError,
    pod_dict,
)
from tests.support.podspec import at, request, write

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
        forms = [
            f for f in forms if not (isinstance(f, list) and f and isinstance(f[0], dict) and "mount_path" in f[0])
        ]
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
        pod_dict(request(**arguments), at("p"))
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
    assert text.startswith("5 invalid arguments:")
    for name in ("image=", "cmds", "labels", "image_pull_policy", "env_vars"):
        assert name in text


def test_template_file_that_is_not_yaml_or_not_a_pod(tmp_path: Path) -> None:
    def build(text: str, file: str = "pod.yaml") -> None:
        pod_dict(request(pod_template_file=write(tmp_path / file, text)), at("p"))

    with pytest.raises(PodSpecError, match="is not valid YAML") as caught:
        build("spec: [unclosed\n")
    assert len(caught.value.problems) == 1 and "line 2, column 1" in str(caught.value)
    with pytest.raises(PodSpecError, match="holds list, not a Pod manifest"):
        build("- a\n- b\n")
    with pytest.raises(PodSpecError, match="kind is 'Job'"):
        build("apiVersion: batch/v1\nkind: Job\n")
