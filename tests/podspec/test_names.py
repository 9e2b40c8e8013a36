"""Pod names and identity labels: DNS-1123 names with a random suffix, the provider's label-safe values."""

from __future__ import annotations

import re

import pytest

from airflow_kpo_deferrable.podspec import (
    MANAGED_BY_LABEL,
    MANAGED_BY_SELECTOR,
    PodIdentity,
    PodSpecError,
    identity_labels,
    pod_name,
)
from airflow_kpo_deferrable.podspec.names import carries_identity, try_suffix
from tests.support.podspec import DNS_SUBDOMAIN, IDENTITY, LABEL_VALUE

# -- names and labels ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "task_id", "expected"),
    [
        (None, "load", "load"),
        (None, "Load_Customers.v2", "load-customers-v2"),
        (None, "__weird__", "weird"),
        (None, "___", "pod"),
        ("my-pod.v1", "ignored", "my-pod-v1"),  # the provider makes "." a "-" too
        (None, "t" * 100, "t" * 63),
        ("a" * 62 + "-b", "ignored", "a" * 62),
    ],
)
def test_pod_name_without_suffix(name: str | None, task_id: str, expected: str) -> None:
    assert pod_name(name, task_id, False) == expected


@pytest.mark.parametrize(
    ("name", "task_id"), [(None, "load_data"), (None, "x" * 200), ("my-pod", "t"), ("p" * 220, "t")]
)
def test_pod_name_with_suffix(name: str | None, task_id: str) -> None:
    first, second = pod_name(name, task_id, True), pod_name(name, task_id, True)
    assert first != second
    for made in (first, second):
        assert len(made) <= 63 and DNS_SUBDOMAIN.match(made)
        assert re.fullmatch(r".+-[a-z0-9]{8}", made)
        assert made[:-9] == (name or task_id.replace("_", "-"))[: len(made) - 9]


@pytest.mark.parametrize(("name", "expected"), [("My_Pod", "my-pod"), ("astro_k8s_test_pod", "astro-k8s-test-pod"),
                                              ("a.b__c", "a-b-c")])
def test_a_given_name_is_made_valid_as_the_provider_does(name: str, expected: str) -> None:
    assert pod_name(name, "task", False) == expected


@pytest.mark.parametrize("name", ["My Pod", "pod!", "-pod", "pod-", "_pod", "a" * 221])
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


def test_a_try_suffix_is_the_same_for_one_try_and_differs_between_tries() -> None:
    """A pod the triggerer creates is named from its try, so a restarted trigger's create finds it (409)."""
    again = PodIdentity(IDENTITY.dag_id, IDENTITY.task_id, IDENTITY.run_id, IDENTITY.map_index, IDENTITY.try_number)
    next_try = PodIdentity(IDENTITY.dag_id, IDENTITY.task_id, IDENTITY.run_id, IDENTITY.map_index, IDENTITY.try_number + 1)
    other_index = PodIdentity(IDENTITY.dag_id, IDENTITY.task_id, IDENTITY.run_id, 3, IDENTITY.try_number)
    suffix = try_suffix(IDENTITY)
    assert try_suffix(again) == suffix
    assert len({suffix, try_suffix(next_try), try_suffix(other_index)}) == 3
    name = pod_name(None, "x" * 100, True, suffix)
    assert name.endswith("-" + suffix) and len(name) <= 63 and DNS_SUBDOMAIN.fullmatch(name)
    assert re.fullmatch(r"[a-z0-9]{8}", suffix)


def test_carries_identity_needs_every_identity_label() -> None:
    labels = identity_labels(IDENTITY)
    assert carries_identity(labels | {"extra": "x"}, IDENTITY)
    assert not carries_identity({k: v for k, v in labels.items() if k != "try_number"}, IDENTITY)
    assert not carries_identity(labels | {"try_number": "9"}, IDENTITY)
    assert not carries_identity(None, IDENTITY)
