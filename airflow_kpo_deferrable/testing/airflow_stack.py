"""The documented import path of the Airflow test harness: ``from airflow_kpo_deferrable.testing.airflow_stack import
AirflowStack``.

Users' own tests import from here, so this module only re-exports; the parts live next to it: ``stack`` (the
``AirflowStack`` itself), ``databases`` (migrated template databases), ``processes`` (process trees), ``rest`` (the
REST client), ``waits`` (bounded polling that says what it saw), ``settings`` (the Airflow configuration), ``errors``.
"""

from airflow_kpo_deferrable.testing.databases import DEFAULT_POSTGRES_URL, default_cache_dir
from airflow_kpo_deferrable.testing.errors import AirflowApiError, AirflowStackError
from airflow_kpo_deferrable.testing.processes import STACK_MARKER, free_port, tail
from airflow_kpo_deferrable.testing.rest import AirflowRestClient, render_log
from airflow_kpo_deferrable.testing.stack import COMPONENTS_STARTUP_TIMEOUT, TERMINAL_TASK_STATES, AirflowStack, DbKind
from airflow_kpo_deferrable.testing.waits import Pending, WaitTimeout, wait_until

__all__ = [
    "COMPONENTS_STARTUP_TIMEOUT",
    "DEFAULT_POSTGRES_URL",
    "STACK_MARKER",
    "TERMINAL_TASK_STATES",
    "AirflowApiError",
    "AirflowRestClient",
    "AirflowStack",
    "AirflowStackError",
    "DbKind",
    "Pending",
    "WaitTimeout",
    "default_cache_dir",
    "free_port",
    "render_log",
    "tail",
    "wait_until",
]
