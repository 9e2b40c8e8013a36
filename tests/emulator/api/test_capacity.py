"""A small capacity check through the capacity benchmark's own code: every watch sees every change, none is cut off.

The full figures (5,000 pods, 200 watches) come from ``python -m benchmarks.emulator_capacity``; this proves the
measuring code and the fan-out at a size the suite can afford. It asserts completeness, not speed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.emulator_capacity import run

pytestmark = pytest.mark.timeout(120)


def test_every_watch_sees_every_pod_finish(tmp_path: Path) -> None:
    result = run(pods=300, watches=20, concurrency=10, tls=True, workdir=tmp_path, durations=(2, 4))
    assert result["listed"] == 300
    assert result["watches_cut_off"] == 0
    assert result["watches_complete"] == 20
    # Every pod is created, scheduled, started and finished: several events each, the same count on every watch.
    assert result["events_per_watch_min"] == result["events_per_watch_max"] >= 300 * 4
