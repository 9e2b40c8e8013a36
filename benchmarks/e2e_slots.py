"""End-to-end worker slots: N pods × S seconds through a real Airflow (LocalExecutor, P slots), four ways.

``python -m benchmarks.e2e_slots --pods 20 --seconds 20 --parallelism 2 --impl ours,ours-resume,provider [--busy 2]``

Each implementation gets its own fresh Airflow stack (the test harness's api-server, scheduler, dag-processor and one
triggerer; PostgreSQL metadata DB) over one emulator process (``benchmarks.emulator_host`` with the process runtime:
each pod really runs ``sleep S`` as a local process). One DAG maps the operator over N pods (``--shape mapped``)
or holds N tasks ``pod_0`` … (``--shape tasks``). We sample the task
instances through the REST API every second: ``running`` ones hold a LocalExecutor worker slot, ``queued`` ones wait
for one, ``deferred`` ones hold none.

* ``ours``: this package's operator, ``deferrable=True``, ``finish_in_triggerer=True`` (its defaults): the trigger
  copies the log, deletes the pod and ends the task; no worker resume.
* ``ours-start``: ``start_from_trigger=True`` as well: the scheduler defers each task straight to the triggerer,
  which creates the pod; no worker at all (needs ``--shape tasks``: Airflow starts mapped tasks on a worker).
* ``ours-resume``: ``finish_in_triggerer=False``: a worker resumes the task to finish it (the behaviour before
  finishing in the triggerer existed).
* ``ours-sync``: ``deferrable=False`` (waits on the worker: one slot per pod for the pod's whole life).
* ``provider``: the official provider's ``KubernetesPodOperator(deferrable=True)``; needs the ``bench`` extra.

``--busy N`` saturates the slots the whole time, as in a busy deployment: a second DAG of N plain tasks per run (each
sleeps ``--busy-seconds`` × a uniform 0.5–1.5 factor, so they end staggered), at most N at once
(``max_active_tis_per_dag``), with runs triggered back to back so busy tasks are always waiting. It starts before the
pod DAG (the pod run is triggered once N busy tasks run), so a pod task's start and every worker resume wait for a
slot to free. Busy tasks have ``priority_weight=0`` below the pod tasks' 1, so a freed slot goes to a waiting pod
task first (with equal weights the scheduler's tie-break would starve the pod DAG): a resume waits for the first
busy task to end, never longer. ``saturated_share`` says how much of the window every slot was in use.

Before the measured run, each stack runs one unmeasured 1-second pod of the same implementation (``warmup_*``): a
fresh triggerer's first trips pay one-time costs (imports; Airflow's supervisor builds its in-process execution API
on a trigger's first request, 13–35 s seen on a loaded machine) that a long-running deployment paid long ago.

Per run (``benchmarks.e2e_measures`` says where each figure comes from and why): makespan from the trigger call to the
run's end; worker (running) seconds per pod task from the event log, and queued seconds (waiting for a
slot) from the samples; pod end → task end
p50/p99 (emulator stamp → ``end_date``); when each task left its first slot (the create path's ramp). Ratios against
the provider and against ``ours-resume``. Both operators reach the emulator through the ``kubernetes_default``
connection (``kube_config_path`` extra), the way a provider user configures it.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import textwrap
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from airflow_kpo_deferrable.testing.airflow_stack import AirflowStack

from .common import RESULTS, command_line, connection_env, emulator_host, machine, write_json
from .e2e_measures import pod_end_stamps, ratios, state_codes, summarise, task_index

IMPLS = ("ours", "ours-start", "ours-resume", "ours-sync", "provider")
BUSY_DAG_ID = "busy"
BUSY_RUNS_AHEAD = 2  # busy runs kept queued or running, so a busy task is always waiting for a slot

DAG_FILE = textwrap.dedent(
    '''
    from datetime import datetime

    from airflow.sdk import DAG

    from airflow_kpo_deferrable import KubernetesPodOperator as OurKPO

    try:
        from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator as ProviderKPO
    except ImportError:
        ProviderKPO = None

    OPERATORS = {
        "ours": (OurKPO, {"deferrable": True}),
        "ours-start": (OurKPO, {"deferrable": True, "start_from_trigger": True}),
        "ours-resume": (OurKPO, {"deferrable": True, "finish_in_triggerer": False}),
        "ours-sync": (OurKPO, {"deferrable": False}),
        "provider": (ProviderKPO, {"deferrable": True}),
    }

    for impl, (operator, kwargs) in OPERATORS.items():
        if operator is None:
            continue
        dag_id = "slots_" + impl.replace("-", "_")
        with DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_tasks=1000):
            common = dict(name="slots-" + impl, namespace="default", image="busybox:1.36", cmds=["sh", "-c"],
                          get_logs=True, **kwargs)
            if "{shape}" == "mapped":
                operator.partial(task_id="pod", **common).expand(arguments=[["sleep {seconds}; echo done"]] * {pods})
            else:  # one task per pod: Airflow starts only unmapped tasks from the triggerer
                for index in range({pods}):
                    operator(task_id=f"pod_{index}", arguments=["sleep {seconds}; echo done"], **common)
        # One short pod first, unmeasured: a fresh triggerer's first trips pay one-time costs (imports, the
        # supervisor's in-process API, ``triggers/state.py``) that a long-running deployment paid long ago.
        with DAG(dag_id="warmup_" + impl.replace("-", "_"), schedule=None, start_date=datetime(2026, 1, 1),
                 catchup=False):
            operator(task_id="pod", name="warmup-" + impl, namespace="default", image="busybox:1.36",
                     cmds=["sh", "-c"], arguments=["sleep 1; echo done"], get_logs=True, **kwargs)
    '''
)

BUSY_DAG_FILE = textwrap.dedent(
    '''
    import random
    import time
    from datetime import datetime

    from airflow.sdk import DAG, task

    with DAG(dag_id="busy", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=100):

        @task(priority_weight=0, weight_rule="absolute", max_active_tis_per_dag={busy})
        def busy(lane):
            deadline = time.monotonic() + {busy_seconds} * random.uniform(0.5, 1.5)
            while time.monotonic() < deadline:
                time.sleep(0.5)

        busy.expand(lane=list(range({busy})))
    '''
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.e2e_slots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--parallelism", type=int, default=2, help="LocalExecutor worker slots")
    parser.add_argument("--impl", default="ours,ours-resume,provider", help=f"comma-separated, of {', '.join(IMPLS)}")
    parser.add_argument("--shape", choices=("mapped", "tasks"), default="mapped",
                        help="the pod tasks: one mapped task (.expand) or one task each; ours-start needs tasks")
    parser.add_argument("--busy", type=int, default=0, help="plain tasks that keep the slots busy (0: none)")
    parser.add_argument("--busy-seconds", type=float, default=10.0, help="mean length of one busy task")
    parser.add_argument("--json", type=Path, default=RESULTS / "e2e_slots.json")
    args = parser.parse_args(argv)
    args.impl = [name.strip() for name in args.impl.split(",") if name.strip()]
    if unknown := set(args.impl) - set(IMPLS):
        parser.error(f"--impl: unknown {sorted(unknown)}; choose from {', '.join(IMPLS)}")
    if "ours-start" in args.impl and args.shape != "tasks":
        parser.error("--impl ours-start needs --shape tasks: Airflow starts mapped tasks on a worker")
    if "provider" in args.impl:
        try:
            version("apache-airflow-providers-cncf-kubernetes")
        except Exception:
            parser.error("--impl provider needs the official provider: pip install -e '.[bench]'")
    return args


def all_pages(stack: AirflowStack, path: str, key: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every item of a paged REST collection (the api-server caps a page at ``[api] maximum_page_limit``)."""
    items: list[dict[str, Any]] = []
    while True:
        page = stack.api("GET", path, params={**(params or {}), "limit": 1000, "offset": len(items)})
        items.extend(page[key])
        if not page[key] or len(items) >= page["total_entries"]:
            return items


