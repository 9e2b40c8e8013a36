"""The per-pod worker: one pod's life on the node, from scheduling to its ending, and the kills on the way out.

Why: the operator and its trigger judge a pod only by what the API shows, so the order of writes is the kubelet's.
Facts (scheduler and kubelet 1.32):

* Scheduling: ``spec.nodeName`` and ``PodScheduled`` True (event ``Scheduled`` from default-scheduler), or
  ``PodScheduled`` False reason ``Unschedulable`` with the scheduler's message (event ``FailedScheduling``). A pod
  created with ``spec.nodeName`` skips the scheduler.
* Admission: ``startTime``, the deadline timer (``spec.activeDeadlineSeconds`` from startTime), the sandbox
  (``PodReadyToStartContainers`` and ``podIP`` after ``Timings.sandbox``).
* Init containers one after another; a native sidecar (``restartPolicy: Always``) only has to start, keeps running
  (restarted if it dies) and is stopped after the containers end; then the containers all at once.
* Endings (``Ending``): deadline → Failed/DeadlineExceeded, containers killed with the pod's grace period;
  eviction → Failed/Evicted with condition DisruptionTarget, containers SIGKILLed; node loss → phase Unknown,
  NodeLost, status frozen, no deletion is ever confirmed (force-delete with grace 0); deletion → a Running pod's
  containers get SIGTERM (event Killing), SIGKILL after the grace period, its terminal phase is written, then the
  node removes it from the store; a Pending pod is killed and removed at once. The scenario's pod failures
  (Evicted, NodeLost, DeadlineExceeded) fire half the pod's ``duration`` after all its containers run.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from ..clock import rfc3339
from ..scenario import Failure, pod_duration, pod_failure
from .containers import ContainerRecord
from .context import NodeContext
from .launch import Handle, StartError
from .lifecycle import ContainerLifecycle
from .podstate import Ending, PodGone
from .scheduling import insufficient_message, unschedulable_message
from .status import Terminal

DEFAULT_EVICTION_MESSAGE = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki. "
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


class PodWorker(ContainerLifecycle):
    """Runs one pod; the node calls its ``on_*`` methods for outside events and ``removed`` once it may go."""

    def __init__(self, context: NodeContext, pod: dict, removed: Callable[[PodWorker], None]) -> None:
        super().__init__(context, pod)
        self.removed = removed
        self.main: asyncio.Task[None] | None = None
        self.ender: asyncio.Task[None] | None = None
        self.sidecar_tasks: list[asyncio.Task[None]] = []
        self.timers: list[asyncio.TimerHandle | asyncio.Task[None]] = []

    # -- the pod's life -------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.main = asyncio.create_task(self._guard(self.run()), name=f"pod {self.namespace}/{self.name}")

    async def _guard(self, work: Coroutine[Any, Any, Any]) -> None:
        with contextlib.suppress(PodGone):
            await work

    async def run(self) -> None:
        if not self.schedule():
            return
        self.accept()
        await asyncio.sleep(self.context.timings.sandbox)
        self.sandbox_ready = True
        self.pod_ip = self.context.allocate_ip()
        self.changed()
        if await self.run_init_containers():
            policy = self.restart_policy
            await asyncio.gather(*(self.lifecycle(record, policy) for record in self.records))
        await self.stop_sidecars()
        self.ending = Ending.DONE
        self.sandbox_ready = False
        self.cancel_timers()
        self.changed()

    def schedule(self) -> bool:
        """Bind to the node, or record why the default scheduler cannot."""
        if self.spec.get("nodeName"):  # bound at creation: no scheduler involved
            self.set_condition("PodScheduled", "True")
            return True
        message = unschedulable_message(self.spec, self.context.node)
        if pod_failure(self.annotations) is Failure.UNSCHEDULABLE:
            message = insufficient_message(["cpu"])
        if message:
            self.set_condition("PodScheduled", "False", "Unschedulable", message)
            self.event("FailedScheduling", message, "Warning", component="default-scheduler")
            self.changed()
            return False
        self.set_condition("PodScheduled", "True")
        node_name = self.context.node_name
        status = self.render_status()

        def bind(pod: dict) -> None:
            pod["spec"]["nodeName"] = node_name
            pod["status"] = status

        self.update(bind)
        if self.gone:
            raise PodGone
        message = f"Successfully assigned {self.namespace}/{self.name} to {node_name}"
        self.event("Scheduled", message, component="default-scheduler")
        return True

    def accept(self) -> None:
        """The kubelet admits the pod: start time, deadlines, containers waiting."""
        self.start_time = rfc3339()
        deadline = self.spec.get("activeDeadlineSeconds")
        loop = asyncio.get_running_loop()
        if deadline is not None:
            self.timers.append(loop.call_later(float(deadline), self.on_deadline))
        failure = pod_failure(self.annotations)
        if failure in (Failure.EVICTED, Failure.NODE_LOST, Failure.DEADLINE_EXCEEDED):
            self.timers.append(asyncio.create_task(self._fault_later(failure)))
        self.changed()

    async def _fault_later(self, failure: Failure) -> None:
        await asyncio.gather(*(record.started_event.wait() for record in self.records))
        await asyncio.sleep(pod_duration(self.annotations) / 2)
        if self.ending is not None:
            return
        if failure is Failure.EVICTED:
            self.on_evict(DEFAULT_EVICTION_MESSAGE)
        elif failure is Failure.NODE_LOST:
            self.on_node_lost()
        else:
            self.on_deadline()

    async def run_init_containers(self) -> bool:
        """Run init containers in order; False when one failed for good (restartPolicy Never)."""
        policy = "Never" if self.restart_policy == "Never" else "OnFailure"
        for record in self.init_records:
            record.wait("ContainerCreating")
            self.changed()
            if record.sidecar:
                self.sidecar_tasks.append(asyncio.create_task(self._guard(self.lifecycle(record, "Always"))))
                await record.started_event.wait()
            elif await self.lifecycle(record, policy) != 0:
                return False
        for record in self.records:
            record.wait("ContainerCreating")
        self.changed()
        return True

    async def stop_sidecars(self) -> None:
        for task in self.sidecar_tasks:
            task.cancel()
        sidecars = [s for s in reversed(self.init_records) if s.sidecar]
        await self.kill(sidecars, self.grace_period(), report=True)

    def grace_period(self) -> float:
        return float(self.spec.get("terminationGracePeriodSeconds", 30))

    # -- endings ----------------------------------------------------------------------------------------------------

    def cancel_timers(self) -> None:
        for timer in self.timers:
            if timer is not asyncio.current_task():
                timer.cancel()
        self.timers.clear()

    def stop_running(self) -> None:
        """Stop the pod's own progress (lifecycles, back-offs, timers); the processes stay for the caller to kill."""
        self.cancel_timers()
        for task in [self.main, self.ender, *self.sidecar_tasks]:
            if task and task is not asyncio.current_task():
                task.cancel()

    def end(self, kind: Ending, reason: str, message: str, grace: float, *, disruption: bool = False) -> None:
        """Eviction or deadline: phase Failed with a reason now, then the containers are killed."""
        self.stop_running()
        self.ending = kind
        self.terminal = Terminal("Failed", reason, message)
        self.sandbox_ready = False
        if disruption:
            self.set_condition("DisruptionTarget", "True", "TerminationByKubelet", message)
        self.event(reason, message, "Warning")
        self.changed()
        self.ender = asyncio.create_task(self._guard(self.kill(self.all_records, grace, report=True)))

    def on_evict(self, message: str) -> None:
        self.end(Ending.EVICTED, "Evicted", message, 0, disruption=True)

    def on_deadline(self) -> None:
        if self.ending is None:  # a pod that already ended or is being deleted has no deadline left
            self.end(Ending.DEADLINE, "DeadlineExceeded", DEADLINE_MESSAGE, self.grace_period())

    def on_node_lost(self) -> None:
        self.stop_running()
        self.ending = Ending.LOST
        self.terminal = Terminal(
            "Unknown", "NodeLost", f"Node {self.context.node_name} which was running pod {self.name} is unresponsive"
        )
        self.changed()
        self.ender = asyncio.create_task(self.kill(self.all_records, 0, report=False))

    def on_deletion(self, grace: float) -> None:
        """The store marked the pod for deletion: graceful for a Running pod, at once for a Pending one."""
        if self.ending in (Ending.DELETING, Ending.LOST):
            return
        graceful = self.phase() == "Running" and self.terminal is None
        self.stop_running()
        self.ending = Ending.DELETING
        self.ender = asyncio.create_task(self._guard(self._delete(grace if graceful else 0, graceful)))

    async def _delete(self, grace: float, graceful: bool) -> None:
        await self.kill(self.all_records, grace, report=graceful)
        if graceful:
            codes = [s.exit_code() for s in self.records]
            self.terminal = Terminal("Succeeded" if all(c == 0 for c in codes) else "Failed")
            self.sandbox_ready = False
            self.flush()
        self.removed(self)

    async def kill(self, records: list[ContainerRecord], grace: float, *, report: bool) -> None:
        """SIGTERM (SIGKILL when grace is 0) the live instances, SIGKILL what is left after ``grace`` seconds."""
        for record in records:
            if record.starting is not None:
                with contextlib.suppress(StartError, asyncio.CancelledError):
                    record.handle = await record.starting
                record.starting = None
        live = [r for r in records if r.handle is not None]
        if not live:
            return
        for record in live:
            if report:
                self.event("Killing", f"Stopping container {record.name}", record=record)
            assert record.handle is not None
            record.handle.signal(signal.SIGTERM if grace > 0 else signal.SIGKILL)
        waits = {asyncio.ensure_future(r.handle.wait()): r for r in live if r.handle is not None}
        _, late = await asyncio.wait(waits, timeout=grace if grace > 0 else None)
        for task in late:
            handle = waits[task].handle
            if handle is not None:
                handle.signal(signal.SIGKILL)
        for task, record in waits.items():
            exit = await task
            if report and record.handle is not None:
                self.record_exit(record, exit)
            record.handle = None
        if report:
            self.changed()

    def tasks(self) -> list[asyncio.Task]:
        timers = [t for t in self.timers if isinstance(t, asyncio.Task)]
        return [t for t in (self.main, self.ender, *self.sidecar_tasks, *timers) if t is not None]

    def kill_now(self) -> None:
        """SIGKILL every live instance without reporting anything (pod removed, emulator stopping)."""
        self.gone = True
        self.stop_running()
        for record in self.all_records:
            if record.handle is not None:
                record.handle.signal(signal.SIGKILL)
            if record.starting is not None:
                record.starting.add_done_callback(_kill_started)

    async def wait_processes(self) -> None:
        for record in self.all_records:
            if record.starting is not None:  # a start in flight: kill_now's callback kills it once it is there
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    record.handle = await asyncio.wait_for(asyncio.shield(record.starting), 10)
            if record.handle is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(record.handle.wait(), 5)


def _kill_started(future: asyncio.Future[Handle]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().signal(signal.SIGKILL)

