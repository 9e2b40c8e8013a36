"""Container runtimes of the simulated kubelet: what a container needs to start, and how it runs and ends.

Why: the kubelet state machine (``kubelet.py``) must not care whether a container is a real process or a script, and
the facts a real node decides before a container runs (image reference, pull, env from ConfigMaps and Secrets) are
the same for both runtimes.

Two runtimes:

* ``process`` really runs each container's ``command`` + ``args`` (``$(VAR)`` expanded like the kubelet) as a local
  subprocess in its own process group. The image is ignored. The environment is ``PATH`` (the emulator's), ``HOME`` and
  ``HOSTNAME`` plus the container's ``env``/``envFrom``; the working directory is ``workingDir`` when it exists on this
  machine, else the pod's directory under the kubelet workdir (shared by the pod's containers, like an emptyDir).
  stdout/stderr go to the container's log file; exit code and duration are real; a signal death is reported as
  128 + signal (137, 143) like containerd. When the main process exits, the rest of its process group is killed, as a
  container dies with its PID 1. A command that cannot be executed fails like containerd: ``StartError``, exit code
  128, ``failed to create containerd task: ... exec: "foo": executable file not found in $PATH: unknown``. A
  container without ``command`` runs scripted: its image's entrypoint is unknown here.
* ``scripted`` runs nothing: each container is a timer on the event loop that writes generated log lines (never held
  in memory: written in batches of at most ``BATCH_BYTES``) and exits with the scenario's code. SIGTERM/SIGKILL end
  it at once with 143/137. Cheap enough for thousands of pods.

Scenario annotations (prefix ``emulator.kpo.dev/``; a ``.<container>`` suffix limits a key to that container):
``duration`` (seconds, scripted default 1), ``exit-code`` (0), ``log-lines`` (2), ``log-line-bytes`` (short text
lines by default), ``log-interval`` (default: lines spread over the duration; a scripted container ends when both its
duration and its lines are done), ``start-delay`` (seconds in ContainerCreating, 0.1), ``failure``. Container
failures: ``ErrImagePull``, ``InvalidImageName``, ``CreateContainerConfigError``, ``OOMKilled`` (the container is
killed with exit 137 reason OOMKilled after ``duration``, in both runtimes). Pod failures (``Unschedulable``,
``Evicted``, ``NodeLost``, ``DeadlineExceeded``) are handled by the kubelet and take no container suffix. A
misspelt key or bad value fails the container with CreateContainerConfigError naming the annotation.

Without annotations, failures follow the spec: an image reference with uppercase letters is InvalidImageName, a
registry host ending in ``.invalid`` fails to pull (ErrImagePull, then ImagePullBackOff), env from a missing
ConfigMap/Secret or key is CreateContainerConfigError with the kubelet's message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .podlog import ContainerLog

ANNOTATION_PREFIX = "emulator.kpo.dev/"
BATCH_BYTES = 1024 * 1024
OOM_EXIT_CODE = 137


class Failure(StrEnum):
    ERR_IMAGE_PULL = "ErrImagePull"
    INVALID_IMAGE_NAME = "InvalidImageName"
    CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
    UNSCHEDULABLE = "Unschedulable"
    OOM_KILLED = "OOMKilled"
    EVICTED = "Evicted"
    NODE_LOST = "NodeLost"
    DEADLINE_EXCEEDED = "DeadlineExceeded"


POD_FAILURES = {Failure.UNSCHEDULABLE, Failure.EVICTED, Failure.NODE_LOST, Failure.DEADLINE_EXCEEDED}


class Scenario(BaseModel):
    """What the annotations ask of one container (or, for ``failure`` in ``POD_FAILURES``, of its pod)."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=lambda name: name.replace("_", "-"))

    duration: float | None = Field(None, ge=0)
    exit_code: int = Field(0, ge=0, le=255)
    log_lines: int = Field(2, ge=0)
    log_line_bytes: int | None = Field(None, ge=1)
    log_interval: float | None = Field(None, ge=0)
    start_delay: float = Field(0.1, ge=0)
    failure: Failure | None = None


