"""The emulator in its own process for benchmarks, plus a record of when each pod's base container ended.

``python -m benchmarks.emulator_host --kubeconfig PATH --stamps PATH [--tls] [--workdir DIR]`` prints ``ready <url>``
once it serves, like ``python -m airflow_kpo_deferrable.emulator --runtime scripted``, and on SIGTERM/SIGINT writes
``{pod name: unix time}`` to ``--stamps`` (and, with ``--labels``, ``{pod name: its labels}`` there, so a benchmark
can tell which task a pod of a generated name belongs to after the pod was deleted).

Why a host of our own: the latency a trigger adds is "event yielded" minus "the pod's end was knowable". The pod's
``finishedAt`` has one-second resolution, and the scripted duration is only a target (the kubelet's timers run late
when the emulator is busy). So this process subscribes to the emulator store's change feed, on the emulator's own
loop, and stamps ``time.time()`` when it first sees a pod whose base container is terminated or whose phase is final:
that is when the API server committed it, before any watch or GET could serve it. The stamp is taken when the
subscriber task wakes, at most one loop iteration after the commit (the same queue hand-off every watch goes
through). Both processes read the same system clock, so the differences are comparable to well under a millisecond.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

from airflow_kpo_deferrable.emulator import Emulator

BASE_CONTAINER = "base"


def ended(pod: dict[str, Any]) -> bool:
    """Whether a watcher reading this pod could tell that its base container is done."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    for container in status.get("containerStatuses") or []:
        if container.get("name") == BASE_CONTAINER and (container.get("state") or {}).get("terminated"):
            return True
    return False


async def record_endings(emulator: Emulator, stamps: dict[str, float], labels: dict[str, dict[str, str]]) -> None:
    """Stamp each pod's first ended state; everything drained in one wake-up shares that wake-up's time."""
    queue = emulator.store.subscribe()
    try:
        while True:
            changes = [await queue.get()]
            now = time.time()
            while not queue.empty():
                changes.append(queue.get_nowait())
            for change in changes:
                if change is None:
                    return
                if change.kind != "pods" or change.type == "DELETED":
                    continue
                name = change.obj["metadata"]["name"]
                if name not in stamps and ended(change.obj):
                    stamps[name] = now
                    labels[name] = dict(change.obj["metadata"].get("labels") or {})
    finally:
        emulator.store.unsubscribe(queue)


async def serve(args: argparse.Namespace) -> tuple[dict[str, float], dict[str, dict[str, str]]]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    stamps: dict[str, float] = {}
    labels: dict[str, dict[str, str]] = {}
    async with Emulator(runtime=args.runtime, tls=args.tls, kubeconfig_path=args.kubeconfig,
                        workdir=args.workdir) as emulator:
        recorder = asyncio.create_task(record_endings(emulator, stamps, labels))
        print(f"ready {emulator.url}", flush=True)
        await stop.wait()
        recorder.cancel()
    return stamps, labels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.emulator_host", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--stamps", type=Path, required=True, help="where to write {pod: end time} on exit")
    parser.add_argument("--labels", type=Path, help="where to write {pod: labels} of the stamped pods on exit")
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--runtime", choices=("scripted", "process"), default="scripted")
    parser.add_argument("--workdir", type=Path, help="kubelet workdir (pod logs)")
    args = parser.parse_args(argv)
    stamps, labels = asyncio.run(serve(args))
    args.stamps.write_text(json.dumps(stamps))
    if args.labels:
        args.labels.write_text(json.dumps(labels))


if __name__ == "__main__":
    main()
