"""A real, headless Airflow 3.3 (api-server, scheduler, dag-processor, N triggerers) for end-to-end tests and the demo.

Deferral can only be tested for real with a running triggerer: ``dag.test()`` runs triggers inline, drops defer kwargs,
ignores timeouts and never calls ``on_kill``/``cleanup``. This module starts the real components as subprocesses of the
current interpreter's ``airflow`` and talks to them only through the public REST API.

Facts it handles (Airflow 3.3.2):

- Every component reads its configuration from ``AIRFLOW__*`` variables; we strip the caller's own ``AIRFLOW__*`` and
  ``AIRFLOW_HOME`` so a developer's local Airflow set-up cannot leak into a test, then apply ``extra_env`` last.
- ``airflow db migrate`` costs seconds, so each Airflow version is migrated once into a template (a SQLite file in the
  cache dir, or a PostgreSQL ``TEMPLATE`` database) and every stack starts from a copy. A file lock serialises the
  build across concurrent test processes.
- A triggerer whose job heartbeat is older than ``[triggerer] triggerer_health_check_threshold`` loses its triggers to
  any live triggerer at that one's next loop; with a 1 s heartbeat and a 5 s threshold a killed triggerer's triggers
  move in about 5 s instead of the default 30.
- The task-sdk supervisor puts each task and the trigger runner in a process group of its own (``setpgid``), so
  signalling a component's process group does not reach them: we snapshot the whole process tree before signalling and
  finally sweep every process that carries this stack's marker variable.
- Log serving is skipped (``--skip-serve-logs``): all components share one AIRFLOW_HOME, so the api-server reads task and
  trigger logs (``….log.trigger.<job>.log``) from local files; fixed log-server ports would collide between stacks.
- With ``SIMPLE_AUTH_MANAGER_ALL_ADMINS=True``, ``GET /auth/token`` hands out an admin bearer token without a login.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import Any, Literal, Self

import httpx
import psutil

COMPONENTS_STARTUP_TIMEOUT = 120.0
STACK_MARKER = "AIRFLOW_KPO_STACK_ID"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TERMINAL_TASK_STATES = ("success", "failed", "skipped", "upstream_failed", "removed")
_PR_SET_PDEATHSIG = 1
_RENDERED_APART = frozenset({"timestamp", "event", "level", "logger", "sources"})
_PER_RECORD_NOISE = frozenset({"dag_id", "task_id", "run_id", "map_index", "try_number", "ti_id", "filename", "lineno"})

DbKind = Literal["sqlite", "postgres"]


class AirflowStackError(RuntimeError):
    """The stack did not start, or something it waited for did not happen in time."""


class AirflowApiError(AirflowStackError):
    """The REST API answered with an error status."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:2000]}")
        self.status = status
        self.body = body


def default_cache_dir() -> Path:
    """Where migrated template databases live: ``$AIRFLOW_KPO_CACHE_DIR`` or ``~/.cache/airflow-kpo-deferrable``."""
    configured = os.environ.get("AIRFLOW_KPO_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "airflow-kpo-deferrable"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def render_log(content: Iterable[Any]) -> str:
    """Structured log records (the log endpoint's ``content``) as plain text lines.

    Records are dicts with ``event`` and usually ``timestamp``, ``level``, ``logger``; other keys are rendered as
    ``key=value`` so nothing a trigger logged (including ``error_detail`` tracebacks) is lost, except the task identity
    and source location that Airflow adds to every record.
    """
    lines = []
    for record in content:
        if not isinstance(record, dict):
            lines.append(str(record))
            continue
        extra = {k: v for k, v in record.items() if k not in _RENDERED_APART and k not in _PER_RECORD_NOISE}
        parts = [
            str(record.get("timestamp") or ""),
            f"[{record['level']}]" if record.get("level") else "",
            f"{record['logger']}:" if record.get("logger") else "",
            str(record.get("event", "")),
            " ".join(f"{key}={value}" for key, value in extra.items()),
        ]
        if record.get("sources"):
            parts.append(" ".join(map(str, record["sources"])))
        lines.append(" ".join(part for part in parts if part))
    return "\n".join(lines)


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


# Resolved once in the parent: the forked child must not dlopen (another thread may hold the loader's lock).
_PRCTL = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None) if sys.platform == "linux" else None


