"""The soak's short run (issue 15): two minutes of steady load (50 items/s on three
service nodes and two PEP nodes) under a fixed schedule with one fault of each kind,
a kernel and ``pubsub-hook run`` sharing persistent hooks, temporary hooks in the
kernel, and the independent checker's verdicts (``python -m benchmarks.soak``; see
benchmarks/README.md). About 2.5 minutes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
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


def _synthetic_run(tmp_path: Path, hook_lines: dict[str, list[str]], events: list[dict], max_items: int = 100,
                   reports: list[dict] | None = None) -> Path:
    """A run directory as the orchestrator writes it: one node, one persistent hook
    (P) and one temporary hook (T); items n-0000000.. acknowledged 1 s apart from t=1000."""
    run = tmp_path / "run"
    (run / "hooks").mkdir(parents=True)
    (run / "logs").mkdir(exist_ok=True)
    hooks = [
        {"name": "P", "node": "n", "persistent": True, "kind": "file", "pep": False, "log": "hooks/P.log"},
        {"name": "T", "node": "n", "persistent": False, "kind": "file", "pep": False, "log": "hooks/T.log"},
    ]
    (run / "config.json").write_text(json.dumps({"seed": 1, "minutes": 1, "rate": 1, "max_items": max_items,
                                                 "hooks": hooks, "faults": []}))
    (run / "publisher.log").write_text(
        "".join(f"ok n-{i:07d} {1000 + i}.0 {1000 + i}.1\n" for i in range(10)) + "fail n-0000010 1010.0 1040.0 X\n")
    base = [
        {"t": 990.0, "event": "start", "role": "kernel", "pid": 1},
        {"t": 990.0, "event": "start", "role": "service", "pid": 2},
        {"t": 991.0, "event": "persistent-hook", "name": "P", "id": "pid0"},
        {"t": 991.0, "event": "temp-hook", "name": "T", "pid": 1, "begin": 991.0, "end": 991.5},
        {"t": 999.0, "event": "publishing", "begin": True},
        {"t": 1011.0, "event": "publishing", "begin": False},
        {"t": 1012.0, "event": "drained", "ok": True},
    ]
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in base + events))
    for name, lines in hook_lines.items():
        (run / "hooks" / f"{name}.log").write_text("".join(line + "\n" for line in lines))
    (run / "logs" / "kernel-reports.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reports or []))
    return run


def _runs(pid: int, items, t: float = 1000.0) -> list[str]:
    return [f"{pid} n-{i:07d} {t + i + 0.5}" for i in items]


def test_the_checker_explains_a_duplicate_only_by_a_kill_of_the_process_that_ran_it(tmp_path):
    from benchmarks.soak import checker

    # The kernel (1) ran 0-4 and was SIGKILLed running 4; the service (2) ran 4 again, then the rest.
    killed = [{"t": 1004.9, "event": "end", "role": "kernel", "pid": 1, "how": "killed"}]
    lines = {"P": _runs(1, range(5)) + _runs(2, range(4, 10)), "T": _runs(1, range(5))}
    (p, t) = checker.check(_synthetic_run(tmp_path, lines, killed))["hooks"]
    assert (p["lost"], p["duplicates_explained"], p["duplicates_unexplained"], p["order_violations"]) == (0, 1, 0, 0)
    assert p["passed"]
    assert t["lost"] == 0 and t["passed"]  # what a SIGKILLed kernel had not run is not counted

    # Without the kill (a graceful stop), the same second run is unexplained.
    stopped = [{"t": 1004.9, "event": "end", "role": "kernel", "pid": 1, "how": "stopped 0"}]
    (p, t) = checker.check(_synthetic_run(tmp_path / "b", lines, stopped))["hooks"]
    assert p["duplicates_unexplained"] == 1 and not p["passed"]
    assert t["passed"]  # (its tail, 5-9, went with its kernel)


def test_the_checker_finds_losses_order_violations_and_early_runs(tmp_path):
    from benchmarks.soak import checker

    lines = {"P": _runs(2, [0, 1, 3, 2, 5, 6, 7, 8, 9]), "T": _runs(1, range(10))}
    (p, t) = checker.check(_synthetic_run(tmp_path, lines, []))["hooks"]
    assert p["lost"] == 1 and p["lost_items"] == ["n-0000004"]
    assert p["order_violations"] == 1 and not p["passed"]
    assert t["passed"] and t["expected"] == 10  # the temporary hook of a kernel alive at the end: all of it

    # Kernel 1 is killed; in kernel 3, T is made at 1003.0 and runs 1 and 2, acknowledged before.
    late = [{"t": 1002.5, "event": "end", "role": "kernel", "pid": 1, "how": "killed"},
            {"t": 1002.6, "event": "start", "role": "kernel", "pid": 3},
            {"t": 1003.2, "event": "temp-hook", "name": "T", "pid": 3, "begin": 1003.0, "end": 1003.2}]
    lines = {"P": _runs(2, range(10)), "T": _runs(1, range(2)) + _runs(3, range(1, 10))}
    (p, t) = checker.check(_synthetic_run(tmp_path / "b", lines, late))["hooks"]
    assert p["passed"]
    assert (t["early"], t["lost"], t["incarnations"], t["killed_incarnations"]) == (2, 0, 2, 1)
    assert not t["passed"]


def test_the_checker_counts_items_the_node_evicted_as_gaps_the_product_must_report(tmp_path):
    from benchmarks.soak import checker

    # The node keeps 3 items: item k left it when k+3 was acknowledged (at 1003.1 + k).
    # The hook went past 1-6 at 1007.5: 1-4 had left the node by then, 5 and 6 had not.
    lines = {"P": _runs(2, [0]) + [f"2 n-{i:07d} 1007.5" for i in range(7, 10)], "T": _runs(1, range(10))}
    (p, _t) = checker.check(_synthetic_run(tmp_path, lines, [], max_items=3))["hooks"]
    assert (p["server_gap"], p["lost"]) == (4, 2)
    assert "gaps reported 0 vs server gaps 4" in "; ".join(p["problems"])

    lines = {"P": _runs(2, [0]) + [f"2 n-{i:07d} 1007.5" for i in range(5, 10)], "T": _runs(1, range(10))}
    gap = [{"t": 1007.0, "pid": 2, "hook": "pid0", "node": "n", "arg": "", "outcome": "gap", "item": None,
            "error": "the node no longer holds"}]
    (p, _t) = checker.check(_synthetic_run(tmp_path / "b", lines, [], max_items=3, reports=gap))["hooks"]
    assert (p["server_gap"], p["gaps_reported"], p["lost"]) == (4, 1, 0) and p["passed"]


def test_the_checker_excuses_a_kernels_tail_only_for_what_it_could_not_run(tmp_path):
    from benchmarks.soak import checker

    # Kernel 1 is shut down at 1009.8; T ran 0-2. Items 3-9 came in its last 10 s
    # (checker.STALL): its tail, gone with it.
    ended = [{"t": 1009.8, "event": "end", "role": "kernel", "pid": 1, "how": "stopped 0"},
             {"t": 1009.9, "event": "start", "role": "kernel", "pid": 3, "n": 3}]
    lines = {"P": _runs(2, range(10)), "T": _runs(1, range(3))}
    (_p, t) = checker.check(_synthetic_run(tmp_path, lines, ended))["hooks"]
    assert (t["lost"], t["stalled"], t["tail_at_kernel_end"]) == (0, 0, 7) and t["passed"]

    # The same kernel lived 30 s longer, its session lost at 1002.0 and restored at
    # 1008.0 (its log): 3-7 came while it was away (excused), 8-9 with the session up,
    # more than 10 s before its end, and never ran: a stall, counted as lost.
    ended[0]["t"] = 1039.8
    (tmp_path / "b" / "run" / "logs").mkdir(parents=True)
    log = tmp_path / "b" / "run" / "logs" / "kernel-01.log"
    stamp = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + f",{int(t % 1 * 1000):03d}"  # noqa: E731
    log.write_text(f"{stamp(1002.0)} WARNING pubsub_hook_magic.xmpp_session: session of alice@localhost lost (x): "
                   f"reconnecting\n{stamp(1008.0)} INFO pubsub_hook_magic.xmpp_session: session of alice@localhost "
                   "restored (reconnection 1)\n")
    events = [{"t": 990.0, "event": "start", "role": "kernel", "pid": 1, "n": 1}] + ended
    (_p, t) = checker.check(_synthetic_run(tmp_path / "b", lines, events))["hooks"]
    assert t["stalled"] == 2 and t["lost"] == 2 and not t["passed"]
