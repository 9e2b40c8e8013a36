"""Golden input/output pairs of the kubelet's pure status rule (``tests/emulator/kubelet/golden/*.json``).

Each file is ``{"input": {spec, initContainers, containers, progress, conditions, now}, "output": status}``: the
container records and progress a pod worker would hold, and the status ``render_status`` must write for them.
The outputs were reviewed against the kubelet's ``getPhase``/condition code, not just recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow_kpo_deferrable.emulator.kubelet.status import Progress, Terminal, render_status

GOLDEN = Path(__file__).parent.parent / "emulator" / "kubelet" / "golden"


def golden_files() -> list[Path]:
    return sorted(GOLDEN.glob("*.json"))


def render(doc: dict[str, Any]) -> dict[str, Any]:
    """``render_status`` applied to a golden file's ``input``."""
    given = doc["progress"]
    terminal = given.get("terminal")
    progress = Progress(
        host_ip=given["hostIP"],
        start_time=given.get("startTime"),
        pod_ip=given.get("podIP"),
        sandbox_ready=given.get("sandboxReady", False),
        terminal=Terminal(**terminal) if terminal else None,
        node_lost=given.get("nodeLost", False),
    )
    return render_status(doc["spec"], doc["initContainers"], doc["containers"], progress, doc["conditions"],
                         doc["now"])
