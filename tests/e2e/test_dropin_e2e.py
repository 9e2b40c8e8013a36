"""Drop-in behaviour through real Airflow (LocalExecutor + triggerer) over the emulator: the provider's two example
DAGs with only their imports changed, dynamic task mapping, and a failed pod's events in its task log.

One stack for the module; every DAG run is triggered as soon as it is parsed, so the runs (the async example's
logging task alone takes 100 s of ``sleep 1``) go on side by side while the tests wait on them one after the other.
The examples need the provider's ``kubernetes<37`` (they build models with positional arguments, which kubernetes
37's models refuse): they run in the compat venv (``scripts/test-compat tests/e2e/test_dropin_e2e.py``) and are
skipped, saying so, in the main one. The emulator serves TLS so the examples' ``in_cluster=True`` tasks can use in-cluster config
(``tests/support/provider_examples.py``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.emulator import Emulator
from airflow_kpo_deferrable.testing import databases
from airflow_kpo_deferrable.testing.airflow_stack import AirflowStack
from tests.support import provider_examples
from tests.support.e2e import Gates, pods_of

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.timeout(600)]

# A pod that ends before the worker that deferred its task has exited can get the task failed by an Airflow 3.3
# scheduler race (AirflowStack's docstring): our own pods wait for a gate the test opens after that point.
DAGS = textwrap.dedent(
    r'''
    from datetime import datetime

    from airflow.sdk import DAG

    from airflow_kpo_deferrable import KubernetesPodOperator

    with DAG(dag_id="dropin_mapped", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
        KubernetesPodOperator.partial(
            task_id="mapped", name="mapped", namespace="default", image="python:3.12-slim", cmds=["python", "-c"],
            on_finish_action="keep_pod",
        ).expand(arguments=[[GATED.replace("WORD", word)] for word in ("zero", "one", "two")])

    with DAG(dag_id="dropin_unschedulable", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
        # defaults: log_events_on_startup=True, log_pod_spec_on_failure=True
        KubernetesPodOperator(task_id="pod", name="stuck", namespace="default", image="busybox", cmds=["true"],
                              node_selector={"disktype": "none"}, schedule_timeout_seconds=30,
                              env_vars={"API_TOKEN": "do-not-print-me"})

    with DAG(dag_id="dropin_no_pull", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
        # The image is pulled once the gate (an init container) opens.
        KubernetesPodOperator(task_id="pod", name="no-pull", namespace="default",
                              image="registry.invalid/nothing:1", cmds=["true"], log_events_on_failure=True,
                              log_events_on_startup=False, log_pod_spec_on_failure=False,
                              init_containers=[{"name": "gate", "image": "python:3.12-slim",
                                                "command": ["python", "-c", PULL_GATE]}])
    '''
)
# The examples' pods (echo) end within a second of starting and cannot be gated without changing them. On the
# emulator's default 0.05 s pod sandbox such a pod can end before the worker that deferred its task has exited, and
# the Airflow 3.3 scheduler race fails the task (AirflowStack's docstring; seen here). A real node takes seconds to
# start a pod (sandbox, image pull): this much keeps every pod's end well after its task's deferral.
SANDBOX_SECONDS = 10.0
OWN_DAGS = ("dropin_mapped", "dropin_unschedulable", "dropin_no_pull")
EXAMPLE_DAGS = ("example_kubernetes_operator", "example_kubernetes_operator_async")


@dataclass
class Setup:
    stack: AirflowStack
    runs: dict[str, str] = field(default_factory=dict)
    examples_missing: str | None = None


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    directory = tmp_path_factory.mktemp("emulator")
    with Emulator.in_thread(
        runtime="process", tls=True, kubeconfig_path=directory / "kubeconfig", workdir=directory / "node"
    ) as emu:
        emu.kubelet.timings.sandbox = SANDBOX_SECONDS
        yield emu


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, emulator: Emulator, kube: CoreV1Api, gates: Gates
) -> Iterator[Setup]:
    folder = tmp_path_factory.mktemp("dags")
    gated = gates.pod_code("dropin_mapped", then="print('line-of-WORD')")
    files = {"dropin.py": f"GATED = {gated!r}\nPULL_GATE = {gates.pod_code('dropin_no_pull')!r}\n" + DAGS}
    missing, python, env = None, None, {"KUBECONFIG": str(emulator.kubeconfig_path)}
    missing = provider_examples.client_problem()
    try:
        files |= {} if missing else provider_examples.dag_files(databases.default_cache_dir())
    except RuntimeError as error:
        missing = str(error)
    if missing is None:
        in_pod = provider_examples.in_cluster_python(tmp_path_factory.mktemp("pod"), emulator.kubeconfig_path,
                                                     emulator.port)
        if isinstance(in_pod, str):
            missing = in_pod
            files = {"dropin.py": files["dropin.py"]}
        else:
            python, more = in_pod
            env |= more
            provider_examples.create_example_objects(kube)
    for name, source in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(source)
    options = {"python": python} if python else {}
    stack = AirflowStack(folder, extra_env=env, home=tmp_path_factory.mktemp("airflow-home"), db="postgres",
                         **options).start()
    try:
        started = Setup(stack, examples_missing=missing)
        for dag_id in OWN_DAGS + (() if missing else EXAMPLE_DAGS):
            stack.wait_for_dag(dag_id, timeout=120)
            started.runs[dag_id] = stack.trigger_dag(dag_id)
        yield started
    finally:
        stack.stop()


def _states(setup: Setup, dag_id: str) -> dict[str, str]:
    tis = setup.stack.task_instances(dag_id, setup.runs[dag_id])
    return {f"{ti['task_id']}[{ti['map_index']}]" if ti["map_index"] >= 0 else ti["task_id"]: ti["state"]
            for ti in tis}


def _open_after_deferral(setup: Setup, gates: Gates, dag_id: str, task_id: str, map_indexes: list[int]) -> None:
    run_id = setup.runs[dag_id]
    for index in map_indexes:
        setup.stack.wait_for_task(dag_id, run_id, task_id, states=["deferred"], map_index=index, timeout=300)
        setup.stack.wait_for_deferral_exit(dag_id, run_id, task_id, map_index=index, timeout=300)
    gates.open(dag_id)


def test_each_map_index_runs_its_own_pod_with_its_own_log(setup: Setup, kube: CoreV1Api, gates: Gates) -> None:
    run_id = setup.runs["dropin_mapped"]
    _open_after_deferral(setup, gates, "dropin_mapped", "mapped", [0, 1, 2])
    state = setup.stack.wait_for_run("dropin_mapped", run_id, timeout=300)
    assert state == "success", _states(setup, "dropin_mapped")
    words = ["zero", "one", "two"]
    for index, word in enumerate(words):
        log = setup.stack.wait_for_log("dropin_mapped", run_id, "mapped", f"line-of-{word}", map_index=index)
        assert all(f"line-of-{other}" not in log for other in words if other != word), log
    pods = pods_of(kube, "dropin_mapped")
    assert sorted(p.metadata.labels["map_index"] for p in pods) == ["0", "1", "2"]
    assert len({p.metadata.name for p in pods}) == 3
    assert {p.metadata.labels["run_id"] for p in pods} == {pods[0].metadata.labels["run_id"]}


def test_an_unschedulable_pods_log_has_the_schedulers_events_and_its_spec(setup: Setup) -> None:
    run_id = setup.runs["dropin_unschedulable"]
    assert setup.stack.wait_for_run("dropin_unschedulable", run_id, timeout=300) == "failed"
    log = setup.stack.wait_for_log("dropin_unschedulable", run_id, "pod", "Events of pod stuck")
    assert "Warning FailedScheduling from default-scheduler (count" in log, log
    assert "0/1 nodes are available" in log
    assert "Spec of pod stuck" in log and "disktype: none" in log
    assert "API_TOKEN" in log and "do-not-print-me" not in log


def test_an_image_pull_failures_log_has_the_kubelets_events(setup: Setup, gates: Gates) -> None:
    run_id = setup.runs["dropin_no_pull"]
    _open_after_deferral(setup, gates, "dropin_no_pull", "pod", [-1])
    assert setup.stack.wait_for_run("dropin_no_pull", run_id, timeout=300) == "failed"
    log = setup.stack.wait_for_log("dropin_no_pull", run_id, "pod", "Events of pod no-pull")
    assert 'Failed to pull image "registry.invalid/nothing:1"' in log, log
    assert "from kubelet" in log and "Spec of pod" not in log


@pytest.mark.parametrize("dag_id", EXAMPLE_DAGS)
def test_the_providers_example_runs_with_only_its_imports_changed(setup: Setup, kube: CoreV1Api, dag_id: str) -> None:
    if setup.examples_missing:
        pytest.skip(setup.examples_missing)
    run_id = setup.runs[dag_id]
    state = setup.stack.wait_for_run(dag_id, run_id, timeout=420)
    states = _states(setup, dag_id)
    assert state == "success", states
    assert states.pop("watcher") == "skipped"  # one_failed: nothing failed
    assert set(states.values()) == {"success"}, states
    sync = dag_id == "example_kubernetes_operator"
    writer, puller = ("write-xcom", "pod_task_xcom_result") if sync else (
        "kubernetes_write_xcom_task_async", "pod_task_xcom_result_async")
    entry = setup.stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{writer}/xcomEntries/"
                                   "return_value")
    assert entry["value"] in ([1, 2, 3, 4], "[1, 2, 3, 4]"), entry
    log = setup.stack.wait_for_log(dag_id, run_id, puller, "Output:")
    records = setup.stack.task_log_records(dag_id, run_id, puller)
    assert [r["event"] for r in records if isinstance(r, dict) and str(r.get("event")).strip() == "1"], log
    assert pods_of(kube, dag_id) == []
