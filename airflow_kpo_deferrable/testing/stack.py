"""``AirflowStack``: a real, headless Airflow 3.3 (api-server, scheduler, dag-processor, N triggerers) for tests.

Why: deferral can only be tested for real with a running triggerer. ``dag.test()`` runs triggers inline, drops defer
kwargs, ignores timeouts and never calls ``on_kill``/``cleanup``. The stack starts the real components as
subprocesses of the current interpreter's ``airflow`` and talks to them only through the public REST API.

This module composes the parts: ``settings`` (the Airflow configuration), ``databases`` (template copies),
``processes`` (process trees), ``rest`` (the API client), ``waits`` (bounded polling with evidence). Facts it handles
(Airflow 3.3.2):

- Every component reads its configuration from ``AIRFLOW__*`` variables: ``env`` is the caller's environment without
  Airflow settings, then ours, then ``extra_env`` last (so a test can override anything).
- A trigger that fires before the worker that deferred has exited can get its task failed: LocalExecutor reports
  that worker's exit ("success") for the same try number, and if the scheduler processes that event after it has
  queued the resumed task, it reads "state changed externally" and fails the task (Airflow 3.3; the scheduler only
  forgives the event while the task is still ``scheduled``). On a loaded machine a worker can take seconds to exit
  after deferring, so a test whose pod may end at once first waits for ``wait_for_deferral_exit``.
- Every wait ends early when a component crashed, and its error quotes what it saw plus the last lines of the
  components' output: a test that failed on a loaded CI machine must be diagnosable from its message alone.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import signal
import sys
import tempfile
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import httpx

from airflow_kpo_deferrable.testing import databases, processes
from airflow_kpo_deferrable.testing.errors import AirflowStackError
from airflow_kpo_deferrable.testing.processes import STACK_MARKER, Component
from airflow_kpo_deferrable.testing.rest import AirflowRestClient, format_import_errors
from airflow_kpo_deferrable.testing.settings import StackSettings, airflow_environment
from airflow_kpo_deferrable.testing.waits import Pending, wait_until

COMPONENTS_STARTUP_TIMEOUT = 180.0
TERMINAL_TASK_STATES = ("success", "failed", "skipped", "upstream_failed", "removed")
EVIDENCE_LINES = 40

DbKind = Literal["sqlite", "postgres"]


@dataclass
class AirflowStack:
    """Airflow's api-server, scheduler, dag-processor and ``triggerers`` triggerers, LocalExecutor, free ports.

    ``extra_env`` reaches every component (and overrides our settings). ``db`` is ``"sqlite"`` (one triggerer's worth
    of locking) or ``"postgres"`` (a fresh database on ``postgres_url``'s server, dropped at stop; needed for several
    triggerers, which claim triggers with ``SKIP LOCKED``). ``stop()`` always leaves no process behind.
    """

    dags_folder: Path
    extra_env: Mapping[str, str] = field(default_factory=dict)
    triggerers: int = 1
    parallelism: int = 8
    db: DbKind = "sqlite"
    postgres_url: str = field(
        default_factory=lambda: os.environ.get("AIRFLOW_KPO_POSTGRES_URL", databases.DEFAULT_POSTGRES_URL)
    )
    cache_dir: Path = field(default_factory=databases.default_cache_dir)
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
        self.port = processes.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Nothing serves logs (see module docstring); unique ports keep a reader from reaching another stack's server.
        self._log_ports = (processes.free_port(), processes.free_port())
        # 64 bytes: shorter JWT secrets make every component warn (RFC 7518 minimum for HS512).
        self._api_secret = secrets.token_hex(32)
        self._jwt_secret = secrets.token_hex(32)
        self._fernet_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()  # what Fernet.generate_key() is
        self._database = f"airflow_kpo_{self._stack_id[:16]}"
        self._components: dict[str, Component] = {}
        self.rest = AirflowRestClient(self.url)
        self._started = False
        self._finalizer = weakref.finalize(self, processes.emergency_stop, self._stack_id)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def env(self) -> dict[str, str]:
        """The environment every component runs with: the caller's without Airflow settings, ours, ``extra_env``."""
        stack = StackSettings(
            home=self.home,
            dags_folder=self.dags_folder,
            url=self.url,
            port=self.port,
            log_ports=self._log_ports,
            parallelism=self.parallelism,
            sqlalchemy_conn=self._sqlalchemy_conn(),
            api_secret=self._api_secret,
            jwt_secret=self._jwt_secret,
            fernet_key=self._fernet_key,
        )
        ours = {**airflow_environment(stack), STACK_MARKER: self._stack_id}
        return {**processes.clean_environment(), **ours, **self.extra_env}

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
        tree = [process for component in self._components.values() for process in component.tree()]
        if tree:
            processes.terminate(tree, signal.SIGTERM, grace=10)
        processes.terminate(processes.marked_processes(self._stack_id), signal.SIGKILL, grace=5)
        for component in self._components.values():
            if component.popen is not None:
                with contextlib.suppress(Exception):
                    component.popen.wait(timeout=1)
        self.rest.close()
        if self._started and self.db == "postgres":
            with contextlib.suppress(Exception):
                databases.drop_postgres_database(self.postgres_url, self._database)
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
        component.stop(sig, timeout)

    def start_triggerer(self, index: int = 0, wait: bool = True) -> None:
        """(Re)start triggerer ``index``; with ``wait``, return once its new job heartbeats."""
        name = self._triggerer_name(index)
        existing = self._components.get(name)
        if existing is not None and existing.running():
            raise AirflowStackError(f"triggerer {index} is already running (pid {existing.popen.pid})")
        before = {job["id"] for job in self.rest.alive_triggerer_jobs()} if wait else set()
        self._launch(name, ["triggerer", "--skip-serve-logs"])
        if wait:

            def heartbeats() -> bool | Pending:
                alive = self.rest.alive_triggerer_jobs()
                new = [job for job in alive if job["id"] not in before]
                return bool(new) or Pending(f"alive triggerer jobs {[job['id'] for job in alive]}, none new")

            self.wait_until(f"triggerer {index} to heartbeat", heartbeats, self.startup_timeout, components=[name])

    # ------------------------------------------------------------------ REST API

    def api(self, method: str, path: str, json: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        """Call the REST API as admin; returns the decoded JSON (None for an empty body)."""
        return self.rest.api(method, path, json=json, params=params)

    def wait_for_dag(self, dag_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until ``dag_id`` is parsed and serialized; import errors end the wait early and are shown."""

        def parsed() -> dict[str, Any] | Pending:
            dag = self.rest.dag(dag_id)
            if dag is not None:
                return dag
            errors = self.rest.import_errors()
            if any(dag_id in _read_text(error.get("filename", ""), self.dags_folder) for error in errors):
                raise AirflowStackError(f"DAG {dag_id!r} failed to import:\n{format_import_errors(errors)}")
            return Pending(f"no DAG {dag_id!r} yet; {len(errors)} import error(s) in other files")

        return self.wait_until(
            f"DAG {dag_id!r} to be parsed",
            parsed,
            timeout,
            components=["dag-processor"],
            details=lambda: "import errors:\n" + format_import_errors(self.rest.import_errors()),
        )

    def trigger_dag(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        return self.rest.trigger_dag(dag_id, conf)

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any] | None:
        return self.rest.task_instance(dag_id, run_id, task_id, map_index)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.rest.task_instances(dag_id, run_id)

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

        def reached() -> dict[str, Any] | Pending:
            ti = self.task_instance(dag_id, run_id, task_id, map_index)
            if ti is not None and ti.get("state") in wanted:
                return ti
            state = "no task instance yet" if ti is None else f"state {ti.get('state')}"
            return Pending(state, progress=state)

        what = f"task {dag_id}.{task_id}[{map_index}] in run {run_id!r} to reach {wanted}"
        return self._wait_on_task(what, reached, timeout, dag_id, run_id, task_id, map_index)

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout: float = 60.0, step_timeout: float | None = None
    ) -> str:
        """Wait until the DAG run is finished; returns ``"success"`` or ``"failed"``.

        With ``step_timeout``, the wait also ends when no task instance changed state for that long (a bound per
        step for runs of many tasks).
        """

        def finished() -> str | Pending:
            state = self.rest.dag_run_state(dag_id, run_id)
            if state in ("success", "failed"):
                return state
            summary = self._summarise_tis(dag_id, run_id)
            return Pending(f"run {state}; task instances: {summary}", progress=summary)

        return self.wait_until(
            f"DAG run {dag_id}/{run_id} to finish",
            finished,
            timeout,
            components=self._task_components(),
            step_timeout=step_timeout,
        )

    def wait_for_deferral_exit(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1, timeout: float = 120.0
    ) -> None:
        """Wait until the scheduler has processed the exit of the worker that deferred this task (see the module
        docstring: a trigger event before that point can fail the task). Reads the scheduler's output, the only
        place Airflow records it."""
        key = f"TaskInstanceKey(dag_id='{dag_id}', task_id='{task_id}', run_id='{run_id}', try_number="
        suffix = f"map_index={map_index})"

        def processed() -> bool | Pending:
            for line in self.process_output("scheduler").splitlines():
                if "Received executor event with state success" in line and key in line and suffix in line:
                    return True
            return Pending("no executor event for it in the scheduler's output yet")

        what = f"the scheduler to process the deferring worker's exit of {dag_id}.{task_id}[{map_index}]"
        self._wait_on_task(what, processed, timeout, dag_id, run_id, task_id, map_index)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        """The whole log of one try, worker and trigger parts together, as text."""
        return self.rest.task_log(dag_id, run_id, task_id, try_number, map_index)

    def task_log_records(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> list[Any]:
        """The same log as structured records (``event``, ``timestamp``, ``level``, …)."""
        return self.rest.task_log_records(dag_id, run_id, task_id, try_number, map_index)

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

        def logged() -> str | Pending:
            log = self.task_log(dag_id, run_id, task_id, try_number, map_index)
            return log if text in log else Pending(f"{len(log.splitlines())} log lines without it")

        what = f"{text!r} in the log of {dag_id}.{task_id}[{map_index}] try {try_number}"
        return self._wait_on_task(what, logged, timeout, dag_id, run_id, task_id, map_index)

    def mark_task(self, dag_id: str, run_id: str, task_id: str, state: str, map_index: int = -1) -> Any:
        """Set a task's state as a user would in the UI; for a deferred task this makes the triggerer call on_kill."""
        return self.rest.mark_task(dag_id, run_id, task_id, state, map_index)

    def process_output(self, name: str) -> str:
        """Everything component ``name`` (``api-server``, ``scheduler``, ``dag-processor``, ``triggerer-N``) printed."""
        path = self.home / "output" / f"{name}.log"
        if not path.exists():
            raise AirflowStackError(f"no output for component {name!r}; known: {sorted(self._components)}")
        return path.read_text(errors="replace")

    def wait_until(
        self,
        what: str,
        check: Callable[[], Any],
        timeout: float,
        components: Iterable[str] | None = None,
        details: Callable[[], str] | None = None,
        interval: float = 0.5,
        step_timeout: float | None = None,
    ) -> Any:
        """Poll ``check`` until it returns something truthy and return that (see ``waits.wait_until``).

        Raises ``AirflowStackError`` on timeout or as soon as one of ``components`` (default: all) crashed, with what
        the check saw last, ``details()`` and the tail of each of those components' output.
        """
        names = list(self._components) if components is None else list(dict.fromkeys(components))

        def crashed() -> str | None:
            dead = [c.name for c in self._components.values() if c.name in names and c.crashed()]
            return f"{', '.join(dead)} exited" if dead else None

        return wait_until(
            what,
            check,
            timeout,
            interval=interval,
            step_timeout=step_timeout,
            abort=crashed,
            details=lambda: self._evidence(names, details),
        )

    # ------------------------------------------------------------------ internals

    def _sqlalchemy_conn(self) -> str:
        if self.db == "postgres":
            return databases.sqlalchemy_url(self.postgres_url, self._database)
        return f"sqlite:///{self.home}/airflow.db"

    def _prepare_database(self) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        migrate_env = {**processes.clean_environment(), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        if self.db == "postgres":
            databases.postgres_database_from_template(
                self.postgres_url, self.cache_dir, self.python, migrate_env, self._database
            )
        else:
            databases.copy_sqlite_template(self.cache_dir, self.python, migrate_env, self.home / "airflow.db")

    def _launch(self, name: str, args: list[str]) -> None:
        component = Component(name=name, args=args, output=self.home / "output" / f"{name}.log")
        component.launch(self.python, self.env, self.home)
        self._components[name] = component

    @staticmethod
    def _triggerer_name(index: int) -> str:
        return f"triggerer-{index}"

    def _wait_until_healthy(self) -> None:
        parts = ["metadatabase", "scheduler", "dag_processor"] + (["triggerer"] if self.triggerers else [])

        def healthy() -> bool | Pending:
            try:
                health = self.rest.health()
            except (httpx.HTTPError, ValueError) as exc:
                return Pending(f"api-server not answering ({type(exc).__name__})", progress="api")
            unhealthy = [part for part in parts if (health.get(part) or {}).get("status") != "healthy"]
            if unhealthy:
                return Pending(f"not healthy yet: {unhealthy}; health {health}", progress=tuple(unhealthy))
            alive = len(self.rest.alive_triggerer_jobs())
            return alive >= self.triggerers or Pending(f"{alive} of {self.triggerers} triggerers alive", alive)

        self.wait_until("Airflow components to become healthy", healthy, self.startup_timeout)

    def _wait_on_task(
        self,
        what: str,
        check: Callable[[], Any],
        timeout: float,
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: int,
    ) -> Any:
        """A wait about one task instance: its state and log tail are the details of a timeout."""
        return self.wait_until(
            what,
            check,
            timeout,
            components=self._task_components(),
            details=lambda: self._task_details(dag_id, run_id, task_id, map_index),
        )

    def _task_components(self) -> list[str]:
        return ["scheduler", *(name for name in self._components if name.startswith("triggerer-"))]

    def _task_details(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
        ti = self.task_instance(dag_id, run_id, task_id, map_index)
        if ti is None:
            return f"task instance does not exist yet; run tasks: {self._summarise_tis(dag_id, run_id)}"
        lines = [f"state={ti.get('state')} try_number={ti.get('try_number')} note={ti.get('note')!r}"]
        if ti.get("try_number"):
            with contextlib.suppress(AirflowStackError, httpx.HTTPError):
                log = self.task_log(dag_id, run_id, task_id, ti["try_number"], map_index)
                lines.append(f"task log (tail):\n{processes.tail(log, 60)}")
        return "\n".join(lines)

    def _summarise_tis(self, dag_id: str, run_id: str) -> str:
        with contextlib.suppress(AirflowStackError, httpx.HTTPError):
            return ", ".join(
                f"{ti['task_id']}[{ti['map_index']}]={ti['state']}" for ti in self.task_instances(dag_id, run_id)
            )
        return "(unavailable)"

    def _evidence(self, names: Iterable[str], details: Callable[[], str] | None) -> str:
        sections = []
        if details is not None:
            try:
                sections.append(details())
            except Exception as exc:  # the API may be what is broken; the process output still helps
                sections.append(f"(could not collect details: {type(exc).__name__}: {exc})")
        for name in names:
            component = self._components.get(name)
            if component is not None:
                sections.append(
                    f"--- {name} ({component.status()}), last lines of {component.output}:\n"
                    f"{component.output_tail(EVIDENCE_LINES)}"
                )
        return "\n".join(sections)


def _read_text(filename: str, dags_folder: Path) -> str:
    for candidate in (Path(filename), dags_folder / filename):
        with contextlib.suppress(OSError):
            return candidate.read_text(errors="replace")
    return ""


