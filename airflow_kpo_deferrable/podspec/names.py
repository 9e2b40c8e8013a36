"""Names and identity labels: the pod's name, label-safe values, and the labels that say which task try owns a pod.

Why: a pod must always carry labels that identify its task try, so it can be found again (reattach, cleanup) and told
apart from pods of other tries; and its name becomes its hostname, so it must be a DNS label of at most 63 characters.

Facts it handles:

* Label values derived from Airflow ids (run ids contain ``:`` and ``+``) are made label-safe exactly as the provider
  does (``make_safe_label_value``): whenever a value had to change it gets a hash suffix, so two distinct ids never
  share a label value, and selectors written for the provider's pods match ours.
* Pod names from task ids are slugified as the provider does (``python-slugify``, an Airflow dependency).
* A ``name`` given is taken as the provider takes it: letters, digits, ``_``, ``-`` and ``.`` (Airflow's key rule, at
  most 220 characters), then lowercased with every run of other characters made ``-`` — ``astro_k8s_test_pod``
  (from the provider's own example) becomes ``astro-k8s-test-pod``. A name that is still no DNS subdomain after that
  (``-pod``) is refused, where the provider would let the API server refuse it.
* Label and annotation keys are ``[prefix/]name``: the prefix a DNS subdomain, the name 1-63 characters.
* A pod created by the triggerer (``start_from_trigger``) may be created again by the same trigger after a triggerer
  restart: its suffix is derived from the task try (``try_suffix``), not random, so the second create answers 409
  AlreadyExists instead of starting a second pod.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

from airflow.version import version as airflow_version
from slugify import slugify

from airflow_kpo_deferrable.podspec.problems import PodSpecError, Problem

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "airflow-kpo-deferrable"
MANAGED_BY_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
# Annotations the package writes on its own pods; the shared watch keeps only these (``watcher.slim_pod``).
ANNOTATION_PREFIX = "airflow-kpo-deferrable/"
# Where a trigger's live log copies stand (``triggers/state.py``): read back by a restarted trigger.
LOG_RESUME_ANNOTATION = f"{ANNOTATION_PREFIX}log-resume"

MAX_NAME_LENGTH = 63
SUFFIX_LENGTH = 8
LABEL_HASH_LENGTH = 9

LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
AIRFLOW_KEY = re.compile(r"[\w.-]+")
MAX_GIVEN_NAME_LENGTH = 220


@dataclass(frozen=True)
class PodIdentity:
    """Which task try a pod belongs to."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int

    @classmethod
    def of(cls, ti: Any) -> PodIdentity:
        """The identity of a task instance's current try (a worker's, or the triggerer's ``RuntimeTaskInstance``)."""
        return cls(dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id,
                   map_index=ti.map_index if ti.map_index is not None else -1, try_number=ti.try_number)


def safe_label_value(value: str) -> str:
    """``value`` as a valid label value, in the provider's form (so users' label selectors keep matching).

    Characters a label value may not hold are removed (and any leading/trailing non-alphanumerics); whenever that
    changed the value, or it is longer than 63, it is cut to 53 characters and ``-`` plus the first 9 hex digits of
    the original's MD5 are appended, so two distinct ids never share a label value.
    """
    cleaned = re.sub(r"[^-A-Za-z0-9_.]", "", value)
    cleaned = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)
    if cleaned == value and len(value) <= MAX_NAME_LENGTH:
        return value
    digest = hashlib.md5(value.encode(), usedforsecurity=False).hexdigest()[:LABEL_HASH_LENGTH]
    return f"{cleaned[: MAX_NAME_LENGTH - LABEL_HASH_LENGTH - 1]}-{digest}"


def identity_labels(identity: PodIdentity) -> dict[str, str]:
    """The labels that say which task try owns a pod (the provider's names and values) plus our managed-by label."""
    labels = {
        "dag_id": identity.dag_id,
        "task_id": identity.task_id,
        "run_id": identity.run_id,
        "kubernetes_pod_operator": "True",
    }
    if identity.map_index >= 0:
        labels["map_index"] = str(identity.map_index)
    labels["try_number"] = str(identity.try_number)
    safe = {key: safe_label_value(value) for key, value in labels.items()}
    return safe | {MANAGED_BY_LABEL: MANAGED_BY_VALUE}


