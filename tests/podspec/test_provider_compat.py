"""The same pod as the provider's: each argument set built by our ``build_pod_request_obj(context)`` and by the
official provider's (apache-airflow-providers-cncf-kubernetes 10.25.0), compared after normalising only the
README's intended differences (``INTENDED`` below).

The provider pins kubernetes<37, so it cannot live in the main test venv: ``scripts/test-compat`` runs this file in
``.venv-compat``; elsewhere it is skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client import ApiClient
from kubernetes.client import models as k8s

from airflow_kpo_deferrable import KubernetesPodOperator
from airflow_kpo_deferrable.podspec import MANAGED_BY_LABEL, Secret
from tests.support.compat_cases import CASES, CONNECTION_CASES, TEMPLATE_FILE, Case

try:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator as ProviderOperator
    from airflow.providers.cncf.kubernetes.secret import Secret as ProviderSecret
except ImportError:  # the main venv: kubernetes 37, no provider
    ProviderOperator = ProviderSecret = None

pytestmark = pytest.mark.skipif(
    ProviderOperator is None, reason="the provider is not installed here: run scripts/test-compat"
)

# What we normalise, and why (the README's "Migrating from the provider" lists the same):
INTENDED = {
    "managed-by label": f"our pods also carry {MANAGED_BY_LABEL}=airflow-kpo-deferrable (the shared watch's selector)",
    "empty fields": "the provider sends [] / {} for arguments not given; we omit them (the API server treats both alike)",
    "secret volume names": "secretvol<uuid>: the provider's uuid is random, ours derived from the secret",
    "random suffix": "the random -xxxxxxxx name suffix differs between any two builds, the provider's too",
}
_SECRET_VOLUME = re.compile(r"secretvol[0-9a-f-]{36}")
_EMPTY_MAPS = frozenset({"annotations", "labels", "nodeSelector", "affinity", "securityContext"})


def _pruned(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if not (v == [] or (v == {} and k in _EMPTY_MAPS))}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def normalised(pod: Any, random_suffix: bool) -> dict[str, Any]:
    data = ApiClient().sanitize_for_serialization(pod)
    (data["metadata"].get("labels") or {}).pop(MANAGED_BY_LABEL, None)
    data = _pruned(data)
    text = json.dumps(data, sort_keys=True)
    for index, name in enumerate(dict.fromkeys(_SECRET_VOLUME.findall(text))):
        text = text.replace(name, f"secretvol-{index}")
    data = json.loads(text)
    if random_suffix:
        assert re.fullmatch(r".+-[a-z0-9]{8}", data["metadata"]["name"]), data["metadata"]["name"]
        data["metadata"]["name"] = data["metadata"]["name"][:-8] + "SUFFIX"
    return data


def context(map_index: int = -1, run_id: str = "scheduled__2025-03-01T00:00:00+00:00") -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="etl_daily", task_id="load", run_id=run_id, map_index=map_index, try_number=3)
    return {"ti": ti, "run_id": run_id, "dag": SimpleNamespace(dag_id="etl_daily")}


@pytest.fixture(autouse=True)
def cluster_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A kubeconfig to load (no cluster is contacted) and an empty default connection, for both operators."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # The sync client reads KUBECONFIG once, when imported; the provider relies on that default.
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps({"conn_type": "kubernetes", "extra": {}}))
    (tmp_path / "template.yaml").write_text(TEMPLATE_FILE)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def provider_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """The same arguments for the provider: our Secret objects become the provider's (same constructor)."""
    converted = dict(arguments)
    if "secrets" in converted:
        converted["secrets"] = [
            ProviderSecret(s.deploy_type, s.deploy_target, s.secret, s.key, s.items) for s in converted["secrets"]
        ]
    return converted


def provider_pod(arguments: dict[str, Any], ctx: Any) -> Any:
    """The pod the provider's ``execute`` creates: it makes the given name valid first (``_set_name``: lowercase,
    other characters ``-``), then builds — ``build_pod_request_obj`` alone skips that step."""
    operator = ProviderOperator(**provider_arguments(arguments))
    operator.name = operator._set_name(operator.name)
    return operator.build_pod_request_obj(ctx)


def build_both(case: Case) -> tuple[dict[str, Any], dict[str, Any]]:
    arguments = {"task_id": case.task_id, **case.arguments}
    ctx = context(**case.context) if case.context is not None else None
    ours = KubernetesPodOperator(**arguments).build_pod_request_obj(ctx)
    theirs = provider_pod(arguments, ctx)
    suffix = case.arguments.get("random_name_suffix", True)
    return normalised(ours, suffix), normalised(theirs, suffix)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_same_pod_as_the_provider(case: Case) -> None:
    ours, theirs = build_both(case)
    assert ours == theirs


@pytest.mark.parametrize("case", CONNECTION_CASES, ids=[c.id for c in CONNECTION_CASES])
def test_same_pod_with_connection_extras(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps({"conn_type": "kubernetes", "extra": case.extras}))
    ours, theirs = build_both(case)
    assert ours == theirs


def test_provider_secret_instances_are_accepted() -> None:
    """The provider's own Secret objects work with our operator unchanged (duck-typed, no import of the provider)."""
    secrets = [ProviderSecret("env", "token", "api", "token"), ProviderSecret("volume", "/creds", "creds")]
    ours = KubernetesPodOperator(task_id="t", image="busybox:1.36", secrets=secrets).build_pod_request_obj(context())
    theirs = ProviderOperator(task_id="t", image="busybox:1.36", secrets=secrets).build_pod_request_obj(context())
    assert normalised(ours, True) == normalised(theirs, True)
    assert Secret("env", "token", "api", "token") == secrets[0]


