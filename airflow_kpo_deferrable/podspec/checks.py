"""Checks on the merged pod: what only shows once templates and arguments are combined.

Why: a template may give the base container its image, or a volume a mount refers to, so these rules can only be
checked on the whole pod — once, in ``plan``, right before it is created.
"""

from __future__ import annotations

from typing import Any

from airflow_kpo_deferrable.podspec.problems import Problem
from airflow_kpo_deferrable.podspec.quantities import resource_problems


def merged_problems(pod: dict[str, Any], base_container_name: str) -> list[Problem]:
    """Problems of the merged pod (camelCase data) whose base container is ``base_container_name``."""
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    base = next((c for c in containers if c.get("name") == base_container_name), {})
    problems = []
    if not base.get("image"):
        others = [c["name"] for c in containers if c is not base]
        hint = f"; the template's containers are {others}: set base_container_name to one of them" if others else ""
        problems.append(
            Problem(
                "image",
                f"image is required: no template gives container {base_container_name!r} an image; "
                f"set image='repository:tag'{hint}",
            )
        )
    volumes = {v.get("name") for v in spec.get("volumes") or []}
    for container in containers + (spec.get("initContainers") or []):
        where = f"container {container.get('name')!r}"
        for mount in container.get("volumeMounts") or []:
            if mount.get("name") not in volumes:
                problems.append(
                    Problem(
                        "volume_mounts",
                        f"{where}: volume mount {mount.get('name')!r} at {mount.get('mountPath')!r} has no volume of "
                        "that name; add it to volumes or fix the mount's name",
                    )
                )
        problems += [
            Problem("container_resources", p)
            for p in resource_problems(f"{where} resources", container.get("resources") or {})
        ]
    return problems
