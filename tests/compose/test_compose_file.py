"""docker-compose.yaml as Compose v2 and the compose-spec schema read it, and the model they build from it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from airflow_kpo_deferrable.hooks.kubernetes import KubernetesHook, Source
from tests.support.compose import (
    AIRFLOW_COMPONENTS,
    AIRFLOW_SERVICES,
    COMPOSE_FILE,
    REPO,
    SETUP_SCRIPT,
    mount,
    parsed_config,
    run_compose,
    venv_tool,
)

SECRETS = ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return parsed_config()["services"]


def broken_copy(tmp_path: Path) -> Path:
    """The real file with one condition Compose does not know: both validators must reject it."""
    text = COMPOSE_FILE.read_text()
    assert "service_completed_successfully" in text
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(text.replace("service_completed_successfully", "service_completed", 1))
    return broken


def test_compose_v2_accepts_the_file_and_rejects_a_broken_copy(tmp_path: Path) -> None:
    result = run_compose("config", "--quiet")
    assert result.returncode == 0, result.stderr
    rejected = run_compose("config", "--quiet", compose_file=broken_copy(tmp_path))
    assert rejected.returncode != 0
    assert "service_completed" in rejected.stderr


def test_the_compose_spec_schema_accepts_the_file_and_rejects_a_broken_copy(tmp_path: Path) -> None:
    def check(path: Path) -> subprocess.CompletedProcess[str]:
        command = [venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    result = check(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert check(broken_copy(tmp_path)).returncode != 0


def test_the_services_are_the_demo_s_and_start_in_order(services: dict[str, Any]) -> None:
    assert set(services) == {"postgres", "k3s", "k3s-setup", *AIRFLOW_SERVICES}
    conditions = {name: {dep: spec["condition"] for dep, spec in svc.get("depends_on", {}).items()}
                  for name, svc in services.items()}
    assert conditions["k3s-setup"] == {"k3s": "service_healthy"}
    assert conditions["airflow-init"] == {"postgres": "service_healthy"}
    for name in AIRFLOW_COMPONENTS:
        assert conditions[name] == {
            "postgres": "service_healthy",
            "k3s-setup": "service_completed_successfully",
            "airflow-init": "service_completed_successfully",
        }, name
    # The one-shots run once; everything else comes back after a crash.
    assert services["k3s-setup"]["restart"] == "no" and "restart" not in services["airflow-init"]
    assert all(services[name]["restart"] == "always" for name in ("postgres", "k3s", *AIRFLOW_COMPONENTS))


def test_every_long_running_service_has_the_documented_health_check(services: dict[str, Any]) -> None:
    expected = {
        "postgres": ["CMD", "pg_isready", "-U", "airflow"],
        "k3s": ["CMD", "kubectl", "get", "--raw", "/readyz"],
        "airflow-apiserver": ["CMD", "curl", "--fail", "http://localhost:8080/api/v2/version"],
        "airflow-scheduler": ["CMD", "curl", "--fail", "http://localhost:8974/health"],
        "airflow-dag-processor": ["CMD-SHELL", "airflow jobs check --job-type DagProcessorJob --local"],
        "airflow-triggerer-1": ["CMD-SHELL", "airflow jobs check --job-type TriggererJob --local"],
        "airflow-triggerer-2": ["CMD-SHELL", "airflow jobs check --job-type TriggererJob --local"],
    }
    assert {name: services[name]["healthcheck"]["test"] for name in expected} == expected
    # The scheduler only serves :8974/health when asked to.
    assert services["airflow-scheduler"]["environment"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert services["airflow-apiserver"]["ports"][0]["published"] == "8080"
    assert services["airflow-apiserver"]["ports"][0]["target"] == 8080


def test_two_triggerers_and_one_of_each_other_component(services: dict[str, Any]) -> None:
    commands = [services[name]["command"] for name in AIRFLOW_COMPONENTS]
    assert sorted(map(tuple, commands)) == sorted(
        [("api-server",), ("scheduler",), ("dag-processor",), ("triggerer",), ("triggerer",)]
    )
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "false"


def test_every_airflow_service_runs_the_image_built_from_this_checkout(services: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        assert services[name]["build"] == {"context": str(REPO), "dockerfile": "Dockerfile"}, name
    assert len({services[name]["image"] for name in AIRFLOW_SERVICES}) == 1
    assert (REPO / "Dockerfile").read_text().count("FROM apache/airflow:3.3.2") == 1


def test_secrets_are_real_and_the_same_in_every_airflow_service(services: dict[str, Any]) -> None:
    for key in SECRETS:
        values = {services[name]["environment"][key] for name in AIRFLOW_SERVICES}
        assert len(values) == 1 and values != {""}, (key, values)
    Fernet(services["airflow-init"]["environment"]["AIRFLOW__CORE__FERNET_KEY"])  # raises on a malformed key


def test_one_variable_overrides_a_secret_everywhere() -> None:
    services = parsed_config(AIRFLOW_JWT_SECRET="from-the-environment")["services"]
    assert {services[name]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"] for name in AIRFLOW_SERVICES} == {
        "from-the-environment"
    }


def test_the_kubeconfig_k3s_writes_reaches_every_component_read_only_at_one_path(services: dict[str, Any]) -> None:
    output = Path(services["k3s"]["environment"]["K3S_KUBECONFIG_OUTPUT"])
    assert mount(services["k3s"], "kubeconfig")["target"] == str(output.parent)
    setup = mount(services["k3s-setup"], "kubeconfig")
    assert setup["target"] == str(output.parent) and not setup.get("read_only")
    # k3s-setup.sh reads k3s's file and writes the rewritten one into the same volume.
    script = SETUP_SCRIPT.read_text()
    source = re.search(r"^SOURCE=\$\{K3S_KUBECONFIG_SOURCE:-(.+)\}$", script, re.M).group(1)
    target = Path(re.search(r"^TARGET=\$\{K3S_KUBECONFIG_TARGET:-(.+)\}$", script, re.M).group(1))
    assert source == str(output) and target.parent == output.parent
    targets = set()
    for name in AIRFLOW_COMPONENTS:
        entry = mount(services[name], "kubeconfig")
        assert entry["read_only"] is True, name
        targets.add(entry["target"])
    [airflow_dir] = targets
    # The connection every component gets names the rewritten file at that mount.
    connections = {services[name]["environment"]["AIRFLOW_CONN_KUBERNETES_DEFAULT"] for name in AIRFLOW_COMPONENTS}
    [connection] = connections
    extras = json.loads(connection)["extra"]
    assert json.loads(connection)["conn_type"] == "kubernetes"
    assert extras["kube_config_path"] == f"{airflow_dir}/{target.name}"


def test_airflow_and_our_hook_read_that_connection_as_the_file_and_the_demo_namespace(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    value = services["airflow-scheduler"]["environment"]["AIRFLOW_CONN_KUBERNETES_DEFAULT"]
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", value)  # as the containers get it
    config = KubernetesHook().cluster_config
    assert config.source is Source.FILE
    assert config.config_file == "/home/airflow/.kube/config"
    assert config.namespace == "kpo-demo"


def test_k3s_runs_as_its_own_compose_file_does_with_a_pinned_version(services: dict[str, Any]) -> None:
    k3s = services["k3s"]
    assert re.fullmatch(r"rancher/k3s:v\d+\.\d+\.\d+-k3s\d+", k3s["image"]), k3s["image"]
    assert services["k3s-setup"]["image"] == k3s["image"]
    assert k3s["command"] == ["server", "--tls-san", "k3s", "--disable", "traefik"]
    assert k3s["privileged"] is True
    assert k3s["tmpfs"] == ["/run", "/var/run"]
    assert k3s["ulimits"] == {"nproc": 65535, "nofile": {"soft": 65535, "hard": 65535}}
    assert k3s["environment"]["K3S_TOKEN"]
    assert int(k3s["environment"]["K3S_KUBECONFIG_MODE"], 8) & 0o044 == 0o044  # readable by the airflow user


def test_dags_are_mounted_into_the_components_that_parse_or_run_them(services: dict[str, Any]) -> None:
    for name in AIRFLOW_COMPONENTS:
        dags = mount(services[name], str(REPO / "dags"))
        assert dags["target"] == "/opt/airflow/dags" and dags["type"] == "bind", name
