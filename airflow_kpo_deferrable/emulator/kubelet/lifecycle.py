"""The life of one container of a pod: pull, configure, create, start, exit, restart with back-off.

Why: this is where the waiting reasons the operator must tell apart come from (ErrImagePull ↔ ImagePullBackOff,
ErrImageNeverPull, InvalidImageName, CreateContainerConfigError, CrashLoopBackOff) and the terminated states it reads
(exitCode, reason, message, containerID). Facts (kubelet 1.32):

* restartPolicy Never ends with the first exit; OnFailure restarts failed instances and Always every one, after
  showing ``terminated`` for ``Timings.terminated_hold``, then ``CrashLoopBackOff`` with the kubelet's message and a
  delay that doubles from ``Timings.backoff_initial`` to ``Timings.backoff_max``; ``lastState`` keeps the last exit.
* Each instance gets a new container ID and its own log file (``logs/<container>/<restart>.log``), so
  ``previous=true`` reads the instance ``lastState`` names.
* A failed pull retries for ever (ErrImagePull, then ImagePullBackOff with a doubling delay); a missing ConfigMap or
  Secret is re-checked every ``Timings.config_retry`` (a ConfigMap created later helps).
* A container the runtime cannot start is terminated reason StartError, exit code 128, ``startedAt`` the epoch.
* ``FallbackToLogsOnError``: a failed container's message is the last 80 lines / 2 KiB of its log.
* The command is ``command`` + ``args``; with ``args`` only, the args are the command, as for an image without an
  ENTRYPOINT (``kubectl run x --image=busybox -- sh -c 'echo hi'``); with neither it is empty and the runtime
  decides (the image's own entrypoint is unknown here).
"""

from __future__ import annotations

import asyncio
import secrets
import time
import zlib
from pathlib import Path
from typing import Any, NoReturn

from ..clock import go_duration, rfc3339
from ..logfile import ContainerLog, render, tail_offset
from ..rules import pull_policy
from ..scenario import Failure, Scenario, ScenarioError, scenario_for
from .containers import ContainerRecord
from .env import ConfigError, base_env, container_env, expand
from .images import InvalidImage, parse_image, pull_error
from .launch import Exit, Launch, StartError
from .podstate import PodState
from .volumes import container_mounts

EPOCH = "1970-01-01T00:00:00Z"  # startedAt of a container that failed to start, as containerd reports it
TERMINATION_MESSAGE_LINES = 80
TERMINATION_MESSAGE_BYTES = 2048


