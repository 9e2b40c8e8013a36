"""README.md stays true: its pytest example runs as a user would run it, its failure table lists every typed reason."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from airflow_kpo_deferrable import outcome
from tests.support.compose import REPO

README = REPO / "README.md"


def code_block_with(text: str, language: str = "python") -> str:
    blocks = re.findall(rf"^```{language}\n(.*?)^```$", README.read_text(), re.M | re.S)
    [block] = [block for block in blocks if text in block]
    return block


def test_the_pytest_example_passes_in_a_project_of_its_own(tmp_path: Path) -> None:
    # Its own directory: only the installed package and its pytest plugin (k8s_emulator), none of our conftest.
    (tmp_path / "test_example.py").write_text(code_block_with("def test_my_client_code"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout


def test_the_failure_table_lists_every_reason_the_package_reports() -> None:
    section = README.read_text().split("## Troubleshooting by failure reason", 1)[1].split("\n## ", 1)[0]
    listed = set()
    for cell in re.findall(r"^\| (`[^|(]+)", section, re.M):  # the first cell, before "(outcome ...)"
        listed |= set(re.findall(r"`(\w+)`", cell))
    reasons = {
        value for name, value in vars(outcome).items()
        if name.isupper() and isinstance(value, str) and re.fullmatch(r"[A-Z][A-Za-z]+", value)
    }  # fmt: skip
    assert reasons, "outcome.py names no reasons"
    assert listed == reasons, {"missing from README": reasons - listed, "not a reason": listed - reasons}
