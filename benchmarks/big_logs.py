"""Big logs: copying a finished pod's log into the task log, on the worker or in the triggerer; ours and the provider's.

``python -m benchmarks.big_logs --sizes 10MB,100MB,1GB --impl ours,provider [--json PATH]``

Sizes are binary (1MB = 2**20 bytes, 1GB = 2**30 bytes) and count the log text as served (lines plus newlines). For
each size and implementation a fresh pod is created in the emulator (``benchmarks.emulator_host``, its own process;
scripted runtime: ``log-lines`` lines of ``log-line-bytes`` bytes, written at once, then the container succeeds).
The emulator writes the log to a CRI-format file and ``pods/log`` streams it from that file in 64 KiB chunks, never
holding it in memory. Once the pod has Succeeded, a fresh child process copies the base container's whole log:

* ``ours``: ``airflow_kpo_deferrable.logs.copy_logs`` with the sync client, what our operator's resume runs
  (``KubernetesPodOperator._copy_logs``); each line goes to ``logger.info``.
* ``ours-trigger``: what our trigger runs for a finished pod when it finishes the task in the triggerer
  (``triggers/finisher.py``): ``LiveLogs(..., live=False).finish()``, the end copy through ``logs.aio`` with
  ``kubernetes_asyncio`` (chunked raw response, one asyncio loop, under the end-work semaphore); each line goes to
  ``logger.info("%s", line)`` as the trigger's sink does. A 10 ms sleeper task in the same loop measures how late the
  loop answers while it copies (``loop_lag_max_ms``: what every other trigger of that triggerer would wait).
* ``provider``: the provider operator's deferrable resume path, ``KubernetesPodOperator._write_logs(pod, follow=True)``
  (``trigger_reentry`` calls it with ``follow = logging_interval is None``): iterates the urllib3 response by line.
* ``provider-sync``: the provider's non-deferrable path, ``PodManager.fetch_requested_container_logs(pod, "base",
  follow_logs=True)`` (``timestamps=True``, each line parsed and its level guessed; ``PodLogsConsumer`` re-reads the
  pod to decide whether logs are still available).

Every implementation logs into the same stdlib ``logging.Logger`` whose only handler formats each record
(``getMessage``), counts it and its characters, then drops it: the cost of a real log sink (the task log socket) is
left out for all. ``complete`` says the logged characters cover the log's text (prefixes such as ``[base]`` only add;
ours logs a line longer than 64 KiB as several continuation records, the provider as one record).

Measured in the child, after imports, client creation and reading the pod:

* peak RSS increase: the highest RSS seen by a 20 ms sampler thread during the copy minus the RSS just before it.
  ``ru_maxrss`` (the process's lifetime peak, imports included) is reported too.
* throughput: log bytes / wall seconds of the copy. The emulator serves about 110 MB/s on this machine (curl to
  /dev/null), so that is the ceiling for every implementation; it runs in another process on the same two cores.
  The copy's CPU seconds (``time.process_time``) are reported too: on a shared machine they vary less than wall time.

``--line-bytes`` sets the line length (default 199 + newline); ``--line-bytes 104857599 --sizes 100MB`` makes the
log a single 100 MiB line, the case where holding a whole line in memory shows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import json
import logging
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    RESULTS,
    EmulatorHost,
    command_line,
    emulator_host,
    machine,
    rounded,
    write_json,
)

IMPLS = ("ours", "ours-trigger", "provider", "provider-sync")
NAMESPACE = "default"
LINE_BYTES = 199  # text per line; 200 bytes with its newline
UNITS = {"KB": 2**10, "MB": 2**20, "GB": 2**30}
RSS_TICK = 0.02
TARGET_RSS_MB_AT_1GIB = 150

# -- parent ------------------------------------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB)\s*", text, re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"size {text!r}: use e.g. 10MB, 1GB")
    return int(float(match[1]) * UNITS[match[2].upper()])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.big_logs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10MB,100MB,1GB", help="comma-separated log sizes (binary units)")
    parser.add_argument("--impl", default="ours,ours-trigger,provider", help=f"comma-separated, of {', '.join(IMPLS)}")
    parser.add_argument("--line-bytes", type=int, default=LINE_BYTES, help="text bytes per log line")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a copy is given up")
    parser.add_argument("--json", type=Path, default=RESULTS / "big_logs.json")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return args
    args.labels = [s.strip() for s in args.sizes.split(",") if s.strip()]
    args.sizes = [parse_size(s) for s in args.labels]
    args.impl = [name.strip() for name in args.impl.split(",") if name.strip()]
    if unknown := set(args.impl) - set(IMPLS):
        parser.error(f"--impl: unknown {sorted(unknown)}; choose from {', '.join(IMPLS)}")
    return args


def create_finished_pod(host: EmulatorHost, name: str, lines: int, line_bytes: int) -> None:
    """A pod whose base container writes ``lines`` lines at once and succeeds; returns once it has Succeeded."""
    from kubernetes import client, config

    from airflow_kpo_deferrable.emulator import scenario

    api = client.CoreV1Api(config.new_client_from_config(str(host.kubeconfig)))
    annotations = scenario(duration=0, log_lines=lines, log_line_bytes=line_bytes, log_interval=0)
    api.create_namespaced_pod(NAMESPACE, {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox:1.36"}]},
    })
    deadline = time.monotonic() + 600
    while api.read_namespaced_pod(name, NAMESPACE).status.phase != "Succeeded":
        if time.monotonic() > deadline:
            raise RuntimeError(f"pod {name} did not finish writing its log in 600 s")
        time.sleep(0.2)
    api.api_client.close()


def run_one(impl: str, label: str, size: int, args: argparse.Namespace, host: EmulatorHost,
            workdir: Path) -> dict[str, Any]:
    lines = size // (args.line_bytes + 1)
    name = f"biglog-{impl}-{label.lower()}"
    create_finished_pod(host, name, lines, args.line_bytes)
    spec = {"impl": impl, "pod": name, "kubeconfig": str(host.kubeconfig), "out": str(workdir / f"{name}.json")}
    spec_path = workdir / f"{name}.spec.json"
    spec_path.write_text(json.dumps(spec))
    command = [sys.executable, "-m", "benchmarks.big_logs", "--child", str(spec_path)]
    row: dict[str, Any] = {"impl": impl, "size": label, "bytes": lines * (args.line_bytes + 1), "lines": lines,
                           "line_bytes": args.line_bytes + 1}  # served: text + newline
    with (workdir / f"{name}.log").open("w") as log:
        try:
            completed = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=args.timeout,
                                       cwd=Path(__file__).resolve().parent.parent, env=os.environ.copy())
        except subprocess.TimeoutExpired:
            return row | {"error": f"copy not finished after {args.timeout:.0f} s"}
    if completed.returncode != 0:
        return row | {"error": (workdir / f"{name}.log").read_text()[-1500:]}
    child = json.loads(Path(spec["out"]).read_text())
    return row | {
        "seconds": rounded(child["seconds"], 2),
        "mb_per_s": rounded(row["bytes"] / 2**20 / child["seconds"], 1),
        "rss_increase_mb": rounded(child["rss_increase"] / 2**20, 1),
        "rss_before_mb": rounded(child["rss_before"] / 2**20, 1),
        "ru_maxrss_mb": rounded(child["ru_maxrss_after"] / 2**20, 1),
        "ru_maxrss_increase_mb": rounded((child["ru_maxrss_after"] - child["ru_maxrss_before"]) / 2**20, 1),
        "cpu_s": rounded(child["cpu_s"], 2),
        "loop_lag_p99_ms": rounded(child["loop_lag_p99_ms"], 1) if "loop_lag_p99_ms" in child else None,
        "loop_lag_max_ms": rounded(child["loop_lag_max_ms"], 1) if "loop_lag_max_ms" in child else None,
        "loop_lag_samples": child.get("loop_lag_samples"),
        "records_logged": child["records"],
        "chars_logged": child["chars"],
        "complete": child["chars"] >= lines * args.line_bytes,
    }


RATIO_PAIRS = (("ours", "provider"), ("ours", "provider-sync"), ("ours-trigger", "provider"),
               ("ours-trigger", "provider-sync"), ("ours-trigger", "ours"))


def ratios(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for size in dict.fromkeys(run["size"] for run in runs):
        by_impl = {run["impl"]: run for run in runs if run["size"] == size and "error" not in run}
        for impl, other in RATIO_PAIRS:
            if impl not in by_impl or other not in by_impl:
                continue
            row: dict[str, Any] = {"size": size, "impl": impl, "versus": other}
            for metric in ("rss_increase_mb", "mb_per_s", "cpu_s", "seconds"):
                a, b = by_impl[impl][metric], by_impl[other][metric]
                row[metric] = round(a / b, 3) if a is not None and b else None
            rows.append(row)
    return rows


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rss_axis, speed_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    for impl in IMPLS:
        runs = [run for run in result["runs"] if run["impl"] == impl and "error" not in run]
        if not runs:
            continue
        sizes = [run["bytes"] / 2**20 for run in runs]
        rss_axis.plot(sizes, [run["rss_increase_mb"] for run in runs], marker="o", label=impl)
        speed_axis.plot(sizes, [run["mb_per_s"] for run in runs], marker="o", label=impl)
    rss_axis.axhline(TARGET_RSS_MB_AT_1GIB, color="grey", linestyle=":", label="target at 1 GiB")
    rss_axis.set(xscale="log", ylim=(-5, TARGET_RSS_MB_AT_1GIB * 1.1), xlabel="log size, MiB",
                 ylabel="peak RSS increase, MiB", title="Worker memory while copying the log")
    speed_axis.set(xscale="log", xlabel="log size, MiB", ylabel="MiB/s", title="Copy throughput")
    for axis in (rss_axis, speed_axis):
        axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child_main(json.loads(args.child.read_text()))
        return 0
    result: dict[str, Any] = {"machine": machine(), "command": command_line("benchmarks.big_logs"), "runs": [],
                              "ratios": []}
    for label, size in zip(args.labels, args.sizes, strict=True):
        with tempfile.TemporaryDirectory(prefix="big-logs-") as tmp, emulator_host(Path(tmp), tls=False) as host:
            for impl in args.impl:
                print(f"[big_logs] {impl}: {label}", flush=True)
                run = run_one(impl, label, size, args, host, Path(tmp))
                print(f"[big_logs] {impl} {label}: " + ", ".join(f"{k}={v}" for k, v in run.items()
                                                                  if k not in ("impl", "size")), flush=True)
                result["runs"].append(run)
                result["ratios"] = ratios(result["runs"])
                write_json(args.json, result)
    plot(result, args.json.with_suffix(".png"))
    print(f"[big_logs] ratios: {json.dumps(result['ratios'])}")
    print(f"[big_logs] wrote {args.json} and {args.json.with_suffix('.png')}")
    return 0 if all(run.get("complete") for run in result["runs"]) else 1


# -- child: the measured process ---------------------------------------------------------------------------------------


class CountingDiscard(logging.Handler):
    """Formats each record's message (what any sink must do), counts records and characters; writes nothing."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records = 0
        self.chars = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.chars += len(record.getMessage())
        self.records += 1


