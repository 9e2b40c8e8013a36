"""Argument sets for the provider compatibility suite: every pod-shaping parameter, as models and as dicts, Secrets of
each kind, templates from a file, a dict and a full spec, alone and combined with arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import models as k8s

from airflow_kpo_deferrable import Secret


@dataclass(frozen=True)
class Case:
    id: str
    arguments: dict[str, Any]
    context: dict[str, Any] | None = field(default_factory=dict)  # None: build without a context
    task_id: str = "load"
    extras: dict[str, Any] = field(default_factory=dict)  # the default connection's extras


IMAGE = "busybox:1.36"
TEMPLATE_FILE = """\
apiVersion: v1
kind: Pod
metadata:
  name: from-file
  labels: {team: platform, tier: batch}
  annotations: {example.com/cost-center: "42"}
spec:
  restartPolicy: OnFailure
  serviceAccountName: from-file
  nodeSelector: {pool: batch}
  tolerations:
    - {key: dedicated, operator: Equal, value: batch, effect: NoSchedule}
  securityContext: {runAsUser: 1000}
  volumes:
    - name: config
      configMap: {name: etl-config}
  initContainers:
    - name: setup
      image: busybox:1.36
      command: [sh, -c, "echo setup"]
      env: [{name: FROM_TEMPLATE, value: "1"}]
  containers:
    - name: base
      image: ghcr.io/acme/etl:1.0
      resources: {limits: {cpu: "1", memory: 1Gi}}
      securityContext: {privileged: false}
      env:
        - {name: STAGE, value: dev}
      volumeMounts:
        - {name: config, mountPath: /etc/etl}
      ports: [{containerPort: 9000}]
    - name: log-shipper
      image: fluent/fluent-bit:3.0
"""
TEMPLATE_DICT = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"namespace": "from-dict", "labels": {"source": "dict"}},
    "spec": {
        "priorityClassName": "batch-low",
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]
                }
            }
        },
        "containers": [
            {
                "name": "base",
                "image": "ghcr.io/acme/dict:2.0",
                "envFrom": [{"configMapRef": {"name": "dict-env"}}],
                "args": ["--from-dict"],
            }
        ],
    },
}
FULL_POD_SPEC = k8s.V1Pod(
    metadata=k8s.V1ObjectMeta(labels={"source": "full"}, annotations={"full": "yes"}),
    spec=k8s.V1PodSpec(
        service_account_name="from-full",
        host_network=True,
        containers=[
            k8s.V1Container(
                name="base",
                image="ghcr.io/acme/full:3.0",
                command=["run"],
                env=[k8s.V1EnvVar(name="FULL", value="1")],
            )
        ],
    ),
)
VOLUME = k8s.V1Volume(name="scratch", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="1Gi"))
PVC = k8s.V1Volume(name="data", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name="etl-data"))
MOUNT = k8s.V1VolumeMount(name="scratch", mount_path="/scratch")
MOUNT_PVC = k8s.V1VolumeMount(name="data", mount_path="/data", sub_path="etl", read_only=True)
AFFINITY_DICT = {
    "nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}
        ]
    }
}
AFFINITY = k8s.V1Affinity(
    pod_anti_affinity=k8s.V1PodAntiAffinity(
        required_during_scheduling_ignored_during_execution=[
            k8s.V1PodAffinityTerm(
                label_selector=k8s.V1LabelSelector(match_labels={"app": "etl"}), topology_key="kubernetes.io/hostname"
            )
        ]
    )
)
TOLERATION = k8s.V1Toleration(key="gpu", operator="Exists", effect="NoSchedule")
SECRET_ENV = Secret("env", "db_password", "db-credentials", "password")
SECRET_ENV_ALL = Secret("env", None, "api-keys")
SECRET_VOLUME = Secret("volume", "/etc/creds", "creds")
SECRET_ITEMS = Secret("volume", "/etc/tls", "tls", items=[k8s.V1KeyToPath(key="tls.crt", path="cert.pem")])
RUNTIME_ENV = k8s.V1EnvVar(
    name="POD_IP", value_from=k8s.V1EnvVarSource(field_ref=k8s.V1ObjectFieldSelector(field_path="status.podIP"))
)


class Callbacks:
    """Stands for a KubernetesPodOperatorCallback subclass (both operators only store it when building); ours takes
    a class with at least one of the provider's hooks, so it has one."""

    @staticmethod
    def on_pod_creation(**kwargs: Any) -> None:
        pass


def _case(id: str, **arguments: Any) -> Case:
    return Case(id, {"image": IMAGE, "random_name_suffix": False} | arguments)


