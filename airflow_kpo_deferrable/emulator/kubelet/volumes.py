"""Which node directory backs each of a container's ``volumeMounts``: the pod's volumes as bind-mount sources.

Why: containers of one pod share files through volumes (the provider's XCom contract: the base container writes
``/airflow/xcom/return.json`` into an emptyDir that the ``airflow-xcom-sidecar`` container also mounts), and two
pods must never share one. Facts:

* ``emptyDir`` (any ``medium``) is ``<pod directory>/volumes/<volume name>``: created with the pod, shared by its
  containers, deleted with the pod. ``hostPath`` is the node's own path. Every other volume type (configMap,
  secret, projected, persistentVolumeClaim, ...) is, here, an empty per-pod directory like an emptyDir: its files
  are not projected.
* ``subPath`` (and ``subPathExpr``, after ``$(VAR)`` expansion with the container's environment) mounts a
  directory inside the volume, created when missing; ``readOnly`` mounts read-only.
* The mount itself happens in the container's own mount namespace (``sandbox``); this module only decides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .env import expand
from .launch import Mount


def volume_source(volume: dict[str, Any], volumes_dir: Path) -> Path:
    """The node directory behind one pod volume."""
    host_path = volume.get("hostPath")
    if host_path and host_path.get("path"):
        return Path(host_path["path"])
    return volumes_dir / volume["name"]


def container_mounts(
    spec: dict[str, Any], container: dict[str, Any], volumes_dir: Path, env: dict[str, str]
) -> list[Mount]:
    """The container's mounts, in ``volumeMounts`` order (the API server guarantees every name is a volume)."""
    volumes = {volume.get("name"): volume for volume in spec.get("volumes") or []}
    mounts = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount.get("name"))
        if volume is None:
            continue
        source = volume_source(volume, volumes_dir)
        sub_path = mount.get("subPath") or expand(mount.get("subPathExpr") or "", env)
        if sub_path:
            source = source / sub_path
        mounts.append(Mount(source, mount["mountPath"], bool(mount.get("readOnly"))))
    return mounts


def prepare_sources(mounts: list[Mount]) -> None:
    """Create the directories the mounts bind (an emptyDir exists from the pod's start, hostPath as DirectoryOrCreate)."""
    for mount in mounts:
        if not mount.source.exists():
            try:
                mount.source.mkdir(parents=True)
            except OSError as error:
                raise OSError(error.errno, f'error mounting "{mount.source}" to rootfs at "{mount.target}": '
                                           f"{(error.strerror or '').lower()}") from None
