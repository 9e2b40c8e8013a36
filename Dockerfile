# The Airflow image of the docker-compose demo: apache/airflow 3.3.2 plus this package, built from this checkout.
# Pinning apache-airflow in the same pip call keeps pip from upgrading or downgrading Airflow itself, as the
# official image's docs advise when adding packages. .dockerignore keeps the context to what is copied here.
FROM apache/airflow:3.3.2

COPY --chown=airflow:0 pyproject.toml README.md /opt/airflow-kpo-deferrable/
COPY --chown=airflow:0 airflow_kpo_deferrable /opt/airflow-kpo-deferrable/airflow_kpo_deferrable

RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /opt/airflow-kpo-deferrable
