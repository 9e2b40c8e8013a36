"""Airflow discovers the package as a provider: the trigger module and, without the official provider, the connection type."""

from __future__ import annotations

import subprocess
import sys

from airflow_kpo_deferrable.get_provider_info import _official_provider_installed, get_provider_info

PROBE = """
from airflow.providers_manager import ProvidersManager
manager = ProvidersManager()
hook = manager.hooks.get("kubernetes")
print(manager.providers["airflow-kpo-deferrable"].version)
print(hook.hook_class_name if hook else None)
print("airflow_kpo_deferrable.triggers.pod" in {t.trigger_class_name for t in manager.trigger})
"""


def test_airflow_registers_our_connection_type_and_trigger() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    version, hook_class, has_trigger = result.stdout.strip().splitlines()[-3:]
    assert version == get_provider_info()["versions"][0]
    # Next to the official provider, its own "kubernetes" connection type (same fields) is the one registered.
    provider = _official_provider_installed()
    expected = "airflow.providers.cncf.kubernetes.hooks.kubernetes.KubernetesHook"
    assert hook_class == (expected if provider else "airflow_kpo_deferrable.hooks.kubernetes.KubernetesHook")
    assert has_trigger == "True"