def discarding_logger() -> tuple[logging.Logger, CountingDiscard]:
    handler = CountingDiscard()
    logger = logging.getLogger("benchmarks.big_logs.task")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, handler


class PeakRss:
    """Samples this process's RSS from a thread (the copy itself is synchronous) and keeps the highest value."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self._stop = threading.Event()
        self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(RSS_TICK):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def prepare(spec: dict[str, Any], logger: logging.Logger) -> Any:
    """Build the implementation's client and read the pod, outside the measurement; returns the copy to run."""
    name, kubeconfig = spec["pod"], spec["kubeconfig"]
    if spec["impl"] == "ours":
        from airflow_kpo_deferrable.hooks.kubernetes import ClusterTarget, KubernetesHook
        from airflow_kpo_deferrable.logs.sync import copy_logs

        api = KubernetesHook(ClusterTarget(conn_id=None, config_file=kubeconfig)).core_v1()
        pod = api.read_namespaced_pod(name, NAMESPACE)
        return lambda: copy_logs(api, pod.metadata.name, NAMESPACE, ["base"], logger.info)
    if spec["impl"] == "ours-trigger":
        return TriggerCopy(kubeconfig, name, logger)
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.providers.cncf.kubernetes.utils.pod_manager import PodManager

    operator = KubernetesPodOperator(task_id="bench", image="busybox:1.36", config_file=kubeconfig,
                                     kubernetes_conn_id=None)
    pod = operator.client.read_namespaced_pod(name, NAMESPACE)
    if spec["impl"] == "provider":
        operator._cached_logger = logger  # the operator's structlog logger, swapped for the counting one
        return lambda: operator._write_logs(pod, follow=True)
    manager = PodManager(kube_client=operator.client)
    manager._log = logger
    return lambda: manager.fetch_requested_container_logs(pod, containers="base", follow_logs=True)