class ScenarioError(ValueError):
    """Bad scenario annotations; the kubelet shows the message as CreateContainerConfigError."""


def scenario_values(annotations: dict[str, str], container: str, containers: list[str]) -> dict[str, str]:
    """The scenario keys for ``container``: suffixed keys override plain ones; a suffix must name a container."""
    plain: dict[str, str] = {}
    suffixed: dict[str, str] = {}
    for key, value in annotations.items():
        if not key.startswith(ANNOTATION_PREFIX):
            continue
        name, _, target = key[len(ANNOTATION_PREFIX) :].partition(".")
        if target and target not in containers:
            raise ScenarioError(f"annotation {key}: no container {target!r} in the pod; containers: {containers}")
        if not target:
            plain[name] = value
        elif target == container:
            if name == "failure" and value in POD_FAILURES:
                raise ScenarioError(f"annotation {key}: {value} happens to the pod: use {ANNOTATION_PREFIX}failure")
            suffixed[name] = value
    return plain | suffixed


def scenario_for(annotations: dict[str, str], container: str, containers: list[str]) -> Scenario:
    values = scenario_values(annotations, container, containers)
    try:
        return Scenario.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"annotation {ANNOTATION_PREFIX}{e['loc'][0]}: {e['msg']} (got {e.get('input')!r})" for e in error.errors()
        )
        raise ScenarioError(problems) from None


def pod_failure(annotations: dict[str, str]) -> Failure | None:
    """The pod-level failure the annotations ask for (Unschedulable, Evicted, NodeLost, DeadlineExceeded)."""
    value = annotations.get(ANNOTATION_PREFIX + "failure")
    return Failure(value) if value in POD_FAILURES else None


# -- images -----------------------------------------------------------------------------------------------------------

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"^(?P<name>{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>\w[\w.-]{{0,127}}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$"
)
_DOMAIN = re.compile(r"^(?:localhost|[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*(?:\.[a-zA-Z0-9-]+|:[0-9]+))$")


@dataclass(frozen=True)
class ImageRef:
    domain: str
    path: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        """The fully qualified reference containerd reports, e.g. ``docker.io/library/busybox:latest``."""
        text = f"{self.domain}/{self.path}"
        if self.tag or not self.digest:
            text += f":{self.tag or 'latest'}"
        return text + (f"@{self.digest}" if self.digest else "")


class InvalidImage(ValueError):
    pass


def parse_image(image: str) -> ImageRef:
    """Parse like containerd's reference.ParseNormalizedNamed; ``InvalidImage`` carries the kubelet's message."""
    domain, _, rest = image.partition("/")
    if not rest or not _DOMAIN.match(domain):
        domain, rest = "docker.io", image
    if domain == "docker.io" and "/" not in rest:
        rest = "library/" + rest
    match = _REFERENCE.match(rest)
    if match is None:
        name = rest.split("@")[0].rsplit(":", 1)[0] if rest else rest
        problem = "invalid reference format"
        if name and name != name.lower():
            problem += f": repository name ({name}) must be lowercase"
        raise InvalidImage(
            f'Failed to apply default image tag "{image}": couldn\'t parse image name "{image}": {problem}'
        )
    return ImageRef(domain, match["name"], match["tag"], match["digest"])


def pull_error(ref: ImageRef) -> str | None:
    """Why pulling ``ref`` fails, as containerd says it, or None: only ``*.invalid`` registries fail."""
    host = ref.domain.split(":")[0]
    if not host.endswith(".invalid"):
        return None
    reference = f"{ref.domain}/{ref.path}:{ref.tag or 'latest'}"
    return (
        f'failed to pull and unpack image "{reference}": failed to resolve reference "{reference}": failed to do '
        f'request: Head "https://{ref.domain}/v2/{ref.path}/manifests/{ref.tag or "latest"}": dial tcp: lookup '
        f"{host}: no such host"
    )


