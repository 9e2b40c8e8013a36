"""``python -m airflow_kpo_deferrable.emulator``: serve the emulator until SIGTERM/SIGINT.

Prints exactly one line on stdout, ``ready <url>``, once it accepts connections and the kubeconfig is written, so a
parent process can wait for it; everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from .server import RUNTIMES, Emulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m airflow_kpo_deferrable.emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: pick a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--kubeconfig", type=Path, required=True, help="where to write a kubeconfig for clients")
    parser.add_argument("--runtime", choices=RUNTIMES, default="process",
                        help="process: run containers' commands (or their args) as local processes; scripted: play "
                             "pod annotations, no processes; none: the API server alone, no scheduler or kubelet "
                             "(pods stay Pending, logs are empty, exec and pod faults answer 400)")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a self-signed CA in the kubeconfig")
    parser.add_argument("--workdir", type=Path, help="where the kubelet keeps pod logs and files (default: temp)")
    parser.add_argument("--no-isolation", action="store_true",
                        help="run process containers as plain local processes (no PID/mount namespaces); pods/exec "
                             "and volume mounts are then refused")
    parser.add_argument("--bookmark-interval", type=float, default=60.0, help="seconds between watch bookmarks")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with Emulator(host=args.host, port=args.port, runtime=args.runtime, tls=args.tls,
                        kubeconfig_path=args.kubeconfig, workdir=args.workdir,
                        bookmark_interval=args.bookmark_interval,
                        isolation=False if args.no_isolation else None) as emulator:
        print(f"ready {emulator.url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        asyncio.run(serve(args))
    except OSError as error:
        sys.exit(f"emulator: cannot listen on {args.host}:{args.port}: {error}")


if __name__ == "__main__":
    main()
