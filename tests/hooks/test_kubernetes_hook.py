"""Connection → client resolution, through real Airflow connections (``AIRFLOW_CONN_*``), real kubeconfig files and
real API servers: three tiny aiohttp servers (``a``, ``b``, and ``tls`` with a self-signed certificate) that answer
pod lists and record the Authorization header, so each test sees which cluster and which credential a setting chose.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_kpo_deferrable.hooks.kubernetes import (
    ClusterConfigError,
    ClusterTarget,
    KubernetesHook,
    async_core_v1,
    close_async_clients,
)

CONN = "k8s_test"
SERVER_NAME = web.AppKey("server_name", str)


# -- fake API servers ----------------------------------------------------------------------------------------------


class ApiServers:
    """API servers on loopback in a background thread; ``seen`` lists (server, path, Authorization) per request."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.seen: list[tuple[str, str, str | None]] = []
        self.urls: dict[str, str] = {}
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls.load_cert_chain(cert, key)
        self._loop = asyncio.new_event_loop()
        self._runners: list[web.AppRunner] = []
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    async def _start(self) -> None:
        for name, tls in (("a", None), ("b", None), ("tls", self._tls)):
            app = web.Application()
            app[SERVER_NAME] = name
            app.router.add_get("/api/v1/namespaces/{namespace}/pods", self._pods)
            app.router.add_get("/version", self._version)
            runner = web.AppRunner(app)
            await runner.setup()
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            await web.SockSite(runner, sock, ssl_context=tls).start()
            self._runners.append(runner)
            self.urls[name] = f"{'https' if tls else 'http'}://127.0.0.1:{sock.getsockname()[1]}"

    def _record(self, request: web.Request) -> None:
        self.seen.append((request.app[SERVER_NAME], request.path, request.headers.get("Authorization")))

    async def _pods(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response(
            {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": []}
        )

    async def _version(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response({"major": "1", "minor": "32", "gitVersion": "v1.32.0"})

    def last(self) -> tuple[str, str | None]:
        """The server and Authorization header of the latest request."""
        server, _, auth = self.seen[-1]
        return server, auth

    def stop(self) -> None:
        async def cleanup() -> None:
            for runner in self._runners:
                await runner.cleanup()

        asyncio.run_coroutine_threadsafe(cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)


@pytest.fixture(scope="module")
def module_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServers]:
    certs = tmp_path_factory.mktemp("certs")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(certs / "key.pem"), "-out", str(certs / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    servers = ApiServers(certs / "cert.pem", certs / "key.pem")
    yield servers
    servers.stop()


@pytest.fixture
def servers(module_servers: ApiServers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ApiServers:
    """Fresh request log; no ambient Kubernetes config from the machine running the tests."""
    module_servers.seen.clear()
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv(f"AIRFLOW_CONN_{CONN.upper()}", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", raising=False)
    return module_servers


# -- kubeconfigs, exec plugins, connections --------------------------------------------------------------------------


def kubeconfig(servers: ApiServers, current: str = "a", users: dict[str, dict] | None = None) -> dict[str, Any]:
    """Contexts a, b and tls, each on its own server with its own user; ``users`` overrides a user's credentials."""
    users = {"a": {"token": "token-a"}, "b": {"token": "token-b"}, "tls": {"token": "token-tls"}} | (users or {})
    names = ("a", "b", "tls")
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": current,
        "clusters": [{"name": n, "cluster": {"server": servers.urls[n]}} for n in names],
        "users": [{"name": n, "user": users[n]} for n in names],
        "contexts": [
            {"name": n, "context": {"cluster": n, "user": n, **({"namespace": f"ns-{n}"} if n != "tls" else {})}}
            for n in names
        ],
    }


def write_kubeconfig(path: Path, config: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(config))
    return str(path)


PLUGIN = textwrap.dedent(
    """
    import datetime, json, os, pathlib, time
    state = pathlib.Path(os.environ["PLUGIN_STATE"])
    time.sleep(float(os.environ.get("PLUGIN_DELAY", "0")))
    runs = int(state.read_text()) + 1 if state.exists() else 1
    state.write_text(str(runs))
    status = {"token": f"exec-token-{runs}"}
    if os.environ.get("PLUGIN_LIFETIME"):
        expiry = int(time.time()) + int(os.environ["PLUGIN_LIFETIME"])
        pathlib.Path(os.environ["PLUGIN_STATE"] + ".expiry").write_text(str(expiry))
        when = datetime.datetime.fromtimestamp(expiry, datetime.UTC)
        status["expirationTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status}))
    """
)


def exec_user(tmp_path: Path, delay: float = 0, lifetime: int | None = None) -> dict[str, Any]:
    """A kubeconfig user whose token comes from an exec plugin that counts its runs in ``tmp_path/plugin-runs``."""
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN)
    env = [
        {"name": "PLUGIN_STATE", "value": str(tmp_path / "plugin-runs")},
        {"name": "PLUGIN_DELAY", "value": str(delay)},
    ]
    if lifetime is not None:
        env.append({"name": "PLUGIN_LIFETIME", "value": str(lifetime)})
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(script)],
            "env": env,
        }
    }


