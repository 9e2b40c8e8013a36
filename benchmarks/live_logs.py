"""Live logs at scale: N running pods each printing a line a second, followed in one asyncio loop (a triggerer's).

``python -m benchmarks.live_logs --pods 100,1000 --seconds 60 [--json PATH]``

For each N and mode (``on``: every pod's base container followed live through ``triggers.live_logs.LiveLogs`` at
the default stream cap; ``off``: no stream while the pods run, each log copied once at its end — what a capped pod
gets), with a fresh emulator (``benchmarks.emulator_host``, scripted runtime, its own process) each time:

1. A child process creates N pods (sync client) whose containers start together and print ``seconds`` lines, one a
   second, then succeed.
2. It runs N ``LiveLogs`` in one loop: ``observe`` on the pod's state as the watch would deliver it (the pod is read
   once it runs), then ``finish`` when it ends. The sink counts lines and characters, and records each line's text
   so that loss or repetition is checked: ``pods_with_every_line_once`` counts the pods whose container lines all
   arrived exactly once, in order (the "live logs are off" notice of a pod over the cap is not a container line).
3. Measured in the child, over the window: CPU seconds per minute (``time.process_time``), RSS (a sampler thread;
   ``rss_per_pod_kb`` is the median RSS while every pod runs, minus the RSS before the first stream, over N), and
   event-loop lag (a 10 ms sleeper, as in ``benchmarks.triggerer_scale``).

The emulator is Python on the same machine and serves every follow stream: its CPU is reported
(``emulator_cpu_s_per_min``), and at large N it, not the reader, bounds the throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import connection_env, emulator_host, machine, percentile, rounded, write_json
from benchmarks.triggerer_scale import RssSampler, rss_now, sample_loop_lag

NAMESPACE = "default"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live_logs")
    parser.add_argument("--pods", default="100,1000")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--modes", default="on,off")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def create_pods(spec: dict[str, Any]) -> list[str]:
    from kubernetes import client, config

    from airflow_kpo_deferrable.emulator import scenario
    from airflow_kpo_deferrable.podspec import MANAGED_BY_LABEL, MANAGED_BY_VALUE

    api = client.CoreV1Api(config.new_client_from_config(spec["kubeconfig"]))
    seconds, pods = spec["seconds"], spec["pods"]
    start = time.time() + 1.0 + 0.003 * pods
    names = []
    for index in range(pods):
        annotations = scenario(duration=seconds, log_lines=seconds, log_interval=1.0,
                               start_delay=round(max(0.1, start - time.time()), 3))
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"live-{index:05d}", "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE},
                             "annotations": annotations},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox:1.36"}]}}
        names.append(api.create_namespaced_pod(NAMESPACE, body).metadata.name)
    api.api_client.close()
    return names


async def follow_one(name: str, spec: dict[str, Any], lines: dict[str, list[str]]) -> None:
    from airflow_kpo_deferrable.hooks.kubernetes import ClusterTarget, async_core_v1
    from airflow_kpo_deferrable.triggers.live_logs import LiveLogs

    target = ClusterTarget(conn_id=None, config_file=spec["kubeconfig"])
    api = await async_core_v1(target)
    got = lines.setdefault(name, [])
    logs = LiveLogs(lambda: async_core_v1(target), name, NAMESPACE, ["base"], got.append, got.append,
                    live=spec["mode"] == "on", start_after={})
    while True:  # the watch's role: tell the logs the pod's state (one GET every 2 s per pod here)
        pod = api.api_client.sanitize_for_serialization(await api.read_namespaced_pod(name, NAMESPACE))
        logs.observe(pod)
        if pod["status"].get("phase") in ("Succeeded", "Failed"):
            break
        await asyncio.sleep(2.0)
    await logs.finish()


async def child_main(spec: dict[str, Any]) -> None:
    from airflow_kpo_deferrable.hooks.kubernetes import close_async_clients

    names = await asyncio.to_thread(create_pods, spec)
    baseline = rss_now()
    lags: list[tuple[float, float]] = []
    lines: dict[str, list[str]] = {}
    cpu_before, started = time.process_time(), time.monotonic()
    sampler = RssSampler()
    sampler.start()
    lag_task = asyncio.create_task(sample_loop_lag(lags))
    results = await asyncio.gather(*(follow_one(name, spec, lines) for name in names), return_exceptions=True)
    window, cpu = time.monotonic() - started, time.process_time() - cpu_before
    rss = sampler.stop()
    lag_task.cancel()
    await close_async_clients()
    seconds = spec["seconds"]
    expected = [f"base line {n}" for n in range(1, seconds + 1)]
    waiting = [value for at, value in rss if 0.2 * seconds <= at < 0.8 * seconds] or [rss[-1][1]]
    Path(spec["out"]).write_text(json.dumps({
        "window_s": window, "cpu_s": cpu, "rss_baseline": baseline, "rss_waiting": statistics.median(waiting),
        "rss_peak": max(value for _, value in rss), "lags_ms": [lag for _, lag in lags],
        "lines_ok": sum(1 for name in names if [t for t in lines.get(name, []) if t.startswith("base line ")] == expected),
        "over_cap": sum(1 for name in names if any(t.startswith("Live logs are off") for t in lines.get(name, []))),
        "errors": [repr(r) for r in results if isinstance(r, BaseException)][:5],
    }))


def run_one(mode: str, pods: int, seconds: int, tmp: Path) -> dict[str, Any]:
    workdir = tmp / f"{mode}-{pods}"
    spec = {"mode": mode, "pods": pods, "seconds": seconds, "out": str(workdir / "child.json")}
    with emulator_host(workdir, tls=False) as host:
        spec["kubeconfig"] = str(host.kubeconfig)
        (workdir / "spec.json").write_text(json.dumps(spec))
        emulator_cpu = host.cpu_seconds()
        command = [sys.executable, "-m", "benchmarks.live_logs", "--child", str(workdir / "spec.json")]
        with (workdir / "child.log").open("w") as log:
            subprocess.run(command, env=os.environ | connection_env(host.kubeconfig), stdout=log,
                           stderr=subprocess.STDOUT, timeout=seconds * 4 + 300, check=False)
        emulator_cpu = host.cpu_seconds() - emulator_cpu
    if not Path(spec["out"]).exists():
        return {"mode": mode, "pods": pods, "error": (workdir / "child.log").read_text()[-1500:]}
    child = json.loads(Path(spec["out"]).read_text())
    minutes = child["window_s"] / 60
    return {
        "mode": mode, "pods": pods, "seconds": seconds, "window_s": rounded(child["window_s"]),
        "cpu_s_per_min": rounded(child["cpu_s"] / minutes), "emulator_cpu_s_per_min": rounded(emulator_cpu / minutes),
        "rss_per_pod_kb": rounded((child["rss_waiting"] - child["rss_baseline"]) / pods / 1024),
        "rss_peak_mb": rounded(child["rss_peak"] / 2**20),
        "loop_lag_p50_ms": rounded(percentile(child["lags_ms"], 50)),
        "loop_lag_p99_ms": rounded(percentile(child["lags_ms"], 99)),
        "loop_lag_max_ms": rounded(max(child["lags_ms"], default=0)),
        "pods_with_every_line_once": child["lines_ok"], "pods_over_the_stream_cap": child.get("over_cap"),
        "errors": child["errors"],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        asyncio.run(child_main(json.loads(args.child.read_text())))
        return 0
    runs = []
    with tempfile.TemporaryDirectory(prefix="live-logs-") as tmp:
        for pods in [int(n) for n in args.pods.split(",")]:
            for mode in args.modes.split(","):
                runs.append(run_one(mode, pods, args.seconds, Path(tmp)))
                print(json.dumps(runs[-1]), flush=True)
    if args.json:
        write_json(args.json, {"machine": machine(), "runs": runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
