"""The benchmarks still run: ``python -m benchmarks --quick`` and ``python -m benchmarks.micro``
(tiny N, no time asserted)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parent.parent

#: One printed line per row of the table (the measure column's start).
ROWS = [
    (1, "Throughput, no-op `python` hook"),
    (1, "Throughput, no-op `python_file` hook"),
    (1, "Throughput, no-op `python_code` hook"),
    (1, "Throughput, no-op `async def` hook"),
    (1, "Throughput, persistent no-op `python` hook (raw publisher"),
    (1, "Throughput, slixmpp publisher"),
    (1, "Ceilings: items/s each process"),
    (2, "Added latency p50"),
    (2, "Added latency p99"),
    (3, "Scale: 1 hook vs 1 + "),
    (3, "Scale: + 10 more hooks on the same node"),
    (4, "Kernel: p99 round trip of cell `1`"),
    (4, "  reference: the same load to a bare slixmpp client in a thread of the kernel"),
    (4, "  reference: the same load to a bare slixmpp client in another process"),
    (5, "Table: widget comm_msg per second"),
    (5, "Table: idle table, one trigger"),
    (5, "Table: kernel CPU share spent on the table"),
    (6, "Memory: RSS after"),
    (7, "Start-up: `%load_ext pubsub_hook_magic`"),
    (7, "Start-up: `%hook connect`"),
    (8, "Connect at a distance: "),
    (9, "Catch-up cost: 1 missed item(s)"),
    (9, "Catch-up cost: 10 missed item(s)"),
    (10, "Create at a distance: "),
    (11, "Fan-out: K temporary no-op hooks on one node"),
    (11, "Fan-out: K persistent no-op hooks on one node"),
]


@pytest.mark.timeout(460)
def test_quick_benchmark_runs_and_prints_every_row(tmp_path):
    if shutil.which("prosody") is None:
        pytest.fail("Prosody is not installed: run scripts/setup.sh")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "JPY_"))}
    results = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--results", str(results)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert "FAILED" not in proc.stdout, output[-6000:]
    table = proc.stdout.split("\n\nRow ", 1)[-1]  # the final table
    for number, measure in ROWS:
        line = re.compile(rf"^{number}\s+{re.escape(measure)}.*\s(PASS|FAIL|info)\s+\d+\s*$", re.M)
        assert line.search(table), f"row {number} {measure!r} missing from:\n{proc.stdout[-4000:]}"
    assert f"{len(ROWS)} rows" in proc.stdout
    assert not results.exists()  # quick mode never writes RESULTS.md


@pytest.mark.timeout(200)
def test_micro_benchmark_runs_every_variant_and_suspect():
    """``python -m benchmarks.micro`` (what RESULTS.md tells maintainers to watch) runs
    with tiny N: every variant prints its figure and no item is dropped."""
    from benchmarks.micro import VARIANTS

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "JPY_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.micro", "--items", "200", "--repeat", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    for name, _make in VARIANTS:
        assert re.search(rf"^\s+[0-9.]+ us  {re.escape(name)}", proc.stdout, re.M), f"{name!r} missing:\n{output[-4000:]}"
    assert "DROPPED" not in proc.stdout, output[-4000:]
    assert "Single suspects" in proc.stdout


@pytest.mark.timeout(120)
def test_function_hooks_benchmark_runs_and_prints_the_ratios():
    """``python -m benchmarks.function_hooks --quick``: every hook prints its figure and
    each function hook its ratio to the python hook (no time asserted)."""
    if shutil.which("prosody") is None:
        pytest.fail("Prosody is not installed: run scripts/setup.sh")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "JPY_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.function_hooks", "--quick"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=100,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    for label in ("python_function", "python_function, from its source"):
        assert re.search(rf"^\s+{re.escape(label)}\s+\d+ items/s, .*; ratio to python [0-9.]+ ", proc.stdout, re.M), (
            f"{label!r} missing:\n{output[-4000:]}"
        )


@pytest.mark.timeout(200)
def test_many_hooks_benchmark_runs_and_prints_every_figure():
    """``python -m benchmarks.many_hooks --quick`` (issue 25): each kind and N prints its
    create growth, descriptors per hook and, for persistent hooks, connect (no time
    asserted)."""
    if shutil.which("prosody") is None:
        pytest.fail("Prosody is not installed: run scripts/setup.sh")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "JPY_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.many_hooks", "--quick"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    for kind in ("persistent", "temporary"):
        for n in (20, 120):
            assert re.search(rf"^\s+{kind}\s+N={n}\s+growth\s+[0-9.]+x, descriptors per hook [0-9.]+", proc.stdout, re.M), (
                f"{kind} N={n} missing:\n{output[-4000:]}"
            )
    assert "connect minus login" in proc.stdout


@pytest.mark.timeout(120)
def test_table_scale_benchmark_prints_every_figure():
    """``python -m benchmarks.table_scale --quick``: the widget layer's figures at each
    N (a page's models, whatever N), the real hub's and the listings' (no time asserted)."""
    if shutil.which("prosody") is None:
        pytest.fail("Prosody is not installed: run scripts/setup.sh")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "JPY_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.table_scale", "--quick", "--page", "20"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=100,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    rows = re.findall(r"^\s+([\d,]+)\s+([\d.]+ ms\s+){4}(\d+)\s*$", proc.stdout, re.M)
    assert [n for n, _t, _m in rows] == ["100", "1,000"], output[-4000:]
    assert len({m for _n, _t, m in rows}) == 1, output[-4000:]  # the widgets of one page at any N
    assert re.search(r"TableHub.new_table \(first render\):\s+[\d.]+ ms; one flush:\s+[\d.]+ ms", proc.stdout), output
    for n in ("100", "1,000"):
        assert re.search(rf"N =\s+{n}: -O json\s+[\d.]+ ms .* -O text\s+[\d.]+ ms", proc.stdout), output