def plugin_runs(tmp_path: Path) -> int:
    state = tmp_path / "plugin-runs"
    return int(state.read_text()) if state.exists() else 0


def set_connection(monkeypatch: pytest.MonkeyPatch, extras: dict[str, Any], conn_id: str = CONN) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "kubernetes", "extra": extras}))


# -- making requests -----------------------------------------------------------------------------------------------


async def _list_pods_async(target: ClusterTarget) -> None:
    try:
        api = await async_core_v1(target)
        await api.list_namespaced_pod("default")
    finally:
        await close_async_clients()


def reach(servers: ApiServers, target: ClusterTarget, mode: str) -> tuple[str, str | None]:
    """List pods through the sync hook or the async client; returns (server, Authorization) of that request."""
    if mode == "sync":
        KubernetesHook(target).core_v1().list_namespaced_pod("default")
    else:
        asyncio.run(_list_pods_async(target))
    return servers.last()


MODES = pytest.mark.parametrize("mode", ["sync", "async"])


# -- ClusterTarget -------------------------------------------------------------------------------------------------


def test_cluster_target_round_trips_and_is_a_cache_key() -> None:
    target = ClusterTarget(conn_id="x", config_file="/k", in_cluster=False, cluster_context="c")
    data = json.loads(json.dumps(target.to_dict()))
    assert data == {"conn_id": "x", "config_file": "/k", "in_cluster": False, "cluster_context": "c"}
    assert ClusterTarget.from_dict(data) == target
    assert len({target, ClusterTarget.from_dict(data)}) == 1
    with pytest.raises(ClusterConfigError, match=r"Unknown ClusterTarget field\(s\) \['kube_config'\]"):
        ClusterTarget.from_dict({**data, "kube_config": {"users": []}})


