"""Process trees: a stop reaches every process, also one that left the tree (re-parented to init)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil

from airflow_kpo_deferrable.testing.processes import (
    STACK_MARKER,
    clean_environment,
    marked_processes,
    process_tree,
    terminate,
)
from airflow_kpo_deferrable.testing.waits import wait_until

# A parent that starts a child in a new session (as the task-sdk supervisor does with setpgid) and a double-forked
# orphan, then prints their pids and sleeps.
SPAWNER = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
orphan = subprocess.Popen([sys.executable, "-c",
    "import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],"
    " start_new_session=True); print(p.pid, flush=True)"], stdout=subprocess.PIPE, text=True)
orphan_pid = int(orphan.stdout.readline())
orphan.wait()
print(child.pid, orphan_pid, flush=True)
time.sleep(600)
"""


def start_spawner(marker: str) -> tuple[subprocess.Popen[str], int, int]:
    env = {**os.environ, STACK_MARKER: marker}
    parent = subprocess.Popen([sys.executable, "-c", SPAWNER], env=env, stdout=subprocess.PIPE, text=True)
    child, orphan = map(int, parent.stdout.readline().split())
    return parent, child, orphan


def test_the_tree_and_the_marker_together_reach_every_process():
    marker = uuid.uuid4().hex
    parent, child, orphan = start_spawner(marker)
    try:
        in_tree = {process.pid for process in process_tree(parent.pid)}
        assert {parent.pid, child} <= in_tree and orphan not in in_tree  # the orphan left the tree
        assert {parent.pid, child, orphan} <= {process.pid for process in marked_processes(marker)}

        terminate(process_tree(parent.pid), signal.SIGTERM, grace=10)
        terminate(marked_processes(marker), signal.SIGKILL, grace=5)
        parent.wait(timeout=10)
        wait_until("every process to be gone", lambda: not any(map(psutil.pid_exists, (child, orphan))), 30)
    finally:
        for pid in (parent.pid, child, orphan):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_terminate_kills_what_ignores_the_signal_after_the_grace_period():
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(600)"
    stubborn = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    stubborn.stdout.readline()  # the handler is installed
    begun = time.monotonic()
    terminate([psutil.Process(stubborn.pid)], signal.SIGTERM, grace=0.5)
    # It outlived SIGTERM for the whole grace period, then it was gone (psutil reaped it, so no exit status here).
    assert time.monotonic() - begun >= 0.5
    assert not psutil.pid_exists(stubborn.pid) or psutil.Process(stubborn.pid).status() == psutil.STATUS_ZOMBIE


def test_the_children_get_no_airflow_settings_of_the_caller(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.setenv("AIRFLOW_CONN_MINE", "postgres://x")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv(STACK_MARKER, "another stack")
    monkeypatch.setenv("KEEP_ME", "1")
    env = clean_environment()
    assert "KEEP_ME" in env
    assert not {"AIRFLOW__CORE__EXECUTOR", "AIRFLOW_CONN_MINE", "AIRFLOW_HOME", STACK_MARKER} & set(env)
