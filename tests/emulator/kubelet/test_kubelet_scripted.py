"""The simulated kubelet with the scripted runtime: scenario annotations, timing, failures, and many pods at once.

Driven with the asyncio client (``kubernetes_asyncio``) against an emulator on the test's own loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes_asyncio.client import CoreV1Api, V1Pod

from airflow_kpo_deferrable.emulator import Emulator, scenario
from tests.support import async_emulator as async_fixtures

pytestmark = pytest.mark.timeout(60)

# On this test's loop, scripted runtime: replace conftest.py's in-thread process-runtime pair.
emulator = async_fixtures.emulator
api = async_fixtures.api


def pod(name: str, annotations: dict[str, str], containers: tuple[str, ...] = ("base",), **spec: Any) -> dict:
    return {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": c, "image": "busybox:1.36"} for c in containers],
            **spec,
        },
    }


async def wait_for(api: CoreV1Api, name: str, check: Callable[[V1Pod], bool], timeout: float = 10) -> V1Pod:
    deadline = time.monotonic() + timeout
    while True:
        current = await api.read_namespaced_pod(name, "default")
        if check(current):
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"pod {name} never got there; last status: {current.status}")
        await asyncio.sleep(0.03)


def phase_is(*phases: str) -> Callable[[V1Pod], bool]:
    return lambda p: p.status.phase in phases


def waiting(reason: str) -> Callable[[V1Pod], bool]:
    def check(p: V1Pod) -> bool:
        state = (p.status.container_statuses or [None])[0]
        return bool(state and state.state.waiting and state.state.waiting.reason == reason)

    return check


def terminated(p: V1Pod) -> bool:
    return bool(p.status.container_statuses and p.status.container_statuses[0].state.terminated)


async def test_timing_exit_code_and_log_lines(api: CoreV1Api) -> None:
    annotations = scenario(duration=0.6, start_delay=0.3, exit_code=2, log_lines=5)
    await api.create_namespaced_pod("default", pod("timed", annotations))
    begun = time.monotonic()
    creating = await wait_for(api, "timed", waiting("ContainerCreating"))
    assert creating.status.phase == "Pending"
    await wait_for(api, "timed", phase_is("Running"))
    started = time.monotonic() - begun
    await wait_for(api, "timed", phase_is("Failed", "Succeeded"))
    finished = time.monotonic() - begun
    # Lower bounds are the annotations' clock; upper ones only have to rule out "never" on a loaded machine.
    assert 0.3 <= started < 10
    assert 0.9 <= finished < 20
    done = await api.read_namespaced_pod("timed", "default")
    assert done.status.phase == "Failed"
    assert done.status.container_statuses[0].state.terminated.exit_code == 2
    log = await api.read_namespaced_pod_log("timed", "default")
    assert log.splitlines() == [f"base line {n}" for n in range(1, 6)]


async def test_success_and_sized_log_lines(api: CoreV1Api) -> None:
    await api.create_namespaced_pod("default", pod("sized", scenario(duration=0.1, log_lines=3, log_line_bytes=100)))
    done = await wait_for(api, "sized", phase_is("Succeeded", "Failed"))
    assert done.status.phase == "Succeeded"
    assert done.status.container_statuses[0].state.terminated.reason == "Completed"
    lines = (await api.read_namespaced_pod_log("sized", "default")).splitlines()
    assert [len(line) for line in lines] == [100, 100, 100]


async def test_container_failures_from_annotations(api: CoreV1Api) -> None:
    for failure in ("ErrImagePull", "InvalidImageName", "CreateContainerConfigError"):
        await api.create_namespaced_pod("default", pod(failure.lower(), scenario(failure=failure)))
    await wait_for(api, "errimagepull", waiting("ErrImagePull"))
    await wait_for(api, "errimagepull", waiting("ImagePullBackOff"))
    invalid = await wait_for(api, "invalidimagename", waiting("InvalidImageName"))
    assert invalid.status.container_statuses[0].state.waiting.message.startswith(
        'Failed to apply default image tag "busybox:1.36"'
    )
    config = await wait_for(api, "createcontainerconfigerror", waiting("CreateContainerConfigError"))
    assert config.status.phase == "Pending"


async def test_oom_killed_from_annotation(api: CoreV1Api) -> None:
    await api.create_namespaced_pod("default", pod("oom", scenario(failure="OOMKilled", duration=0.2)))
    done = await wait_for(api, "oom", phase_is("Failed"))
    state = done.status.container_statuses[0].state.terminated
    assert (state.exit_code, state.reason) == (137, "OOMKilled")


async def test_unschedulable_from_annotation(api: CoreV1Api) -> None:
    await api.create_namespaced_pod("default", pod("nowhere", scenario(failure="Unschedulable")))
    stuck = await wait_for(api, "nowhere", lambda p: bool(p.status.conditions))
    (scheduled,) = stuck.status.conditions
    assert (scheduled.type, scheduled.status, scheduled.reason) == ("PodScheduled", "False", "Unschedulable")
    assert scheduled.message.startswith("0/1 nodes are available: ")
    assert scheduled.last_transition_time is not None
    await asyncio.sleep(0.3)
    assert (await api.read_namespaced_pod("nowhere", "default")).spec.node_name is None


@pytest.mark.parametrize(
    ("failure", "phase", "reason"),
    [
        ("Evicted", "Failed", "Evicted"),
        ("DeadlineExceeded", "Failed", "DeadlineExceeded"),
        ("NodeLost", "Unknown", "NodeLost"),
    ],
)
async def test_pod_failures_from_annotation(api: CoreV1Api, failure: str, phase: str, reason: str) -> None:
    annotations = scenario(failure=failure, duration=0.4, **{"duration.sidecar": 60})
    await api.create_namespaced_pod(
        "default", pod("doomed", annotations, ("base", "sidecar"), terminationGracePeriodSeconds=1)
    )
    await wait_for(api, "doomed", phase_is("Running"))
    done = await wait_for(api, "doomed", lambda p: p.status.phase == phase)
    assert done.status.reason == reason
    ready = next(c for c in done.status.conditions if c.type == "Ready")
    assert ready.status == "False"
    if phase == "Failed":
        await wait_for(api, "doomed", lambda p: all(s.state.terminated for s in p.status.container_statuses))


async def test_per_container_keys_and_restart_always(api: CoreV1Api, emulator: Emulator) -> None:
    emulator.kubelet.timings.backoff_initial = 0.05
    annotations = scenario(duration=0.05, exit_code=1, **{"duration.steady": 60, "exit-code.steady": 0})
    await api.create_namespaced_pod("default", pod("mixed", annotations, ("flappy", "steady"), restartPolicy="Always"))
    looping = await wait_for(api, "mixed", lambda p: p.status.container_statuses[0].restart_count >= 2)
    flappy, steady = looping.status.container_statuses
    assert looping.status.phase == "Running"
    assert flappy.last_state.terminated.exit_code == 1
    assert steady.restart_count == 0 and steady.state.running is not None


async def test_bad_annotation_is_reported_on_the_container(api: CoreV1Api) -> None:
    await api.create_namespaced_pod("default", pod("typo", scenario(durration=1)))
    stuck = await wait_for(api, "typo", waiting("CreateContainerConfigError"))
    assert "emulator.kpo.dev/durration" in stuck.status.container_statuses[0].state.waiting.message
    await api.create_namespaced_pod("default", pod("nan", scenario(exit_code="three")))
    stuck = await wait_for(api, "nan", waiting("CreateContainerConfigError"))
    assert "emulator.kpo.dev/exit-code" in stuck.status.container_statuses[0].state.waiting.message


async def test_many_pods_are_cheap(api: CoreV1Api) -> None:
    count = 300
    annotations = scenario(duration=0.5, start_delay=0.05, log_lines=3)
    begun = time.monotonic()
    await asyncio.gather(*(api.create_namespaced_pod("default", pod(f"bulk-{n}", annotations)) for n in range(count)))
    serial = count * 0.55  # what one pod after another would take
    deadline = time.monotonic() + serial / 2
    while True:
        pods = (await api.list_namespaced_pod("default")).items
        done = [p for p in pods if p.status.phase == "Succeeded"]
        if len(done) == count or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert len(done) == count
    assert time.monotonic() - begun < serial / 4  # they run side by side


async def test_deleting_a_pending_pod_is_immediate(api: CoreV1Api) -> None:
    await api.create_namespaced_pod("default", pod("stuck", scenario(failure="ErrImagePull")))
    await wait_for(api, "stuck", waiting("ErrImagePull"))
    await api.delete_namespaced_pod("stuck", "default", grace_period_seconds=30)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        names = [p.metadata.name for p in (await api.list_namespaced_pod("default")).items]
        if "stuck" not in names:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("a Pending pod being deleted must go at once")