def test_pod_mutation_hook_is_applied_like_the_provider() -> None:
    from airflow.policies import hookimpl
    from airflow.settings import get_policy_plugin_manager

    class Policy:
        @hookimpl
        def pod_mutation_hook(self, pod: k8s.V1Pod) -> None:
            pod.metadata.annotations = {**(pod.metadata.annotations or {}), "policy.example.com/seen": "yes"}
            pod.spec.priority_class_name = "from-policy"

    manager = get_policy_plugin_manager()
    policy = Policy()
    manager.register(policy)
    try:
        case = Case("mutation", {"image": "busybox:1.36", "annotations": {"a": "b"}})
        ours, theirs = build_both(case)
    finally:
        manager.unregister(policy)
    assert ours == theirs
    assert ours["metadata"]["annotations"]["policy.example.com/seen"] == "yes"
    assert ours["spec"]["priorityClassName"] == "from-policy"


# -- intended differences: each differs from the provider exactly as the README says ---------------------------------

TEMPLATE_SIDECAR_FIRST = {
    "spec": {
        "containers": [
            {"name": "proxy", "image": "envoyproxy/envoy:v1.31"},
            {"name": "base", "image": "ghcr.io/acme/etl:1.0"},
        ]
    }
}


def build_raw(arguments: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    arguments = {"task_id": "load", "random_name_suffix": False, **arguments}
    ours = KubernetesPodOperator(**arguments).build_pod_request_obj(context())
    theirs = provider_pod(arguments, context())
    return normalised(ours, False), normalised(theirs, False)


def test_difference_base_container_found_by_name() -> None:
    """The provider merges the arguments into the template's first container (renaming it); we use the named one."""
    ours, theirs = build_raw({"pod_template_dict": TEMPLATE_SIDECAR_FIRST, "cmds": ["etl"]})
    assert [(c["name"], c["image"]) for c in ours["spec"]["containers"]] == [
        ("proxy", "envoyproxy/envoy:v1.31"),
        ("base", "ghcr.io/acme/etl:1.0"),
    ]
    assert ours["spec"]["containers"][1]["command"] == ["etl"]
    assert [(c["name"], c["image"]) for c in theirs["spec"]["containers"]] == [
        ("base", "envoyproxy/envoy:v1.31"),  # the proxy, renamed, runs the task
        ("base", "ghcr.io/acme/etl:1.0"),  # two containers named base: the API server refuses this pod
    ]


def test_difference_explicit_false_wins_over_the_template() -> None:
    template = {"spec": {"automountServiceAccountToken": True, "containers": [{"name": "base", "image": IMAGE_T}]}}
    ours, theirs = build_raw({"pod_template_dict": template, "automount_service_account_token": False})
    assert ours["spec"]["automountServiceAccountToken"] is False
    assert theirs["spec"]["automountServiceAccountToken"] is True
    ours["spec"]["automountServiceAccountToken"] = True
    assert ours == theirs


def test_difference_server_fields_of_a_template_are_dropped() -> None:
    live = {
        "metadata": {"name": "live", "uid": "0c1e5e39-0000-4000-8000-000000000000", "resourceVersion": "9"},
        "spec": {"containers": [{"name": "base", "image": IMAGE_T}]},
        "status": {"phase": "Succeeded"},
    }
    ours, theirs = build_raw({"pod_template_dict": live})
    assert {"uid", "resourceVersion"} <= set(theirs["metadata"]) and "status" in theirs  # a create would be refused
    for key in ("uid", "resourceVersion"):
        theirs["metadata"].pop(key)
    theirs.pop("status")
    assert ours == theirs


def test_difference_template_dict_is_layered_over_the_file() -> None:
    """The provider ignores pod_template_dict when pod_template_file is given; we layer the dict over the file."""
    dict_layer = {"spec": {"priorityClassName": "from-dict", "containers": [{"name": "base", "image": IMAGE_T}]}}
    ours, theirs = build_raw({"pod_template_file": "template.yaml", "pod_template_dict": dict_layer})
    assert ours["spec"]["priorityClassName"] == "from-dict" and "priorityClassName" not in theirs["spec"]


def test_difference_a_dict_full_pod_spec_is_accepted() -> None:
    full = {"spec": {"containers": [{"name": "base", "image": IMAGE_T}]}}
    pod = KubernetesPodOperator(task_id="t", full_pod_spec=full).build_pod_request_obj(context())
    assert pod.spec.containers[0].image == IMAGE_T
    with pytest.raises(AttributeError):  # the provider: 'dict' object has no attribute 'spec'
        ProviderOperator(task_id="t", full_pod_spec=full).build_pod_request_obj(context())


IMAGE_T = "ghcr.io/acme/etl:1.0"


# -- the parameters themselves ------------------------------------------------------------------------------------

# Defaults we chose to differ (README): deferral is why this package exists.
DIFFERENT_DEFAULTS = {"deferrable": True}


def test_every_provider_parameter_is_accepted_with_its_default() -> None:
    import inspect

    from airflow_kpo_deferrable.operators.arguments import KubernetesPodArguments

    def parameters(cls: type) -> dict[str, Any]:
        return {
            name: p.default
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }

    theirs, ours = parameters(ProviderOperator), parameters(KubernetesPodArguments)
    assert len(theirs) == 73
    assert set(theirs) == set(ours)
    assert {n: d for n, d in ours.items() if theirs[n] != d} == DIFFERENT_DEFAULTS


def test_templated_fields_are_the_providers() -> None:
    assert set(KubernetesPodOperator.template_fields) == set(ProviderOperator.template_fields)
    assert KubernetesPodOperator.template_fields_renderers == ProviderOperator.template_fields_renderers


def test_the_suite_is_big_enough() -> None:
    assert len(CASES) + len(CONNECTION_CASES) + 2 >= 80
