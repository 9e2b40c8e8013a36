"""The provider's two example DAGs, as published, with only their imports changed — and what they expect around them.

Why not vendored: the files are read from the provider's own source distribution on PyPI
(``apache-airflow-providers-cncf-kubernetes``, the compat pin), downloaded once with ``pip download`` into the
harness cache, so what runs is exactly what the provider ships (``tests/system/cncf/kubernetes/``) and an upstream
change shows up as a failed exact-line replacement, not as a silently stale copy.

What the examples need that is not in them:

* ``tests_common.test_utils.watcher`` / ``system_tests`` (Airflow's own test utilities): a stand-in package put next
  to the DAG files — ``watcher()`` is a task that fails when any upstream failed (trigger rule ``one_failed``),
  ``get_test_run`` returns a callable that is never called here.
* Secrets ``airflow-secrets`` (key ``sql_alchemy_conn``), ``airflow-secrets-2``, ConfigMaps ``test-configmap-1``/
  ``-2`` (created by ``create_example_objects``). A real cluster also needs the PVC ``test-volume`` and a
  PriorityClass ``medium``; the emulator backs every PVC with an empty per-pod directory and does not admit
  priority classes, so neither is created here.
* ``in_cluster=True`` on four tasks: Airflow must run in a pod. ``in_cluster_python`` gives the Airflow processes what
  a pod has — a private mount namespace with the service-account files at
  ``/var/run/secrets/kubernetes.io/serviceaccount`` and ``KUBERNETES_SERVICE_HOST``/``_PORT`` — over a TLS emulator.

Lines fixed (``FIXES``), each wrong on any cluster: see the README's "Migrating from the provider".
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

PROVIDER = "apache-airflow-providers-cncf-kubernetes"
VERSION = "10.25.0"
EXAMPLES = ("example_kubernetes.py", "example_kubernetes_async.py")
IMPORTS = (
    (
        "from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator",
        "from airflow_kpo_deferrable import KubernetesPodOperator",
    ),
    ("from airflow.providers.cncf.kubernetes.secret import Secret", "from airflow_kpo_deferrable import Secret"),
)
_AFFINITY = (
    # A V1WeightedPodAffinityTerm (it has a weight) belongs under preferred..., not required...
    (
        "    pod_affinity=k8s.V1PodAffinity(\n        required_during_scheduling_ignored_during_execution=[",
        "    pod_affinity=k8s.V1PodAffinity(\n        preferred_during_scheduling_ignored_during_execution=[",
    ),
    # values is a list of strings
    ('operator="In", values="S1")', 'operator="In", values=["S1"])'),
)
FIXES: dict[str, tuple[tuple[str, str], ...]] = {
    "example_kubernetes.py": _AFFINITY,
    "example_kubernetes_async.py": _AFFINITY
    + (
        # A namespace name is a DNS-1123 label: no underscores (no such namespace can exist).
        ('namespace="kubernetes_task_async_log"', 'namespace="kubernetes-task-async-log"'),
        # The pull names a task id that is not in the DAG (the xcom-writing task is kubernetes_write_xcom_task_async)
        (
            "echo \\\"{{ task_instance.xcom_pull('write-xcom')[0] }}\\\"\",\n    )",
            "echo \\\"{{ task_instance.xcom_pull('kubernetes_write_xcom_task_async')[0] }}\\\"\",\n    )",
        ),
    ),
}
EXAMPLE_NAMESPACES = ("kubernetes-task-async-log",)

TESTS_COMMON = {
    "tests_common/__init__.py": "",
    "tests_common/test_utils/__init__.py": "",
    "tests_common/test_utils/watcher.py": (
        "from airflow.sdk import task\n\n\n"
        "@task(trigger_rule='one_failed', retries=0)\n"
        "def watcher():\n"
        "    raise RuntimeError('an upstream task failed')\n"
    ),
    "tests_common/test_utils/system_tests.py": (
        "def get_test_run(dag):\n    return lambda: dag.test()\n"
    ),
}


def client_problem() -> str | None:
    """Why the examples cannot run with this ``kubernetes`` client, or None: they build models with positional
    arguments (``V1LocalObjectReference("testquay")``), which kubernetes>=37's models refuse."""
    import kubernetes

    major = int(kubernetes.__version__.split(".")[0])
    if major >= 37:
        return (f"the provider's examples need kubernetes<37 (the provider's pin; this venv has "
                f"{kubernetes.__version__}): run them with scripts/test-compat tests/e2e/test_dropin_e2e.py")
    return None


