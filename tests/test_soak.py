"""The soak's short run (issue 15): two minutes of steady load (50 items/s on three
service nodes and two PEP nodes) under a fixed schedule with one fault of each kind,
a kernel and ``pubsub-hook run`` sharing persistent hooks, temporary hooks in the
kernel, and the independent checker's verdicts (``python -m benchmarks.soak``; see
benchmarks/README.md). About 2.5 minutes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.soak.schedule import KINDS

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[1]
SEED = 15  # one fault of each kind, overlapping: see the schedule the run prints


@pytest.mark.timeout(480)
def test_two_minutes_of_mixed_faults_lose_nothing_double_nothing_reorder_nothing(tmp_path):
    result_path = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--minutes", "2", "--seed", str(SEED), "--no-write",
         "--quiet", "--out", str(tmp_path / "run"), "--json", str(result_path)],
        cwd=REPO, capture_output=True, text=True, timeout=450,
    )
    report = f"{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}\n(run directory: {tmp_path / 'run'})"
    assert result_path.exists(), report
    result = json.loads(result_path.read_text())
    assert not result["harness_errors"], report
    assert {f["kind"] for f in result["faults"]} == set(KINDS)
    assert all("took" in f for f in result["faults"]), report  # every fault ran to its end
    assert result["published"]["ok"] > 5000, report
    for hook in result["hooks"]:
        # Persistent hooks, and temporary ones except what a SIGKILLed kernel had not run.
        assert hook["lost"] == 0, (hook["name"], hook["lost_items"], report)
        assert hook["duplicates_unexplained"] == 0, (hook["name"], hook["duplicate_items"], report)
        assert hook["order_violations"] == 0, (hook["name"], report)
        assert hook["early"] == 0, (hook["name"], report)
        assert hook["expected"] > 0 and hook["ran"] > 0, (hook["name"], report)
    assert result["passed"], report
    assert proc.returncode == 0, report
