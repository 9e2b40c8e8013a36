"""The watch cache keeps a slim pod: what decisions read, plus only our own annotations (a restart's resume points)."""

from __future__ import annotations

from airflow_kpo_deferrable.podspec.names import LOG_RESUME_ANNOTATION
from airflow_kpo_deferrable.watcher import slim_pod


def test_only_our_annotations_are_kept() -> None:
    pod = {
        "metadata": {"name": "p", "uid": "u", "labels": {"a": "b"}, "managedFields": [{"big": "x" * 1000}],
                     "annotations": {LOG_RESUME_ANNOTATION: '{"base":[1,1]}', "kubectl.kubernetes.io/x": "y" * 1000}},
        "spec": {"containers": [{"name": "base"}]},
        "status": {"phase": "Running"},
    }
    assert slim_pod(pod) == {
        "metadata": {"name": "p", "uid": "u", "labels": {"a": "b"}, "annotations": {LOG_RESUME_ANNOTATION: '{"base":[1,1]}'}},
        "status": {"phase": "Running"},
    }


def test_a_pod_without_our_annotations_gets_none() -> None:
    assert "annotations" not in slim_pod({"metadata": {"name": "p", "annotations": {"other": "x"}}})["metadata"]