CASES: list[Case] = [
    _case("minimal"),
    Case("random suffix", {"image": IMAGE, "name": "etl-pod"}),
    Case("random suffix from the task id", {"image": IMAGE}, task_id="Load_Customers.v2"),
    _case("name", name="my-pod.v1"),
    _case("name made valid", name="Astro_K8s_test_pod"),
    _case("task id made a name", name=None),
    Case("long task id", {"image": IMAGE, "random_name_suffix": False}, task_id="t" * 80),
    _case("namespace", namespace="data-jobs"),
    _case("cmds", cmds=["python", "-c"]),
    _case("arguments", arguments=["print('hi')"]),
    _case("cmds and arguments", cmds=["sh", "-c"], arguments=["echo hi; exit 0"]),
    _case("ports", ports=[k8s.V1ContainerPort(container_port=8080, name="http", protocol="TCP")]),
    _case("volumes and mounts", volumes=[VOLUME, PVC], volume_mounts=[MOUNT, MOUNT_PVC]),
    _case("env_vars dict", env_vars={"STAGE": "prod", "RETRIES": "3"}),
    _case("env_vars models", env_vars=[k8s.V1EnvVar(name="STAGE", value="prod")]),
    _case(
        "env_from models",
        env_from=[
            k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name="etl-env")),
            k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name="etl-secret"), prefix="S_"),
        ],
    ),
    _case("secret env with key", secrets=[SECRET_ENV]),
    _case("secret env whole", secrets=[SECRET_ENV_ALL]),
    _case("secret volume", secrets=[SECRET_VOLUME]),
    _case("secret volume with items", secrets=[SECRET_ITEMS]),
    _case("secrets of every kind", secrets=[SECRET_ENV, SECRET_ENV_ALL, SECRET_VOLUME, SECRET_ITEMS]),
    _case(
        "secrets after env and volumes",
        secrets=[SECRET_ENV, SECRET_VOLUME],
        env_vars={"A": "1"},
        volumes=[VOLUME],
        volume_mounts=[MOUNT],
    ),
    _case("labels", labels={"team": "data", "app.kubernetes.io/part-of": "etl"}),
    _case("labels with a None value", labels={"flag": None, "team": "data"}),
    _case("labels spoofing identity", labels={"dag_id": "other", "team": "data"}),
    _case("annotations", annotations={"example.com/owner": "jane", "note": "free text: with spaces"}),
    _case(
        "resources model",
        container_resources=k8s.V1ResourceRequirements(
            limits={"cpu": "1", "memory": "1Gi"}, requests={"cpu": "250m", "memory": "256Mi"}
        ),
    ),
    _case("resources dict", container_resources={"limits": {"memory": "512Mi"}, "requests": {"cpu": "100m"}}),
    _case("affinity model", affinity=AFFINITY),
    _case("affinity dict", affinity=AFFINITY_DICT),
    _case("runtime_class_name", runtime_class_name="gvisor"),
    _case("node_selector", node_selector={"pool": "batch", "kubernetes.io/arch": "amd64"}),
    _case("image_pull_secrets string", image_pull_secrets="regcred,other"),
    _case("image_pull_secrets models", image_pull_secrets=[k8s.V1LocalObjectReference(name="regcred")]),
    _case("service_account_name", service_account_name="etl-runner"),
    _case("automount token true", automount_service_account_token=True),
    _case("automount token false", automount_service_account_token=False),
    _case("hostnetwork", hostnetwork=True),
    _case("host_aliases", host_aliases=[k8s.V1HostAlias(ip="10.0.0.1", hostnames=["db.local", "db"])]),
    _case("tolerations models", tolerations=[TOLERATION]),
    _case(
        "tolerations dicts",
        tolerations=[{"key": "dedicated", "operator": "Equal", "value": "etl", "effect": "NoExecute"}],
    ),
    _case("security_context dict", security_context={"runAsUser": 1000, "fsGroup": 2000}),
    _case("security_context model", security_context=k8s.V1PodSecurityContext(run_as_non_root=True)),
    _case("container_security_context dict", container_security_context={"allowPrivilegeEscalation": False}),
    _case(
        "container_security_context model",
        container_security_context=k8s.V1SecurityContext(
            read_only_root_filesystem=True, capabilities=k8s.V1Capabilities(drop=["ALL"])
        ),
    ),
    _case("do_xcom_push", do_xcom_push=True),
    _case(
        "xcom sidecar security context",
        do_xcom_push=True,
        xcom_sidecar_container_security_context={"runAsUser": 1000},
    ),
    _case("do_xcom_push with volumes", do_xcom_push=True, volumes=[VOLUME], volume_mounts=[MOUNT]),
    _case("dnspolicy", dnspolicy="ClusterFirstWithHostNet", hostnetwork=True),
    _case(
        "dns_config",
        dnspolicy="None",
        dns_config=k8s.V1PodDNSConfig(nameservers=["1.1.1.1"], searches=["svc.local"]),
    ),
    _case("hostname", hostname="worker-1"),
    _case("subdomain", hostname="worker-1", subdomain="etl"),
    _case("schedulername", schedulername="batch-scheduler"),
    _case(
        "init_containers",
        init_containers=[k8s.V1Container(name="init", image=IMAGE, command=["sh", "-c", "echo init"])],
    ),
    _case("priority_class_name", priority_class_name="high-priority"),
    _case("pod_runtime_info_envs", pod_runtime_info_envs=[RUNTIME_ENV]),
    _case("pod_runtime_info_envs after env_vars", env_vars={"A": "1"}, pod_runtime_info_envs=[RUNTIME_ENV]),
    _case("termination_grace_period", termination_grace_period=10),
    _case("configmaps", configmaps=["etl-env", "shared-env"]),
    _case(
        "configmaps after env_from",
        configmaps=["etl-env"],
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name="etl-secret"))],
    ),
    _case("termination_message_policy", termination_message_policy="FallbackToLogsOnError"),
    _case("active_deadline_seconds", active_deadline_seconds=3600),
    _case("image_pull_policy", image_pull_policy="IfNotPresent"),
    _case("base_container_name", base_container_name="main"),
    _case(
        "behaviour arguments leave the pod alone",
        get_logs=False,
        container_logs=True,
        init_container_logs=True,
        startup_timeout_seconds=30,
        schedule_timeout_seconds=60,
        startup_check_interval_seconds=2,
        base_container_status_polling_interval=2,
        poll_interval=5,
        on_finish_action="keep_pod",
        on_kill_action="keep_pod",
        skip_on_exit_code=[100, 101],
        log_events_on_failure=True,
        log_events_on_startup=False,
        log_pod_spec_on_failure=False,
        logging_interval=30,
        trigger_kwargs={"x": 1},
        container_name_log_prefix_enabled=False,
        durable=False,
        reattach_on_restart=False,
        is_delete_operator_pod=True,
        deferrable=True,
        callbacks=Callbacks,
        progress_callback=print,
        log_formatter=lambda container, line: f"{container}: {line}",
    ),
    _case("cluster arguments", config_file="kubeconfig", cluster_context="c", in_cluster=False),
    # -- templates -------------------------------------------------------------------------------------------------
    Case("template file alone", {"pod_template_file": "template.yaml", "random_name_suffix": False}),
    Case("template file with suffix", {"pod_template_file": "template.yaml"}),
    _case(
        "template file and arguments",
        pod_template_file="template.yaml",
        cmds=["etl", "run"],
        env_vars={"STAGE": "prod", "EXTRA": "1"},
        labels={"team": "data"},
        annotations={"run": "manual"},
        container_resources={"requests": {"cpu": "500m"}},
        volumes=[VOLUME],
        volume_mounts=[MOUNT],
        tolerations=[TOLERATION],
        node_selector={"zone": "a"},
        security_context={"fsGroup": 3000},
        container_security_context={"runAsNonRoot": True},
        ports=[k8s.V1ContainerPort(container_port=8080)],
    ),
    _case(
        "template init containers merged by name",
        pod_template_file="template.yaml",
        init_containers=[
            k8s.V1Container(name="setup", env=[k8s.V1EnvVar(name="FROM_ARGS", value="1")]),
            k8s.V1Container(name="extra", image=IMAGE),
        ],
    ),
    _case("template file and name", pod_template_file="template.yaml", name="override"),
    _case("template file and namespace", pod_template_file="template.yaml", namespace="jobs"),
    _case("template file and secrets", pod_template_file="template.yaml", secrets=[SECRET_ENV, SECRET_VOLUME]),
    _case("template file and do_xcom_push", pod_template_file="template.yaml", do_xcom_push=True),
    _case("template file and configmaps", pod_template_file="template.yaml", configmaps=["etl-env"]),
    _case("template file and full_pod_spec", pod_template_file="template.yaml", full_pod_spec=FULL_POD_SPEC),
    Case("template dict alone", {"pod_template_dict": TEMPLATE_DICT, "random_name_suffix": False}),
    _case(
        "template dict and arguments",
        pod_template_dict=TEMPLATE_DICT,
        arguments=["--from-args"],
        env_from=[k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name="args-env"))],
        affinity=AFFINITY,
        labels={"source": "args"},
    ),
    _case("template dict and namespace", pod_template_dict=TEMPLATE_DICT, namespace="jobs"),
    _case("template dict and full_pod_spec", pod_template_dict=TEMPLATE_DICT, full_pod_spec=FULL_POD_SPEC),
    Case("full_pod_spec alone", {"full_pod_spec": FULL_POD_SPEC, "random_name_suffix": False}),
    _case(
        "full_pod_spec and arguments",
        full_pod_spec=FULL_POD_SPEC,
        cmds=["other"],
        env_vars={"ARG": "1"},
        service_account_name="from-args",
        hostnetwork=False,
    ),
    # -- contexts ----------------------------------------------------------------------------------------------
    Case("mapped task", {"image": IMAGE, "random_name_suffix": False}, context={"map_index": 4}),
    Case("manual run id", {"image": IMAGE}, context={"run_id": "manual__2025-03-01T10:00:00.123456+00:00"}),
    Case("long run id", {"image": IMAGE}, context={"run_id": "backfill__" + "x" * 80}),
    Case("no context", {"image": IMAGE, "random_name_suffix": False}, context=None),
    # -- everything at once ------------------------------------------------------------------------------------------
    _case(
        "every pod argument",
        name="kitchen-sink",
        namespace="jobs",
        cmds=["sh", "-c"],
        arguments=["echo $STAGE"],
        ports=[k8s.V1ContainerPort(container_port=80)],
        volumes=[VOLUME],
        volume_mounts=[MOUNT],
        env_vars={"STAGE": "prod"},
        env_from=[k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name="etl-env"))],
        secrets=[SECRET_ENV, SECRET_ENV_ALL, SECRET_VOLUME],
        labels={"team": "data"},
        image_pull_policy="Always",
        annotations={"a": "b"},
        container_resources={"requests": {"cpu": "100m"}},
        affinity=AFFINITY_DICT,
        runtime_class_name="gvisor",
        node_selector={"pool": "batch"},
        image_pull_secrets="regcred",
        service_account_name="etl",
        automount_service_account_token=True,
        hostnetwork=True,
        host_aliases=[k8s.V1HostAlias(ip="10.0.0.2", hostnames=["api"])],
        tolerations=[TOLERATION],
        security_context={"runAsUser": 1},
        container_security_context={"privileged": False},
        xcom_sidecar_container_security_context={"runAsUser": 2},
        dnspolicy="ClusterFirstWithHostNet",
        dns_config=k8s.V1PodDNSConfig(options=[k8s.V1PodDNSConfigOption(name="ndots", value="2")]),
        hostname="sink",
        subdomain="etl",
        schedulername="default-scheduler",
        init_containers=[k8s.V1Container(name="init", image=IMAGE)],
        do_xcom_push=True,
        priority_class_name="high",
        pod_runtime_info_envs=[RUNTIME_ENV],
        termination_grace_period=5,
        configmaps=["more-env"],
        termination_message_policy="FallbackToLogsOnError",
        active_deadline_seconds=600,
    ),
]