def _replace_once(text: str, old: str, new: str, name: str) -> str:
    count = text.count(old)
    if count != 1:
        raise AssertionError(f"{name}: expected {old!r} exactly once, found it {count} times (upstream changed?)")
    return text.replace(old, new)


def adapted(name: str, text: str) -> str:
    """The example with our imports and its ``FIXES`` applied, each line found exactly once."""
    for old, new in IMPORTS + FIXES[name]:
        text = _replace_once(text, old, new, name)
    return text


def example_sources(cache: Path) -> dict[str, str]:
    """The two examples' text from the provider's sdist (downloaded once into ``cache``); raises ``RuntimeError``
    saying why when it cannot be had (no index reachable)."""
    folder = cache / f"{PROVIDER}-{VERSION}-sdist"
    archives = sorted(folder.glob("*.tar.gz")) if folder.is_dir() else []
    if not archives:
        folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                   f"{PROVIDER}=={VERSION}", "-d", str(folder)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        archives = sorted(folder.glob("*.tar.gz"))
        if done.returncode or not archives:
            raise RuntimeError(f"pip download of {PROVIDER}=={VERSION} failed: {done.stderr[-2000:]}")
    sources = {}
    with tarfile.open(archives[0]) as archive:
        for member in archive.getmembers():
            tail = member.name.split("/", 1)[-1]
            for name in EXAMPLES:
                if tail == f"tests/system/cncf/kubernetes/{name}":
                    extracted = archive.extractfile(member)
                    assert extracted is not None
                    sources[name] = extracted.read().decode()
    missing = set(EXAMPLES) - set(sources)
    if missing:
        raise RuntimeError(f"{archives[0].name} holds no {sorted(missing)}")
    return sources


def dag_files(cache: Path) -> dict[str, str]:
    """DAG-folder files: the adapted examples and the ``tests_common`` stand-in."""
    return {name: adapted(name, text) for name, text in example_sources(cache).items()} | TESTS_COMMON


def create_example_objects(kube: object) -> None:
    """The Secrets, ConfigMaps and namespace the examples use (``kube`` is a ``CoreV1Api``)."""
    secrets = {"airflow-secrets": {"sql_alchemy_conn": "postgresql://example"},
               "airflow-secrets-2": {"EXAMPLE_KEY": "one", "OTHER_KEY": "two"}}
    for name in EXAMPLE_NAMESPACES:
        kube.create_namespace({"metadata": {"name": name}})
    for name, data in secrets.items():
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        kube.create_namespaced_secret("default", {"metadata": {"name": name}, "data": encoded})
    for index in (1, 2):
        kube.create_namespaced_config_map(
            "default", {"metadata": {"name": f"test-configmap-{index}"}, "data": {f"CONFIG_{index}": str(index)}}
        )


def in_cluster_python(folder: Path, kubeconfig: Path, port: int) -> tuple[str, dict[str, str]] | str:
    """A ``python`` for the Airflow processes that runs them as in a pod (see the module docstring), and the
    environment it needs; or, where mount namespaces are refused (not root), a sentence saying so."""
    account = folder / "serviceaccount"
    account.mkdir(parents=True, exist_ok=True)
    cluster = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]
    (account / "ca.crt").write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    users = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
    (account / "token").write_text(users["token"])
    (account / "namespace").write_text("default")
    enter = folder / "enter.sh"
    enter.write_text(
        "set -e\n"
        "mount -t tmpfs -o size=1m tmpfs /run\n"
        "mkdir -p /run/secrets/kubernetes.io/serviceaccount\n"
        f"cp '{account}'/* /run/secrets/kubernetes.io/serviceaccount/\n"
        f"exec '{sys.executable}' \"$@\"\n"
    )
    python = folder / "python"
    unshare = shutil.which("unshare") or "unshare"
    python.write_text(f"#!/bin/sh\nexec '{unshare}' --mount --propagation private /bin/sh '{enter}' \"$@\"\n")
    python.chmod(0o755)
    probe = subprocess.run([str(python), "-c", "print('ok')"], capture_output=True, text=True, timeout=60,
                           check=False)
    if probe.returncode or probe.stdout.strip() != "ok":
        return f"cannot run Airflow as in a pod here (mount namespace refused): {probe.stderr.strip()[-500:]}"
    return str(python), {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(port)}