def carries_identity(labels: dict[str, str] | None, identity: PodIdentity) -> bool:
    """Whether a pod with these labels belongs to this task try (a name alone proves nothing: names can repeat)."""
    labels = labels or {}
    return all(labels.get(key) == value for key, value in identity_labels(identity).items())


def try_suffix(identity: PodIdentity) -> str:
    """A name suffix that is the same every time for one task try and differs between tries (``SUFFIX_LENGTH``)."""
    key = "\0".join(map(str, (identity.dag_id, identity.run_id, identity.task_id, identity.map_index,
                               identity.try_number)))
    number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8])
    alphabet = string.ascii_lowercase + string.digits
    return "".join(alphabet[(number // len(alphabet) ** i) % len(alphabet)] for i in range(SUFFIX_LENGTH))


def airflow_labels(in_cluster: bool) -> dict[str, str]:
    """The provider's two build labels: the Airflow version (``+`` made ``-``) and whether the client is in-cluster."""
    return {"airflow_version": airflow_version.replace("+", "-"), "airflow_kpo_in_cluster": str(in_cluster)}


def task_pod_name(task_id: str) -> str:
    """A pod name from a task id, the provider's way (slugified, lowercase); ``pod`` when nothing is left."""
    return slugify(task_id, lowercase=True)[:MAX_NAME_LENGTH].strip(".-") or "pod"


def pod_name(name: str | None, task_id: str, random_suffix: bool, suffix: str | None = None) -> str:
    """The pod's name: ``name`` (must be valid) or the task id made valid, plus ``-xxxxxxxx`` when ``random_suffix``
    (``suffix`` when given, else random).

    At most 63 characters (it becomes the pod's hostname): the base is shortened, never the suffix.
    """
    if name:
        if problem := pod_name_problem(name):
            raise PodSpecError([problem])
        base = given_pod_name(name)
    else:
        base = task_pod_name(task_id)
    if not random_suffix:
        return base[:MAX_NAME_LENGTH].rstrip("-.")
    alphabet = string.ascii_lowercase + string.digits
    suffix = suffix or "".join(secrets.choice(alphabet) for _ in range(SUFFIX_LENGTH))
    return f"{base[: MAX_NAME_LENGTH - SUFFIX_LENGTH - 1].strip('-.')}-{suffix}"


def given_pod_name(name: str) -> str:
    """The provider's form of a given name: lowercase, each run of characters other than ``a-z0-9-`` made ``-``."""
    return re.sub(r"[^a-z0-9-]+", "-", name.lower())


def pod_name_problem(name: Any) -> Problem | None:
    if (
        isinstance(name, str)
        and len(name) <= MAX_GIVEN_NAME_LENGTH
        and AIRFLOW_KEY.fullmatch(name)
        and DNS_SUBDOMAIN.fullmatch(given_pod_name(name))
    ):
        return None
    return Problem(
        "name",
        f"name={name!r} is not a valid pod name: use letters, digits, '_', '-' and '.' (made lowercase and '-'), "
        f"starting and ending with a letter or digit, at most {MAX_GIVEN_NAME_LENGTH} characters (e.g. 'my-task')",
    )


def qualified_name_problem(key: Any) -> str | None:
    """Why ``key`` is not a valid label/annotation key (``[prefix/]name``), or None."""
    if not isinstance(key, str):
        return "a key must be a string"
    prefix, _, name = key.rpartition("/")
    if "/" in key and not prefix:
        return "the prefix before '/' is empty"
    if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.fullmatch(prefix)):
        return "the prefix before '/' must be a lowercase DNS subdomain such as 'example.com'"
    if not name or len(name) > MAX_NAME_LENGTH or not LABEL_NAME.fullmatch(name):
        return (
            "the name part must be 1-63 characters of letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def label_value_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"a label value must be a string; quote it: {str(value)!r}"
    if len(value) > MAX_NAME_LENGTH:
        return f"a label value has at most 63 characters (this has {len(value)}); shorten it or use an annotation"
    if value and not LABEL_NAME.fullmatch(value):
        return (
            "a label value may contain only letters, digits, '-', '_' and '.', and must start and end with "
            "a letter or digit; replace the other characters or use an annotation"
        )
    return None
