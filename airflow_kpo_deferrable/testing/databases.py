"""Metadata databases for test stacks, copied from a template migrated once per Airflow version.

Why: ``airflow db migrate`` costs many seconds (more on a loaded machine), and every stack needs a fresh database.
So each Airflow version is migrated once into a template, and every stack starts from a copy:

- SQLite: a file ``airflow-<version>.db`` in the cache dir, copied with ``shutil.copyfile``.
- PostgreSQL: a database ``kpo_tmpl_airflow_<version>``; ``CREATE DATABASE … TEMPLATE …`` copies it in milliseconds.
  A template is built under a ``…_building`` name and renamed when complete, so a build killed halfway never
  passes for a template.

A file lock in the cache dir serialises the build across concurrent test processes (pytest-xdist, several
worktrees). ``$AIRFLOW_KPO_CACHE_DIR`` moves the cache (default ``~/.cache/airflow-kpo-deferrable``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import Any

from airflow_kpo_deferrable.testing.errors import AirflowStackError
from airflow_kpo_deferrable.testing.processes import tail

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MIGRATE_TIMEOUT = 600


def default_cache_dir() -> Path:
    """Where migrated template databases live: ``$AIRFLOW_KPO_CACHE_DIR`` or ``~/.cache/airflow-kpo-deferrable``."""
    configured = os.environ.get("AIRFLOW_KPO_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "airflow-kpo-deferrable"


def template_key() -> str:
    """A name part that changes with the installed Airflow version (a template is only valid for its version)."""
    return "airflow-" + distribution_version("apache-airflow-core").replace(".", "_").replace("+", "_")


def sqlalchemy_url(admin_url: str, database: str) -> str:
    """``postgresql://user@host:port/anything`` → ``postgresql+psycopg2://user@host:port/database``."""
    if "://" not in admin_url:
        raise ValueError(f"postgres_url={admin_url!r} is not a URL; pass e.g. {DEFAULT_POSTGRES_URL!r}")
    base = admin_url.split("://", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+psycopg2://{base}/{database}"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if missing), held for the ``with`` body."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_migrate(python: str, env: Mapping[str, str], log_path: Path) -> None:
    """``airflow db migrate`` with ``env``; on failure the error quotes the end of its output."""
    with open(log_path, "w") as log:
        result = subprocess.run(
            [python, "-m", "airflow", "db", "migrate"],
            check=False,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=MIGRATE_TIMEOUT,
        )
    if result.returncode != 0:
        raise AirflowStackError(f"airflow db migrate failed (exit {result.returncode}):\n{tail(log_path.read_text())}")


def sqlite_template(cache_dir: Path, python: str, base_env: Mapping[str, str]) -> Path:
    """A migrated SQLite file for this Airflow version, built at most once per cache dir."""
    template = cache_dir / f"{template_key()}.db"
    with file_lock(cache_dir / f"{template.name}.lock"):
        if template.exists():
            return template
        with tempfile.TemporaryDirectory(dir=cache_dir) as build_home:
            building = Path(build_home) / "airflow.db"
            env = {
                **base_env,
                "AIRFLOW_HOME": build_home,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{building}",
            }
            run_migrate(python, env, Path(build_home) / "migrate.log")
            os.replace(building, template)
    return template


def copy_sqlite_template(cache_dir: Path, python: str, base_env: Mapping[str, str], target: Path) -> None:
    shutil.copyfile(sqlite_template(cache_dir, python, base_env), target)


def postgres_admin(url: str) -> Any:
    """An autocommit connection to the server (CREATE/DROP DATABASE cannot run in a transaction)."""
    import psycopg2

    try:
        connection = psycopg2.connect(url, connect_timeout=5)
    except Exception as exc:
        raise AirflowStackError(
            f"cannot connect to PostgreSQL at {url!r} ({exc}); start it (e.g. "
            "`pg_ctlcluster --skip-systemctl-redirect 15 main start`) or pass postgres_url=…"
        ) from exc
    connection.autocommit = True
    return connection


def _database_exists(admin: Any, name: str) -> bool:
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return cursor.fetchone() is not None


def _execute(admin: Any, statement: str) -> None:
    with admin.cursor() as cursor:
        cursor.execute(statement)


def postgres_database_from_template(
    admin_url: str, cache_dir: Path, python: str, base_env: Mapping[str, str], database: str
) -> None:
    """CREATE DATABASE ``database`` TEMPLATE a migrated database built once per Airflow version."""
    template = f"kpo_tmpl_{template_key()}".lower()
    admin = postgres_admin(admin_url)
    try:
        with file_lock(cache_dir / f"{template}.pg.lock"):
            if not _database_exists(admin, template):
                building = f"{template}_building"
                _execute(admin, f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
                _execute(admin, f'CREATE DATABASE "{building}"')
                with tempfile.TemporaryDirectory(dir=cache_dir) as build_home:
                    env = {
                        **base_env,
                        "AIRFLOW_HOME": build_home,
                        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(admin_url, building),
                    }
                    run_migrate(python, env, Path(build_home) / "migrate.log")
                _execute(admin, f'ALTER DATABASE "{building}" RENAME TO "{template}"')
            _execute(admin, f'CREATE DATABASE "{database}" TEMPLATE "{template}"')
    finally:
        admin.close()


def drop_postgres_database(admin_url: str, database: str) -> None:
    admin = postgres_admin(admin_url)
    try:
        _execute(admin, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        admin.close()