def pull_policy(container: dict) -> str:
    """``imagePullPolicy`` with the API server's default: Always for ``:latest`` or no tag, else IfNotPresent."""
    if container.get("imagePullPolicy"):
        return container["imagePullPolicy"]
    image = container.get("image", "")
    tag = image.rsplit("/", 1)[-1].partition("@")[0].partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


# -- quantities and env -----------------------------------------------------------------------------------------------

_SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def parse_quantity(value: str | int | float) -> Decimal:
    """A resource quantity (``500m``, ``1.5Gi``, ``1e3``) as a number of base units."""
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        raise ValueError(f"invalid quantity {value!r}: use e.g. 500m, 2, 128Mi, 1Gi")
    try:
        return Decimal(match[1]) * Decimal(_SUFFIXES[match[2] or ""])
    except InvalidOperation:
        raise ValueError(f"invalid quantity {value!r}") from None


class ConfigError(Exception):
    """The container cannot be configured (CreateContainerConfigError); the message is the kubelet's."""


Lookup = Callable[[str, str, str], dict | None]  # (kind, namespace, name) -> object or None when missing

_VAR_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: known variables are replaced, ``$$`` escapes, unknown refs stay as written."""

    def replace(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        return env.get(match[1], match[0])

    return _VAR_REF.sub(replace, text)


def _decode(data: dict[str, str], kind: str) -> dict[str, str]:
    if kind == "configmaps":
        return dict(data)
    return {key: base64.b64decode(value).decode("utf-8", "replace") for key, value in data.items()}


def _source_data(lookup: Lookup, kind: str, namespace: str, name: str) -> dict[str, str] | None:
    obj = lookup(kind, namespace, name)
    if obj is None:
        return None
    data = _decode(obj.get("data") or {}, kind)
    if kind == "secrets":
        data |= obj.get("stringData") or {}
    return data


_KIND_WORD = {"configmaps": ("configmap", "ConfigMap"), "secrets": ("secret", "Secret")}


def _key_ref(lookup: Lookup, namespace: str, kind: str, ref: dict) -> str | None:
    data = _source_data(lookup, kind, namespace, ref.get("name", ""))
    lower, title = _KIND_WORD[kind]
    if data is None:
        if ref.get("optional"):
            return None
        raise ConfigError(f'{lower} "{ref.get("name", "")}" not found')
    if ref.get("key") not in data:
        if ref.get("optional"):
            return None
        raise ConfigError(f"couldn't find key {ref.get('key')} in {title} {namespace}/{ref.get('name', '')}")
    return data[ref["key"]]


def _field_ref(pod: dict, path: str, pod_ip: str, host_ip: str) -> str:
    meta, spec = pod["metadata"], pod.get("spec", {})
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return simple[path]
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return (meta.get(match[1]) or {}).get(match[2], "")
    raise ConfigError(f"unsupported fieldRef fieldPath {path!r}")


def _resource_ref(containers: list[dict], default: str, ref: dict, allocatable: dict[str, str]) -> str:
    name = ref.get("containerName") or default
    container = next((c for c in containers if c["name"] == name), {})
    kind, _, resource = ref.get("resource", "").partition(".")
    resources = container.get("resources") or {}
    value = (resources.get(kind) or {}).get(resource) or (resources.get("limits") or {}).get(resource)
    if value is None:
        value = allocatable.get(resource, "0")
    divisor = parse_quantity(ref.get("divisor") or "1")
    return str(math.ceil(parse_quantity(value) / divisor))


def container_env(
    pod: dict, container: dict, lookup: Lookup, *, pod_ip: str, host_ip: str, allocatable: dict[str, str]
) -> dict[str, str]:
    """The container's variables: ``envFrom`` first, then ``env`` (expanded in order); raises ``ConfigError``."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        kind, ref = (
            ("configmaps", source["configMapRef"])
            if "configMapRef" in source
            else ("secrets", source.get("secretRef", {}))
        )
        data = _source_data(lookup, kind, namespace, ref.get("name", ""))
        if data is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{_KIND_WORD[kind][0]} "{ref.get("name", "")}" not found')
        env |= {source.get("prefix", "") + key: value for key, value in data.items()}
    every = (pod.get("spec", {}).get("initContainers") or []) + (pod.get("spec", {}).get("containers") or [])
    for var in container.get("env") or []:
        source = var.get("valueFrom")
        if source is None:
            env[var["name"]] = expand(var.get("value", ""), env)
        elif "configMapKeyRef" in source or "secretKeyRef" in source:
            kind = "configmaps" if "configMapKeyRef" in source else "secrets"
            value = _key_ref(lookup, namespace, kind, source.get("configMapKeyRef") or source["secretKeyRef"])
            if value is not None:
                env[var["name"]] = value
        elif "fieldRef" in source:
            env[var["name"]] = _field_ref(pod, source["fieldRef"].get("fieldPath", ""), pod_ip, host_ip)
        elif "resourceFieldRef" in source:
            env[var["name"]] = _resource_ref(every, container["name"], source["resourceFieldRef"], allocatable)
    return env


