"""Sampling profiles of a worker or kernel process with py-spy (the ``bench`` extra).

``python -m benchmarks --profile DIR`` records the first measured run of rows 1-4 in
each process that handles the items, from outside (``py-spy record --nonblocking``:
the process is not slowed down by the profiler). For each it writes the raw collapsed
stacks (``NAME.txt``, for flame graph tools) and ``NAME.summary.txt``: the functions
with the most CPU, inclusive and self, in microseconds per item.

``python -m benchmarks.profile FILE.txt ITEMS`` prints the summary of a raw file.
"""

from __future__ import annotations

import collections
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


def py_spy() -> str | None:
    exe = shutil.which("py-spy")
    if exe is None:
        candidate = Path(sys.executable).parent / "py-spy"
        exe = str(candidate) if candidate.exists() else None
    return exe


class Spy:
    """``py-spy record`` of one process, from start() to stop()."""

    def __init__(self, pid: int, path: Path, *, rate: int = 1000, threads: bool = False):
        exe = py_spy()
        if exe is None:
            raise RuntimeError("py-spy is not installed: pip install '.[bench]'")
        self.path = path
        cmd = [exe, "record", "-p", str(pid), "-r", str(rate), "-f", "raw", "-o", str(path), "--nonblocking"]
        if threads:
            cmd.append("--threads")
        self.rate = rate
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.3)  # attached
        if self.proc.poll() is not None:
            raise RuntimeError(f"py-spy failed: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]

    def stop(self, items: int, title: str = "") -> Path:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        summary = self.path.with_suffix(".summary.txt")
        summary.write_text(summarize(self.path, items, self.rate, title), encoding="utf-8")
        return summary


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"; keep the function
    # and a short file name, drop the line so that one function is one entry.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    parts = file.split("/")
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1:]
    elif "pubsub_hook_magic" in parts:
        parts = parts[parts.index("pubsub_hook_magic"):]
    elif "benchmarks" in parts:
        parts = parts[parts.index("benchmarks"):]
    else:
        parts = parts[-2:]
    return f"{name} ({'/'.join(parts)})"


def summarize(path: Path, items: int, rate: int = 1000, title: str = "", top: int = 40) -> str:
    """Inclusive and self CPU per function, in microseconds per item."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames and frames[0].startswith(("thread", "process")):
            threads[frames[0]] += count
            frames = [f for f in frames if not f.startswith(("thread", "process"))]
        names = [_frame_name(f) for f in frames]
        total += count
        for name in set(names):
            inclusive[name] += count
        if names:
            own[names[-1]] += count
    per = 1e6 / rate / max(1, items)  # microseconds per item per sample
    lines = [
        f"{title or Path(path).name}: {total} samples at {rate}/s = {total / rate:.2f} s of CPU "
        f"for {items} items = {total * per:.0f} us per item",
        "",
    ]
    if threads:
        lines += ["Per thread:"]
        lines += [f"  {c * per:8.1f} us/item  {t}" for t, c in threads.most_common()]
        lines += [""]
    lines += ["Inclusive (function and what it calls):"]
    lines += [f"  {c * per:8.1f} us/item {100 * c / max(1, total):5.1f}%  {n}" for n, c in inclusive.most_common(top)]
    lines += ["", "Self (the function's own code):"]
    lines += [f"  {c * per:8.1f} us/item {100 * c / max(1, total):5.1f}%  {n}" for n, c in own.most_common(top)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: python -m benchmarks.profile RAW.txt ITEMS [RATE]")
    print(summarize(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1000))
