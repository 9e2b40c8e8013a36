"""The kubelet's status rule (``render_status``) against reviewed input/output pairs, as kwok tests its stages.

Add a case by writing a new ``golden/<what it shows>.json``; a wrong expectation fails here, not in an e2e run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.golden import golden_files, render


def test_there_are_golden_cases() -> None:
    names = {path.stem for path in golden_files()}
    assert {"running", "succeeded", "failed-restart-never", "node-lost", "evicted"} <= names, names


@pytest.mark.parametrize("path", golden_files(), ids=lambda path: path.stem)
def test_render_status_matches_its_golden_output(path: Path) -> None:
    case = json.loads(path.read_text())
    assert render(case["input"]) == case["output"]
