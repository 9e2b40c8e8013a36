"""Every trigger row a stack's metadata DB ever held, kept by a PostgreSQL trigger, and a scan of them for secrets.

Why: trigger rows are deleted once their task leaves the deferred state, so reading the ``trigger`` table at the end
sees almost nothing. A row-level ``AFTER INSERT OR UPDATE`` trigger copies each row's kwargs into an audit table the
moment it is written; the scan at the stack's end reads them all (README "Security").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg2
import yaml

AUDIT_SQL = """
CREATE TABLE IF NOT EXISTS kpo_trigger_audit (classpath text, kwargs text);
CREATE OR REPLACE FUNCTION kpo_trigger_audit_row() RETURNS trigger AS $$
BEGIN INSERT INTO kpo_trigger_audit VALUES (NEW.classpath, NEW.kwargs); RETURN NEW; END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS kpo_trigger_audit ON trigger;
CREATE TRIGGER kpo_trigger_audit AFTER INSERT OR UPDATE ON trigger
    FOR EACH ROW EXECUTE FUNCTION kpo_trigger_audit_row();
"""
SECRET_KUBECONFIG_KEYS = (
    "token", "client-key-data", "client-certificate-data", "certificate-authority-data", "password",
)
SECRET_MARKERS = ("BEGIN CERTIFICATE", "PRIVATE KEY", "clusters:", "client-key", "certificate-authority")


def _url(env: dict[str, str]) -> str:
    return env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg2://", "postgresql://")


def start_audit(env: dict[str, str]) -> None:
    """Install the audit in the stack's DB (after ``airflow db migrate``, before any task defers)."""
    with psycopg2.connect(_url(env)) as db, db.cursor() as cursor:
        cursor.execute(AUDIT_SQL)


def audited_rows(env: dict[str, str]) -> list[tuple[str, str]]:
    with psycopg2.connect(_url(env)) as db, db.cursor() as cursor:
        cursor.execute("SELECT classpath, kwargs FROM kpo_trigger_audit")
        return list(cursor.fetchall())


def _strings(node: Any, keys: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in keys and isinstance(value, str) and len(value) >= 8:
                found.append(value)
            found += _strings(value, keys)
    elif isinstance(node, list):
        for item in node:
            found += _strings(item, keys)
    return found


def secrets_of(kubeconfig: Path, env: dict[str, str]) -> dict[str, str]:
    """What must never reach a trigger row: the kubeconfig's credentials and the stack's own secrets (name → value)."""
    config = yaml.safe_load(kubeconfig.read_text())
    found = {f"kubeconfig {i}": value for i, value in enumerate(_strings(config, SECRET_KUBECONFIG_KEYS))}
    found |= {name: value for name, value in env.items()
              if any(word in name for word in ("SECRET", "FERNET", "PASSWORD")) and len(value) >= 8}
    return found


def leaks(rows: list[tuple[str, str]], secrets: dict[str, str]) -> list[str]:
    """One line per row that holds a secret value or kubeconfig-looking content."""
    problems = []
    for classpath, kwargs in rows:
        text = kwargs if isinstance(kwargs, str) else json.dumps(kwargs)
        problems += [f"{classpath}: holds {name}" for name, value in secrets.items() if value in text]
        problems += [f"{classpath}: holds {marker!r}" for marker in SECRET_MARKERS if marker in text]
    return problems