class BusyLoad:
    """Keeps ``BUSY_RUNS_AHEAD`` runs of the busy DAG queued or running (nothing when ``lanes`` is 0)."""

    def __init__(self, stack: AirflowStack, lanes: int) -> None:
        self.stack, self.lanes, self.runs = stack, lanes, 0

    def top_up(self) -> None:
        if not self.lanes:
            return
        active = self.stack.api("GET", f"/api/v2/dags/{BUSY_DAG_ID}/dagRuns",
                                params={"state": ["queued", "running"], "limit": 100})["total_entries"]
        for _ in range(BUSY_RUNS_AHEAD - active):
            self.stack.trigger_dag(BUSY_DAG_ID)
            self.runs += 1

    def in_slots(self) -> int:
        if not self.lanes:
            return 0
        path = f"/api/v2/dags/{BUSY_DAG_ID}/dagRuns/~/taskInstances"
        return self.stack.api("GET", path, params={"state": ["running"], "limit": 1})["total_entries"]

    def wait_saturated(self, parallelism: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.lanes and self.in_slots() < min(self.lanes, parallelism):
            if time.monotonic() > deadline:
                raise RuntimeError(f"busy tasks did not fill the slots in {timeout:.0f} s")
            self.top_up()
            time.sleep(1)


def run_one(impl: str, args: argparse.Namespace, kubeconfig: Path, workdir: Path) -> dict[str, Any]:
    dags = workdir / f"dags-{impl}"
    dags.mkdir()
    (dags / "slots.py").write_text(DAG_FILE.replace("{pods}", str(args.pods)).replace("{seconds}", str(args.seconds))
                                   .replace("{shape}", args.shape))
    if args.busy:
        (dags / "busy.py").write_text(BUSY_DAG_FILE.replace("{busy_seconds}", str(args.busy_seconds))
                                      .replace("{busy}", str(args.busy)))
    env = {**connection_env(kubeconfig), "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "1000",
           "AIRFLOW__API__MAXIMUM_PAGE_LIMIT": "1000"}
    dag_id = "slots_" + impl.replace("-", "_")
    with AirflowStack(dags, extra_env=env, parallelism=args.parallelism, db="postgres",
                      home=workdir / f"home-{impl}") as stack:
        stack.wait_for_dag(dag_id, timeout=120)
        warmup = "warmup_" + impl.replace("-", "_")
        stack.wait_for_dag(warmup, timeout=120)
        warmed = stack.wait_for_run(warmup, stack.trigger_dag(warmup), timeout=600)
        if warmed != "success":
            raise RuntimeError(f"{impl}: the warm-up run ended {warmed}")
        busy = BusyLoad(stack, args.busy)
        if args.busy:
            stack.wait_for_dag(BUSY_DAG_ID, timeout=120)
            busy.wait_saturated(args.parallelism)
        started, started_wall = time.monotonic(), time.time()
        run_id = stack.trigger_dag(dag_id)
        samples: list[dict[str, Any]] = []
        timeout = math.ceil(args.pods / args.parallelism) * args.seconds * 3 + 300
        while True:
            before = time.time()
            tis = {task_index(ti["task_id"], ti["map_index"]): ti["state"]
                   for ti in stack.task_instances(dag_id, run_id)}
            codes = state_codes(tis, args.pods)
            busy_in_slots = busy.in_slots()
            wall = (before + time.time()) / 2
            states = list(tis.values())
            samples.append({"t": round(wall - started_wall, 2), "wall": round(wall, 3), "tis": codes,
                            "running": states.count("running"), "queued": states.count("queued"),
                            "deferred": states.count("deferred"), "done": states.count("success"),
                            "busy": busy_in_slots, "slots_in_use": states.count("running") + busy_in_slots})
            if len(states) == args.pods and all(s in ("success", "failed", "upstream_failed") for s in states):
                run = stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
                if run["state"] in ("success", "failed"):
                    break
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"{impl}: run not finished after {timeout} s")
            busy.top_up()
            time.sleep(max(0.0, 1 - (time.time() - before)))
        makespan = time.monotonic() - started
        events = all_pages(stack, "/api/v2/eventLogs", "event_logs", {"dag_id": dag_id, "run_id": run_id})
        final_tis = all_pages(stack, f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", "task_instances")
        return {
            "impl": impl, "dag_id": dag_id, "pods": args.pods, "seconds": args.seconds, "shape": args.shape,
            "parallelism": args.parallelism, "busy": args.busy, "busy_seconds": args.busy_seconds,
            "busy_runs": busy.runs, "state": run["state"], "triggered_wall": started_wall,
            "makespan_s": round(makespan, 1), "makespan_over_pod_seconds": round(makespan / args.seconds, 2),
            "max_deferred_at_once": max(s["deferred"] for s in samples),
            "max_running_at_once": max(s["running"] for s in samples),
            "samples": samples, "_events": events, "_tis": final_tis,
        }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [run for run in result["runs"] if run.get("samples")]
    if not runs:
        return
    figure, axes = plt.subplots(len(runs), 1, figsize=(9, 3 * len(runs)), squeeze=False)
    for axis, run in zip(axes[:, 0], runs, strict=True):
        times = [s["t"] for s in run["samples"]]
        axis.step(times, [s["running"] for s in run["samples"]], where="post", label="slots held by pod tasks")
        if run.get("busy"):
            axis.step(times, [s["slots_in_use"] for s in run["samples"]], where="post", alpha=0.6,
                      label="slots in use (pod + busy tasks)")
        axis.step(times, [s["deferred"] for s in run["samples"]], where="post", label="deferred (no slot)")
        axis.step(times, [s["done"] for s in run["samples"]], where="post", label="finished", alpha=0.6)
        axis.axhline(run["parallelism"], color="grey", linestyle=":", label="slots available")
        latency = run.get("pod_end_to_task_end_s") or {}
        axis.set_title(f"{run['impl']}: {run['pods']} pods × {run['seconds']} s, busy {run.get('busy', 0)}, "
                       f"makespan {run['makespan_s']} s, pod end → task end p99 {latency.get('p99')} s",
                       fontsize="medium")
        axis.set_xlabel("seconds since trigger")
        axis.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def report(run: dict[str, Any]) -> str:
    latency = run.get("pod_end_to_task_end_s") or {}
    return (f"{run['impl']}: {run['state']}, makespan {run['makespan_s']} s ({run['makespan_over_pod_seconds']} ×), "
            f"running {run.get('running_s_per_task')} s/task, queued {run.get('queued_s_per_task')} s/task, "
            f"pod end → task end p50 {latency.get('p50')} s p99 {latency.get('p99')} s (n={latency.get('n')}), "
            f"saturated {run.get('saturated_share')}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result: dict[str, Any] = {"command": command_line("benchmarks.e2e_slots"),
                              "machine": machine(), "runs": []}
    with (tempfile.TemporaryDirectory(prefix="e2e-slots-") as tmp,
          emulator_host(Path(tmp) / "emulator", tls=False, runtime="process") as host):
        for impl in args.impl:
            print(f"[e2e_slots] {impl}: {args.pods} pods × {args.seconds} s on {args.parallelism} slots, "
                  f"busy {args.busy}", flush=True)
            try:
                run = run_one(impl, args, host.kubeconfig, Path(tmp))
            except Exception as error:  # noqa: BLE001 - one failed impl must not lose the others' figures
                run = {"impl": impl, "state": "error", "error": repr(error)[-2000:]}
            print(f"[e2e_slots] {impl}: {run['state']}, makespan {run.get('makespan_s')} s", flush=True)
            result["runs"].append(run)
    for run in result["runs"]:  # the emulator's end stamps are written when it stops
        if run["state"] == "error":
            continue
        ends = pod_end_stamps(host.stamps, host.labels, run["dag_id"])
        summarise(run, run.pop("_events"), run.pop("_tis"), ends)
        print(f"[e2e_slots] {report(run)}", flush=True)
    result["ratios"] = ratios(result["runs"])
    print(f"[e2e_slots] ratios: {result['ratios']}")
    write_json(args.json, result)
    plot(result, args.json.with_suffix(".png"))
    print(f"[e2e_slots] wrote {args.json} and {args.json.with_suffix('.png')}")
    return 0 if all(run["state"] == "success" for run in result["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