CONNECTION_CASES: list[Case] = [
    Case("namespace from the connection", {"image": IMAGE}, extras={"namespace": "from-conn"}),
    Case(
        "argument namespace wins over the connection's", {"image": IMAGE, "namespace": "arg"}, extras={"namespace": "c"}
    ),
    Case(
        "template namespace wins over the connection's",
        {"pod_template_dict": TEMPLATE_DICT},
        extras={"namespace": "from-conn"},
    ),
    Case(
        "xcom sidecar image and resources from the connection",
        {"image": IMAGE, "do_xcom_push": True},
        extras={
            "xcom_sidecar_container_image": "registry.local/alpine:3",
            "xcom_sidecar_container_resources": '{"requests": {"cpu": "5m"}, "limits": {"memory": "20Mi"}}',
        },
    ),
    Case(
        "xcom sidecar security context from the connection",
        {"image": IMAGE, "do_xcom_push": True},
        extras={"xcom_sidecar_container_security_context": '{"runAsNonRoot": true}'},
    ),
    Case(
        "xcom sidecar security context: the argument wins",
        {"image": IMAGE, "do_xcom_push": True, "xcom_sidecar_container_security_context": {"runAsUser": 7}},
        extras={"xcom_sidecar_container_security_context": '{"runAsNonRoot": true}'},
    ),
]
