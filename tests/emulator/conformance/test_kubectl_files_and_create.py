"""The kubectl commands people type first, unmodified: ``apply -f``, ``create -f``, ``create secret|configmap|
namespace`` (protobuf bodies) and ``run ... -- command`` (args without a command).

Each failed before: apply/create -f with "failed to download openapi" (no ``/openapi/v3``), the create
subcommands with 400 (a protobuf body read as JSON), ``run`` printed made-up ``hello line 1`` lines.
"""

from __future__ import annotations

import base64
import json

import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from tests.support.emulator import kubectl, needs_kubectl, wait_for

pytestmark = [pytest.mark.timeout(60), needs_kubectl]

POD_YAML = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: files}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 0
  containers:
  - name: base
    image: busybox:1.36
    command: ["sh", "-c", "echo from a file; sleep 30"]
"""


def test_apply_creates_then_patches_with_validation_on(api: CoreV1Api, emulator: Emulator) -> None:
    first = kubectl(emulator, "apply", "-f", "-", stdin=POD_YAML.format(name="applied"))
    assert (first.returncode, first.stdout, first.stderr) == (0, "pod/applied created\n", "")
    created = api.read_namespaced_pod("applied", "default")
    assert "kubectl.kubernetes.io/last-applied-configuration" in created.metadata.annotations
    changed = POD_YAML.format(name="applied").replace("{app: files}", "{app: files, tier: web}")
    second = kubectl(emulator, "apply", "-f", "-", stdin=changed)
    assert (second.returncode, second.stdout, second.stderr) == (0, "pod/applied configured\n", "")
    assert api.read_namespaced_pod("applied", "default").metadata.labels == {"app": "files", "tier": "web"}
    third = kubectl(emulator, "apply", "-f", "-", stdin=changed)
    assert (third.returncode, third.stdout) == (0, "pod/applied unchanged\n"), third.stderr


def test_create_from_a_file_runs_the_pod(api: CoreV1Api, emulator: Emulator) -> None:
    result = kubectl(emulator, "create", "-f", "-", stdin=POD_YAML.format(name="from-file"))
    assert (result.returncode, result.stdout, result.stderr) == (0, "pod/from-file created\n", "")
    wait_for(api, "from-file", lambda p: p.status.phase == "Running")
    again = kubectl(emulator, "create", "-f", "-", stdin=POD_YAML.format(name="from-file"))
    assert again.returncode == 1
    assert again.stderr == 'Error from server (AlreadyExists): error when creating "STDIN": pods "from-file" already ' \
                           "exists\n"


def test_create_secret_configmap_and_namespace_send_protobuf_and_are_stored(api: CoreV1Api, emulator: Emulator) -> None:
    for args, expected in (
        (("create", "secret", "generic", "token", "--from-literal=key=s3cr3t", "--from-literal=other=x"),
         "secret/token created\n"),
        (("create", "configmap", "settings", "--from-literal=mode=fast"), "configmap/settings created\n"),
        (("create", "namespace", "team-b"), "namespace/team-b created\n"),
    ):
        result = kubectl(emulator, *args)
        assert (result.returncode, result.stdout, result.stderr) == (0, expected, ""), args
    secret = api.read_namespaced_secret("token", "default")
    assert {k: base64.b64decode(v).decode() for k, v in secret.data.items()} == {"key": "s3cr3t", "other": "x"}
    assert secret.type == "Opaque"
    assert api.read_namespaced_config_map("settings", "default").data == {"mode": "fast"}
    assert api.read_namespace("team-b").status.phase == "Active"
    shown = json.loads(kubectl(emulator, "get", "secret", "token", "-o", "json").stdout)
    assert shown["kind"] == "Secret" and shown["metadata"]["namespace"] == "default"


def test_run_with_args_only_runs_them_as_the_command(api: CoreV1Api, emulator: Emulator) -> None:
    result = kubectl(emulator, "run", "hello", "--image=busybox", "--restart=Never", "--", "sh", "-c", "echo hi")
    assert (result.returncode, result.stdout) == (0, "pod/hello created\n"), result.stderr
    container = api.read_namespaced_pod("hello", "default").spec.containers[0]
    assert (container.command, container.args) == (None, ["sh", "-c", "echo hi"])
    done = wait_for(api, "hello", lambda p: p.status.phase in ("Succeeded", "Failed"))
    assert done.status.phase == "Succeeded"
    logs = kubectl(emulator, "logs", "hello")
    assert (logs.returncode, logs.stdout) == (0, "hi\n"), logs.stderr
