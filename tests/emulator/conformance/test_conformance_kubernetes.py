"""Conformance with the official synchronous ``kubernetes`` client: the emulator must pass for a real API server.

Every answer is read through a client we did not write, and error bodies are compared with the messages a real
kube-apiserver (1.32) sends: the apimachinery formats for NotFound/AlreadyExists/Conflict/Invalid and the label
selector parser's own errors.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes.client import ApiException, ApisApi, CoreApi, CoreV1Api, VersionApi
from kubernetes.stream import stream
from kubernetes.watch import Watch

from airflow_kpo_deferrable.emulator import Emulator, scenario
from tests.support.emulator import wait_for

pytestmark = pytest.mark.timeout(60)

SUBDOMAIN_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
DNS_LABEL_RULE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end "
    "with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
QUALIFIED_NAME_RULE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


def pod(
    name: str, command: list[str] | None = None, labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None, image: str = "busybox:1.36",
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "base", "image": image, "command": command or ["sleep", "30"]}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 2, "containers": [container]},
    }


def failure(call: Callable[[], Any]) -> tuple[ApiException, dict[str, Any]]:
    """The ApiException a call raises, and its body parsed as the Status it must be."""
    with pytest.raises(ApiException) as caught:
        call()
    body = json.loads(caught.value.body)
    assert (body["kind"], body["apiVersion"], body["status"]) == ("Status", "v1", "Failure")
    assert body["code"] == caught.value.status
    return caught.value, body


def phase(*phases: str) -> Callable[[Any], bool]:
    return lambda p: p.status.phase in phases


def names(pods: Any) -> list[str]:
    return sorted(p.metadata.name for p in pods.items)


def test_discovery(api: CoreV1Api) -> None:
    code = VersionApi(api.api_client).get_code()
    assert (code.major, code.minor) == ("1", "32")
    assert code.git_version.startswith("v1.32.") and code.platform == "linux/amd64"
    versions = CoreApi(api.api_client).get_api_versions()
    assert versions.versions == ["v1"]
    assert versions.server_address_by_client_cidrs[0].client_cidr == "0.0.0.0/0"
    assert ApisApi(api.api_client).get_api_versions().groups == []
    resources = {resource.name: resource for resource in api.get_api_resources().resources}
    pods = resources["pods"]
    assert (pods.kind, pods.namespaced, pods.short_names) == ("Pod", True, ["po"])
    assert {"create", "delete", "get", "list", "patch", "watch"} <= set(pods.verbs)
    assert resources["namespaces"].namespaced is False
    assert resources["pods/log"].verbs == ["get"]
    assert "patch" in resources["pods/status"].verbs


def test_namespace_create_and_delete(api: CoreV1Api) -> None:
    created = api.create_namespace({"metadata": {"name": "team-a"}})
    assert created.status.phase == "Active"
    assert created.metadata.labels == {"kubernetes.io/metadata.name": "team-a"}
    listed = {n.metadata.name for n in api.list_namespace().items}
    assert {"default", "kube-system", "kube-public", "kube-node-lease", "team-a"} <= listed
    api.create_namespaced_pod("team-a", pod("inside"))
    assert names(api.list_namespaced_pod("team-a")) == ["inside"]
    assert "inside" not in names(api.list_namespaced_pod("default"))

    error, body = failure(lambda: api.create_namespace({"metadata": {"name": "team.a"}}))
    assert (error.status, body["reason"]) == (422, "Invalid")
    assert body["message"] == f'Namespace "team.a" is invalid: metadata.name: Invalid value: "team.a": {DNS_LABEL_RULE}'

    api.delete_namespace("team-a")
    deadline = time.monotonic() + 10
    while True:
        try:
            api.read_namespace("team-a")
        except ApiException as gone:
            assert gone.status == 404
            break
        assert time.monotonic() < deadline, "the namespace was never removed"
        time.sleep(0.05)
    assert api.list_namespaced_pod("team-a").items == []
    error, body = failure(lambda: api.create_namespaced_pod("team-a", pod("late")))
    assert (error.status, body["reason"], body["message"]) == (404, "NotFound", 'namespaces "team-a" not found')


def test_create_get_and_list_with_label_and_field_selectors(api: CoreV1Api) -> None:
    created = api.create_namespaced_pod("default", pod("web-1", labels={"app": "web", "tier": "front", "rank": "3"}))
    assert created.metadata.uid and created.metadata.creation_timestamp and created.metadata.namespace == "default"
    assert (created.status.phase, created.spec.containers[0].image_pull_policy) == ("Pending", "IfNotPresent")
    api.create_namespaced_pod("default", pod("web-2", ["true"], labels={"app": "web", "rank": "1"}))
    api.create_namespaced_pod("default", pod("db-1", labels={"app": "db", "tier": "back"}))
    api.create_namespaced_pod("default", pod("plain", annotations=scenario(failure="Unschedulable")))
    got = api.read_namespaced_pod("web-1", "default")
    assert got.metadata.uid == created.metadata.uid
    wait_for(api, "web-1", phase("Running"))
    wait_for(api, "db-1", phase("Running"))
    wait_for(api, "web-2", phase("Succeeded"))
    wait_for(api, "plain", lambda p: bool(p.status.conditions))

    listing = api.list_namespaced_pod("default")
    assert names(listing) == ["db-1", "plain", "web-1", "web-2"]
    assert int(listing.metadata.resource_version) >= max(int(p.metadata.resource_version) for p in listing.items)

    def labelled(selector: str) -> list[str]:
        return names(api.list_namespaced_pod("default", label_selector=selector))

    assert labelled("app=web") == labelled("app==web") == ["web-1", "web-2"]
    assert labelled("app!=web") == ["db-1", "plain"]  # != also matches pods without the label
    assert labelled("app in (web, db)") == ["db-1", "web-1", "web-2"]
    assert labelled("app notin (web)") == ["db-1", "plain"]
    assert labelled("tier") == ["db-1", "web-1"]
    assert labelled("!tier") == ["plain", "web-2"]
    assert labelled("app=web,tier") == ["web-1"]
    assert labelled("app in (web),!tier") == ["web-2"]
    assert labelled("rank>2") == ["web-1"] and labelled("rank<2") == ["web-2"]
    assert labelled("app=nothing") == []
    assert names(api.list_pod_for_all_namespaces(label_selector="app=db")) == ["db-1"]

    def fielded(selector: str, label_selector: str = "") -> list[str]:
        return names(api.list_namespaced_pod("default", field_selector=selector, label_selector=label_selector))

    assert fielded("metadata.name=web-2") == ["web-2"]
    assert fielded("metadata.name!=web-2") == ["db-1", "plain", "web-1"]
    assert fielded("status.phase=Running") == ["db-1", "web-1"]
    assert fielded("status.phase=Succeeded") == ["web-2"]
    assert fielded("status.phase==Pending") == ["plain"]
    assert fielded("status.phase!=Running,metadata.name!=plain") == ["web-2"]
    assert fielded("status.phase=Running", label_selector="app=web") == ["web-1"]
    assert fielded("spec.nodeName=emulator-node") == ["db-1", "web-1", "web-2"]


def pod_changes(emulator: Emulator, after: int, upto: int) -> list[tuple[str, str, int]]:
    """What the emulator committed for pods in default, in version order: the truth a watch must reproduce."""

    def read() -> list[tuple[str, str, int]]:
        return [
            (change.type, change.obj["metadata"]["name"], change.rv)
            for change in emulator.store.changes_since(after)
            if change.kind == "pods" and change.obj["metadata"].get("namespace") == "default" and change.rv <= upto
        ]

    return emulator.call(read)


def seen(event: dict[str, Any]) -> tuple[str, str, int]:
    return event["type"], event["object"].metadata.name, int(event["object"].metadata.resource_version)


def test_watch_resumes_from_a_resource_version(api: CoreV1Api, emulator: Emulator) -> None:
    api.create_namespaced_pod("default", pod("before"))
    start = api.list_namespaced_pod("default").metadata.resource_version
    writes = []
    for name in ("w1", "w2", "w3"):
        writes.append(("ADDED", name, int(api.create_namespaced_pod("default", pod(name)).metadata.resource_version)))
    patched = api.patch_namespaced_pod("w1", "default", {"metadata": {"labels": {"stage": "two"}}})
    writes.append(("MODIFIED", "w1", int(patched.metadata.resource_version)))
    removed = api.delete_namespaced_pod("w2", "default", grace_period_seconds=0)
    writes.append(("DELETED", "w2", int(removed.metadata.resource_version)))

    first: list[tuple[str, str, int]] = []
    watch = Watch()
    for event in watch.stream(api.list_namespaced_pod, "default", resource_version=start, timeout_seconds=10):
        first.append(seen(event))
        if len(first) == 3:
            watch.stop()
            break
    resume_from = watch.resource_version
    assert resume_from == str(first[-1][2])
    second = [seen(event) for event in Watch().stream(
        api.list_namespaced_pod, "default", resource_version=resume_from, timeout_seconds=1)]

    events = first + second
    versions = [rv for _, _, rv in events]
    assert versions == sorted(set(versions)), "events must come once each, in resourceVersion order"
    assert versions[0] > int(start)
    assert set(writes) <= set(events)
    assert "before" not in {name for _, name, _ in events if _ == "ADDED"}  # created before the start version
    assert events == pod_changes(emulator, int(start), versions[-1]), "a change was lost or invented"


def test_too_old_resource_version_is_410_expired(api: CoreV1Api, emulator: Emulator) -> None:
    old = api.create_namespaced_pod("default", pod("old")).metadata.resource_version
    api.patch_namespaced_pod("old", "default", {"metadata": {"labels": {"touched": "yes"}}})
    emulator.call(emulator.faults.expire_history)
    emulator.reset_counters()
    with pytest.raises(ApiException) as expired:
        for _ in Watch().stream(api.list_namespaced_pod, "default", resource_version=old):
            pass
    assert expired.value.status == 410
    assert expired.value.reason.startswith(f"Expired: too old resource version: {old} (")
    assert emulator.counters()["watch pods"] == 2  # this client retries a 410 once, then raises

    raw = api.list_namespaced_pod("default", watch=True, resource_version=old, _preload_content=False)
    assert raw.status == 200  # a 410 on a watch is an ERROR event in a 200 stream, not an HTTP status
    (line,) = raw.data.decode().splitlines()
    event = json.loads(line)
    assert event["type"] == "ERROR"
    assert {k: event["object"][k] for k in ("kind", "status", "reason", "code")} == {
        "kind": "Status", "status": "Failure", "reason": "Expired", "code": 410}

    relisted = api.list_namespaced_pod("default")  # what the client must do next: list, then watch from there
    fresh = list(Watch().stream(api.list_namespaced_pod, "default",
                                resource_version=relisted.metadata.resource_version, timeout_seconds=1))
    assert all(e["type"] != "ERROR" for e in fresh)


def test_delete_with_grace_period_marks_then_removes(api: CoreV1Api) -> None:
    trap = "trap 'sleep 0.3; exit 0' TERM; echo trapped; while true; do sleep 0.05; done"
    api.create_namespaced_pod("default", pod("leaving", ["sh", "-c", trap]))
    before = wait_for(api, "leaving", phase("Running"))
    wait_for(api, "leaving", lambda p: "trapped" in api.read_namespaced_pod_log("leaving", "default"))
    marked = api.delete_namespaced_pod("leaving", "default", grace_period_seconds=30)
    assert marked.metadata.name == "leaving" and marked.metadata.deletion_grace_period_seconds == 30
    remaining = (marked.metadata.deletion_timestamp - datetime.now(UTC)).total_seconds()
    assert 20 <= remaining <= 31
    assert api.read_namespaced_pod("leaving", "default").metadata.deletion_timestamp is not None

    begun = time.monotonic()
    events = []
    for event in Watch().stream(api.list_namespaced_pod, "default", field_selector="metadata.name=leaving",
                                resource_version=before.metadata.resource_version, timeout_seconds=20):
        events.append((event["type"], event["object"].metadata.deletion_timestamp is not None))
        if event["type"] == "DELETED":
            break
    assert time.monotonic() - begun < 15  # gone when the container exited, not at the end of the 30 s grace period
    assert events[-1] == ("DELETED", True)
    assert ("MODIFIED", True) in events
    error, body = failure(lambda: api.read_namespaced_pod("leaving", "default"))
    assert (error.status, body["message"]) == (404, 'pods "leaving" not found')


def test_patch_and_patch_status(api: CoreV1Api) -> None:
    api.create_namespaced_pod("default", pod("patched", ["true"], labels={"app": "web"}))
    before = wait_for(api, "patched", phase("Succeeded"))
    time.sleep(0.1)  # the kubelet's last status write is done

    merged = api.patch_namespaced_pod("patched", "default", {"metadata": {"labels": {"stage": "done"}}})
    assert merged.metadata.labels == {"app": "web", "stage": "done"}
    assert int(merged.metadata.resource_version) > int(before.metadata.resource_version)
    again = api.patch_namespaced_pod("patched", "default", {"metadata": {"labels": {"stage": "done"}}})
    assert again.metadata.resource_version == merged.metadata.resource_version  # a no-op is not written

    json_patched = api.patch_namespaced_pod("patched", "default", [{"op": "remove", "path": "/metadata/labels/app"}])
    assert json_patched.metadata.labels == {"stage": "done"}
    annotated = api.patch_namespaced_pod("patched", "default", {"metadata": {"annotations": {"note": "hi"}}},
                                         _content_type="application/merge-patch+json")
    assert annotated.metadata.annotations["note"] == "hi"
    cleared = api.patch_namespaced_pod("patched", "default", {"metadata": {"labels": {"stage": None}}})
    assert not cleared.metadata.labels

    ignored = api.patch_namespaced_pod("patched", "default", {"status": {"phase": "Failed"}})
    assert ignored.status.phase == "Succeeded"  # the main resource does not write status

    condition = {"type": "example.com/Audited", "status": "True", "reason": "Checked", "message": "all good"}
    status = api.patch_namespaced_pod_status("patched", "default", {"status": {"conditions": [condition]}})
    kinds = [c.type for c in status.status.conditions]
    assert "example.com/Audited" in kinds and "Ready" in kinds  # strategic merge by condition type
    assert status.status.phase == "Succeeded"
    assert int(status.metadata.resource_version) > int(cleared.metadata.resource_version)
    assert api.read_namespaced_pod_status("patched", "default").status.conditions == status.status.conditions


def test_events_for_a_pod(api: CoreV1Api) -> None:
    created = api.create_namespaced_pod("default", pod("noisy", ["true"]))
    done = wait_for(api, "noisy", phase("Succeeded"))
    events = api.list_namespaced_event("default", field_selector=f"involvedObject.uid={created.metadata.uid}").items
    events.sort(key=lambda event: int(event.metadata.resource_version))
    reasons = [event.reason for event in events]
    assert reasons[0] == "Scheduled" and {"Pulled", "Created", "Started"} <= set(reasons)
    for event in events:
        assert (event.involved_object.kind, event.involved_object.name) == ("Pod", "noisy")
        assert event.type == "Normal" and event.metadata.namespace == "default"
    scheduled = events[0]
    assert scheduled.reporting_component == "default-scheduler"
    assert scheduled.message == "Successfully assigned default/noisy to emulator-node"
    started = next(event for event in events if event.reason == "Started")
    assert (started.source.component, started.source.host) == ("kubelet", "emulator-node")
    assert started.involved_object.field_path == "spec.containers{base}"
    only = api.list_namespaced_event("default", field_selector="reason=Scheduled,involvedObject.name=noisy").items
    assert [event.metadata.name for event in only] == [scheduled.metadata.name]
    everywhere = api.list_event_for_all_namespaces(field_selector="involvedObject.name=noisy").items
    assert len(everywhere) == len(events)
    # one resourceVersion sequence across kinds: the events sit between the pod's own versions
    assert int(created.metadata.resource_version) < int(scheduled.metadata.resource_version)
    assert int(scheduled.metadata.resource_version) < int(done.metadata.resource_version)


def test_logs_and_exec(api: CoreV1Api) -> None:
    api.create_namespaced_pod("default", pod("talker", ["sh", "-c", "echo hello from talker; sleep 30"]))
    wait_for(api, "talker", lambda p: "talker" in api.read_namespaced_pod_log("talker", "default")
             if p.status.phase == "Running" else False)
    assert api.read_namespaced_pod_log("talker", "default") == "hello from talker\n"
    output = stream(api.connect_get_namespaced_pod_exec, "talker", "default", command=["sh", "-c", "echo $((6*7))"],
                    stderr=True, stdin=False, stdout=True, tty=False)
    assert output == "42\n"


def test_not_found_already_exists_and_conflict(api: CoreV1Api) -> None:
    error, body = failure(lambda: api.read_namespaced_pod("missing", "default"))
    assert (error.status, body["reason"], body["message"]) == (404, "NotFound", 'pods "missing" not found')
    assert body["details"] == {"name": "missing", "kind": "pods"}
    error, body = failure(lambda: api.delete_namespaced_pod("missing", "default"))
    assert (error.status, body["reason"]) == (404, "NotFound")

    api.create_namespaced_pod("default", pod("dup"))
    error, body = failure(lambda: api.create_namespaced_pod("default", pod("dup")))
    assert (error.status, body["reason"], body["message"]) == (409, "AlreadyExists", 'pods "dup" already exists')
    assert body["details"] == {"name": "dup", "kind": "pods"}

    stale = api.read_namespaced_pod("dup", "default")
    api.patch_namespaced_pod("dup", "default", {"metadata": {"labels": {"bumped": "yes"}}})
    error, body = failure(lambda: api.replace_namespaced_pod("dup", "default", stale))
    assert (error.status, body["reason"]) == (409, "Conflict")
    assert body["message"] == (
        'Operation cannot be fulfilled on pods "dup": the object has been modified; please apply your changes to '
        "the latest version and try again"
    )

    error, body = failure(lambda: api.delete_namespaced_pod("dup", "default", body={"preconditions": {"uid": "abc"}}))
    assert (error.status, body["reason"]) == (409, "Conflict")
    assert body["message"] == (
        f'Operation cannot be fulfilled on pods "dup": Precondition failed: UID in precondition: abc, '
        f"UID in object meta: {stale.metadata.uid}"
    )


def test_invalid_objects_are_422_with_the_api_servers_messages(api: CoreV1Api) -> None:
    error, body = failure(lambda: api.create_namespaced_pod("default", pod("Bad_Name")))
    assert (error.status, body["reason"]) == (422, "Invalid")
    assert body["message"] == f'Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": {SUBDOMAIN_RULE}'
    assert body["details"] == {"name": "Bad_Name", "kind": "Pod", "causes": [
        {"reason": "FieldValueInvalid", "message": f'Invalid value: "Bad_Name": {SUBDOMAIN_RULE}',
         "field": "metadata.name"}]}

    error, body = failure(lambda: api.create_namespaced_pod("default", pod("labelled", labels={"team": "data eng"})))
    assert (error.status, body["reason"]) == (422, "Invalid")
    assert body["message"] == (
        f'Pod "labelled" is invalid: metadata.labels: Invalid value: "data eng": {LABEL_VALUE_RULE}'
    )

    imageless = pod("imageless")
    del imageless["spec"]["containers"][0]["image"]
    error, body = failure(lambda: api.create_namespaced_pod("default", imageless))
    assert (error.status, body["message"]) == (422, 'Pod "imageless" is invalid: spec.containers[0].image: Required value')
    assert body["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers[0].image"}]

    both = pod("both", labels={"team": "data eng"})
    del both["spec"]["containers"][0]["image"]
    error, body = failure(lambda: api.create_namespaced_pod("default", both))
    assert body["message"] == (
        f'Pod "both" is invalid: [metadata.labels: Invalid value: "data eng": {LABEL_VALUE_RULE}, '
        "spec.containers[0].image: Required value]"
    )
    assert api.list_namespaced_pod("default").items == []  # nothing invalid was stored


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("env IN (a)", "unable to parse requirement: found 'IN', expected: in, notin, =, ==, !=, gt, lt"),
        ("app in (web", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("app=web tier", "found 'tier', expected: ',' or 'end of string'"),
        ("app=web,", "found '', expected: identifier after ','"),
        ("app:web", f'unable to parse requirement: <nil>: Invalid value: "app:web": {QUALIFIED_NAME_RULE}'),
        ("app=a b", "found 'b', expected: ',' or 'end of string'"),
    ],
)
def test_bad_label_selector_is_400(api: CoreV1Api, selector: str, message: str) -> None:
    error, body = failure(lambda: api.list_namespaced_pod("default", label_selector=selector))
    assert (error.status, body["reason"], body["message"]) == (400, "BadRequest", message)


def test_unsupported_field_selector_is_400(api: CoreV1Api) -> None:
    error, body = failure(lambda: api.list_namespaced_pod("default", field_selector="spec.foo=bar"))
    assert (error.status, body["reason"], body["message"]) == (400, "BadRequest", "field label not supported: spec.foo")
    error, body = failure(lambda: api.list_namespaced_event("default", field_selector="message=whatever"))
    assert body["message"] == "field label not supported: message"
    error, body = failure(lambda: api.list_namespaced_pod("default", field_selector="status.phase"))
    assert (error.status, body["message"]) == (
        400, "invalid selector: 'status.phase'; can't understand 'status.phase'")
    error, body = failure(lambda: api.list_namespaced_pod("default", watch=True, field_selector="spec.foo=bar",
                                                          _preload_content=False))
    assert error.status == 400  # a watch is refused up front, not with an ERROR event