class TriggerCopy:
    """The triggerer's end copy of a finished pod's log in an event loop of its own (created, with its client and
    the pod read, before the measurement), with a loop-lag probe beside it."""

    def __init__(self, kubeconfig: str, name: str, logger: logging.Logger) -> None:
        from airflow_kpo_deferrable.hooks.kubernetes import ClusterTarget, async_core_v1

        self.loop = asyncio.new_event_loop()
        self.target = ClusterTarget(conn_id=None, config_file=kubeconfig)
        self.name, self.logger, self.lags_ms = name, logger, []
        api = self.loop.run_until_complete(async_core_v1(self.target))
        self.loop.run_until_complete(api.read_namespaced_pod(name, NAMESPACE))

    def __call__(self) -> None:
        self.loop.run_until_complete(self._copy())

    async def _copy(self) -> None:
        from airflow_kpo_deferrable.hooks.kubernetes import async_core_v1
        from airflow_kpo_deferrable.triggers.live_logs import LiveLogs
        from benchmarks.triggerer_scale import sample_loop_lag

        lags: list[tuple[float, float]] = []
        probe = asyncio.create_task(sample_loop_lag(lags))
        logs = LiveLogs(functools.partial(async_core_v1, self.target), self.name, NAMESPACE, ["base"],
                        lambda line: self.logger.info("%s", line), self.logger.warning, live=False, start_after={})
        await logs.finish()
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe
        self.lags_ms = [lag for _, lag in lags]

    def figures(self) -> dict[str, float]:
        from benchmarks.common import percentile

        return {"loop_lag_p99_ms": percentile(self.lags_ms, 99) or 0.0, "loop_lag_max_ms": max(self.lags_ms, default=0),
                "loop_lag_samples": len(self.lags_ms)}


def child_main(spec: dict[str, Any]) -> None:
    logger, handler = discarding_logger()
    copy = prepare(spec, logger)
    gc.collect()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    cpu_before = time.process_time()
    with PeakRss() as rss:
        before = rss.peak
        started = time.perf_counter()
        copy()
        seconds = time.perf_counter() - started
    result = {
        "seconds": seconds, "rss_before": before, "rss_increase": rss.peak - before,
        "ru_maxrss_before": maxrss_before, "ru_maxrss_after": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "cpu_s": time.process_time() - cpu_before, "records": handler.records, "chars": handler.chars,
    }
    if isinstance(copy, TriggerCopy):
        result |= copy.figures()
    Path(spec["out"]).write_text(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