# -- running --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exit:
    code: int
    reason: str  # Completed | Error | OOMKilled
    finished_at: datetime
    message: str | None = None


def exit_reason(code: int) -> str:
    return "Completed" if code == 0 else "Error"


class StartError(Exception):
    """containerd could not start the container's process; exit code 128, reason StartError."""


@dataclass
class Launch:
    """Everything a runtime needs to start one container instance."""

    container: str
    command: list[str]  # command + args, expanded; empty when the spec has no command (image entrypoint)
    env: dict[str, str]
    cwd: Path
    log: ContainerLog
    scenario: Scenario = field(default_factory=Scenario)


class Handle(Protocol):
    started_at: datetime

    async def wait(self) -> Exit: ...

    def signal(self, signum: int) -> None: ...


class Runtime(Protocol):
    async def start(self, launch: Launch) -> Handle: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


class ScriptedHandle:
    """A container made of timers: writes its log lines on schedule, exits when duration and lines are done."""

    def __init__(self, launch: Launch) -> None:
        self.started_at = utcnow()
        self._launch = launch
        self._exit: asyncio.Future[Exit] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run())

    async def wait(self) -> Exit:
        return await asyncio.shield(self._exit)

    def signal(self, signum: int) -> None:
        if not self._exit.done():
            self._task.cancel()
            self._finish(128 + signum, "Error")

    def _finish(self, code: int, reason: str) -> None:
        self._launch.log.close()
        self._exit.set_result(Exit(code, reason, utcnow()))

    async def _run(self) -> None:
        scenario = self._launch.scenario
        duration = 1.0 if scenario.duration is None else scenario.duration
        if scenario.failure is Failure.OOM_KILLED:
            await asyncio.sleep(duration)
            self._finish(OOM_EXIT_CODE, "OOMKilled")
            return
        begin = time.monotonic()
        await self._write_lines(begin, duration)
        await asyncio.sleep(max(0.0, begin + duration - time.monotonic()))
        self._finish(scenario.exit_code, exit_reason(scenario.exit_code))

    async def _write_lines(self, begin: float, duration: float) -> None:
        scenario, log = self._launch.scenario, self._launch.log
        count = scenario.log_lines
        interval = scenario.log_interval if scenario.log_interval is not None else duration / max(count, 1)
        per_batch = max(1, BATCH_BYTES // ((scenario.log_line_bytes or 40) + 40))
        written = 0
        while written < count:
            due = count if interval == 0 else min(count, int((time.monotonic() - begin) / interval) + 1)
            if due > written:
                upto = min(due, written + per_batch)
                log.write_lines("stdout", self._lines(written, upto))
                written = upto
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(begin + written * interval - time.monotonic())

    def _lines(self, start: int, stop: int) -> Iterator[bytes]:
        size = self._launch.scenario.log_line_bytes
        name = self._launch.container
        for number in range(start + 1, stop + 1):
            text = f"{name} line {number}".encode()
            yield text if size is None else (text + b" " + b"x" * size)[:size]


class ScriptedRuntime:
    async def start(self, launch: Launch) -> Handle:
        return ScriptedHandle(launch)


def exec_problem(program: str, env: dict[str, str], cwd: Path) -> str | None:
    """Why runc could not execute ``program`` (``exec: "foo": executable file not found in $PATH``), or None."""
    if "/" not in program:
        if shutil.which(program, path=env.get("PATH", os.defpath)) is None:
            return f'exec: "{program}": executable file not found in $PATH'
        return None
    path = Path(program) if program.startswith("/") else cwd / program
    if not path.exists():
        return f'exec: "{program}": stat {program}: no such file or directory'
    if path.is_dir() or not os.access(path, os.X_OK):
        return f'exec: "{program}": permission denied'
    return None


def start_error_message(problem: str) -> str:
    """containerd's StartError message around runc's complaint."""
    return (
        "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: "
        f"unable to start container process: {problem}: unknown"
    )


class ProcessHandle:
    """A container that is a local process group; its output goes to the container's log file."""

    def __init__(self, process: asyncio.subprocess.Process, launch: Launch) -> None:
        self.started_at = utcnow()
        self._process = process
        self._log = launch.log
        self._oom = False
        if launch.scenario.failure is Failure.OOM_KILLED:
            duration = 1.0 if launch.scenario.duration is None else launch.scenario.duration
            asyncio.get_running_loop().call_later(duration, self._kill_for_oom)
        self._exit = asyncio.ensure_future(self._run())

    async def wait(self) -> Exit:
        return await asyncio.shield(self._exit)

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
            os.killpg(self._process.pid, signum)

    def _kill_for_oom(self) -> None:
        if self._process.returncode is None:
            self._oom = True
            self.signal(signal.SIGKILL)

    async def _run(self) -> Exit:
        assert self._process.stdout and self._process.stderr
        pumps = asyncio.gather(self._pump(self._process.stdout, "stdout"), self._pump(self._process.stderr, "stderr"))
        returncode = await self._process.wait()
        self.signal(signal.SIGKILL)  # the container dies with its main process: no orphan keeps the pipes open
        await pumps
        self._log.close()
        code = returncode if returncode >= 0 else 128 - returncode
        if self._oom:
            return Exit(OOM_EXIT_CODE, "OOMKilled", utcnow())
        return Exit(code, exit_reason(code), utcnow())

    async def _pump(self, stream: asyncio.StreamReader, name: str) -> None:
        while chunk := await stream.read(64 * 1024):
            self._log.write(name, chunk)


class ProcessRuntime:
    def __init__(self) -> None:
        self._scripted = ScriptedRuntime()

    async def start(self, launch: Launch) -> Handle:
        if not launch.command:
            return await self._scripted.start(launch)
        problem = exec_problem(launch.command[0], launch.env, launch.cwd)
        if problem:
            launch.log.close()
            raise StartError(start_error_message(problem))
        try:
            process = await asyncio.create_subprocess_exec(
                *launch.command,
                cwd=launch.cwd,
                env=launch.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group, so signals reach the whole container
            )
        except OSError as error:
            launch.log.close()
            raise StartError(start_error_message(f'exec: "{launch.command[0]}": {error.strerror}')) from None
        return ProcessHandle(process, launch)


def make_runtime(name: str) -> Runtime:
    runtimes: dict[str, Callable[[], Runtime]] = {"process": ProcessRuntime, "scripted": ScriptedRuntime}
    if name not in runtimes:
        raise ValueError(f"unknown runtime {name!r}: use one of {sorted(runtimes)}")
    return runtimes[name]()


def base_env(pod_name: str, home: Path) -> dict[str, str]:
    """What every container process starts with before its own variables."""
    return {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home), "HOSTNAME": pod_name}


def scenario(**values: object) -> dict[str, str]:
    """Scenario annotations from keywords: ``scenario(exit_code=3)`` → ``{"emulator.kpo.dev/exit-code": "3"}``.

    Per-container keys keep their dot: ``scenario(**{"duration.sidecar": 60})``.
    """
    return {ANNOTATION_PREFIX + key.replace("_", "-"): str(value) for key, value in values.items()}
