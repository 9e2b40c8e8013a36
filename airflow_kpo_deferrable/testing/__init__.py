"""Helpers for end-to-end tests of deferrable operators: a real, headless Airflow stack driven over its REST API.

Layout (imports go one way, top to bottom): ``errors``; ``settings`` (the Airflow configuration); ``waits``
(polling with evidence); ``processes`` (component process trees); ``databases`` (template copies); ``rest`` (the
REST client); ``stack`` (``AirflowStack``); ``airflow_stack`` (the documented import path, re-exports); ``demo``
(``python -m airflow_kpo_deferrable.testing.demo``, a user of all the above).
"""

from airflow_kpo_deferrable.testing.errors import AirflowApiError, AirflowStackError
from airflow_kpo_deferrable.testing.stack import AirflowStack

__all__ = ["AirflowApiError", "AirflowStack", "AirflowStackError"]
