"""End-to-end worker slots: N pods × S seconds through a real Airflow (LocalExecutor, P slots), three ways.

``python -m benchmarks.e2e_slots --pods 20 --seconds 20 --parallelism 2 --impl ours,ours-sync,provider``

Each implementation gets its own fresh Airflow stack (the test harness's api-server, scheduler, dag-processor and one
triggerer; PostgreSQL metadata DB) over one emulator process (``benchmarks.emulator_host`` with the process runtime:
each pod really runs ``sleep S`` as a local process). One DAG maps the operator over N pods. We sample the task instances through the REST API every
second: ``running`` task instances are LocalExecutor worker slots in use, ``deferred`` ones hold no slot.

* ``ours``: this package's operator, ``deferrable=True`` (its default).
* ``ours-sync``: this package's operator, ``deferrable=False`` (waits on the worker: one slot per pod).
* ``provider``: the official provider's ``KubernetesPodOperator(deferrable=True)``; needs the ``bench`` extra.

Makespan is from the trigger call to the run's end, as a user sees it. Ideal: ``S`` plus start-up; with every pod
holding a slot it is ``ceil(N / P) × S``. Both operators reach the emulator through the ``kubernetes_default``
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

IMPLS = ("ours", "ours-sync", "provider")

DAG_FILE = textwrap.dedent(
    '''
    from datetime import datetime

    from airflow.sdk import DAG

    from airflow_kpo_deferrable import KubernetesPodOperator as OurKPO

    try:
        from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator as ProviderKPO
    except ImportError:
        ProviderKPO = None

    OPERATORS = {"ours": (OurKPO, True), "ours-sync": (OurKPO, False), "provider": (ProviderKPO, True)}

    for impl, (operator, deferrable) in OPERATORS.items():
        if operator is None:
            continue
        dag_id = "slots_" + impl.replace("-", "_")
        with DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_tasks=1000):
            operator.partial(
                task_id="pod", name="slots-" + impl, namespace="default", image="busybox:1.36",
                cmds=["sh", "-c"], deferrable=deferrable, get_logs=True,
            ).expand(arguments=[["sleep {seconds}; echo done"]] * {pods})
    '''
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.e2e_slots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--parallelism", type=int, default=2, help="LocalExecutor worker slots")
    parser.add_argument("--impl", default="ours,ours-sync,provider", help=f"comma-separated, of {', '.join(IMPLS)}")
    parser.add_argument("--json", type=Path, default=RESULTS / "e2e_slots.json")
    args = parser.parse_args(argv)
    args.impl = [name.strip() for name in args.impl.split(",") if name.strip()]
    if unknown := set(args.impl) - set(IMPLS):
        parser.error(f"--impl: unknown {sorted(unknown)}; choose from {', '.join(IMPLS)}")
    if "provider" in args.impl:
        try:
            version("apache-airflow-providers-cncf-kubernetes")
        except Exception:
            parser.error("--impl provider needs the official provider: pip install -e '.[bench]'")
    return args


def run_one(impl: str, args: argparse.Namespace, kubeconfig: Path, workdir: Path) -> dict[str, Any]:
    dags = workdir / f"dags-{impl}"
    dags.mkdir()
    (dags / "slots.py").write_text(DAG_FILE.replace("{pods}", str(args.pods)).replace("{seconds}", str(args.seconds)))
    env = {**connection_env(kubeconfig), "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "1000"}
    dag_id = "slots_" + impl.replace("-", "_")
    with AirflowStack(dags, extra_env=env, parallelism=args.parallelism, db="postgres",
                      home=workdir / f"home-{impl}") as stack:
        stack.wait_for_dag(dag_id, timeout=120)
        started = time.monotonic()
        run_id = stack.trigger_dag(dag_id)
        samples: list[dict[str, Any]] = []
        timeout = math.ceil(args.pods / args.parallelism) * args.seconds * 3 + 300
        while True:
            states = [ti["state"] for ti in stack.task_instances(dag_id, run_id)]
            now = time.monotonic() - started
            samples.append({"t": round(now, 2), "running": states.count("running"),
                            "deferred": states.count("deferred"), "done": states.count("success")})
            run = stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                break
            if now > timeout:
                raise RuntimeError(f"{impl}: run not finished after {timeout} s")
            time.sleep(1)
        makespan = time.monotonic() - started
        return {
            "impl": impl, "pods": args.pods, "seconds": args.seconds, "parallelism": args.parallelism,
            "state": run["state"], "makespan_s": round(makespan, 1),
            "makespan_over_pod_seconds": round(makespan / args.seconds, 2),
            "max_deferred_at_once": max(s["deferred"] for s in samples),
            "max_running_at_once": max(s["running"] for s in samples),
            "samples": samples,
        }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(result["runs"]), 1, figsize=(9, 3 * len(result["runs"])), squeeze=False)
    for axis, run in zip(axes[:, 0], result["runs"], strict=True):
        times = [s["t"] for s in run["samples"]]
        axis.step(times, [s["running"] for s in run["samples"]], where="post", label="worker slots in use")
        axis.step(times, [s["deferred"] for s in run["samples"]], where="post", label="deferred (no slot)")
        axis.step(times, [s["done"] for s in run["samples"]], where="post", label="finished", alpha=0.6)
        axis.axhline(run["parallelism"], color="grey", linestyle=":", label="slots available")
        axis.set_title(f"{run['impl']}: {run['pods']} pods × {run['seconds']} s, makespan {run['makespan_s']} s")
        axis.set_xlabel("seconds since trigger")
        axis.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result: dict[str, Any] = {"command": command_line("benchmarks.e2e_slots"),
                              "machine": machine(), "runs": []}
    with (tempfile.TemporaryDirectory(prefix="e2e-slots-") as tmp,
          emulator_host(Path(tmp) / "emulator", tls=False, runtime="process") as host):
        for impl in args.impl:
            print(f"[e2e_slots] {impl}: {args.pods} pods × {args.seconds} s on {args.parallelism} slots", flush=True)
            run = run_one(impl, args, host.kubeconfig, Path(tmp))
            print(f"[e2e_slots] {impl}: {run['state']}, makespan {run['makespan_s']} s "
                  f"({run['makespan_over_pod_seconds']} × pod duration), at most {run['max_deferred_at_once']} "
                  f"deferred at once", flush=True)
            result["runs"].append(run)
    by_impl = {run["impl"]: run["makespan_s"] for run in result["runs"]}
    if "ours" in by_impl:
        result["ratios"] = {f"ours/{other}": round(by_impl["ours"] / value, 2)
                            for other, value in by_impl.items() if other != "ours"}
        print(f"[e2e_slots] makespan ratios: {result['ratios']}")
    write_json(args.json, result)
    plot(result, args.json.with_suffix(".png"))
    print(f"[e2e_slots] wrote {args.json} and {args.json.with_suffix('.png')}")
    return 0 if all(run["state"] == "success" for run in result["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