def _set_parent_death_signal() -> None:
    """Runs in the child before exec: if the test process dies abruptly, its components get SIGTERM, not orphaned.

    Linux ties this to the thread that started the child, so start stacks from a thread that outlives them.
    """
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _clean_environment() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
        and key not in ("AIRFLOW_HOME", STACK_MARKER)
    }


def _run_migrate(python: str, env: Mapping[str, str], log_path: Path) -> None:
    with open(log_path, "w") as log:
        result = subprocess.run(
            [python, "-m", "airflow", "db", "migrate"],
            check=False,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=300,
        )
    if result.returncode != 0:
        raise AirflowStackError(f"airflow db migrate failed (exit {result.returncode}):\n{tail(log_path.read_text())}")


def _template_key() -> str:
    return "airflow-" + distribution_version("apache-airflow-core").replace(".", "_").replace("+", "_")


def _sqlite_template(cache_dir: Path, python: str, base_env: Mapping[str, str]) -> Path:
    """A migrated SQLite file for this Airflow version, built at most once per cache dir."""
    template = cache_dir / f"{_template_key()}.db"
    with _file_lock(cache_dir / f"{template.name}.lock"):
        if template.exists():
            return template
        with tempfile.TemporaryDirectory(dir=cache_dir) as build_home:
            building = Path(build_home) / "airflow.db"
            env = {
                **base_env,
                "AIRFLOW_HOME": build_home,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{building}",
            }
            _run_migrate(python, env, Path(build_home) / "migrate.log")
            os.replace(building, template)
    return template


def _postgres_admin(url: str) -> Any:
    import psycopg2

    connection = psycopg2.connect(url, connect_timeout=5)
    connection.autocommit = True
    return connection


def _postgres_database_exists(admin: Any, name: str) -> bool:
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return cursor.fetchone() is not None


def _postgres_execute(admin: Any, statement: str) -> None:
    with admin.cursor() as cursor:
        cursor.execute(statement)


