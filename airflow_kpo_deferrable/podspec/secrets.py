"""Kubernetes Secrets exposed to the base container: our ``Secret``, and the provider's ``Secret`` read by duck typing.

Why: the provider's ``secrets=[Secret(...)]`` is how many DAGs expose credentials to a pod; moving over must not
need a new class, and this package must not import the provider at run time. So any object with the provider's
attributes (``deploy_type``, ``deploy_target``, ``secret``, ``key``, ``items``) is accepted, and our own ``Secret``
has the provider's constructor and rules for users without the provider.

How a secret lands in the pod (the provider's placement, after templates and arguments are merged):

* ``deploy_type="env"`` with a ``key``: an env var ``deploy_target`` (upper-cased) from ``secretKeyRef``, appended.
* ``deploy_type="env"`` without a ``key``: the whole secret as an ``envFrom`` ``secretRef``, appended.
* ``deploy_type="volume"``: a ``secret`` volume named ``secretvol<uuid>`` (``items`` projected), appended, and a
  read-only mount at ``deploy_target``. The provider's uuid is random; ours is derived from the secret's fields, so
  building the same task twice gives the same volume name.
"""

from __future__ import annotations

import uuid
from typing import Any

from kubernetes.client import V1KeyToPath

from airflow_kpo_deferrable.podspec.convert import convert
from airflow_kpo_deferrable.podspec.problems import PodSpecError, Problem

DEPLOY_TYPES = ("env", "volume")
_VOLUME_NAMESPACE = uuid.UUID("5f0c7f8e-6a43-4e0b-9d5e-2f1c1c3b7a10")


class Secret:
    """A Kubernetes Secret to expose to the base container, as the provider's ``Secret`` (same constructor)."""

    def __init__(
        self,
        deploy_type: str,
        deploy_target: str | None,
        secret: str,
        key: str | None = None,
        items: list[Any] | None = None,
    ) -> None:
        if deploy_type not in DEPLOY_TYPES:
            raise PodSpecError([Problem("secrets", f"Secret deploy_type={deploy_type!r} must be 'env' or 'volume'")])
        if key is not None and deploy_target is None:
            raise PodSpecError(
                [
                    Problem(
                        "secrets",
                        f"Secret({secret!r}, key={key!r}) needs a deploy_target: the env var name "
                        "(deploy_type='env') or the mount path (deploy_type='volume')",
                    )
                ]
            )
        self.deploy_type = deploy_type
        self.deploy_target = (
            deploy_target.upper() if deploy_target is not None and deploy_type == "env" else deploy_target
        )
        self.secret = secret
        self.key = key
        self.items = items or []

    def __eq__(self, other: object) -> bool:
        fields = ("deploy_type", "deploy_target", "secret", "key")
        return all(getattr(self, f) == getattr(other, f, None) for f in fields)

    def __hash__(self) -> int:
        return hash((self.deploy_type, self.deploy_target, self.secret, self.key))

    def __repr__(self) -> str:
        return f"Secret({self.deploy_type}, {self.deploy_target}, {self.secret}, {self.key})"


def secret_spec(index: int, value: Any) -> tuple[dict[str, Any] | None, list[Problem]]:
    """One secret (ours, the provider's, or anything shaped like them) as plain data, or the problems with it."""
    where = f"secrets[{index}]"
    missing = [f for f in ("deploy_type", "deploy_target", "secret") if not hasattr(value, f)]
    if missing:
        return None, [
            Problem(
                "secrets",
                f"{where} is {value!r}, not a Secret: use airflow_kpo_deferrable.Secret(deploy_type, deploy_target, "
                "secret, key=None, items=None) (the provider's Secret works too)",
            )
        ]
    spec = {f: getattr(value, f, None) for f in ("deploy_type", "deploy_target", "secret", "key", "items")}
    problems = []
    if spec["deploy_type"] not in DEPLOY_TYPES:
        problems.append(f"{where}.deploy_type={spec['deploy_type']!r} must be 'env' or 'volume'")
    if not isinstance(spec["secret"], str) or not spec["secret"]:
        problems.append(f"{where}.secret={spec['secret']!r} must be the name of a Kubernetes Secret")
    if spec["deploy_type"] == "volume" and not spec["deploy_target"]:
        problems.append(f"{where}: a volume secret needs deploy_target, the mount path (e.g. '/etc/creds')")
    if spec["deploy_type"] == "env" and spec["key"] is not None and not spec["deploy_target"]:
        problems.append(f"{where}: key={spec['key']!r} needs deploy_target, the env var to set")
    if spec["items"]:
        try:
            spec["items"] = convert(f"{where}.items", list(spec["items"]), list[V1KeyToPath])
        except PodSpecError as error:
            return None, error.problems
    if problems:
        return None, [Problem("secrets", p) for p in problems]
    return spec, []


def volume_name(spec: dict[str, Any]) -> str:
    return f"secretvol{uuid.uuid5(_VOLUME_NAMESPACE, repr((spec['secret'], spec['deploy_target'], spec['items'])))}"


def attach_secrets(pod: dict[str, Any], secrets: list[dict[str, Any]], base_container_name: str) -> None:
    """Add each secret to ``pod`` (camelCase data, changed in place) on the base container."""
    spec = pod["spec"]
    base = next(c for c in spec["containers"] if c["name"] == base_container_name)
    for secret in secrets:
        if secret["deploy_type"] == "volume":
            name = volume_name(secret)
            volume: dict[str, Any] = {"name": name, "secret": {"secretName": secret["secret"]}}
            if secret["items"]:
                volume["secret"]["items"] = secret["items"]
            spec.setdefault("volumes", []).append(volume)
            mount = {"mountPath": secret["deploy_target"], "name": name, "readOnly": True}
            base.setdefault("volumeMounts", []).append(mount)
        elif secret["key"] is not None:
            ref = {"secretKeyRef": {"name": secret["secret"], "key": secret["key"]}}
            base.setdefault("env", []).append({"name": secret["deploy_target"], "valueFrom": ref})
        else:
            base.setdefault("envFrom", []).append({"secretRef": {"name": secret["secret"]}})
