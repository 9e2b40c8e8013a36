"""Conformance with ``kubernetes_asyncio``: watch resume, how it surfaces a 410, followed logs, TLS with the CA.

The emulator runs on the test's own loop here (scripted runtime), so its store can be read directly as the truth a
watch must reproduce.
"""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from kubernetes_asyncio.client import ApiException, CoreV1Api, VersionApi
from kubernetes_asyncio.config import new_client_from_config
from kubernetes_asyncio.watch import Watch

from airflow_kpo_deferrable.emulator import Emulator, scenario
from tests.support import async_emulator as async_fixtures

pytestmark = pytest.mark.timeout(60)

# On this test's loop, scripted runtime: replace conftest.py's in-thread process-runtime pair.
emulator = async_fixtures.emulator
api = async_fixtures.api


def pod(name: str, **values: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": scenario(**values)},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox:1.36"}]},
    }


async def wait_for_phase(api: CoreV1Api, name: str, phase: str, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while (current := await api.read_namespaced_pod(name, "default")).status.phase != phase:
        assert time.monotonic() < deadline, f"pod {name} never reached {phase}: {current.status.phase}"
        await asyncio.sleep(0.03)
    return current


def seen(event: dict[str, Any]) -> tuple[str, str, int]:
    return event["type"], event["object"].metadata.name, int(event["object"].metadata.resource_version)


async def test_watch_resumes_from_a_resource_version(api: CoreV1Api, emulator: Emulator) -> None:
    await api.create_namespaced_pod("default", pod("before", duration=30, start_delay=0.05))
    start = (await api.list_namespaced_pod("default")).metadata.resource_version
    writes = []
    for name in ("w1", "w2", "w3"):
        created = await api.create_namespaced_pod("default", pod(name, duration=30, start_delay=0.05))
        writes.append(("ADDED", name, int(created.metadata.resource_version)))
    patched = await api.patch_namespaced_pod("w1", "default", {"metadata": {"labels": {"stage": "two"}}})
    writes.append(("MODIFIED", "w1", int(patched.metadata.resource_version)))
    removed = await api.delete_namespaced_pod("w2", "default", grace_period_seconds=0)
    writes.append(("DELETED", "w2", int(removed.metadata.resource_version)))

    first = []
    watch = Watch()
    async with watch.stream(api.list_namespaced_pod, "default", resource_version=start, timeout_seconds=10) as events:
        async for event in events:
            first.append(seen(event))
            if len(first) == 3:
                watch.stop()
    assert len(first) == 3 and watch.resource_version == str(first[-1][2])
    second = []
    async with Watch().stream(api.list_namespaced_pod, "default", resource_version=watch.resource_version,
                              timeout_seconds=1) as events:
        async for event in events:
            second.append(seen(event))

    received = first + second
    versions = [rv for _, _, rv in received]
    assert versions == sorted(set(versions)), "events must come once each, in resourceVersion order"
    assert set(writes) <= set(received)
    truth = [(c.type, c.obj["metadata"]["name"], c.rv) for c in emulator.store.changes_since(int(start))
             if c.kind == "pods" and c.rv <= versions[-1]]
    assert received == truth, "a change was lost or invented"


async def test_too_old_resource_version_raises_410(api: CoreV1Api, emulator: Emulator) -> None:
    old = (await api.create_namespaced_pod("default", pod("old", duration=30))).metadata.resource_version
    await api.patch_namespaced_pod("old", "default", {"metadata": {"labels": {"touched": "yes"}}})
    emulator.faults.expire_history()

    emulator.reset_counters()
    with pytest.raises(ApiException) as expired:  # this client turns the ERROR event into an exception
        async with Watch().stream(api.list_namespaced_pod, "default", resource_version=old, timeout_seconds=5) as w:
            async for _ in w:
                pass
    assert expired.value.status == 410
    assert expired.value.reason.startswith(f"Expired: too old resource version: {old} (")
    assert emulator.counters()["watch pods"] == 1  # with timeout_seconds it does not retry

    emulator.reset_counters()
    with pytest.raises(ApiException) as again:
        async with Watch().stream(api.list_namespaced_pod, "default", resource_version=old) as w:
            async for _ in w:
                pass
    assert again.value.status == 410
    assert emulator.counters()["watch pods"] == 2  # watching forever it retries once from the same version


async def test_follow_logs_streams_lines_as_written(api: CoreV1Api) -> None:
    await api.create_namespaced_pod("default", pod("chatty", duration=1, log_lines=4, log_interval=0.2,
                                                   start_delay=0.05))
    await wait_for_phase(api, "chatty", "Running")
    response = await api.read_namespaced_pod_log("chatty", "default", follow=True, _preload_content=False)
    arrivals = []
    begun = time.monotonic()
    async with response:
        assert response.status == 200
        async for line in response.content:
            arrivals.append((time.monotonic() - begun, line.decode()))
    assert [line for _, line in arrivals] == [f"base line {n}\n" for n in range(1, 5)]
    assert arrivals[-1][0] - arrivals[0][0] > 0.3  # lines came while the container wrote them
    done = await wait_for_phase(api, "chatty", "Succeeded", timeout=3)
    assert done.status.container_statuses[0].state.terminated.exit_code == 0


async def test_tls_verified_with_the_kubeconfig_ca(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    async with Emulator(runtime="scripted", tls=True, kubeconfig_path=kubeconfig, workdir=tmp_path / "node") as emu:
        assert emu.url.startswith("https://127.0.0.1:")
        (cluster,) = yaml.safe_load(kubeconfig.read_text())["clusters"]
        assert "insecure-skip-tls-verify" not in cluster["cluster"]
        assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]).startswith(b"-----BEGIN CERTIFICATE")

        client = await new_client_from_config(config_file=str(kubeconfig))
        try:
            assert client.configuration.verify_ssl is True
            assert (await VersionApi(client).get_code()).git_version.startswith("v1.32.")
            api = CoreV1Api(client)
            await api.create_namespaced_pod("default", pod("secure", duration=0.2, start_delay=0.05))
            done = await wait_for_phase(api, "secure", "Succeeded")
            assert done.status.container_statuses[0].state.terminated.reason == "Completed"
        finally:
            await client.close()

        async with aiohttp.ClientSession() as session:  # without that CA the certificate is refused
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.get(f"{emu.url}/version")
