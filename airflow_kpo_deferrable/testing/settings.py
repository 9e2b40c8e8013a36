"""The Airflow configuration every component of a test stack runs with, as ``AIRFLOW__*`` variables.

Why a module of its own: each value is a fact about Airflow 3.3 that a test depends on, and most are there because
the defaults assume a production deployment on an idle host. Facts it handles:

- Components share one AIRFLOW_HOME and nothing serves logs (``--skip-serve-logs``): the api-server reads task and
  trigger logs from local files. The log-server ports are still unique per stack, so a reader cannot reach another
  stack's server, and the log fetch timeout is short because a deferred task's reader also asks the absent one.
- Workers call the api-server's execution API with a 5 s timeout by default; one api-server process on a loaded
  machine answers slower than that (seen at load 8: ``PATCH task-instances/…/run`` ReadTimeout fails the task).
- A triggerer whose job heartbeat is older than ``triggerer_health_check_threshold`` loses its triggers to any live
  triggerer at that one's next loop. A short threshold makes a takeover quick, but on a loaded machine a triggerer
  loading its first trigger was seen to miss heartbeats for 12 s (load 4) and 21 s (load 9 plus a CPU hog), so we
  keep Airflow's default of 30 s; tests wait for a takeover instead of timing it.
- A DAG file added to a running stack is parsed within seconds (the folder is listed every 2 s and new files go to
  the front of the queue); a changed file is re-parsed at once (its mtime is newer than its last parse: Airflow's
  default ``modified_time`` sort mode). An unchanged file is not re-parsed for ``MIN_FILE_PROCESS_INTERVAL`` seconds:
  with Airflow's 30 s, or the 5 s we had, re-parsing unchanged files (about 1.3 s of CPU each on a loaded 2-core
  machine) cost a third of a core per stack for nothing. One parsing process keeps the dag-processor's CPU bounded.
- Every component gets the same ``[core] fernet_key``. Without one, each component that starts before the first has
  written ``airflow.cfg`` makes up a key of its own (or none), and what one encrypts another cannot read: seen with
  ``start_from_trigger``, where the scheduler encrypts the trigger's kwargs and the triggerer died decrypting them.
- With ``SIMPLE_AUTH_MANAGER_ALL_ADMINS=True``, ``GET /auth/token`` hands out an admin bearer token without a login.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TRIGGERER_HEALTH_CHECK_THRESHOLD = 30
MIN_FILE_PROCESS_INTERVAL = 3600
EXECUTION_API_TIMEOUT = 60


@dataclass(frozen=True)
class StackSettings:
    """What differs between stacks: paths, ports, secrets, the database, the worker slots."""

    home: Path
    dags_folder: Path
    url: str
    port: int
    log_ports: tuple[int, int]
    parallelism: int
    sqlalchemy_conn: str
    api_secret: str
    jwt_secret: str
    fernet_key: str


def airflow_environment(settings: StackSettings) -> dict[str, str]:
    """The ``AIRFLOW__*`` (and ``AIRFLOW_HOME``) variables for every component of one stack."""
    home = str(settings.home)
    return {
        "AIRFLOW_HOME": home,
        "PYTHONUNBUFFERED": "1",
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_folder),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(settings.parallelism),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{settings.url}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": f"{home}/simple_auth_passwords.json",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": settings.sqlalchemy_conn,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(settings.port),
        "AIRFLOW__API__BASE_URL": settings.url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": settings.api_secret,
        "AIRFLOW__API_AUTH__JWT_SECRET": settings.jwt_secret,
        "AIRFLOW__CORE__FERNET_KEY": settings.fernet_key,
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": str(EXECUTION_API_TIMEOUT),
        "AIRFLOW__API__LOG_FETCH_TIMEOUT_SEC": "2",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": f"{home}/logs",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(settings.log_ports[0]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(settings.log_ports[1]),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(MIN_FILE_PROCESS_INTERVAL),
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "5",
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_HEALTH_CHECK_THRESHOLD),
    }