def _sqlalchemy_url(admin_url: str, database: str) -> str:
    """``postgresql://user@host:port/anything`` → ``postgresql+psycopg2://user@host:port/database``."""
    base = admin_url.split("://", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+psycopg2://{base}/{database}"


def _postgres_database_from_template(
    admin_url: str, cache_dir: Path, python: str, base_env: Mapping[str, str], database: str
) -> None:
    """CREATE DATABASE … TEMPLATE a migrated database built once per Airflow version (PostgreSQL copies it in ms)."""
    template = f"kpo_tmpl_{_template_key()}".lower()
    try:
        admin = _postgres_admin(admin_url)
    except Exception as exc:
        raise AirflowStackError(
            f"cannot connect to PostgreSQL at {admin_url!r} ({exc}); start it (e.g. "
            "`pg_ctlcluster --skip-systemctl-redirect 15 main start`) or pass postgres_url=…"
        ) from exc
    try:
        with _file_lock(cache_dir / f"{template}.pg.lock"):
            if not _postgres_database_exists(admin, template):
                building = f"{template}_building"
                _postgres_execute(admin, f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
                _postgres_execute(admin, f'CREATE DATABASE "{building}"')
                with tempfile.TemporaryDirectory(dir=cache_dir) as build_home:
                    env = {
                        **base_env,
                        "AIRFLOW_HOME": build_home,
                        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _sqlalchemy_url(admin_url, building),
                    }
                    _run_migrate(python, env, Path(build_home) / "migrate.log")
                _postgres_execute(admin, f'ALTER DATABASE "{building}" RENAME TO "{template}"')
            _postgres_execute(admin, f'CREATE DATABASE "{database}" TEMPLATE "{template}"')
    finally:
        admin.close()


def _drop_postgres_database(admin_url: str, database: str) -> None:
    admin = _postgres_admin(admin_url)
    try:
        _postgres_execute(admin, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        admin.close()


def _process_tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _marked_processes(stack_id: str) -> list[psutil.Process]:
    """Every process still carrying this stack's marker, including orphans re-parented to init."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.pid != os.getpid() and process.environ().get(STACK_MARKER) == stack_id:
                found.append(process)
    return found


def _terminate(processes: list[psutil.Process], sig: int, grace: float) -> None:
    """Send ``sig`` to every process, wait up to ``grace`` seconds, SIGKILL whatever is left."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)
    _, alive = psutil.wait_procs(processes, timeout=grace)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=5)


@dataclass
class _Component:
    name: str
    args: list[str]
    output: Path
    popen: subprocess.Popen[bytes] | None = None
    stopped_on_purpose: bool = False

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def crashed(self) -> bool:
        return self.popen is not None and not self.running() and not self.stopped_on_purpose


@dataclass
class AirflowStack:
    """Airflow's api-server, scheduler, dag-processor and ``triggerers`` triggerers, LocalExecutor, free ports.

    ``extra_env`` reaches every component (and overrides our settings). ``db`` is ``"sqlite"`` (one triggerer's worth
    of locking) or ``"postgres"`` (a fresh database on ``postgres_url``'s server, dropped at stop; needed for several
    triggerers, which claim triggers with ``SKIP LOCKED``).
    """

    dags_folder: Path
    extra_env: Mapping[str, str] = field(default_factory=dict)
    triggerers: int = 1
    parallelism: int = 8
    db: DbKind = "sqlite"
    postgres_url: str = field(default_factory=lambda: os.environ.get("AIRFLOW_KPO_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    cache_dir: Path = field(default_factory=default_cache_dir)
    home: Path | None = None
    python: str = sys.executable
    startup_timeout: float = COMPONENTS_STARTUP_TIMEOUT

    def __post_init__(self) -> None:
        self.dags_folder = Path(self.dags_folder).resolve()
        if not self.dags_folder.is_dir():
            raise ValueError(f"dags_folder {str(self.dags_folder)!r} is not a directory; pass the folder of DAG files")
        if self.db not in ("sqlite", "postgres"):
            raise ValueError(f"db={self.db!r} is not supported; use 'sqlite' or 'postgres'")
        if self.triggerers < 0:
            raise ValueError(f"triggerers={self.triggerers} must be >= 0")
        if self.triggerers > 1 and self.db == "sqlite":
            raise ValueError(f"triggerers={self.triggerers} needs row locks that SQLite lacks; pass db='postgres'")
        if self.parallelism < 1:
            raise ValueError(f"parallelism={self.parallelism} must be >= 1 (LocalExecutor forks that many workers)")
        self._stack_id = uuid.uuid4().hex
        self._owns_home = self.home is None
        self.home = Path(self.home or tempfile.mkdtemp(prefix="airflow-stack-")).resolve()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Nothing serves logs (see module docstring); unique ports keep a reader from reaching another stack's server.
        self._log_ports = (free_port(), free_port())
        # 64 bytes: shorter JWT secrets make every component warn (RFC 7518 minimum for HS512).
        self._api_secret = secrets.token_hex(32)
        self._jwt_secret = secrets.token_hex(32)
        self._database = f"airflow_kpo_{self._stack_id[:16]}"
        self._components: dict[str, _Component] = {}
        self._client: httpx.Client | None = None
        self._token: str | None = None
        self._started = False
        self._finalizer = weakref.finalize(self, _emergency_stop, self._stack_id)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def env(self) -> dict[str, str]:
        """The environment every component runs with."""
        home = str(self.home)
        settings = {
            "AIRFLOW_HOME": home,
            STACK_MARKER: self._stack_id,
            "PYTHONUNBUFFERED": "1",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": f"{home}/simple_auth_passwords.json",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self._sqlalchemy_conn(),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": self._api_secret,
            "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
            # While a task is deferred the log reader also asks the (absent) triggerer log server: fail fast.
            "AIRFLOW__API__LOG_FETCH_TIMEOUT_SEC": "2",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": f"{home}/logs",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self._log_ports[0]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self._log_ports[1]),
            # Parse new and changed DAG files within seconds instead of minutes.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "5",
            # A dead triggerer's triggers go to a live one once its heartbeat is older than the threshold.
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
        }
        return {**_clean_environment(), **settings, **self.extra_env}

    def start(self) -> Self:
        if self._started:
            return self
        self._started = True
        try:
            (self.home / "output").mkdir(parents=True, exist_ok=True)
            self._prepare_database()
            self._launch("api-server", ["api-server", "--port", str(self.port), "--host", "127.0.0.1"])
            self._launch("scheduler", ["scheduler", "--skip-serve-logs"])
            self._launch("dag-processor", ["dag-processor"])
            for index in range(self.triggerers):
                self.start_triggerer(index, wait=False)
            self._wait_until_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every process this stack started (SIGTERM, then SIGKILL after a grace period) and drop its DB."""
        tree: list[psutil.Process] = []
        for component in self._components.values():
            if component.running():
                tree.extend(_process_tree(component.popen.pid))
        if tree:
            _terminate(tree, signal.SIGTERM, grace=10)
        _terminate(_marked_processes(self._stack_id), signal.SIGKILL, grace=5)
        for component in self._components.values():
            if component.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    component.popen.wait(timeout=1)
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._started and self.db == "postgres":
            with contextlib.suppress(Exception):
                _drop_postgres_database(self.postgres_url, self._database)
        self._started = False

    def cleanup_home(self) -> None:
        """Remove the temporary AIRFLOW_HOME (only one this stack created); keep it while debugging a failure."""
        if self._owns_home and self.home.exists():
            shutil.rmtree(self.home, ignore_errors=True)

    def kill_triggerer(self, index: int = 0, sig: int = signal.SIGKILL, timeout: float = 30.0) -> None:
        """Stop triggerer ``index``. SIGKILL kills its whole tree at once (a lost host); other signals go to the
        triggerer's main process only, as a container runtime would, and we wait for its tree to exit."""
        component = self._components.get(self._triggerer_name(index))
        if component is None or not component.running():
            raise AirflowStackError(f"triggerer {index} is not running")
        component.stopped_on_purpose = True
        tree = _process_tree(component.popen.pid)
        if sig == signal.SIGKILL:
            _terminate(tree, signal.SIGKILL, grace=5)
        else:
            component.popen.send_signal(sig)
            _terminate_after(tree, timeout)
        component.popen.wait(timeout=5)

    def start_triggerer(self, index: int = 0, wait: bool = True) -> None:
        """(Re)start triggerer ``index``; with ``wait``, return once its new job heartbeats."""
        name = self._triggerer_name(index)
        existing = self._components.get(name)
        if existing is not None and existing.running():
            raise AirflowStackError(f"triggerer {index} is already running (pid {existing.popen.pid})")
        before = {job["id"] for job in self._alive_triggerer_jobs()} if wait else set()
        self._launch(name, ["triggerer", "--skip-serve-logs"])
        if wait:
            self.wait_until(
                f"triggerer {index} to heartbeat",
                lambda: any(job["id"] not in before for job in self._alive_triggerer_jobs()),
                timeout=self.startup_timeout,
                components=[name],
            )

    # ------------------------------------------------------------------ REST API

    def api(self, method: str, path: str, json: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        """Call the REST API as admin; returns the decoded JSON (None for an empty body)."""
        response = self._request(method, path, json=json, params=params)
        if response.status_code >= 400:
            raise AirflowApiError(method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until ``dag_id`` is parsed and serialized; import errors end the wait early and are shown."""

        def parsed() -> dict[str, Any] | None:
            response = self._request("GET", f"/api/v2/dags/{dag_id}")
            if response.status_code == 200:
                return response.json()
            errors = self._import_errors()
            if any(dag_id in _read_text(error.get("filename", ""), self.dags_folder) for error in errors):
                raise AirflowStackError(f"DAG {dag_id!r} failed to import:\n{_format_import_errors(errors)}")
            return None

        return self.wait_until(
            f"DAG {dag_id!r} to be parsed",
            parsed,
            timeout,
            components=["dag-processor"],
            details=lambda: "import errors:\n" + _format_import_errors(self._import_errors()),
        )

    def trigger_dag(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        run = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": dict(conf or {})})
        return run["dag_run_id"]

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any] | None:
        response = self._request("GET", self._ti_path(dag_id, run_id, task_id, map_index))
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise AirflowApiError(
                "GET", self._ti_path(dag_id, run_id, task_id, map_index), response.status_code, response.text
            )
        return response.json()

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})[
            "task_instances"
        ]

    def wait_for_task(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        states: Iterable[str] = ("success", "failed"),
        map_index: int = -1,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """Wait until the task instance is in one of ``states`` and return it."""
        wanted = tuple(states)

        def reached() -> dict[str, Any] | None:
            ti = self.task_instance(dag_id, run_id, task_id, map_index)
            return ti if ti is not None and ti.get("state") in wanted else None

        return self.wait_until(
            f"task {dag_id}.{task_id}[{map_index}] in run {run_id!r} to reach {wanted}",
            reached,
            timeout,
            components=self._task_components(),
            details=lambda: self._task_details(dag_id, run_id, task_id, map_index),
        )

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 60.0) -> str:
        """Wait until the DAG run is finished; returns ``"success"`` or ``"failed"``."""

        def finished() -> str | None:
            state = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
            return state if state in ("success", "failed") else None

        return self.wait_until(
            f"DAG run {dag_id}/{run_id} to finish",
            finished,
            timeout,
            components=self._task_components(),
            details=lambda: self._run_details(dag_id, run_id),
        )

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        """The whole log of one try, worker and trigger parts together, as text."""
        body = self.api(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true", "map_index": map_index},
        )
        return render_log(body.get("content") or [])

    def wait_for_log(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        text: str,
        try_number: int = 1,
        map_index: int = -1,
        timeout: float = 30.0,
    ) -> str:
        """Wait until ``text`` appears in the task's log (e.g. a trigger's line while the task is deferred)."""

        def logged() -> str | None:
            log = self.task_log(dag_id, run_id, task_id, try_number, map_index)
            return log if text in log else None

        return self.wait_until(
            f"{text!r} in the log of {dag_id}.{task_id}[{map_index}] try {try_number}",
            logged,
            timeout,
            components=self._task_components(),
            details=lambda: self._task_details(dag_id, run_id, task_id, map_index),
        )

    def mark_task(self, dag_id: str, run_id: str, task_id: str, state: str, map_index: int = -1) -> Any:
        """Set a task's state as a user would in the UI; for a deferred task this makes the triggerer call on_kill."""
        return self.api("PATCH", self._ti_path(dag_id, run_id, task_id, map_index), json={"new_state": state})

    def process_output(self, name: str) -> str:
        """Everything component ``name`` (``api-server``, ``scheduler``, ``dag-processor``, ``triggerer-N``) printed."""
        path = self.home / "output" / f"{name}.log"
        if not path.exists():
            raise AirflowStackError(f"no output for component {name!r}; known: {sorted(self._components)}")
        return path.read_text(errors="replace")

    # ------------------------------------------------------------------ internals

    def _sqlalchemy_conn(self) -> str:
        if self.db == "postgres":
            return _sqlalchemy_url(self.postgres_url, self._database)
        return f"sqlite:///{self.home}/airflow.db"

    def _prepare_database(self) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        migrate_env = {**_clean_environment(), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        if self.db == "postgres":
            _postgres_database_from_template(
                self.postgres_url, self.cache_dir, self.python, migrate_env, self._database
            )
        else:
            shutil.copyfile(_sqlite_template(self.cache_dir, self.python, migrate_env), self.home / "airflow.db")

    def _launch(self, name: str, args: list[str]) -> None:
        output = self.home / "output" / f"{name}.log"
        component = _Component(name=name, args=args, output=output)
        with open(output, "ab") as sink:
            component.popen = subprocess.Popen(
                [self.python, "-m", "airflow", *args],
                env=self.env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_set_parent_death_signal,
            )
        self._components[name] = component

    @staticmethod
    def _triggerer_name(index: int) -> str:
        return f"triggerer-{index}"

    def _wait_until_healthy(self) -> None:
        def healthy() -> bool:
            try:
                health = self._http().get("/api/v2/monitor/health").json()
            except (httpx.HTTPError, ValueError):
                return False
            components = ["metadatabase", "scheduler", "dag_processor"] + (["triggerer"] if self.triggerers else [])
            if any((health.get(part) or {}).get("status") != "healthy" for part in components):
                return False
            return len(self._alive_triggerer_jobs()) >= self.triggerers

        self.wait_until(
            "Airflow components to become healthy", healthy, self.startup_timeout, components=list(self._components)
        )

    def _alive_triggerer_jobs(self) -> list[dict[str, Any]]:
        params = {"job_type": "TriggererJob", "job_state": "running", "is_alive": "true", "limit": 100}
        return self.api("GET", "/api/v2/jobs", params=params)["jobs"]

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=30.0)
        return self._client

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for _ in range(2):
            if self._token is None:
                self._token = self._fetch_token()
            response = self._http().request(method, path, headers={"Authorization": f"Bearer {self._token}"}, **kwargs)
            if response.status_code != 401:
                return response
            self._token = None
        return response

    def _fetch_token(self) -> str:
        response = self._http().get("/auth/token")
        if response.status_code >= 400:
            raise AirflowApiError("GET", "/auth/token", response.status_code, response.text)
        return response.json()["access_token"]

    def _import_errors(self) -> list[dict[str, Any]]:
        return self.api("GET", "/api/v2/importErrors", params={"limit": 100})["import_errors"]

    @staticmethod
    def _ti_path(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        return path if map_index < 0 else f"{path}/{map_index}"

    def _task_components(self) -> list[str]:
        return ["scheduler", *(name for name in self._components if name.startswith("triggerer-"))]

    def _task_details(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
        ti = self.task_instance(dag_id, run_id, task_id, map_index)
        if ti is None:
            return f"task instance does not exist yet; run tasks: {self._summarise_tis(dag_id, run_id)}"
        lines = [f"state={ti.get('state')} try_number={ti.get('try_number')} note={ti.get('note')!r}"]
        if ti.get("try_number"):
            with contextlib.suppress(AirflowStackError):
                log = self.task_log(dag_id, run_id, task_id, ti["try_number"], map_index)
                lines.append(f"task log (tail):\n{tail(log, 60)}")
        return "\n".join(lines)

    def _run_details(self, dag_id: str, run_id: str) -> str:
        return f"task instances: {self._summarise_tis(dag_id, run_id)}"

    def _summarise_tis(self, dag_id: str, run_id: str) -> str:
        with contextlib.suppress(AirflowStackError):
            return ", ".join(
                f"{ti['task_id']}[{ti['map_index']}]={ti['state']}" for ti in self.task_instances(dag_id, run_id)
            )
        return "(unavailable)"

    def wait_until(
        self,
        what: str,
        check: Callable[[], Any],
        timeout: float,
        components: Iterable[str] = (),
        details: Callable[[], str] | None = None,
        interval: float = 0.5,
    ) -> Any:
        """Poll ``check`` until it returns something truthy and return that.

        Raises ``AirflowStackError`` on timeout or when one of ``components`` crashed, with ``details()`` and the tail
        of each component's output.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            dead = [c for c in self._components.values() if c.name in components and c.crashed()]
            if dead or time.monotonic() > deadline:
                reason = f"{', '.join(c.name for c in dead)} exited" if dead else f"timed out after {timeout:.0f}s"
                raise AirflowStackError(self._evidence(f"waiting for {what}: {reason}", components, details))
            time.sleep(interval)

    def _evidence(self, headline: str, components: Iterable[str], details: Callable[[], str] | None) -> str:
        sections = [headline]
        if details is not None:
            try:
                sections.append(details())
            except Exception as exc:  # the API may be what is broken; the process output still helps
                sections.append(f"(could not collect details: {exc})")
        for name in dict.fromkeys(components):
            component = self._components.get(name)
            if component is None:
                continue
            status = "running" if component.running() else f"exited with {component.popen.returncode}"
            output = tail(component.output.read_text(errors="replace")) if component.output.exists() else ""
            sections.append(f"--- {name} ({status}), last lines of {component.output}:\n{output}")
        return "\n".join(sections)


def _terminate_after(tree: list[psutil.Process], timeout: float) -> None:
    _, alive = psutil.wait_procs(tree, timeout=timeout)
    _terminate(alive, signal.SIGKILL, grace=5)


def _emergency_stop(stack_id: str) -> None:
    """Last resort when a stack is garbage-collected or the interpreter exits without ``stop()``."""
    _terminate(_marked_processes(stack_id), signal.SIGKILL, grace=5)


def _read_text(filename: str, dags_folder: Path) -> str:
    for candidate in (Path(filename), dags_folder / filename):
        with contextlib.suppress(OSError):
            return candidate.read_text(errors="replace")
    return ""


def _format_import_errors(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "(none)"
    return "\n".join(f"{error.get('filename')}:\n{error.get('stack_trace')}" for error in errors)
