"""compose/rewrite-kubeconfig.sh on a kubeconfig the emulator wrote, then used by real clients; k3s-setup.sh on it.

The emulator plays k3s: with TLS its kubeconfig says ``server: https://127.0.0.1:PORT`` and carries a CA and a
token, and its certificate also names ``localhost`` — as k3s's names ``k3s`` with ``--tls-san k3s``. Rewriting the
server to ``https://localhost:PORT`` is the same move the one-shot makes to ``https://k3s:6443``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import kubernetes
import pytest
import urllib3
import yaml

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.hooks.kubernetes import KubernetesHook
from tests.support.compose import SETUP_SCRIPT, run_rewrite
from tests.support.emulator import needs_kubectl


@pytest.fixture
def emulator(k8s_emulator_factory: Callable[..., Emulator]) -> Emulator:
    return k8s_emulator_factory(runtime="scripted", tls=True)


def renamed(emulator: Emulator) -> str:
    assert emulator.url.startswith("https://127.0.0.1:")
    return emulator.url.replace("127.0.0.1", "localhost")


def test_only_the_server_line_changes(emulator: Emulator, tmp_path: Path) -> None:
    source, target = emulator.kubeconfig_path, tmp_path / "config"
    result = run_rewrite(str(source), str(target), renamed(emulator))
    assert result.returncode == 0, result.stderr
    assert f"wrote {target} (server {renamed(emulator)})" in result.stdout
    before, after = source.read_text().splitlines(), target.read_text().splitlines()
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert changed == [(f"    server: {emulator.url}", f"    server: {renamed(emulator)}")]
    original, rewritten = yaml.safe_load(source.read_text()), yaml.safe_load(target.read_text())
    assert rewritten["clusters"][0]["cluster"]["server"] == renamed(emulator)
    rewritten["clusters"][0]["cluster"]["server"] = emulator.url
    assert rewritten == original  # CA, token, contexts, namespace: all intact
    assert target.stat().st_mode & 0o777 == 0o644  # the airflow user (not root) reads it
    assert not list(tmp_path.glob("config.tmp.*"))


def test_the_rewritten_file_works_for_the_clients_and_the_connection_the_containers_use(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "config"
    assert run_rewrite(str(emulator.kubeconfig_path), str(target), renamed(emulator)).returncode == 0
    # TLS verification now checks the certificate against "localhost": it passes because the name is in it.
    api = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(config_file=str(target)))
    assert api.list_namespaced_pod("default").items == []
    connection = {"conn_type": "kubernetes", "extra": {"kube_config_path": str(target), "namespace": "kpo-demo"}}
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps(connection))
    hook = KubernetesHook()
    assert hook.default_namespace() == "kpo-demo"
    assert hook.core_v1().list_namespaced_pod("default").items == []
    assert emulator.counters()["list pods"] == 2


def test_a_server_the_certificate_does_not_name_fails_verification(
    k8s_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    # The reason for --tls-san k3s: a kubeconfig rewritten to a name the certificate lacks is refused. Listening
    # on every address, the emulator is reachable as 127.0.0.2, which its certificate does not name.
    emulator = k8s_emulator_factory(runtime="scripted", tls=True, host="0.0.0.0")
    target = tmp_path / "config"
    other = emulator.url.replace("https://0.0.0.0", "https://127.0.0.2")
    assert run_rewrite(str(emulator.kubeconfig_path), str(target), other).returncode == 0
    api = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(config_file=str(target)))
    with pytest.raises(urllib3.exceptions.MaxRetryError, match="CERTIFICATE_VERIFY_FAILED"):
        api.list_namespaced_pod("default", _request_timeout=10)
    assert emulator.counters().get("list pods", 0) == 0


def test_it_is_idempotent_and_can_rewrite_in_place(emulator: Emulator, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    assert run_rewrite(str(emulator.kubeconfig_path), str(first), renamed(emulator)).returncode == 0
    assert run_rewrite(str(first), str(second), renamed(emulator)).returncode == 0
    assert second.read_bytes() == first.read_bytes()
    assert run_rewrite(str(second), str(second), renamed(emulator)).returncode == 0
    assert second.read_bytes() == first.read_bytes()


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ("k3s:6443", "must start with https://"),
        ("https://k3s:6443|x", "contains a character"),
        ("", "must start with https://"),
    ],
)
def test_a_bad_server_url_is_refused_and_nothing_is_written(
    emulator: Emulator, tmp_path: Path, server: str, message: str
) -> None:
    result = run_rewrite(str(emulator.kubeconfig_path), str(tmp_path / "config"), server)
    assert result.returncode == 2
    assert message in result.stderr and f"'{server}'" in result.stderr
    assert not (tmp_path / "config").exists()


def test_a_missing_source_or_a_multi_cluster_kubeconfig_is_refused(emulator: Emulator, tmp_path: Path) -> None:
    missing = run_rewrite(str(tmp_path / "absent.yaml"), str(tmp_path / "config"), "https://k3s:6443")
    assert missing.returncode == 1 and "absent.yaml' does not exist" in missing.stderr
    config = yaml.safe_load(emulator.kubeconfig_path.read_text())
    config["clusters"].append({"name": "other", "cluster": {"server": "https://other:6443"}})
    two = tmp_path / "two.yaml"
    two.write_text(yaml.safe_dump(config))
    refused = run_rewrite(str(two), str(tmp_path / "config"), "https://k3s:6443")
    assert refused.returncode == 1 and "found 2" in refused.stderr
    assert not (tmp_path / "config").exists()
    usage = run_rewrite(str(two))
    assert usage.returncode == 2 and "usage:" in usage.stderr


def test_the_setup_script_is_valid_posix_sh_and_uses_the_rewrite_script() -> None:
    assert subprocess.run(["sh", "-n", str(SETUP_SCRIPT)], capture_output=True, check=False).returncode == 0
    text = SETUP_SCRIPT.read_text()
    assert 'sh "$here/rewrite-kubeconfig.sh" "$SOURCE" "$TARGET" "$SERVER"' in text
    assert 'kubectl apply -f "$here/kpo-demo-rbac.yaml"' in text


@needs_kubectl
def test_the_setup_script_runs_on_the_emulator_up_to_the_rbac_step(emulator: Emulator, tmp_path: Path) -> None:
    # With real kubectl: the rewrite, the API server's /readyz and the node's Ready condition all pass on the
    # emulator. It serves no RBAC API, so `kubectl apply` fails there, and the script must stop with that error.
    target = tmp_path / "config"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "K3S_KUBECONFIG_SOURCE": str(emulator.kubeconfig_path),
        "K3S_KUBECONFIG_TARGET": str(target),
        "K3S_SERVER_URL": renamed(emulator),
    }
    result = subprocess.run(["sh", str(SETUP_SCRIPT)], env=env, capture_output=True, text=True, timeout=120,
                            check=False)  # fmt: skip
    assert result.stdout.splitlines()[:4] == [
        f"ok: k3s wrote {emulator.kubeconfig_path}",
        f"wrote {target} (server {renamed(emulator)})",
        f"ok: API server at {renamed(emulator)}",
        "ok: the node is Ready",
    ], result.stdout + result.stderr
    assert result.returncode != 0 and "kpo-demo-rbac.yaml" in result.stderr
    assert "k3s is ready for Airflow" not in result.stdout
    assert yaml.safe_load(target.read_text())["clusters"][0]["cluster"]["server"] == renamed(emulator)
