"""Arguments and templates → the pod: the provider's merge rules (merge.py's table), name, namespace, labels, secrets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from airflow.version import version as airflow_version
from kubernetes.client import (
    ApiClient,
    V1Container,
    V1ObjectMeta,
    V1Pod,
    V1PodSpec,
    V1Volume,
    V1VolumeMount,
)

from airflow_kpo_deferrable.podspec import (
    MANAGED_BY_LABEL,
    PodSpecError,
    build_pod,
    identity_labels,
    pod_dict,
)
from airflow_kpo_deferrable.podspec.plan import PodContext
from airflow_kpo_deferrable.podspec.secrets import Secret
from tests.support.podspec import IDENTITY, at, base_container, request, write

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
    pod = build_pod(made, at("load-ab12cd34"))
    assert isinstance(pod, V1Pod)
    data = ApiClient().sanitize_for_serialization(pod)
    assert data == pod_dict(made, at("load-ab12cd34"))
    assert data["apiVersion"] == "v1" and data["kind"] == "Pod"
    assert data["metadata"]["name"] == "load-ab12cd34" and data["metadata"]["namespace"] == "default"
    build_labels = {"airflow_version": airflow_version.replace("+", "-"), "airflow_kpo_in_cluster": "False"}
    # identity wins over "spoofed"
    assert data["metadata"]["labels"] == identity_labels(IDENTITY) | {"team": "data"} | build_labels
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
            "terminationMessagePolicy": "File",
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
    pod = pod_dict(made, at("load-1"))
    json.dumps(pod)
    assert "status" not in pod
    assert (pod["metadata"]["name"], pod["metadata"]["namespace"]) == ("from-template", "templates")  # kept
    assert not {"uid", "resourceVersion", "creationTimestamp"} & set(pod["metadata"])
    assert {"team": "data", "tier": "batch"}.items() <= pod["metadata"]["labels"].items()
    assert pod["metadata"]["annotations"] == {"example.com/cost-center": "42"}
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"  # the provider always sets it
    assert spec["nodeSelector"] == {"zone": "a"}  # replaced whole
    assert spec["tolerations"] == [{"key": "gpu", "operator": "Exists"}]  # replaced whole
    assert [v["name"] for v in spec["volumes"]] == ["config", "scratch"]  # appended
    assert [c["name"] for c in spec["containers"]] == ["base", "log-shipper"]
    base = base_container(pod)
    assert base["image"] == "ghcr.io/acme/etl:1.0"
    assert base["command"] == ["etl", "run"]
    assert base["env"] == [  # appended: Kubernetes uses the last STAGE
        {"name": "STAGE", "value": "dev"},
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "STAGE", "value": "prod"},
        {"name": "EXTRA", "value": "1"},
    ]
    assert base["resources"] == {"requests": {"cpu": "500m"}}  # replaced whole
    assert [m["mountPath"] for m in base["volumeMounts"]] == ["/etc/etl", "/scratch"]
    assert isinstance(build_pod(made, at("load-1")), V1Pod)


def test_security_contexts_replace_the_templates_whole() -> None:
    template = {
        "spec": {
            "securityContext": {"runAsUser": 1000, "fsGroup": 2000},
            "containers": [{"name": "base", "image": "busybox:1.36", "securityContext": {"privileged": False}}],
        }
    }
    pod = pod_dict(
        request(
            pod_template_dict=template,
            security_context={"runAsNonRoot": True},
            container_security_context={"readOnlyRootFilesystem": True},
        ),
        at("p"),
    )
    assert pod["spec"]["securityContext"] == {"runAsNonRoot": True}
    assert base_container(pod)["securityContext"] == {"readOnlyRootFilesystem": True}


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
        request(pod_template_file=template_file, pod_template_dict=template_dict, full_pod_spec=full), at("p")
    )
    assert base_container(layered)["image"] == "full/image:1"
    assert layered["spec"]["serviceAccountName"] == "from-full"
    assert layered["metadata"]["labels"]["tier"] == "full"
    assert layered["spec"]["nodeSelector"] == {"pool": "batch"}  # only the file says it
    without_full = pod_dict(request(pod_template_file=template_file, pod_template_dict=template_dict), at("p"))
    assert base_container(without_full)["image"] == "dict/image:1"
    argument_wins = pod_dict(request(full_pod_spec=full, image="arg/image:1", service_account_name="from-arg"), at("p"))
    assert base_container(argument_wins)["image"] == "arg/image:1"
    assert argument_wins["spec"]["serviceAccountName"] == "from-arg"


def test_base_container_is_added_when_the_template_lacks_it() -> None:
    template = {"spec": {"containers": [{"name": "sidecar", "image": "envoyproxy/envoy:v1.31"}]}}
    pod = pod_dict(request(pod_template_dict=template, image="busybox:1.36"), at("p"))
    assert [(c["name"], c["image"]) for c in pod["spec"]["containers"]] == [
        ("sidecar", "envoyproxy/envoy:v1.31"),
        ("base", "busybox:1.36"),
    ]


def test_template_base_container_with_another_name() -> None:
    template = {"spec": {"containers": [{"name": "main", "image": "ghcr.io/acme/etl:1.0"}]}}
    with pytest.raises(PodSpecError, match=r"containers are \[.main.\]: set base_container_name"):
        pod_dict(request(pod_template_dict=template), at("p"))
    pod = pod_dict(request(pod_template_dict=template, base_container_name="main", cmds=["go"]), at("p"))
    assert pod["spec"]["containers"] == [
        {"name": "main", "image": "ghcr.io/acme/etl:1.0", "command": ["go"], "terminationMessagePolicy": "File"}
    ]


def test_a_live_pod_as_full_pod_spec() -> None:
    """A pod read back from the API (status, uid, resourceVersion) is a usable template; its name is kept."""
    live = {
        "metadata": {"generateName": "etl-", "name": "etl-x7", "uid": "1", "resourceVersion": "9"},
        "spec": {"containers": [{"name": "base", "image": "busybox:1.36"}], "restartPolicy": "Never", "nodeName": "n1"},
        "status": {"phase": "Succeeded"},
    }
    pod = pod_dict(request(full_pod_spec=live), at("task"))
    assert pod["metadata"]["name"] == "etl-x7" and "status" not in pod
    assert not {"uid", "resourceVersion"} & set(pod["metadata"])
    assert pod_dict(request(full_pod_spec=live, name="fresh"), at("task"))["metadata"]["name"] == "fresh"


def test_a_volume_named_in_template_and_arguments_is_refused() -> None:
    """The provider sends both and the API server refuses the pod; here it is refused before anything is sent."""
    template = {
        "spec": {
            "volumes": [{"name": "data", "configMap": {"name": "etl"}}],
            "containers": [{"name": "base", "image": "busybox:1.36"}],
        }
    }
    with pytest.raises(PodSpecError, match="2 volumes are named 'data'.*unique"):
        pod_dict(request(pod_template_dict=template, volumes=[{"name": "data", "emptyDir": {}}]), at("p"))


def test_name_and_namespace_sources() -> None:
    assert pod_dict(request(image="busybox"), at("Load_Customers.v2"))["metadata"]["name"] == "load-customers-v2"
    suffixed = pod_dict(request(image="busybox", name="etl"), PodContext(task_id="t", random_name_suffix=True))
    assert re.fullmatch(r"etl-[a-z0-9]{8}", suffixed["metadata"]["name"])
    fallback = PodContext(task_id="t", namespace_fallback="from-connection")
    assert pod_dict(request(image="busybox"), fallback)["metadata"]["namespace"] == "from-connection"
    assert pod_dict(request(image="busybox", namespace="jobs"), fallback)["metadata"]["namespace"] == "jobs"


def test_labels_none_value_is_empty_like_the_provider() -> None:
    assert pod_dict(request(image="busybox", labels={"k": None}), at("p"))["metadata"]["labels"]["k"] == ""


def test_without_a_context_only_the_build_labels() -> None:
    labels = pod_dict(request(image="busybox"), PodContext(task_id="t"))["metadata"]["labels"]
    assert set(labels) == {"airflow_version", "airflow_kpo_in_cluster", MANAGED_BY_LABEL}


def test_secrets_of_each_kind() -> None:
    secrets = [
        Secret("env", "db_password", "db", "password"),
        Secret("env", None, "all-of-it"),
        Secret("volume", "/etc/creds", "creds", items=[{"key": "a", "path": "a.txt"}]),
    ]
    pod = pod_dict(request(image="busybox", secrets=secrets, env_vars={"A": "1"}), at("p"))
    base = base_container(pod)
    assert base["env"] == [
        {"name": "A", "value": "1"},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
    ]
    assert base["envFrom"] == [{"secretRef": {"name": "all-of-it"}}]
    (volume,) = pod["spec"]["volumes"]
    assert re.fullmatch(r"secretvol[0-9a-f-]{36}", volume["name"])
    assert volume["secret"] == {"secretName": "creds", "items": [{"key": "a", "path": "a.txt"}]}
    assert base["volumeMounts"] == [{"mountPath": "/etc/creds", "name": volume["name"], "readOnly": True}]
    assert pod_dict(request(image="busybox", secrets=secrets), at("p"))["spec"]["volumes"] == [volume]  # stable


def test_xcom_sidecar_shape() -> None:
    pod = pod_dict(request(image="busybox", do_xcom_push=True, volumes=[{"name": "v", "emptyDir": {}}]), at("p"))
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["xcom", "v"]
    assert base_container(pod)["volumeMounts"] == [{"name": "xcom", "mountPath": "/airflow/xcom"}]
    sidecar = pod["spec"]["containers"][-1]
    assert sidecar["name"] == "airflow-xcom-sidecar" and sidecar["image"] == "alpine:3.24.2"
    assert sidecar["resources"] == {"requests": {"cpu": "1m", "memory": "10Mi"}}
    assert sidecar["volumeMounts"] == [{"name": "xcom", "mountPath": "/airflow/xcom"}]
