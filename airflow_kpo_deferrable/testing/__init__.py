"""Helpers for end-to-end tests of deferrable operators: a real, headless Airflow stack driven over its REST API."""

from airflow_kpo_deferrable.testing.airflow_stack import AirflowApiError, AirflowStack, AirflowStackError

__all__ = ["AirflowApiError", "AirflowStack", "AirflowStackError"]
