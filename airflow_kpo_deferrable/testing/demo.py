"""Run an example DAG end to end with no Docker and no cluster: the bundled Kubernetes emulator plus a real Airflow.

``bash scripts/demo`` (or ``python -m airflow_kpo_deferrable.testing.demo``) starts the emulator as a subprocess (its
pods are real local processes), then Airflow's api-server, scheduler, dag-processor and a triggerer over the
repository's ``dags/`` folder with ``KUBECONFIG`` pointing at the emulator, triggers one DAG run, waits for it,
prints every task's log (worker and trigger parts) and the final state, and stops everything. Exit status 0 means the
run succeeded.

The emulator runs in its own process rather than a thread so its simulated kubelet never competes with this process's
polling, and so the demo exercises the same ``python -m airflow_kpo_deferrable.emulator`` command users can run.

It lives in ``testing`` beside ``AirflowStack`` because it is a user of the test harness, not part of the operator:
nothing a DAG imports at runtime depends on it. The repository's ``dags/`` folder is the default only when running
from a checkout (an installed package has no ``dags/``; pass ``--dags-folder``).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from airflow_kpo_deferrable.testing.errors import AirflowStackError
from airflow_kpo_deferrable.testing.stack import AirflowStack
from airflow_kpo_deferrable.testing.waits import wait_until

DEFAULT_DAG_ID = "example_kpo_hello"
EMULATOR_READY_TIMEOUT = 120.0
DAG_PARSE_TIMEOUT = 120.0
RUN_START_TIMEOUT = 120.0
REPO_DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


class DemoError(RuntimeError):
    """The demo could not run (as opposed to the DAG run failing)."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_kpo_deferrable.testing.demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--dag-id", default=DEFAULT_DAG_ID, help=f"DAG to trigger (default: {DEFAULT_DAG_ID})")
    parser.add_argument(
        "--dags-folder",
        type=Path,
        default=REPO_DAGS_FOLDER,
        help=f"folder of DAG files (default: the repository's dags/, {REPO_DAGS_FOLDER})",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the DAG run (default: 300)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the working directory (Airflow home, logs, kubeconfig)"
    )
    args = parser.parse_args(argv)
    if not args.dags_folder.is_dir():
        parser.error(
            f"--dags-folder {str(args.dags_folder)!r} is not a directory; pass the folder holding your DAG files"
        )
    return args


def say(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


def _read_ready_line(stream: IO[str], output: IO[str], found: list[str]) -> None:
    """Copy the emulator's output to a file, remembering its ``ready <url>`` line."""
    for line in stream:
        output.write(line)
        output.flush()
        if not found and line.startswith("ready "):
            found.append(line.split(maxsplit=1)[1].strip())


@contextlib.contextmanager
def running_emulator(workdir: Path) -> Iterator[tuple[str, Path]]:
    """Start ``python -m airflow_kpo_deferrable.emulator``; yields (API URL, kubeconfig path) once it says ready."""
    kubeconfig = workdir / "kubeconfig"
    log_path = workdir / "emulator.log"
    command = [sys.executable, "-m", "airflow_kpo_deferrable.emulator", "--port", "0", "--kubeconfig", str(kubeconfig)]
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, cwd=workdir
        )
        ready: list[str] = []
        reader = threading.Thread(target=_read_ready_line, args=(process.stdout, log, ready), daemon=True)
        reader.start()
        try:
            try:
                wait_until(
                    "the emulator to print its ready line",
                    lambda: ready,
                    EMULATOR_READY_TIMEOUT,
                    interval=0.1,
                    abort=lambda: None if process.poll() is None else f"it exited with {process.returncode}",
                )
            except AirflowStackError as exc:
                raise DemoError(f"{exc}\n{' '.join(command)}:\n{log_path.read_text()[-3000:]}") from exc
            yield ready[0], kubeconfig
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            reader.join(timeout=5)


def print_task_logs(stack: AirflowStack, dag_id: str, run_id: str) -> None:
    for ti in sorted(stack.task_instances(dag_id, run_id), key=lambda ti: (ti["task_id"], ti["map_index"])):
        label = ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"
        print(f"\n===== {label}: {ti['state']} =====", flush=True)
        for try_number in range(1, (ti.get("try_number") or 0) + 1):
            if try_number > 1:
                print(f"----- try {try_number} -----")
            print(stack.task_log(dag_id, run_id, ti["task_id"], try_number, ti["map_index"]), flush=True)


def start_run(stack: AirflowStack, dag_id: str, timeout: float = RUN_START_TIMEOUT) -> str:
    """The DAG's first run: a scheduled DAG (the seed example is ``@once``) gets it from the scheduler, as a user
    sees it; only an unscheduled one is triggered. Triggering a second run beside the scheduled one would also race
    the scheduler for SQLite's single write lock."""
    schedule = stack.api("GET", f"/api/v2/dags/{dag_id}").get("timetable_summary")
    if schedule is None:
        return stack.trigger_dag(dag_id)
    runs = stack.wait_until(
        f"the scheduler to start a run of {dag_id} (schedule {schedule})",
        lambda: stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"],
        timeout,
        components=("scheduler",),
    )
    return runs[0]["dag_run_id"]


def run_demo(dag_id: str, dags_folder: Path, timeout: float, workdir: Path) -> str:
    """Run one DAG run of ``dag_id`` against the emulator; returns the run's final state."""
    say("starting the Kubernetes emulator")
    with running_emulator(workdir) as (url, kubeconfig):
        say(f"emulator ready at {url}; starting Airflow (api-server, scheduler, dag-processor, triggerer)")
        started = time.monotonic()
        with AirflowStack(dags_folder, extra_env={"KUBECONFIG": str(kubeconfig)}, home=workdir / "airflow") as stack:
            say(f"Airflow ready at {stack.url} in {time.monotonic() - started:.1f}s; waiting for DAG {dag_id!r}")
            stack.wait_for_dag(dag_id, timeout=DAG_PARSE_TIMEOUT)
            run_id = start_run(stack, dag_id)
            say(f"{dag_id} run {run_id!r} started; waiting up to {timeout:.0f}s")
            state = stack.wait_for_run(dag_id, run_id, timeout=timeout)
            print_task_logs(stack, dag_id, run_id)
            print(f"\nDAG run {dag_id}/{run_id} finished: {state}", flush=True)
            return state


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="kpo-demo-"))
    try:
        state = run_demo(args.dag_id, args.dags_folder.resolve(), args.timeout, workdir)
    except (AirflowStackError, DemoError) as exc:
        say(f"failed: {exc}")
        say(f"working directory kept for inspection: {workdir}")
        return 2
    except KeyboardInterrupt:
        say("interrupted; everything stopped")
        return 130
    if args.keep or state != "success":
        say(f"working directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