class ContainerLifecycle(PodState):
    """Runs the instances of a pod's containers; the pod worker decides when and in which order."""

    async def lifecycle(self, record: ContainerRecord, policy: str) -> int:
        """Run instances of one container until the restart policy says stop; returns the last exit code."""
        timings = self.context.timings
        delay = timings.backoff_initial
        while True:
            code = await self.run_instance(record)
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                return code
            await asyncio.sleep(timings.terminated_hold)
            record.last_state = {"terminated": record.state["terminated"]}
            record.restart_count += 1
            pod_ref = f"{self.name}_{self.namespace}({self.uid})"
            record.wait(
                "CrashLoopBackOff",
                f"back-off {go_duration(delay)} restarting failed container={record.name} pod={pod_ref}",
            )
            self.event(
                "BackOff",
                f"Back-off restarting failed container {record.name} in pod {self.name}_{self.namespace}({self.uid})",
                "Warning",
                record,
            )
            self.changed()
            await asyncio.sleep(delay)
            delay = min(delay * 2, timings.backoff_max)

    async def run_instance(self, record: ContainerRecord) -> int:
        """Pull, configure, create and start one instance of the container, then wait for its exit."""
        try:
            scenario = scenario_for(self.annotations, record.name, [s.name for s in self.all_records])
        except ScenarioError as error:
            await self.wait_forever(record, "CreateContainerConfigError", str(error))
        await self.pull(record, scenario)
        env = await self.configure(record, scenario)
        await asyncio.sleep(scenario.start_delay / 2)  # the other half went to the pull
        container_id = secrets.token_hex(32)
        log = ContainerLog(self.directory / "logs" / record.name / f"{record.restart_count}.log")
        record.logs[f"containerd://{container_id}"] = log
        # without a command the image's entrypoint would run; as for an image without ENTRYPOINT, the args are it
        argv = (record.spec.get("command") or []) + (record.spec.get("args") or [])
        command = [expand(part, env) for part in argv]
        mounts = container_mounts(self.spec, record.spec, self.directory / "volumes", env)
        launch = Launch(record.name, command, env, self.working_dir(record), log, scenario, mounts)
        record.launch = launch
        self.event("Created", f"Created container: {record.name}", record=record)
        record.starting = asyncio.ensure_future(self.context.runtime.start(launch))
        try:
            handle = await asyncio.shield(record.starting)
        except StartError as error:
            record.starting = None
            record.container_id = f"containerd://{container_id}"
            finished = rfc3339()
            record.state = {
                "terminated": {
                    "exitCode": 128,
                    "reason": "StartError",
                    "message": str(error),
                    "startedAt": EPOCH,
                    "finishedAt": finished,
                    "containerID": record.container_id,
                }
            }
            self.event("Failed", f"Error: {error}", "Warning", record)
            self.changed()
            return 128
        record.starting = None
        record.handle = handle
        record.container_id = f"containerd://{container_id}"
        record.started_at = rfc3339(handle.started_at)
        record.state = {"running": {"startedAt": record.started_at}}
        record.started_event.set()
        self.event("Started", f"Started container {record.name}", record=record)
        self.changed()
        exit = await handle.wait()
        self.record_exit(record, exit)
        return exit.code

    def working_dir(self, record: ContainerRecord) -> Path:
        wanted = record.spec.get("workingDir")
        if wanted and Path(wanted).is_dir():
            return Path(wanted)
        (self.directory / "fs").mkdir(parents=True, exist_ok=True)
        return self.directory / "fs"

    def record_exit(self, record: ContainerRecord, exit: Exit) -> None:
        record.handle = None
        record.started_event.clear()
        terminated: dict[str, Any] = {
            "exitCode": exit.code,
            "reason": exit.reason,
            "startedAt": record.started_at,
            "finishedAt": rfc3339(exit.finished_at),
            "containerID": record.container_id,
        }
        message = exit.message or self.termination_message(record, exit)
        if message:
            terminated["message"] = message
        record.state = {"terminated": terminated}
        self.changed()

    def termination_message(self, record: ContainerRecord, exit: Exit) -> str | None:
        """``FallbackToLogsOnError``: the last lines of a failed container's log (80 lines, 2 KiB at most)."""
        if (
            exit.code == 0
            or record.spec.get("terminationMessagePolicy") != "FallbackToLogsOnError"
            or record.launch is None
        ):
            return None
        with record.launch.log.path.open("rb") as file:
            file.seek(tail_offset(file, TERMINATION_MESSAGE_LINES))
            text = render(file.read(), timestamps=False)[-TERMINATION_MESSAGE_BYTES:]
        return text.decode("utf-8", "replace") or None

    async def wait_forever(self, record: ContainerRecord, reason: str, message: str) -> NoReturn:
        """A waiting reason the container never leaves; only the pod's end (a cancellation) stops this."""
        record.wait(reason, message)
        self.event(
            "Failed",
            f"Error: {message}" if reason == "CreateContainerConfigError" else f"Error: {reason}",
            "Warning",
            record,
        )
        self.changed()
        while True:
            await asyncio.sleep(3600)

    async def pull(self, record: ContainerRecord, scenario: Scenario) -> None:
        """Image checks and pull events; blocks for ever (retrying) when the image cannot be had."""
        image = record.spec.get("image", "")
        try:
            ref = parse_image(image)
            if scenario.failure is Failure.INVALID_IMAGE_NAME:
                problem = f'couldn\'t parse image name "{image}": invalid reference format'
                raise InvalidImage(f'Failed to apply default image tag "{image}": {problem}')
        except InvalidImage as error:
            self.event("InspectFailed", str(error), "Warning", record)
            await self.wait_forever(record, "InvalidImageName", str(error))
        problem = pull_error(ref)
        if scenario.failure is Failure.ERR_IMAGE_PULL and problem is None:
            problem = f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": {ref}: not found'
        policy = pull_policy(record.spec)
        if problem and policy == "Never":
            message = f'Container image "{image}" is not present with pull policy of Never'
            self.event("ErrImageNeverPull", message, "Warning", record)
            await self.wait_forever(record, "ErrImageNeverPull", message)
        if problem:
            await self.fail_pulling(record, image, problem)
        if policy == "Always":
            self.event("Pulling", f'Pulling image "{image}"', record=record)
            began = time.monotonic()
            await asyncio.sleep(scenario.start_delay / 2)
            took = go_duration(time.monotonic() - began)
            size = 4_000_000 + zlib.crc32(str(ref).encode()) % 100_000_000
            self.event(
                "Pulled",
                f'Successfully pulled image "{image}" in {took} ({took} including waiting). Image size: {size} bytes.',
                record=record,
            )
        else:
            self.event("Pulled", f'Container image "{image}" already present on machine', record=record)
            await asyncio.sleep(scenario.start_delay / 2)
        record.image = str(ref)
        digest = secrets.token_hex(32) if not record.image_id else record.image_id.rsplit(":", 1)[1]
        record.image_id = f"{ref.domain}/{ref.path}@{ref.digest or 'sha256:' + digest}"

    async def fail_pulling(self, record: ContainerRecord, image: str, problem: str) -> None:
        timings = self.context.timings
        delay = timings.image_backoff_initial
        while True:
            self.event("Pulling", f'Pulling image "{image}"', record=record)
            record.wait("ErrImagePull", problem)
            self.event("Failed", f'Failed to pull image "{image}": {problem}', "Warning", record)
            self.event("Failed", "Error: ErrImagePull", "Warning", record)
            self.changed()
            await asyncio.sleep(timings.image_backoff_initial)
            back_off = f'Back-off pulling image "{image}"'
            record.wait("ImagePullBackOff", back_off)
            self.event("BackOff", back_off, record=record)
            self.event("Failed", "Error: ImagePullBackOff", "Warning", record)
            self.changed()
            await asyncio.sleep(delay)
            delay = min(delay * 2, timings.image_backoff_max)

    async def configure(self, record: ContainerRecord, scenario: Scenario) -> dict[str, str]:
        """The container's environment; waits in CreateContainerConfigError while a ConfigMap/Secret is missing."""
        if scenario.failure is Failure.CREATE_CONTAINER_CONFIG_ERROR:
            await self.wait_forever(record, "CreateContainerConfigError", 'configmap "emulator-scenario" not found')
        while True:
            try:
                env = container_env(
                    self.pod,
                    record.spec,
                    self.context.lookup,
                    pod_ip=self.pod_ip or "",
                    host_ip=self.context.host_ip,
                    allocatable=self.context.allocatable,
                )
            except ConfigError as error:
                record.wait("CreateContainerConfigError", str(error))
                self.event("Failed", f"Error: {error}", "Warning", record)
                self.changed()
                await asyncio.sleep(self.context.timings.config_retry)
                continue
            if record.state.get("waiting", {}).get("reason") == "CreateContainerConfigError":
                record.wait("ContainerCreating")
                self.changed()
            return base_env(self.name, self.directory / "fs") | env

