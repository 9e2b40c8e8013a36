"""The API server's create-time rules as a client sees them: 422 with the field in the Status causes, the decoder's
400 for a wrongly typed field, 404 for a namespace that does not exist; no pod is stored for any of them. Sent with
the official client, except the bodies kubernetes 37's pydantic models refuse before sending (raw HTTP, as
kubernetes<37 would send them).

Messages and field paths are kubernetes/kubernetes ``pkg/apis/core/validation/validation.go`` and apimachinery's
``field.Error`` texts.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client import ApiException, CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from tests.support.emulator import http_json

pytestmark = pytest.mark.timeout(60)

BASE = {"name": "base", "image": "busybox:1.36", "command": ["true"]}
NODE_TERMS = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"


def pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "bad"}, "spec": {"restartPolicy": "Never", "containers": [dict(BASE)], **spec}}


def node_affinity(*expressions: dict[str, Any]) -> dict[str, Any]:
    terms = [{"matchExpressions": list(expressions)}]
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}


def refused(api: CoreV1Api, body: dict[str, Any], namespace: str = "default") -> tuple[int, dict[str, Any]]:
    with pytest.raises(ApiException) as error:
        api.create_namespaced_pod(namespace, body)
    assert api.list_namespaced_pod("default").items == [], "the refused pod was stored"
    return error.value.status, json.loads(error.value.body)


def refused_raw(emulator: Emulator, api: CoreV1Api, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """For bodies kubernetes 37's models refuse client-side (kubernetes<37, the provider's pin, sends them)."""
    code, status = http_json(emulator, "/api/v1/namespaces/default/pods", json.dumps(body).encode())
    assert api.list_namespaced_pod("default").items == [], "the refused pod was stored"
    return code, status


def causes(status: dict[str, Any]) -> list[tuple[str, str]]:
    return [(cause["field"], cause["message"]) for cause in status["details"]["causes"]]


CASES_422 = {
    "duplicate volume names": (
        pod(volumes=[{"name": "x", "emptyDir": {}}, {"name": "x", "emptyDir": {}}]),
        [("spec.volumes[1].name", 'Duplicate value: "x"')],
    ),
    "a volume mount naming no volume": (
        pod(containers=[{**BASE, "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]),
        [("spec.containers[0].volumeMounts[0].name", 'Not found: "data"')],
    ),
    "a mount path used twice": (
        pod(volumes=[{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}],
            containers=[{**BASE, "volumeMounts": [{"name": "a", "mountPath": "/d"}, {"name": "b", "mountPath": "/d"}]}]),
        [("spec.containers[0].volumeMounts[1].mountPath", 'Invalid value: "/d": must be unique')],
    ),
    "toleration operator Equals": (
        pod(tolerations=[{"key": "k", "operator": "Equals", "value": "v"}]),
        [("spec.tolerations[0].operator", 'Unsupported value: "Equals": supported values: "Equal", "Exists"')],
    ),
    "toleration Exists with a value": (
        pod(tolerations=[{"key": "k", "operator": "Exists", "value": "v"}]),
        [("spec.tolerations[0].operator",
          'Invalid value: core.Toleration{Key:"k", Operator:"Exists", Value:"v", Effect:"", '
          "TolerationSeconds:(*int64)(nil)}: value must be empty when `operator` is 'Exists'")],
    ),
    "toleration without key needs Exists": (
        pod(tolerations=[{"operator": "Equal", "value": "v"}]),
        [("spec.tolerations[0].operator",
          'Invalid value: "Equal": operator must be Exists when `key` is empty, which means "match all values and '
          'all keys"')],
    ),
    "tolerationSeconds without NoExecute": (
        pod(tolerations=[{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}]),
        [("spec.tolerations[0].effect", "Invalid value: \"NoSchedule\": effect must be 'NoExecute' when "
                                        "`tolerationSeconds` is set")],
    ),
    "toleration effect unknown": (
        pod(tolerations=[{"key": "k", "operator": "Exists", "effect": "NoWay"}]),
        [("spec.tolerations[0].effect",
          'Unsupported value: "NoWay": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"')],
    ),
    "node selector operator Equals": (
        pod(affinity=node_affinity({"key": "zone", "operator": "Equals", "values": ["a"]})),
        [(f"{NODE_TERMS}[0].matchExpressions[0].operator", 'Invalid value: "Equals": not a valid selector operator')],
    ),
    "node selector In without values": (
        pod(affinity=node_affinity({"key": "zone", "operator": "In"})),
        [(f"{NODE_TERMS}[0].matchExpressions[0].values",
          "Required value: must be specified when `operator` is 'In' or 'NotIn'")],
    ),
    "node selector Exists with values": (
        pod(affinity=node_affinity({"key": "zone", "operator": "DoesNotExist", "values": ["a"]})),
        [(f"{NODE_TERMS}[0].matchExpressions[0].values",
          "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")],
    ),
    "node selector Gt with two values": (
        pod(affinity=node_affinity({"key": "cores", "operator": "Gt", "values": ["1", "2"]})),
        [(f"{NODE_TERMS}[0].matchExpressions[0].values",
          "Required value: must be specified single value when `operator` is 'Lt' or 'Gt'")],
    ),
    "node affinity without terms": (
        pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}),
        [(NODE_TERMS, "Required value: must have at least one node selector term")],
    ),
    "preferred node affinity weight 0": (
        pod(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 0, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}]}}),
        [("spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
          "Invalid value: 0: must be in the range 1-100")],
    ),
    "pod affinity term without topologyKey": (
        pod(affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}}]}}),
        [("spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
          "Required value: can not be empty"),
         ("spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
          'Invalid value: "": name part must be non-empty'),
         ("spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
          "Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
          "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
          "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")],
    ),
    "pod anti-affinity selector operator Equals": (
        pod(affinity={"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {
                "matchExpressions": [{"key": "app", "operator": "Equals", "values": ["db"]}]}}}]}}),
        [("spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm"
          ".labelSelector.matchExpressions[0].operator", 'Invalid value: "Equals": not a valid selector operator')],
    ),
    "a container without image": (
        pod(containers=[{"name": "base", "command": ["true"]}]),
        [("spec.containers[0].image", "Required value")],
    ),
    "an init container without image": (
        pod(initContainers=[{"name": "setup", "command": ["true"]}]),
        [("spec.initContainers[0].image", "Required value")],
    ),
}


RAW = {"pod affinity term without topologyKey"}  # kubernetes 37's model requires topologyKey


@pytest.mark.parametrize("case", list(CASES_422))
def test_the_api_server_rejects_with_422(emulator: Emulator, api: CoreV1Api, case: str) -> None:
    body, expected = CASES_422[case]
    code, status = refused_raw(emulator, api, body) if case in RAW else refused(api, body)
    assert (code, status["reason"], status["details"]["kind"]) == (422, "Invalid", "Pod")
    assert causes(status) == expected
    assert status["message"].startswith('Pod "bad" is invalid: ')


CASES_400 = {
    "node selector values as a string": (
        pod(affinity=node_affinity({"key": "zone", "operator": "In", "values": "a"})),
        "json: cannot unmarshal string into Go struct field NodeSelectorRequirement.spec.affinity.nodeAffinity"
        ".requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.matchExpressions.values of type []string",
    ),
    "a number among the values": (
        pod(affinity=node_affinity({"key": "zone", "operator": "In", "values": ["a", 1]})),
        "json: cannot unmarshal number into Go struct field NodeSelectorRequirement.spec.affinity.nodeAffinity"
        ".requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.matchExpressions.values of type string",
    ),
    "a node selector value that is a bool": (
        pod(nodeSelector={"gpu": True}),
        "json: cannot unmarshal bool into Go struct field PodSpec.spec.nodeSelector of type string",
    ),
    "tolerations as an object": (
        pod(tolerations={"key": "k"}),
        "json: cannot unmarshal object into Go struct field PodSpec.spec.tolerations of type []v1.Toleration",
    ),
    "a fractional grace period": (
        pod(terminationGracePeriodSeconds=1.5),
        "json: cannot unmarshal number 1.5 into Go struct field PodSpec.spec.terminationGracePeriodSeconds of type "
        "int64",
    ),
    "a command that is a string": (
        pod(containers=[{**BASE, "command": "echo hi"}]),
        "json: cannot unmarshal string into Go struct field Container.spec.containers.command of type []string",
    ),
}


@pytest.mark.parametrize("case", list(CASES_400))
def test_a_wrongly_typed_field_is_the_decoders_400(emulator: Emulator, api: CoreV1Api, case: str) -> None:
    body, message = CASES_400[case]
    code, status = refused_raw(emulator, api, body)
    assert (code, status["reason"]) == (400, "BadRequest")
    assert status["message"] == f'Pod in version "v1" cannot be handled as a Pod: {message}'


@pytest.mark.parametrize("namespace", ["missing", "Bad_Namespace"])
def test_a_namespace_that_does_not_exist_is_404_even_when_its_name_is_invalid(api: CoreV1Api, namespace: str) -> None:
    # the NamespaceLifecycle admission plugin answers before validation sees metadata.namespace
    code, status = refused(api, pod(), namespace=namespace)
    assert (code, status["reason"], status["message"]) == (404, "NotFound", f'namespaces "{namespace}" not found')
    assert status["details"] == {"name": namespace, "kind": "namespaces"}


def test_valid_scheduling_rules_are_accepted(api: CoreV1Api) -> None:
    body = pod(
        volumes=[{"name": "xcom", "emptyDir": {}}],
        tolerations=[{"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute", "tolerationSeconds": 5},
                     {"operator": "Exists"}],
        affinity={**node_affinity({"key": "cores", "operator": "Gt", "values": ["0"]},
                                  {"key": "zone", "operator": "DoesNotExist"}),
                  "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                      {"topologyKey": "kubernetes.io/hostname",
                       "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["x"]}]}}]}},
    )
    body["spec"]["containers"][0]["volumeMounts"] = [{"name": "xcom", "mountPath": "/airflow/xcom"}]
    created = api.create_namespaced_pod("default", body)
    assert created.metadata.name == "bad"
