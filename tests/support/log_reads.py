"""Helpers for the log-read tests: pods whose logs are known line by line, and sink output joined back to lines."""

from __future__ import annotations

from typing import Any

from airflow_kpo_deferrable.emulator import scenario

# Logs whose exact text the scripted runtime writes (``<container> line <n>``, padded to log-line-bytes).
MANY_LINES_ONE_STAMP = {"log_lines": 3000, "log_interval": 0, "duration": 0}  # one runtime batch: one timestamp
LINES_OVER_A_SECOND = {"log_lines": 300, "log_interval": 0.004, "duration": 1.2}  # many stamps, batches share some
LONG_LINES = {"log_lines": 4, "log_line_bytes": 300_000, "log_interval": 0, "duration": 0}  # many 16 KiB records


def log_pod(name: str, **values: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": scenario(**values)},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox"}]},
    }


def expected_lines(values: dict[str, Any], container: str = "base") -> list[str]:
    size = values.get("log_line_bytes")
    lines = []
    for number in range(1, values["log_lines"] + 1):
        text = f"{container} line {number}"
        lines.append(text if size is None else (text + " " + "x" * size)[:size])
    return lines


def joined(pieces: list[str]) -> list[str]:
    """Sink output → whole lines (a continuation piece of a long line starts with ``… ``)."""
    lines: list[str] = []
    for piece in pieces:
        if piece.startswith("… ") and lines:
            lines[-1] += piece[2:]
        else:
            lines.append(piece)
    return lines


def log_bytes(values: dict[str, Any]) -> int:
    """About how many bytes a timestamped read of the whole log is (31-byte stamps)."""
    return sum(len(line) + 32 for line in expected_lines(values))