@MODES
def test_no_credential_reaches_the_target(servers: ApiServers, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    set_connection(monkeypatch, {"kube_config": kubeconfig(servers), "namespace": "n"})
    target = ClusterTarget(conn_id=CONN)
    assert reach(servers, target, mode) == ("a", "Bearer token-a")
    stored = json.dumps(target.to_dict())
    assert "token-a" not in stored and servers.urls["a"] not in stored
    assert set(target.to_dict()) == {"conn_id", "config_file", "in_cluster", "cluster_context"}


# -- every extra, in both spellings --------------------------------------------------------------------------------


@MODES
@pytest.mark.parametrize("prefix", ["", "extra__kubernetes__"])
@pytest.mark.parametrize("form", ["path", "json", "yaml", "object"])
def test_kubeconfig_extras(
    servers: ApiServers, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str, prefix: str, form: str
) -> None:
    config = kubeconfig(servers, current="b")
    extras = {
        "path": {"kube_config_path": write_kubeconfig(tmp_path / "config", config)},
        "json": {"kube_config": json.dumps(config)},
        "yaml": {"kube_config": yaml.safe_dump(config)},
        "object": {"kube_config": config},
    }[form]
    set_connection(monkeypatch, {prefix + key: value for key, value in extras.items()})
    assert reach(servers, ClusterTarget(conn_id=CONN), mode) == ("b", "Bearer token-b")


@MODES
@pytest.mark.parametrize("prefix", ["", "extra__kubernetes__"])
@pytest.mark.parametrize("inline", [False, True])
def test_cluster_context_extra_selects_the_context(
    servers: ApiServers, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str, prefix: str, inline: bool
) -> None:
    config = kubeconfig(servers, current="a")
    source = {"kube_config": config} if inline else {"kube_config_path": write_kubeconfig(tmp_path / "c", config)}
    set_connection(monkeypatch, {**source, prefix + "cluster_context": "b"})
    assert reach(servers, ClusterTarget(conn_id=CONN), mode) == ("b", "Bearer token-b")


@MODES
@pytest.mark.parametrize("prefix", ["", "extra__kubernetes__"])
def test_disable_verify_ssl(
    servers: ApiServers, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str, prefix: str
) -> None:
    path = write_kubeconfig(tmp_path / "config", kubeconfig(servers, current="tls"))
    set_connection(monkeypatch, {"kube_config_path": path})
    with pytest.raises(Exception, match=r"(?i)certificate"):
        reach(servers, ClusterTarget(conn_id=CONN), mode)
    set_connection(monkeypatch, {"kube_config_path": path, prefix + "disable_verify_ssl": "true"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # urllib3's InsecureRequestWarning: intended here
        assert reach(servers, ClusterTarget(conn_id=CONN), mode) == ("tls", "Bearer token-tls")


@pytest.mark.parametrize("prefix", ["", "extra__kubernetes__"])
def test_tcp_keepalive_is_on_unless_disabled(
    servers: ApiServers, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, prefix: str
) -> None:
    path = write_kubeconfig(tmp_path / "config", kubeconfig(servers))
    set_connection(monkeypatch, {"kube_config_path": path})
    options = KubernetesHook(ClusterTarget(conn_id=CONN)).api_client().configuration.socket_options
    assert (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) in options
    set_connection(monkeypatch, {"kube_config_path": path, prefix + "disable_tcp_keepalive": True})
    assert KubernetesHook(ClusterTarget(conn_id=CONN)).api_client().configuration.socket_options is None


@pytest.mark.parametrize(
    ("extras", "target", "expected"),
    [
        ({"namespace": "from-conn"}, ClusterTarget(conn_id=CONN), "from-conn"),
        ({"extra__kubernetes__namespace": "from-conn"}, ClusterTarget(conn_id=CONN), "from-conn"),
        ({}, ClusterTarget(conn_id=CONN), "ns-a"),
        ({}, ClusterTarget(conn_id=CONN, cluster_context="b"), "ns-b"),
        ({"inline": True}, ClusterTarget(conn_id=CONN, cluster_context="b"), "ns-b"),
        ({}, ClusterTarget(conn_id=CONN, cluster_context="tls"), None),
    ],
)
def test_default_namespace(
    servers: ApiServers,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    extras: dict,
    target: ClusterTarget,
    expected: str | None,
) -> None:
    config = kubeconfig(servers)
    source = (
        {"kube_config": config}
        if extras.pop("inline", False)
        else {"kube_config_path": write_kubeconfig(tmp_path / "c", config)}
    )
    set_connection(monkeypatch, {**source, **extras})
    assert KubernetesHook(target).default_namespace() == expected


def test_sync_clients_are_kept_per_hook(servers: ApiServers, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    set_connection(monkeypatch, {"kube_config_path": write_kubeconfig(tmp_path / "c", kubeconfig(servers))})
    hook = KubernetesHook(kubernetes_conn_id=CONN)  # how Airflow's Connection.get_hook builds it
    assert hook.target == ClusterTarget(conn_id=CONN)
    assert hook.core_v1() is hook.core_v1()
    assert hook.core_v1().api_client is hook.api_client() is hook.api_client()
    assert KubernetesHook.get_ui_field_behaviour()["hidden_fields"]


# -- precedence ----------------------------------------------------------------------------------------------------


@MODES
def test_operator_arguments_win_over_the_connection(
    servers: ApiServers, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str
) -> None:
    conn_path = write_kubeconfig(tmp_path / "conn", kubeconfig(servers, current="a"))
    operator_path = write_kubeconfig(tmp_path / "operator", kubeconfig(servers, current="b"))
    set_connection(monkeypatch, {"kube_config_path": conn_path, "cluster_context": "a"})
    assert reach(servers, ClusterTarget(conn_id=CONN), mode)[0] == "a"
    assert reach(servers, ClusterTarget(conn_id=CONN, config_file=operator_path, cluster_context=None), mode)[0] == "a"
    assert reach(servers, ClusterTarget(conn_id=CONN, cluster_context="b"), mode)[0] == "b"
    set_connection(monkeypatch, {"kube_config_path": conn_path})
    assert reach(servers, ClusterTarget(conn_id=CONN, config_file=operator_path), mode)[0] == "b"
    # The connection asks for in-cluster, the operator says no: no conflict, the kubeconfig path is used.
    set_connection(monkeypatch, {"kube_config_path": conn_path, "in_cluster": True})
    assert reach(servers, ClusterTarget(conn_id=CONN, in_cluster=False), mode)[0] == "a"


@MODES
def test_short_extra_name_wins_over_the_prefixed_one(
    servers: ApiServers, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str
) -> None:
    set_connection(
        monkeypatch,
        {
            "kube_config_path": write_kubeconfig(tmp_path / "a", kubeconfig(servers, current="a")),
            "extra__kubernetes__kube_config_path": write_kubeconfig(tmp_path / "b", kubeconfig(servers, current="b")),
        },
    )
    assert reach(servers, ClusterTarget(conn_id=CONN), mode)[0] == "a"


# -- default connection and missing connections --------------------------------------------------------------------


@MODES
@pytest.mark.parametrize("conn_id", ["kubernetes_default", None])
def test_no_connection_uses_kubeconfig_env(
    servers: ApiServers, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str, conn_id: str | None
) -> None:
    monkeypatch.setenv("KUBECONFIG", write_kubeconfig(tmp_path / "env-config", kubeconfig(servers, current="b")))
    assert reach(servers, ClusterTarget(conn_id=conn_id), mode) == ("b", "Bearer token-b")
    assert reach(servers, ClusterTarget(conn_id=conn_id, cluster_context="a"), mode) == ("a", "Bearer token-a")


@MODES
def test_a_defined_default_connection_is_used(
    servers: ApiServers, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str
) -> None:
    monkeypatch.setenv("KUBECONFIG", write_kubeconfig(tmp_path / "env-config", kubeconfig(servers, current="a")))
    set_connection(monkeypatch, {"cluster_context": "b"}, conn_id="kubernetes_default")
    assert reach(servers, ClusterTarget(), mode)[0] == "b"


@MODES
def test_no_configuration_at_all_is_a_clear_error(servers: ApiServers, mode: str) -> None:
    with pytest.raises(ClusterConfigError, match="No Kubernetes configuration found: not running in a pod"):
        reach(servers, ClusterTarget(), mode)


@MODES
def test_a_missing_named_connection_is_an_error(
    servers: ApiServers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("KUBECONFIG", write_kubeconfig(tmp_path / "env-config", kubeconfig(servers)))
    with pytest.raises(AirflowNotFoundException, match=f"Kubernetes connection '{CONN}' is not defined"):
        reach(servers, ClusterTarget(conn_id=CONN), mode)
    assert servers.seen == []


# -- conflicts and bad input ---------------------------------------------------------------------------------------


@MODES
@pytest.mark.parametrize(
    ("extras", "target", "named"),
    [
        ({"kube_config_path": "/k", "kube_config": {"users": []}}, {}, ["'kube_config_path'", "'kube_config'"]),
        (
            {"kube_config": "{}"},
            {"in_cluster": True},
            ["in_cluster=True (operator argument in_cluster)", "'kube_config'"],
        ),
        ({"kube_config": "{}"}, {"config_file": "/k"}, ["operator argument config_file", "'kube_config'"]),
        (
            {"in_cluster": "true", "extra__kubernetes__kube_config_path": "/k"},
            {},
            ["'in_cluster'", "'kube_config_path'"],
        ),
    ],
)
def test_conflicting_settings_name_both(
    servers: ApiServers, monkeypatch: pytest.MonkeyPatch, mode: str, extras: dict, target: dict, named: list[str]
) -> None:
    set_connection(monkeypatch, extras)
    with pytest.raises(ClusterConfigError, match="Conflicting Kubernetes settings") as error:
        reach(servers, ClusterTarget(conn_id=CONN, **target), mode)
    for name in named:
        assert name in str(error.value)


@MODES
@pytest.mark.parametrize(
    ("extras", "message"),
    [
        ({"in_cluster": "yes"}, "'in_cluster' must be true or false, got 'yes'"),
        ({"disable_verify_ssl": 1}, "'disable_verify_ssl' must be true or false, got 1"),
        ({"kube_config": "users: [token: s3cr3t-value"}, "'kube_config' is not valid JSON or YAML at line 1"),
        ({"kube_config": "[1, 2]"}, "'kube_config' must be a kubeconfig .* got list"),
        ({"kube_config_path": "/nonexistent/config"}, "Kubeconfig file '/nonexistent/config' .* does not exist"),
    ],
)
def test_bad_settings_are_explained(
    servers: ApiServers, monkeypatch: pytest.MonkeyPatch, mode: str, extras: dict, message: str
) -> None:
    set_connection(monkeypatch, extras)
    with pytest.raises(ClusterConfigError, match=message) as error:
        reach(servers, ClusterTarget(conn_id=CONN), mode)
    assert "s3cr3t" not in str(error.value)


@MODES
def test_in_cluster_outside_a_pod_is_explained(servers: ApiServers, mode: str) -> None:
    with pytest.raises(ClusterConfigError, match="in_cluster=True, but this process does not run in a Kubernetes pod"):
        reach(servers, ClusterTarget(conn_id=None, in_cluster=True), mode)


# -- async client cache --------------------------------------------------------------------------------------------


async def test_one_client_per_target_and_loop_even_under_concurrent_first_calls(
    servers: ApiServers, tmp_path: Path
) -> None:
    path = write_kubeconfig(tmp_path / "c", kubeconfig(servers, users={"a": exec_user(tmp_path, delay=0.3)}))
    target = ClusterTarget(conn_id=None, config_file=path)
    try:
        apis = await asyncio.gather(*(async_core_v1(target) for _ in range(20)))
        assert all(api is apis[0] for api in apis)
        assert plugin_runs(tmp_path) == 1
        assert await async_core_v1(ClusterTarget(conn_id=None, config_file=path)) is apis[0]
        other = await async_core_v1(ClusterTarget(conn_id=None, config_file=path, cluster_context="b"))
        assert other is not apis[0]
        await apis[0].list_namespaced_pod("default")
        await apis[0].list_namespaced_pod("default")
        assert servers.seen == [("a", "/api/v1/namespaces/default/pods", "Bearer exec-token-1")] * 2
    finally:
        await close_async_clients()


def test_each_loop_has_its_own_clients_and_closes_only_its_own(servers: ApiServers, tmp_path: Path) -> None:
    target = ClusterTarget(conn_id=None, config_file=write_kubeconfig(tmp_path / "c", kubeconfig(servers)))
    loops = [asyncio.new_event_loop(), asyncio.new_event_loop()]
    try:
        first, again = (loops[0].run_until_complete(async_core_v1(target)) for _ in range(2))
        second = loops[1].run_until_complete(async_core_v1(target))
        assert first is again and second is not first
        for loop, api in zip(loops, (first, second), strict=True):
            loop.run_until_complete(api.list_namespaced_pod("default"))
        assert [server for server, _, _ in servers.seen] == ["a", "a"]

        loops[0].run_until_complete(close_async_clients())
        assert first.api_client.rest_client.pool_manager.closed
        assert not second.api_client.rest_client.pool_manager.closed
        renewed = loops[0].run_until_complete(async_core_v1(target))
        assert renewed is not first
        loops[0].run_until_complete(renewed.list_namespaced_pod("default"))
        assert len(servers.seen) == 3
    finally:
        for loop in loops:
            loop.run_until_complete(close_async_clients())
            loop.close()
    assert second.api_client.rest_client.pool_manager.closed


# -- nothing blocks the loop ---------------------------------------------------------------------------------------


async def _longest_stall(awaitable: Any) -> tuple[Any, float]:
    """Await ``awaitable`` while a 10 ms ticker measures the longest time the loop could not run it."""
    loop = asyncio.get_running_loop()
    stalls = [0.0]

    async def tick() -> None:
        last = loop.time()
        while True:
            await asyncio.sleep(0.01)
            stalls.append(loop.time() - last - 0.01)
            last = loop.time()

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.02)
    try:
        result = await awaitable
        await asyncio.sleep(0.02)  # let the ticker record a stall that ended just now
        return result, max(stalls)
    finally:
        ticker.cancel()


async def test_a_slow_exec_plugin_does_not_stall_the_loop(servers: ApiServers, tmp_path: Path) -> None:
    delay = 1.5
    path = write_kubeconfig(tmp_path / "c", kubeconfig(servers, users={"a": exec_user(tmp_path, delay=delay)}))
    started = time.monotonic()
    try:
        api, stall = await _longest_stall(async_core_v1(ClusterTarget(conn_id=None, config_file=path)))
        assert time.monotonic() - started >= delay
        assert stall < delay / 3  # running the plugin on the loop would stall it the whole delay
        await api.list_namespaced_pod("default")
        assert servers.last() == ("a", "Bearer exec-token-1")
    finally:
        await close_async_clients()


async def test_reading_the_kubeconfig_does_not_stall_the_loop(servers: ApiServers, tmp_path: Path) -> None:
    """The kubeconfig is a FIFO whose writer shows up after 1.5 s: reading it on the loop would stall it that long."""
    fifo = tmp_path / "kubeconfig"
    os.mkfifo(fifo)
    content = yaml.safe_dump(kubeconfig(servers, current="b"))

    def write_late() -> None:
        time.sleep(1.5)
        with open(fifo, "w") as f:
            f.write(content)

    threading.Thread(target=write_late, daemon=True).start()
    try:
        api, stall = await _longest_stall(async_core_v1(ClusterTarget(conn_id=None, config_file=str(fifo))))
        assert stall < 0.5  # a third of the writer's delay
        await api.list_namespaced_pod("default")
        assert servers.last() == ("b", "Bearer token-b")
    finally:
        await close_async_clients()


# -- exec token refresh (provider bug #61737) ----------------------------------------------------------------------


async def test_an_expired_exec_token_is_refreshed_before_the_next_request(servers: ApiServers, tmp_path: Path) -> None:
    # kubernetes_asyncio treats a token as expired 5 minutes before its expirationTimestamp: 302 s → ~2 s of life.
    user = exec_user(tmp_path, lifetime=302)
    path = write_kubeconfig(tmp_path / "c", kubeconfig(servers, users={"a": user}))
    try:
        api = await async_core_v1(ClusterTarget(conn_id=None, config_file=path))
        await api.list_namespaced_pod("default")
        await api.list_namespaced_pod("default")
        assert [auth for _, _, auth in servers.seen] == ["Bearer exec-token-1"] * 2
        assert plugin_runs(tmp_path) == 1

        expiry = int((tmp_path / "plugin-runs.expiry").read_text())
        await asyncio.sleep(max(0.0, expiry - 300 - time.time()) + 0.1)
        await asyncio.gather(*(api.list_namespaced_pod("default") for _ in range(5)))
        assert [auth for _, _, auth in servers.seen[2:]] == ["Bearer exec-token-2"] * 5
        assert plugin_runs(tmp_path) == 2  # once for five concurrent requests
    finally:
        await close_async_clients()


def test_the_sync_client_refreshes_exec_tokens_too(servers: ApiServers, tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "c", kubeconfig(servers, users={"a": exec_user(tmp_path, lifetime=302)}))
    api = KubernetesHook(ClusterTarget(conn_id=None, config_file=path)).core_v1()
    api.list_namespaced_pod("default")
    expiry = int((tmp_path / "plugin-runs.expiry").read_text())
    time.sleep(max(0.0, expiry - 300 - time.time()) + 0.1)
    api.list_namespaced_pod("default")
    assert [auth for _, _, auth in servers.seen] == ["Bearer exec-token-1", "Bearer exec-token-2"]
