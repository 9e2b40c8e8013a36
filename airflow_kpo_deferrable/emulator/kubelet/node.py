"""The simulated node: scheduler and kubelet in one, following pod changes in the store and running each pod it gets.

Why: one object owns the pod workers, their processes and the node's directory, and offers the HTTP side what a
real API server reaches the kubelet for (``api.node.Node``): a container's log file, an exec target, and the
faults a test wants on cue (evict, lose the node). It knows nothing of HTTP.

Facts: pods bound to another node, for another ``schedulerName``, or already finished are left alone. A pod marked
for deletion is handed to its worker; a pod removed from the store (DELETED) has its processes killed and its
directory (logs, files) deleted. ``stop()`` kills every process the node started. ``evict``/``lose_node`` raise
``ApiError`` 404 for an unknown pod and 409 for one that is not running or already ending, so the side channel can
answer with them as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import ApiError, not_found
from ..logfile import ContainerLog
from ..nodeinfo import NODE_NAME
from ..store import Change, Store
from .context import NodeContext, Timings
from .launch import Runtime
from .process import ExecTarget, ProcessRuntime
from .sandbox import Isolation, choose
from .scripted import ScriptedRuntime
from .worker import DEFAULT_EVICTION_MESSAGE, PodWorker

RUNTIMES: dict[str, Callable[[Isolation], Runtime]] = {
    "process": ProcessRuntime,
    "scripted": lambda isolation: ScriptedRuntime(),
}


def make_runtime(name: str, isolation: Isolation) -> Runtime:
    if name not in RUNTIMES:
        raise ValueError(f"unknown runtime {name!r}: use one of {sorted(RUNTIMES)}")
    return RUNTIMES[name](isolation)


class Kubelet:
    """Scheduler and kubelet for one node."""

    def __init__(
        self,
        store: Store,
        runtime: str = "process",
        node_name: str = NODE_NAME,
        workdir: Path | None = None,
        *,
        timings: Timings | None = None,
        isolation: bool | None = None,
    ) -> None:
        self.store = store
        self.isolation = choose(isolation)  # None: detect; False: off (exec and volume mounts refused)
        self.node_name = node_name
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="kpo-emulator-")) if workdir is None else Path(workdir)
        self.context = NodeContext(store, make_runtime(runtime, self.isolation), timings or Timings(), node_name, self.workdir)
        self.workers: dict[str, PodWorker] = {}  # by uid
        self._by_name: dict[tuple[str, str], PodWorker] = {}
        self._queue: asyncio.Queue[Change | None] | None = None
        self._consumer: asyncio.Task[None] | None = None

    @property
    def timings(self) -> Timings:
        return self.context.timings

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.context.read_node()
        self._queue = self.store.subscribe()
        pods, _ = self.store.list("pods", None)
        for pod in pods:
            self.on_pod("ADDED", pod)
        self._consumer = asyncio.create_task(self._consume(), name="kubelet")

    async def stop(self) -> None:
        """Kill every process this kubelet started and stop following the store."""
        if self._consumer:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
        if self._queue is not None:
            self.store.unsubscribe(self._queue)
            self._queue = None
        workers = list(self.workers.values())
        tasks = [task for worker in workers for task in worker.tasks()]
        for worker in workers:
            worker.kill_now()
        await asyncio.gather(*tasks, return_exceptions=True)
        for worker in workers:
            await worker.wait_processes()
        self.workers.clear()
        self._by_name.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    async def _consume(self) -> None:
        assert self._queue is not None
        while True:
            change = await self._queue.get()
            if change is not None and change.kind == "pods":
                self.on_pod(change.type, change.obj)

    def on_pod(self, kind: str, pod: dict) -> None:
        uid = pod["metadata"].get("uid", "")
        worker = self.workers.get(uid)
        if kind == "DELETED":
            if worker:
                worker.kill_now()
                self.forget(worker)
            return
        if worker is None:
            if kind == "ADDED" and self._is_ours(pod):
                self._adopt(copy.deepcopy(pod))
            return
        if pod["metadata"].get("deletionTimestamp"):
            worker.on_deletion(float(pod["metadata"].get("deletionGracePeriodSeconds") or 0))

    def _is_ours(self, pod: dict) -> bool:
        spec = pod.get("spec", {})
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return False
        if spec.get("nodeName"):
            return spec["nodeName"] == self.node_name
        return spec.get("schedulerName", "default-scheduler") == "default-scheduler"

    def _adopt(self, pod: dict) -> None:
        worker = PodWorker(self.context, pod, self.remove)
        self.workers[worker.uid] = worker
        self._by_name[(worker.namespace, worker.name)] = worker
        if pod["metadata"].get("deletionTimestamp"):
            self.remove(worker)
            return
        worker.start()

    def remove(self, worker: PodWorker) -> None:
        """The kubelet is done with a deleted pod: take it out of the store (if it is still that pod)."""
        with contextlib.suppress(ApiError):
            if self.store.get("pods", worker.namespace, worker.name)["metadata"].get("uid") == worker.uid:
                self.store.remove("pods", worker.namespace, worker.name)
        self.forget(worker)

    def forget(self, worker: PodWorker) -> None:
        worker.gone = True
        self.workers.pop(worker.uid, None)
        if self._by_name.get((worker.namespace, worker.name)) is worker:
            del self._by_name[(worker.namespace, worker.name)]
        shutil.rmtree(worker.directory, ignore_errors=True)

    # -- what the HTTP side may ask (api.node.Node) -----------------------------------------------------------------

    def _running_worker(self, namespace: str, name: str, nothing_to: str) -> PodWorker:
        worker = self._by_name.get((namespace, name))
        if worker is None:
            raise not_found("pods", name)
        if not worker.start_time or worker.ending is not None:
            raise ApiError(409, "Conflict", f'pod "{name}" is not running on node {self.node_name}: nothing to {nothing_to}')
        return worker

    def evict(self, namespace: str, name: str, message: str = DEFAULT_EVICTION_MESSAGE) -> None:
        """Evict a pod as the kubelet does under node pressure: Failed/Evicted, containers SIGKILLed."""
        self._running_worker(namespace, name, "evict").on_evict(message)

    def lose_node(self, namespace: str, name: str) -> None:
        """Lose the pod's node: phase Unknown, reason NodeLost, Ready False; its processes die unseen."""
        self._running_worker(namespace, name, "lose").on_node_lost()

    def log_file(self, namespace: str, name: str, container: str, container_id: str) -> ContainerLog | None:
        """The log file of the container instance ``container_id``, or None when this node has none."""
        worker = self._by_name.get((namespace, name))
        record = worker.record(container) if worker else None
        return record.logs.get(container_id) if record else None

    def exec_target(self, namespace: str, name: str, container: str) -> ExecTarget | None:
        """Where an exec command in a running container runs, or None when it is not running.

        Raises ``ApiError`` 500 when containers are not isolated here: an exec command could reach the host."""
        worker = self._by_name.get((namespace, name))
        record = worker.record(container) if worker else None
        if record is None or not record.is_running or record.launch is None:
            return None
        if not self.isolation.enabled:
            raise ApiError(500, "InternalError", self.isolation.refusal("pods/exec"))
        launch = record.launch
        return ExecTarget(launch.env, launch.cwd, record.handle.pid1 if record.handle else None, tuple(launch.mounts))

