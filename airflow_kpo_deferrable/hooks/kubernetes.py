"""Airflow connection → Kubernetes API clients: a sync client for the worker, shared async clients for the triggerer.

Why: the provider's async hook builds a new ``ApiClient`` (aiohttp session, TLS handshake, ``ssl`` context) for every
request and re-parses the kubeconfig each time. Here a ``ClusterTarget`` names a cluster without holding any
credential (it is the shared watcher's cache key and travels in trigger kwargs, which are stored as plain JSON), and
``async_core_v1`` keeps one client per target and per running event loop, created once.

Facts this module handles:

* Connection semantics are the provider's (cncf.kubernetes 10.25.0): extras ``in_cluster``, ``kube_config_path``,
  ``kube_config`` (JSON or YAML text, or an object), ``cluster_context``, ``namespace``, ``disable_verify_ssl``,
  ``disable_tcp_keepalive``, each also accepted as ``extra__kubernetes__<field>``. The operator's ``in_cluster``,
  ``config_file`` and ``cluster_context`` win over the connection's. ``in_cluster``, a kubeconfig path and inline
  kubeconfig content are mutually exclusive. A missing ``kubernetes_default`` connection (or ``conn_id=None``) means
  "no connection": in-cluster config if the process runs in a pod, else the default kubeconfig (``KUBECONFIG`` or
  ``~/.kube/config``, read when the client is made, not when the library was imported). Unlike the provider, boolean
  extras must be real booleans or ``"true"``/``"false"``: the provider treats the string ``"false"`` as in-cluster.
* aiohttp sessions belong to the loop they were created on. The triggerer has one loop for its whole life; the
  operator's non-deferrable mode runs ``asyncio.run`` per task. So async clients are cached per (loop, target), and
  ``close_async_clients`` closes the current loop's clients before that loop ends.
* Nothing slow runs on the triggerer's loop: resolving the connection is awaited, and parsing kubeconfig files,
  writing certificate temp files and running exec-auth plugins happen in a worker thread (``asyncio.to_thread``
  running ``kubernetes_asyncio.config`` on a private loop). Only the ``ApiClient`` itself is built on the loop,
  because aiohttp binds its session to the running loop; that builds one ``ssl`` context, once per client (about
  0.3 ms with a cluster CA, about 20 ms when the system trust store is loaded), never per request.
* Exec-auth tokens (EKS, GKE, ...) expire, typically after 15 minutes (provider bug #61737 kept using the first
  token). ``kubernetes_asyncio``'s kubeconfig loader records the plugin's ``expirationTimestamp`` but never re-runs
  the plugin by itself; ``Configuration.refresh_api_key_hook`` is awaited before every request, so we install a hook
  that re-runs the plugin (in a thread, once, under a lock) when the token is within the library's 5-minute skew of
  expiry. A plugin that returns no expiry keeps its token, as kubectl does. The sync ``kubernetes`` loader already
  refreshes exec tokens through the same hook, and in-cluster service account tokens are re-read by both libraries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any

import urllib3
import yaml
from airflow.sdk import BaseHook, conf
from airflow.sdk.exceptions import AirflowNotFoundException
from kubernetes import client as sync_client
from kubernetes import config as sync_config
from kubernetes_asyncio import client as async_client
from kubernetes_asyncio import config as async_config
from kubernetes_asyncio.config.kube_config import EXPIRY_SKEW_PREVENTION_DELAY, KubeConfigLoader

DEFAULT_CONN_ID = "kubernetes_default"
CONN_TYPE = "kubernetes"
EXTRA_PREFIX = f"extra__{CONN_TYPE}__"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

# The connection form, in the declarative ``conn-fields`` shape Airflow 3.2+ reads from provider info (hooks'
# ``get_connection_form_widgets`` is deprecated there and needs wtforms). Same fields as the provider's form.
CONNECTION_FIELDS: dict[str, dict[str, Any]] = {
    "in_cluster": {"label": "In cluster configuration", "schema": {"type": ["boolean", "null"]}},
    "kube_config_path": {"label": "Kube config path", "schema": {"type": ["string", "null"]}},
    "kube_config": {
        "label": "Kube config (JSON format)",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
    "namespace": {"label": "Namespace", "schema": {"type": ["string", "null"]}},
    "cluster_context": {"label": "Cluster context", "schema": {"type": ["string", "null"]}},
    "disable_verify_ssl": {"label": "Disable SSL", "schema": {"type": ["boolean", "null"]}},
    "disable_tcp_keepalive": {"label": "Disable TCP keepalive", "schema": {"type": ["boolean", "null"]}},
}
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["host", "schema", "login", "password", "port", "extra"],
    "relabeling": {},
}


class ClusterConfigError(ValueError):
    """The Kubernetes settings (operator arguments and connection extras) cannot select one cluster configuration."""


@dataclass(frozen=True)
class ClusterTarget:
    """Which cluster to talk to, by reference only: never credentials, so it is safe in trigger kwargs and logs."""

    conn_id: str | None = DEFAULT_CONN_ID
    config_file: str | None = None
    in_cluster: bool | None = None
    cluster_context: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterTarget:
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ClusterConfigError(
                f"Unknown ClusterTarget field(s) {sorted(unknown)}; expected only {sorted(known)}."
            )
        return cls(**data)


class Source(Enum):
    IN_CLUSTER = "in_cluster"
    FILE = "file"
    DICT = "dict"
    DEFAULT = "default"  # in-cluster when in a pod, else the default kubeconfig


@dataclass(frozen=True)
class ClusterConfig:
    """Where a client's configuration comes from, decided from a target and its connection's extras.

    Holds the inline kubeconfig (credentials): lives only in memory, never serialised.
    """

    source: Source
    config_file: str | None = None
    config_dict: dict[str, Any] | None = dataclasses.field(default=None, repr=False)
    context: str | None = None
    namespace: str | None = None
    verify_ssl: bool = True
    tcp_keepalive: bool = True


# -- pure decisions ----------------------------------------------------------------------------------------------


def extra_field(extras: Mapping[str, Any], name: str) -> Any:
    """A connection extra by its short or ``extra__kubernetes__`` name (short wins); empty values count as unset."""
    if name in extras:
        return extras[name] or None
    return extras.get(EXTRA_PREFIX + name) or None


def parse_bool(value: Any, what: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ClusterConfigError(f"{what} must be true or false, got {value!r}.")


def parse_kube_config(value: Any, what: str) -> dict[str, Any]:
    """Inline kubeconfig content: an object, or JSON/YAML text. Errors never quote the content (it holds secrets)."""
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ClusterConfigError(f"{what} is not valid JSON or YAML{where}.") from None
    if not isinstance(value, dict):
        raise ClusterConfigError(
            f"{what} must be a kubeconfig (a JSON or YAML mapping with clusters, contexts and users), "
            f"got {type(value).__name__}."
        )
    return value


def resolve_cluster_config(target: ClusterTarget, extras: Mapping[str, Any]) -> ClusterConfig:
    """Combine operator arguments and connection extras the way the provider's ``KubernetesHook.get_conn`` does."""
    conn = f"connection {target.conn_id!r} extra"

    def pick(argument: Any, argument_label: str, extra: str) -> tuple[Any, str]:
        if argument is not None:
            return argument, f"operator argument {argument_label}"
        return extra_field(extras, extra), f"{conn} {extra!r}"

    in_cluster, in_cluster_from = pick(target.in_cluster, "in_cluster", "in_cluster")
    in_cluster = parse_bool(in_cluster, in_cluster_from)
    config_file, config_file_from = pick(target.config_file, "config_file", "kube_config_path")
    context, _ = pick(target.cluster_context, "cluster_context", "cluster_context")
    inline = extra_field(extras, "kube_config")

    chosen = [
        label
        for value, label in (
            (in_cluster, f"in_cluster=True ({in_cluster_from})"),
            (config_file, f"a kubeconfig path ({config_file_from})"),
            (inline, f"inline kubeconfig content ({conn} 'kube_config')"),
        )
        if value
    ]
    if len(chosen) > 1:
        raise ClusterConfigError(
            f"Conflicting Kubernetes settings: {' and '.join(chosen)} each select a cluster configuration. "
            "Use only one of in_cluster, config_file / kube_config_path, kube_config."
        )

    common = {
        "context": context,
        "namespace": extra_field(extras, "namespace"),
        "verify_ssl": not parse_bool(extra_field(extras, "disable_verify_ssl"), f"{conn} 'disable_verify_ssl'"),
        "tcp_keepalive": not parse_bool(
            extra_field(extras, "disable_tcp_keepalive"), f"{conn} 'disable_tcp_keepalive'"
        ),
    }
    if in_cluster:
        return ClusterConfig(Source.IN_CLUSTER, **common)
    if config_file:
        return ClusterConfig(Source.FILE, config_file=str(config_file), **common)
    if inline:
        return ClusterConfig(Source.DICT, config_dict=parse_kube_config(inline, f"{conn} 'kube_config'"), **common)
    return ClusterConfig(Source.DEFAULT, **common)


