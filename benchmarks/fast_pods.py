"""Fast pods: N pods that end 0–3 s after their create, half succeeding and half failing, through a real Airflow.

``python -m benchmarks.fast_pods --pods 50 --parallelism 8``

Why: a pod that ends within seconds of the deferral once made the scheduler fail a successful task (the trigger's
event overtook the deferring worker process: README "No orphan pods", fast pods). Every task instance must end in
the state its pod's exit code demands (even map indexes exit 0 → success, odd exit 4 → failed), with its own
output line streamed once and its typed line ("Pod ... succeeded" / "(outcome failed ... exit code 4") in its log
(a failure's end message repeats the last lines after the reason), and no pod left. Prints one line per mismatch and the counts; writes JSON to ``benchmarks/results/fast_pods.json``; exit status
1 on any mismatch. Not part of the test suite (the suite runs 20 such pods: tests/e2e/test_no_orphans.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import kubernetes
from kubernetes.client import CoreV1Api

from airflow_kpo_deferrable.testing.airflow_stack import AirflowStack

from .common import RESULTS, command_line, connection_env, emulator_host, machine, write_json

DAG_FILE = textwrap.dedent(
    '''
    from datetime import datetime

    from airflow.sdk import DAG

    from airflow_kpo_deferrable import KubernetesPodOperator

    with DAG(dag_id="fast_pods", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_tasks=1000):
        KubernetesPodOperator.partial(
            task_id="pod", name="fast", namespace="default", image="python:3.12-slim", cmds=["python", "-c"],
        ).expand(arguments=[
            [f"import sys, time; time.sleep({i * 3 / PODS:.2f}); print('fast pod {i}'); sys.exit({i % 2 * 4})"]
            for i in range(PODS)
        ])
    '''
)


def check(stack: AirflowStack, run_id: str, pods: int) -> list[str]:
    """One line per task instance that did not end as its pod demands."""
    problems = []
    states = {ti["map_index"]: ti["state"] for ti in stack.task_instances("fast_pods", run_id)}
    for i in range(pods):
        want = "success" if i % 2 == 0 else "failed"
        if states.get(i) != want:
            problems.append(f"map index {i}: state {states.get(i)}, want {want}")
            continue
        typed = "succeeded" if want == "success" else "exit code 4"
        try:
            log = stack.wait_for_log("fast_pods", run_id, "pod", typed, map_index=i, timeout=30)
        except Exception as error:
            problems.append(f"map index {i}: no typed line ({typed!r}) in the log: {error}")
            continue
        # Streamed once, at info level (a failure's end message repeats the last lines after its reason, at error).
        streamed = [line for line in log.splitlines() if "[info]" in line and line.endswith(f": fast pod {i}")]
        if len(streamed) != 1:
            problems.append(f"map index {i}: its output line was streamed {len(streamed)} times")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fast_pods", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--parallelism", type=int, default=8, help="LocalExecutor worker slots")
    parser.add_argument("--json", type=Path, default=RESULTS / "fast_pods.json")
    args = parser.parse_args(argv)
    with (tempfile.TemporaryDirectory(prefix="fast-pods-") as tmp,
          emulator_host(Path(tmp) / "emulator", tls=False, runtime="process") as host):
        dags = Path(tmp) / "dags"
        dags.mkdir()
        (dags / "fast.py").write_text(DAG_FILE.replace("PODS", str(args.pods)))
        env = {**connection_env(host.kubeconfig), "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "1000"}
        with AirflowStack(dags, extra_env=env, parallelism=args.parallelism, db="postgres",
                          home=Path(tmp) / "home") as stack:
            stack.wait_for_dag("fast_pods", timeout=120)
            started = time.monotonic()
            run_id = stack.trigger_dag("fast_pods")
            state = stack.wait_for_run("fast_pods", run_id, timeout=120 + 10 * args.pods)
            makespan = time.monotonic() - started
            problems = check(stack, run_id, args.pods)
            scheduler = stack.process_output("scheduler")
            race_lines = scheduler.count("but the task instance's state attribute is")
        client = kubernetes.config.new_client_from_config(config_file=str(host.kubeconfig))
        left = len(CoreV1Api(client).list_namespaced_pod("default", label_selector="dag_id=fast_pods").items)
        client.close()
    if left:
        problems.append(f"{left} pods left")
    for line in problems:
        print(f"[fast_pods] {line}")
    result: dict[str, Any] = {
        "command": command_line("benchmarks.fast_pods"), "machine": machine(), "pods": args.pods,
        "parallelism": args.parallelism, "run_state": state, "makespan_s": round(makespan, 1),
        "mismatches": problems, "scheduler_race_lines": race_lines, "pods_left": left,
    }
    write_json(args.json, result)
    print(f"[fast_pods] {args.pods} pods in {makespan:.0f} s: {len(problems)} mismatches, {left} pods left, "
          f"{race_lines} scheduler 'state attribute' lines; wrote {args.json}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
