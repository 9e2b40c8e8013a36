"""Emulator capacity: N pods and W concurrent watches on this machine, and whether the watches keep up.

``python -m benchmarks.emulator_capacity --pods 5000 --watches 200 [--tls] --json PATH``

The emulator (scripted runtime) runs in its own process; this process is the load. Steps:

1. Open W watches on the namespace from the current ``resourceVersion`` (raw aiohttp streams; each watch only counts
   lines and spots ``"phase":"Succeeded"`` in the bytes, so the client's JSON parsing does not limit the figures).
2. Create N pods with ``C`` concurrent POSTs; each pod runs 20–40 s (scripted) and succeeds. Create rate = N / time.
3. While the pods run, measure GET throughput (``C`` concurrent clients for 10 s) and one full LIST's latency.
4. Wait until every watch has seen all N pods succeed. "Keeps up" means: no watch was cut off (a watch that falls
   10,000 changes behind is ended, as the API server ends slow watchers) and the last watch saw the last pod succeed
   within a second or two of the first watch. Lag = per pod, last watch's arrival minus first watch's arrival, p99.

Also reported: the emulator process's CPU seconds and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import yaml

from airflow_kpo_deferrable.emulator import scenario

from .common import RESULTS, command_line, emulator_host, machine, percentile, rounded, write_json

NAMESPACE = "default"


def client_settings(kubeconfig: Path) -> tuple[str, dict[str, str], ssl.SSLContext | bool]:
    """Server URL, auth header and TLS context from the emulator's kubeconfig."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    token = config["users"][0]["user"]["token"]
    context: ssl.SSLContext | bool = False
    if cluster["server"].startswith("https"):
        context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    return cluster["server"], {"Authorization": f"Bearer {token}"}, context


class WatchCounter:
    """One watch stream: counts events and records when it saw each pod reach Succeeded."""

    def __init__(self) -> None:
        self.events = 0
        self.succeeded: dict[str, float] = {}
        self.ended_early = False

    async def run(self, session: aiohttp.ClientSession, url: str, resource_version: str, ready: asyncio.Event) -> None:
        params = {"watch": "true", "resourceVersion": resource_version, "timeoutSeconds": "3600"}
        async with session.get(f"{url}/api/v1/namespaces/{NAMESPACE}/pods", params=params,
                               timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as response:
            response.raise_for_status()
            ready.set()
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                now = time.time()
                for line in lines:
                    self.events += 1
                    if b'"phase":"Succeeded"' in line:
                        start = line.index(b'"name":"') + 8
                        name = line[start:line.index(b'"', start)].decode()
                        self.succeeded.setdefault(name, now)
        self.ended_early = True


async def create_pods(session: aiohttp.ClientSession, url: str, count: int, concurrency: int,
                      durations: tuple[float, float]) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def worker() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            body = {"metadata": {"name": f"cap-{index}", "annotations": scenario(duration=random.uniform(*durations))},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox"}]}}
            async with session.post(f"{url}/api/v1/namespaces/{NAMESPACE}/pods", json=body) as response:
                if response.status != 201:
                    raise RuntimeError(f"create cap-{index}: HTTP {response.status}: {await response.text()}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def get_throughput(session: aiohttp.ClientSession, url: str, pods: int, concurrency: int,
                         seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            name = f"cap-{random.randrange(pods)}"
            async with session.get(f"{url}/api/v1/namespaces/{NAMESPACE}/pods/{name}") as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"GET {name}: HTTP {response.status}")
                done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / seconds


async def measure(url: str, headers: dict[str, str], tls: ssl.SSLContext | bool, emulator: psutil.Process,
                  pods: int, watches: int, concurrency: int, durations: tuple[float, float]) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0, ssl=tls)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        async with session.get(f"{url}/api/v1/namespaces/{NAMESPACE}/pods", params={"limit": "1"}) as response:
            resource_version = (await response.json())["metadata"]["resourceVersion"]
        cpu_before = sum(emulator.cpu_times()[:2])
        counters = [WatchCounter() for _ in range(watches)]
        ready = [asyncio.Event() for _ in range(watches)]
        tasks = [asyncio.create_task(c.run(session, url, resource_version, r)) for c, r in zip(counters, ready)]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 60)

        create_seconds = await create_pods(session, url, pods, concurrency, durations)
        gets_per_second = await get_throughput(session, url, pods, concurrency, min(10, durations[0] / 2))
        started = time.perf_counter()
        async with session.get(f"{url}/api/v1/namespaces/{NAMESPACE}/pods") as response:
            listed = len((await response.json())["items"])
        list_seconds = time.perf_counter() - started

        deadline = time.monotonic() + 180
        while any(len(c.succeeded) < pods for c in counters) and time.monotonic() < deadline:
            if any(c.ended_early for c in counters):
                break
            await asyncio.sleep(0.5)
        cpu_seconds = sum(emulator.cpu_times()[:2]) - cpu_before
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    complete = sum(len(c.succeeded) == pods for c in counters)
    lags = [max(c.succeeded[name] for c in counters) - min(c.succeeded[name] for c in counters)
            for name in counters[0].succeeded if all(name in c.succeeded for c in counters)]
    return {
        "pods": pods, "watches": watches, "concurrency": concurrency,
        "create_per_s": rounded(pods / create_seconds, 1), "get_per_s": rounded(gets_per_second, 1),
        "list_all_ms": rounded(list_seconds * 1000, 1), "listed": listed,
        "watches_complete": complete, "watches_cut_off": sum(c.ended_early for c in counters),
        "events_per_watch_min": min(c.events for c in counters),
        "events_per_watch_max": max(c.events for c in counters),
        "events_delivered": sum(c.events for c in counters),
        "fanout_lag_p50_ms": rounded((percentile(lags, 50) or 0) * 1000, 1),
        "fanout_lag_p99_ms": rounded((percentile(lags, 99) or 0) * 1000, 1),
        "emulator_cpu_s": rounded(cpu_seconds, 1), "emulator_peak_rss_mb": rounded(peak_rss_mb(emulator), 1),
    }


def peak_rss_mb(process: psutil.Process) -> float:
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return process.memory_info().rss / 2**20


def run(pods: int, watches: int, concurrency: int, tls: bool, workdir: Path,
        durations: tuple[float, float] = (20, 40)) -> dict[str, Any]:
    with emulator_host(workdir, tls=tls) as host:
        url, headers, context = client_settings(host.kubeconfig)
        result = asyncio.run(measure(url, headers, context, psutil.Process(host.process.pid), pods, watches,
                                     concurrency, durations))
    return {"tls": tls, **result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.emulator_capacity", description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--watches", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20, help="concurrent clients for creates and GETs")
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--json", type=Path, default=RESULTS / "emulator_capacity.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="emulator-capacity-") as tmp:
        result = run(args.pods, args.watches, args.concurrency, args.tls, Path(tmp))
    print(json.dumps(result, indent=1))
    write_json(args.json, {"command": command_line("benchmarks.emulator_capacity"), "machine": machine(),
                           "runs": [result]})
    keeps_up = result["watches_complete"] == args.watches and result["watches_cut_off"] == 0
    print(f"[emulator_capacity] {'kept up' if keeps_up else 'FELL BEHIND'}; wrote {args.json}")
    return 0 if keeps_up else 1


if __name__ == "__main__":
    sys.exit(main())