def default_kubeconfig_path() -> str:
    """What the clients use when given no file, read now: their own default is fixed when they are imported."""
    return os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")


def context_namespace(contexts: list[dict[str, Any]], current: dict[str, Any] | None, wanted: str | None) -> str | None:
    chosen = next((c for c in contexts if c.get("name") == wanted), None) if wanted else current
    return ((chosen or {}).get("context") or {}).get("namespace")


def missing_connection(conn_id: str, error: AirflowNotFoundException) -> dict[str, Any]:
    """The provider's rule: only the default connection may be absent (then: no extras, default config)."""
    if conn_id == DEFAULT_CONN_ID:
        return {}
    raise AirflowNotFoundException(
        f"Kubernetes connection {conn_id!r} is not defined. Define it (UI, `airflow connections add`, "
        f"AIRFLOW_CONN_{conn_id.upper()} or a secrets backend), or pass kubernetes_conn_id=None to use the "
        "in-cluster configuration or the default kubeconfig."
    ) from error


# -- sync client (worker) ----------------------------------------------------------------------------------------


def _keepalive_options() -> list[tuple[int, int, int]]:
    """urllib3's own socket options (it replaces rather than merges them) plus TCP keepalive.

    Built here rather than with ``kubernetes.utils.keepalive``, which only exists from kubernetes 37 on: the
    official provider pins older clients, and both must install side by side. Options the platform lacks are skipped.
    The provider's ``[kubernetes_executor]`` settings, when present, tune it the same way.
    """
    tuning = {
        "TCP_KEEPIDLE": conf.getint("kubernetes_executor", "tcp_keep_idle", fallback=120),
        "TCP_KEEPINTVL": conf.getint("kubernetes_executor", "tcp_keep_intvl", fallback=30),
        "TCP_KEEPCNT": conf.getint("kubernetes_executor", "tcp_keep_cnt", fallback=6),
    }
    options = [*urllib3.connection.HTTPConnection.default_socket_options, (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    options += [(socket.IPPROTO_TCP, getattr(socket, name), value) for name, value in tuning.items() if hasattr(socket, name)]
    return options


def in_cluster_namespace() -> str | None:
    if not SERVICE_ACCOUNT_NAMESPACE.exists():
        return None
    return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None


def _in_cluster(cfg: ClusterConfig, load: Callable[[], None]) -> bool:
    """Load the pod's service account config when asked, or first by default (the provider's order).

    False when the default falls through to a kubeconfig; an explicit ``in_cluster`` outside a pod is an error.
    """
    if cfg.source not in (Source.IN_CLUSTER, Source.DEFAULT):
        return False
    try:
        load()
    except (sync_config.ConfigException, async_config.ConfigException) as error:
        if cfg.source is Source.IN_CLUSTER:
            raise ClusterConfigError(
                f"in_cluster=True, but this process does not run in a Kubernetes pod ({error})."
            ) from error
        return False
    return True


def uses_in_cluster_config(cfg: ClusterConfig) -> bool:
    """Whether a client for ``cfg`` uses the pod's service account: reads the environment and files, no cluster."""
    return _in_cluster(cfg, lambda: sync_config.load_incluster_config(client_configuration=sync_client.Configuration()))


def check_context(contexts: list[dict[str, Any]], wanted: str | None, where: str) -> None:
    """``cluster_context`` must name a context of the kubeconfig (the client's own error is a bare KeyError text)."""
    names = [c.get("name") for c in contexts]
    if wanted and wanted not in names:
        raise ClusterConfigError(
            f"cluster_context={wanted!r} is not a context of {where}; its contexts are {names}: "
            "set cluster_context (or the connection's cluster_context extra) to one of them, or leave it unset"
        )


def _existing_kubeconfig(cfg: ClusterConfig) -> str:
    """The kubeconfig path to load, checked first: the libraries only log a warning and fail with a vague error."""
    path = cfg.config_file or default_kubeconfig_path()
    if any(Path(p).expanduser().exists() for p in path.split(os.pathsep) if p):
        return path
    if cfg.config_file:
        raise ClusterConfigError(f"Kubeconfig file {path!r} (config_file / kube_config_path) does not exist.")
    raise ClusterConfigError(
        f"No Kubernetes configuration found: not running in a pod, and no kubeconfig at {path!r} "
        "(KUBECONFIG or ~/.kube/config). Set a connection with kube_config_path, kube_config or in_cluster, "
        "or the operator's config_file / in_cluster."
    )


def _load_sync(cfg: ClusterConfig) -> tuple[sync_client.ApiClient, str | None]:
    """A configured sync ApiClient and the namespace its kubeconfig context names (or the pod's, in a cluster)."""
    configuration = sync_client.Configuration()
    if _in_cluster(cfg, lambda: sync_config.load_incluster_config(client_configuration=configuration)):
        namespace = in_cluster_namespace()
    elif cfg.source is Source.DICT:
        check_context(cfg.config_dict.get("contexts") or [], cfg.context, "the connection's kube_config")
        sync_config.load_kube_config_from_dict(cfg.config_dict, context=cfg.context, client_configuration=configuration)
        loader = sync_config.kube_config.KubeConfigLoader(cfg.config_dict, active_context=cfg.context)
        namespace = context_namespace(loader.list_contexts(), loader.current_context, cfg.context)
    else:
        path = _existing_kubeconfig(cfg)
        contexts, current = sync_config.list_kube_config_contexts(path)
        check_context(contexts, cfg.context, f"the kubeconfig {path!r}")
        sync_config.load_kube_config(config_file=path, context=cfg.context, client_configuration=configuration)
        namespace = context_namespace(contexts, current, cfg.context)
    if not cfg.verify_ssl:
        configuration.verify_ssl = False
    if cfg.tcp_keepalive:
        configuration.socket_options = _keepalive_options()
    return sync_client.ApiClient(configuration), namespace


class KubernetesHook(BaseHook):
    """Sync Kubernetes API access for one ``ClusterTarget``; the client is built on first use and kept."""

    conn_name_attr = "kubernetes_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "Kubernetes Cluster Connection"

    def __init__(self, target: ClusterTarget | None = None, *, kubernetes_conn_id: str | None = None) -> None:
        # ``kubernetes_conn_id`` is how Airflow's ``Connection.get_hook`` builds hooks.
        super().__init__()
        if target is not None and kubernetes_conn_id is not None:
            raise TypeError("Pass either a ClusterTarget or kubernetes_conn_id, not both.")
        self.target = target or ClusterTarget(conn_id=kubernetes_conn_id or DEFAULT_CONN_ID)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return UI_FIELD_BEHAVIOUR

    @cached_property
    def extras(self) -> dict[str, Any]:
        conn_id = self.target.conn_id
        if conn_id is None:
            return {}
        try:
            return self.get_connection(conn_id).extra_dejson
        except AirflowNotFoundException as error:
            return missing_connection(conn_id, error)

    @cached_property
    def cluster_config(self) -> ClusterConfig:
        return resolve_cluster_config(self.target, self.extras)

    @cached_property
    def _loaded(self) -> tuple[sync_client.ApiClient, str | None]:
        return _load_sync(self.cluster_config)

    def api_client(self) -> sync_client.ApiClient:
        return self._loaded[0]

    def core_v1(self) -> sync_client.CoreV1Api:
        return self._core_v1

    @cached_property
    def _core_v1(self) -> sync_client.CoreV1Api:
        return sync_client.CoreV1Api(self.api_client())

    def default_namespace(self) -> str | None:
        """The connection's ``namespace`` extra, else the kubeconfig context's namespace (the pod's in a cluster)."""
        return self.cluster_config.namespace or self._loaded[1]


# -- async clients (triggerer, non-deferrable wait) --------------------------------------------------------------


async def connection_extras(conn_id: str | None) -> dict[str, Any]:
    """The connection's extras, read from the triggerer's loop ({} without a connection id)."""
    if conn_id is None:
        return {}
    try:
        connection = await BaseHook.aget_connection(conn_id)
    except AirflowNotFoundException as error:
        return missing_connection(conn_id, error)
    # ``extra_dejson`` masks secrets through a sync call that deadlocks inside the triggerer's loop.
    return await connection.aextra_dejson()


async def _aload(cfg: ClusterConfig) -> tuple[async_client.Configuration, KubeConfigLoader | None]:
    """Load a configuration with kubernetes_asyncio; runs on a private loop in a worker thread."""
    configuration = async_client.Configuration()
    if _in_cluster(cfg, lambda: async_config.load_incluster_config(client_configuration=configuration)):
        return configuration, None  # the library re-reads the service account token itself
    if cfg.source is Source.DICT:
        loader = await async_config.load_kube_config_from_dict(
            cfg.config_dict, context=cfg.context, client_configuration=configuration
        )
    else:
        loader = await async_config.load_kube_config(
            config_file=_existing_kubeconfig(cfg), context=cfg.context, client_configuration=configuration
        )
    return configuration, loader


def _load_async_configuration(
    target: ClusterTarget, extras: dict[str, Any]
) -> tuple[async_client.Configuration, KubeConfigLoader | None]:
    """Blocking: parse settings and kubeconfig, run exec plugins. Call through ``asyncio.to_thread``."""
    cfg = resolve_cluster_config(target, extras)
    configuration, loader = asyncio.run(_aload(cfg))
    if not cfg.verify_ssl:
        configuration.verify_ssl = False
    return configuration, loader


def _exec_token_expired(loader: KubeConfigLoader) -> bool:
    expiry = getattr(loader, "exec_plugin_expiry", None)  # set only when the plugin gave an expirationTimestamp
    return expiry is not None and expiry - EXPIRY_SKEW_PREVENTION_DELAY <= datetime.datetime.now(datetime.UTC)


def exec_token_refresher(loader: KubeConfigLoader) -> Callable[[async_client.Configuration], Awaitable[None]]:
    """A ``refresh_api_key_hook`` that re-runs the exec plugin, off the loop and once, when its token expires."""
    lock = asyncio.Lock()

    async def refresh(configuration: async_client.Configuration) -> None:
        if not _exec_token_expired(loader):
            return
        async with lock:
            if _exec_token_expired(loader):  # another request may have refreshed it while we waited
                await asyncio.to_thread(asyncio.run, loader.load_from_exec_plugin())
            configuration.api_key["BearerToken"] = loader.token

    return refresh


async def _new_async_api_client(target: ClusterTarget) -> async_client.ApiClient:
    extras = await connection_extras(target.conn_id)
    configuration, loader = await asyncio.to_thread(_load_async_configuration, target, extras)
    if loader is not None:
        configuration.refresh_api_key_hook = exec_token_refresher(loader)
    # On the loop: aiohttp binds the session to the running loop.
    return async_client.ApiClient(configuration)


@dataclass
class _LoopClients:
    apis: dict[ClusterTarget, async_client.CoreV1Api] = dataclasses.field(default_factory=dict)
    locks: dict[ClusterTarget, asyncio.Lock] = dataclasses.field(default_factory=dict)


_CLIENTS: dict[asyncio.AbstractEventLoop, _LoopClients] = {}
_CLIENTS_LOCK = threading.Lock()  # several threads may each run a loop (asyncio.run per task)


def _loop_clients() -> _LoopClients:
    loop = asyncio.get_running_loop()
    with _CLIENTS_LOCK:
        for stale in [other for other in _CLIENTS if other.is_closed()]:
            del _CLIENTS[stale]  # a loop that ended without close_async_clients: its sessions died with it
        return _CLIENTS.setdefault(loop, _LoopClients())


async def async_core_v1(target: ClusterTarget) -> async_client.CoreV1Api:
    """The shared async CoreV1Api for ``target`` on the running loop, created on first use (once, even when many
    callers ask at the same time)."""
    clients = _loop_clients()
    api = clients.apis.get(target)
    if api is not None:
        return api
    async with clients.locks.setdefault(target, asyncio.Lock()):
        api = clients.apis.get(target)
        if api is None:
            api = async_client.CoreV1Api(await _new_async_api_client(target))
            clients.apis[target] = api
    return api


async def close_async_clients() -> None:
    """Close the clients that belong to the running loop; call before a loop you started ends."""
    loop = asyncio.get_running_loop()
    with _CLIENTS_LOCK:
        clients = _CLIENTS.pop(loop, None)
    if clients is not None:
        await asyncio.gather(*(api.api_client.close() for api in clients.apis.values()))
