"""The independent checker: it reads a run directory (the publisher's log, the hooks'
logs, the events of the processes, the product's trigger reports, the logs) and
nothing else, and gives each hook its verdict.

Per hook:

* **expected**: the items the server acknowledged (``ok`` in the publisher's log) on
  the hook's node after the hook was made; an item whose publish got no answer (the
  server was killed) may or may not be on the node: it is neither expected nor
  forbidden;
* **lost**: expected and never run, unless the node no longer held it when the hook
  went past it (evicted: the node keeps ``max_items``): that is a **server gap**, and
  the product must have reported a gap for that hook (and only then);
* **duplicates**: runs of an item after its first. One is *explained* only when the
  previous run was the last line that a process which was then SIGKILLed wrote for
  the hook (the item was in flight at the kill); any other is *unexplained*;
* **order violations**: a first run of an item older, on its node, than an item the
  hook ran before;
* **early**: an item acknowledged before the hook was made, run anyway (a new hook
  never fires for an older item).

A temporary hook lives as long as its kernel: each kernel's copy is an
*incarnation*, from its ``%hook create`` to the kernel's end. Its losses count unless
the kernel was SIGKILLed; the items after its last run when its kernel ended (killed
or shut down) are its *tail*, gone with the kernel, reported but not counted. The
incarnation alive at the end is held to every item.
"""

from __future__ import annotations

import bisect
import collections
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

INF = float("inf")
#: Seconds a connected, running kernel may take to run an item (its tail is excused
#: only for items newer than that when it ended, or published while it was away).
STALL = 10.0


@dataclass
class Item:
    id: str
    node: str
    seq: int
    ok: bool
    sent: float
    done: float


@dataclass
class Run:
    """A hook's log line."""

    pid: int
    item: str
    t: float


@dataclass
class Incarnation:
    name: str
    pid: int
    begin: float  # %hook create sent
    end: float  # %hook create answered
    died: float = INF  # the kernel's end
    how: str = "alive"
    #: When its session was up and its process running (not SIGSTOPped), from its
    #: kernel's log: only there can an item it did not run be held against it.
    healthy: list[tuple[float, float]] = field(default_factory=list)


def _split_id(item_id: str) -> tuple[str, int]:
    node, _, seq = item_id.rpartition("-")
    return node, int(seq)


class RunData:
    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        self.config = json.loads((self.dir / "config.json").read_text())
        self.hooks = self.config["hooks"]
        self.max_items = int(self.config["max_items"])
        self.events = _jsonl(self.dir / "events.jsonl")
        self._read_publisher()
        self._read_processes()
        self.logs = {h["name"]: _hook_log(self.dir / h["log"]) for h in self.hooks}

    # ------------------------------------------------------------------ inputs

    def _read_publisher(self) -> None:
        self.items: dict[str, Item] = {}
        path = self.dir / "publisher.log"
        for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
            words = line.split()
            if len(words) < 4 or words[0] not in ("ok", "fail"):
                continue
            node, seq = _split_id(words[1])
            self.items[words[1]] = Item(words[1], node, seq, words[0] == "ok", float(words[2]), float(words[3]))
        self.by_node: dict[str, list[Item]] = collections.defaultdict(list)
        for item in self.items.values():
            self.by_node[item.node].append(item)
        for items in self.by_node.values():
            items.sort(key=lambda i: i.seq)
        self.ok_by_node = {node: [i for i in items if i.ok] for node, items in self.by_node.items()}

    def _read_processes(self) -> None:
        self.processes: dict[int, dict[str, Any]] = {}
        self.persistent_ids: dict[str, str] = {}
        self.incarnations: list[Incarnation] = []
        self.service_logs: dict[str, int] = {}
        self.t0 = self.t_end = None
        for e in self.events:
            kind = e["event"]
            if kind == "start":
                self.processes[e["pid"]] = {"role": e["role"], "start": e["t"], "end": None, "how": None}
                if e["role"] == "service" and "log" in e:
                    self.service_logs[e["log"]] = e["pid"]
            elif kind == "end" and e.get("pid") in self.processes:
                proc = self.processes[e["pid"]]
                proc.update(end=e["t"], how=e["how"], final=bool(e.get("final")))
            elif kind == "persistent-hook":
                self.persistent_ids[e["name"]] = e["id"]
            elif kind == "temp-hook":
                self.incarnations.append(Incarnation(e["name"], e["pid"], e["begin"], e["end"]))
            elif kind == "publishing":
                if e["begin"]:
                    self.t0 = e["t"]
                else:
                    self.t_end = e["t"]
        self.killed = {pid for pid, p in self.processes.items() if p["how"] == "killed"}
        kernel_n = {e["pid"]: e.get("n") for e in self.events if e["event"] == "start" and e["role"] == "kernel"}
        stops = _stops(self.events)
        for inc in self.incarnations:
            proc = self.processes.get(inc.pid, {})
            if proc.get("end") is not None and not proc.get("final"):
                inc.died, inc.how = proc["end"], ("killed" if proc["how"] == "killed" else "shut down")
            sessions = _session_lines(self.dir / "logs" / f"kernel-{kernel_n.get(inc.pid) or 0:02d}.log")
            inc.healthy = _healthy(inc.end, min(inc.died, proc.get("end") or INF), sessions, stops.get(inc.pid, []))

    def reports(self) -> list[dict[str, Any]]:
        """Every trigger the product recorded other than a plain run: the kernels'
        (their listener's file) and pubsub-hook run's (its log lines)."""
        found = _jsonl(self.dir / "logs" / "kernel-reports.jsonl")
        pattern = re.compile(r"^(\S+ \S+) \w+ hook (\S+) \((.*?)\) item (\S+): (\w+)(?:: (.*))?$")
        for name, pid in self.service_logs.items():
            path = self.dir / "logs" / name
            for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
                m = pattern.match(line)
                if m and not m.group(5).startswith("ok"):
                    found.append({"pid": pid, "hook": m.group(2), "node": m.group(3), "arg": "",
                                  "outcome": m.group(5), "item": None if m.group(4) == "None" else m.group(4),
                                  "error": m.group(6)})
        return found

    # ------------------------------------------------------------------ drain

    def waiting_for_drain(self, kernel_pid: int | None) -> list[str]:
        """The hooks that have not run the newest acknowledged item of their node yet."""
        waiting = []
        for hook in self.hooks:
            ok = self.ok_by_node.get(hook["node"], [])
            runs = self.logs[hook["name"]]
            if hook["persistent"]:
                newest = ok[-1].id if ok else None
                ran = {r.item for r in runs}
            else:
                incs = [i for i in self.incarnations if i.name == hook["name"] and i.pid == kernel_pid]
                if not incs:
                    continue
                after = [i for i in ok if i.sent > incs[-1].end]
                newest = after[-1].id if after else None
                ran = {r.item for r in runs if r.pid == kernel_pid}
            if newest is not None and newest not in ran:
                waiting.append(hook["name"])
        return waiting


_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) \w+ [\w.]+: session of \S+ (lost|restored)")


def _session_lines(path: Path) -> list[tuple[float, str]]:
    """(time, "lost" | "restored") from a kernel's log of the product's records."""
    import time as _time

    out = []
    for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
        m = _LOG_LINE.match(line)
        if m:
            t = _time.mktime(_time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000
            out.append((t, m.group(3)))
    return out


def _stops(events: list[dict[str, Any]]) -> dict[int, list[tuple[float, float]]]:
    """SIGSTOP intervals per pid."""
    begun: dict[int, float] = {}
    out: dict[int, list[tuple[float, float]]] = collections.defaultdict(list)
    for e in events:
        if e["event"] == "fault" and e["kind"] == "sigstop":
            if e["phase"] == "begin":
                begun[e["n"]] = e["t"]
            elif e.get("pid") is not None and e["n"] in begun:
                out[e["pid"]].append((begun[e["n"]], e["t"]))
    return out


def _healthy(start: float, end: float, sessions: list[tuple[float, str]],
             stops: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The intervals within [start, end] when the session was up (between a restore,
    or the start, and the next loss), minus the SIGSTOPs."""
    up: list[tuple[float, float]] = []
    since: float | None = start
    for t, what in sessions:
        if t < start:
            continue
        if what == "lost" and since is not None:
            up.append((since, min(t, end)))
            since = None
        elif what == "restored" and since is None:
            since = t
    if since is not None and since < end:
        up.append((since, end))
    for a, b in stops:
        up = [piece for (x, y) in up for piece in ((x, min(y, a)), (max(x, b), y)) if piece[0] < piece[1]]
    return [(a, b) for a, b in up if a < end]


def load_run(run_dir: Path) -> RunData:
    return RunData(run_dir)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a kill
    return out


def _hook_log(path: Path) -> list[Run]:
    if not path.exists():
        return []
    runs = []
    for line in path.read_text(errors="replace").splitlines():
        words = line.split()
        if len(words) == 3:
            try:
                runs.append(Run(int(words[0]), words[1], float(words[2])))
            except ValueError:
                continue
    return runs


# ---------------------------------------------------------------------- verdicts

@dataclass
class Tally:
    expected: int = 0
    ran: int = 0  # distinct items run
    runs: int = 0  # lines
    lost: int = 0
    lost_items: list[str] = field(default_factory=list)
    server_gap: int = 0
    gaps_reported: int = 0
    gap_mismatch: int = 0
    dropped_reported: int = 0
    failed_reported: int = 0  # runs the product recorded as failed (error, timeout)
    failed_items: list[str] = field(default_factory=list)
    duplicates_explained: int = 0
    duplicates_unexplained: int = 0
    duplicate_items: list[str] = field(default_factory=list)
    order_violations: int = 0
    order_items: list[str] = field(default_factory=list)
    early: int = 0
    early_items: list[str] = field(default_factory=list)
    unknown: int = 0  # run, but never published
    latencies: list[float] = field(default_factory=list)


def _evicted_at(ok: list[Item], index: int, max_items: int) -> float:
    """When the node stopped holding ``ok[index]``: when the item ``max_items`` later
    was acknowledged (a node keeps its newest ``max_items``)."""
    later = index + max_items
    return ok[later].done if later < len(ok) else INF


def _check_runs(runs: list[Run], data: RunData, node: str, expected: list[Item], killed: set[int],
                tally: Tally, created: float) -> None:
    """Fill ``tally`` from one stream of runs (a persistent hook's whole log, or one
    incarnation's lines)."""
    ok = data.ok_by_node.get(node, [])
    position = {item.id: i for i, item in enumerate(ok)}
    last_of_pid: dict[int, int] = {}
    for n, run in enumerate(runs):
        last_of_pid[run.pid] = n
    first_run: dict[str, float] = {}
    seen: dict[str, int] = {}  # item -> index of its latest run
    newest_seq = -1
    for n, run in enumerate(runs):
        tally.runs += 1
        item = data.items.get(run.item)
        if item is None or item.node != node:
            tally.unknown += 1
            continue
        if run.item in seen:
            before = runs[seen[run.item]]
            if before.pid in killed and last_of_pid.get(before.pid) == seen[run.item] and before.pid != run.pid:
                tally.duplicates_explained += 1
            else:
                tally.duplicates_unexplained += 1
                tally.duplicate_items.append(f"{run.item} (pids {before.pid}, {run.pid})")
            seen[run.item] = n
            continue
        seen[run.item] = n
        first_run[run.item] = run.t
        if item.seq < newest_seq:
            tally.order_violations += 1
            tally.order_items.append(run.item)
        newest_seq = max(newest_seq, item.seq)
        if item.done < created:
            tally.early += 1
            tally.early_items.append(run.item)
        if item.ok:
            tally.latencies.append(run.t - item.done)
    tally.ran += len(seen)
    run_times = sorted((data.items[i].seq, t) for i, t in first_run.items())
    seqs = [s for s, _t in run_times]
    # the earliest time the hook ran an item after seq s: suffix minima of run times
    suffix_min = [INF] * (len(run_times) + 1)
    for k in range(len(run_times) - 1, -1, -1):
        suffix_min[k] = min(run_times[k][1], suffix_min[k + 1])
    for item in expected:
        tally.expected += 1
        if item.id in seen:
            continue
        went_past = suffix_min[bisect.bisect_right(seqs, item.seq)]
        evicted = _evicted_at(ok, position[item.id], data.max_items)
        if evicted < INF and evicted <= went_past:
            tally.server_gap += 1
        else:
            tally.lost += 1
            if len(tally.lost_items) < 20:
                tally.lost_items.append(item.id)


def check(run_dir: Path) -> dict[str, Any]:
    data = RunData(run_dir)
    reports = data.reports()
    verdicts = []
    end = data.t_end or INF
    for hook in data.hooks:
        name, node = hook["name"], hook["node"]
        runs = data.logs[name]
        ok = data.ok_by_node.get(node, [])
        if hook["persistent"]:
            hook_id = data.persistent_ids.get(name)
            tally = Tally()
            created = data.t0 or 0.0
            _check_runs(runs, data, node, ok, data.killed, tally, created)
            mine = [r for r in reports if r["hook"] == hook_id]
            tally.gaps_reported = sum(1 for r in mine if r["outcome"] == "gap")
            tally.dropped_reported = sum(1 for r in mine if r["outcome"] == "dropped")
            _failed(tally, mine)
            tally.gap_mismatch = int((tally.server_gap > 0) != (tally.gaps_reported > 0))
            verdict = _verdict(name, hook, tally, counted_lost=tally.lost)
            verdict["id"] = hook_id
            verdict["pids"] = sorted({r.pid for r in runs})
            verdicts.append(verdict)
            continue
        incs = [i for i in data.incarnations if i.name == name]
        total = Tally()
        counted_lost = 0
        killed_lost = 0
        tail = 0
        stalled_total = 0
        details = []
        for inc in incs:
            mine_runs = [r for r in runs if r.pid == inc.pid]
            window = [i for i in ok if i.sent > inc.end and i.done < min(inc.died, end + 3600)]
            tally = Tally()
            last_seq = max((data.items[r.item].seq for r in mine_runs if r.item in data.items), default=-1)
            stalled: list[Item] = []
            if inc.how != "alive":
                # What it had not run when its kernel ended went with it, unless it was
                # published while the session was up and the process running, more than
                # STALL seconds before that ended: the hook had stopped running items.
                tail_items = [i for i in window if i.seq > last_seq]
                window = [i for i in window if i.seq <= last_seq]
                stalled = [i for i in tail_items
                           if any(a <= i.done <= b - STALL for a, b in inc.healthy)]
            else:
                tail_items = []
            # An incarnation has no position to resume from: nothing it did not run
            # is a gap, except what the node evicted while it was away.
            _check_runs(mine_runs, data, node, window, set(), tally, inc.begin)
            mine = [r for r in reports if r.get("pid") == inc.pid and name in (r.get("arg") or "")]
            dropped = {r["item"] for r in mine if r["outcome"] == "dropped"}
            tally.dropped_reported = len(dropped)
            _failed(tally, mine)
            tally.gaps_reported = sum(1 for r in mine if r["outcome"] == "gap")
            tally.gap_mismatch = int((tally.server_gap > 0) != (tally.gaps_reported > 0))
            if dropped:
                still = [i for i in tally.lost_items if i not in dropped]
                tally.lost -= len(tally.lost_items) - len(still)
                tally.lost_items = still
            if inc.how == "killed":
                killed_lost += tally.lost
            else:
                counted_lost += tally.lost
            if stalled:
                counted_lost += len(stalled)
                tally.lost_items = [i.id for i in stalled[:10]] + tally.lost_items
            tail += len(tail_items) - len(stalled)
            stalled_total += len(stalled)
            details.append({"pid": inc.pid, "how": inc.how, "expected": tally.expected, "ran": tally.ran,
                            "lost": tally.lost, "tail": len(tail_items) - len(stalled), "stalled": len(stalled),
                            "dropped": tally.dropped_reported,
                            "healthy_seconds": round(sum(b - a for a, b in inc.healthy if b < INF), 1)})
            _add(total, tally)
        verdict = _verdict(name, hook, total, counted_lost=counted_lost)
        verdict.update(incarnations=len(incs), killed_incarnations=sum(1 for i in incs if i.how == "killed"),
                       lost_with_killed_kernel=killed_lost, tail_at_kernel_end=tail, stalled=stalled_total,
                       per_incarnation=details)
        verdicts.append(verdict)
    failures = [f"{v['name']}: {problem}" for v in verdicts for problem in v["problems"]]
    harness = data.config.get("harness_errors") or []
    failures += [f"harness: {e}" for e in harness]
    if data.t_end is None:
        failures.append("harness: the run did not finish publishing")
    drained = [e for e in data.events if e["event"] == "drained"]
    if not drained or not drained[-1]["ok"]:
        failures.append("harness: the hooks did not all catch up before the end (see lost)")
    return {
        "seed": data.config["seed"],
        "minutes": data.config["minutes"],
        "rate": data.config["rate"],
        "published": _published(data),
        "faults": _faults(data),
        "hooks": verdicts,
        "processes": _processes(data),
        "takeovers": takeovers(data),
        "rss": rss_figures(data),
        "tracebacks": tracebacks(data.dir),
        "harness_errors": harness,
        "failures": failures,
        "passed": not failures,
        "machine": data.config.get("machine", {}),
        "command": data.config.get("command"),
        "commit": data.config.get("commit"),
    }


def _failed(tally: Tally, reports: list[dict[str, Any]]) -> None:
    """The soak's hooks never raise: every failure the product records is its own."""
    for r in reports:
        if r["outcome"] in ("error", "timeout"):
            tally.failed_reported += 1
            if len(tally.failed_items) < 10:
                tally.failed_items.append(f"{r['item']}: {(r.get('error') or '')[:120]}")


def _add(total: Tally, t: Tally) -> None:
    for name in ("expected", "ran", "runs", "lost", "server_gap", "gaps_reported", "gap_mismatch",
                 "dropped_reported", "failed_reported", "duplicates_explained", "duplicates_unexplained", "order_violations",
                 "early", "unknown"):
        setattr(total, name, getattr(total, name) + getattr(t, name))
    for name in ("lost_items", "duplicate_items", "order_items", "early_items", "failed_items"):
        getattr(total, name).extend(getattr(t, name)[: max(0, 20 - len(getattr(total, name)))])
    total.latencies.extend(t.latencies)


def _verdict(name: str, hook: dict[str, Any], t: Tally, counted_lost: int) -> dict[str, Any]:
    problems = []
    if counted_lost:
        problems.append(f"{counted_lost} lost (e.g. {', '.join(t.lost_items[:5])})")
    if t.duplicates_unexplained:
        problems.append(f"{t.duplicates_unexplained} unexplained duplicate(s) ({', '.join(t.duplicate_items[:5])})")
    if t.order_violations:
        problems.append(f"{t.order_violations} order violation(s) ({', '.join(t.order_items[:5])})")
    if t.gap_mismatch:
        problems.append(f"gaps reported {t.gaps_reported} vs server gaps {t.server_gap}")
    if t.early:
        problems.append(f"{t.early} item(s) published before the hook was made ran ({', '.join(t.early_items[:5])})")
    if t.failed_reported:
        problems.append(f"{t.failed_reported} run(s) failed ({'; '.join(t.failed_items[:3])})")
    if t.unknown:
        problems.append(f"{t.unknown} run(s) of items never published on its node")
    lat = sorted(t.latencies)
    return {
        "name": name,
        "node": hook["node"],
        "pep": hook["pep"],
        "persistent": hook["persistent"],
        "kind": hook["kind"],
        "expected": t.expected,
        "ran": t.ran,
        "runs": t.runs,
        "lost": counted_lost,
        "lost_items": t.lost_items,
        "server_gap": t.server_gap,
        "gaps_reported": t.gaps_reported,
        "dropped_reported": t.dropped_reported,
        "failed_reported": t.failed_reported,
        "failed_items": t.failed_items,
        "duplicates_explained": t.duplicates_explained,
        "duplicates_unexplained": t.duplicates_unexplained,
        "duplicate_items": t.duplicate_items,
        "order_violations": t.order_violations,
        "early": t.early,
        "unknown": t.unknown,
        "latency_p50": round(lat[len(lat) // 2], 4) if lat else None,
        "latency_p99": round(lat[int(len(lat) * 0.99)], 3) if lat else None,
        "latency_max": round(lat[-1], 3) if lat else None,
        "problems": problems,
        "passed": not problems,
    }


def _published(data: RunData) -> dict[str, Any]:
    per_node = {}
    for node, items in sorted(data.by_node.items()):
        per_node[node] = {"ok": sum(1 for i in items if i.ok), "fail": sum(1 for i in items if not i.ok)}
    ok = sum(v["ok"] for v in per_node.values())
    span = (data.t_end - data.t0) if data.t0 and data.t_end else None
    return {"nodes": per_node, "ok": ok, "fail": sum(v["fail"] for v in per_node.values()),
            "seconds": round(span, 1) if span else None}


def _faults(data: RunData) -> list[dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {}
    for n, f in enumerate(data.config["faults"], 1):
        rows[n] = {"n": n, "at": f["at"], "kind": f["kind"], "params": f["params"]}
    for e in data.events:
        if e["event"] != "fault":
            continue
        row = rows.setdefault(e["n"], {"n": e["n"], "kind": e["kind"]})
        if e["phase"] == "begin":
            row["began"] = round(e["t"] - (data.t0 or e["t"]), 2)
        else:
            row["took"] = e.get("took")
            for key in ("pid", "new_pid"):
                if key in e:
                    row[key] = e[key]
    return [rows[n] for n in sorted(rows)]


def _processes(data: RunData) -> dict[str, Any]:
    out: dict[str, Any] = collections.defaultdict(lambda: {"started": 0, "killed": 0, "ended": collections.Counter()})
    for p in data.processes.values():
        row = out[p["role"]]
        row["started"] += 1
        if p["how"] == "killed":
            row["killed"] += 1
        if p["how"]:
            row["ended"][p["how"]] += 1
    return {role: {**v, "ended": dict(v["ended"])} for role, v in out.items()}


# ---------------------------------------------------------------------- takeovers

def takeovers(data: RunData) -> list[dict[str, Any]]:
    """For each SIGKILL of a process that was running persistent hooks: how long until
    another process ran each of them (its first line after the kill; informational,
    bounded below by the gap between two items of the node, 0.1 s at 50 items/s)."""
    out = []
    kills = sorted((p["end"], pid, p["role"]) for pid, p in data.processes.items()
                   if p["how"] == "killed" and p["role"] in ("kernel", "service") and p["end"] is not None)
    for t_kill, pid, role in kills:
        for hook in data.hooks:
            if not hook["persistent"]:
                continue
            runs = data.logs[hook["name"]]
            before = [r for r in runs if r.t <= t_kill]
            if not before or before[-1].pid != pid:
                continue  # it did not run this hook then
            after = next((r for r in runs if r.t > t_kill and r.pid != pid), None)
            out.append({"t": round(t_kill - (data.t0 or 0), 1), "role": role, "pid": pid, "hook": hook["name"],
                        "by": after.pid if after else None,
                        "by_role": data.processes.get(after.pid, {}).get("role") if after else None,
                        "seconds": round(after.t - t_kill, 2) if after else None})
    return out


# ---------------------------------------------------------------------- RSS

def rss_figures(data: RunData) -> dict[str, Any]:
    samples = _jsonl(data.dir / "rss.jsonl")
    by_role: dict[str, dict[int, list[dict[str, Any]]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    for s in samples:
        by_role[s["role"]][s["pid"]].append(s)
    t0 = data.t0 or (samples[0]["t"] if samples else 0)
    figures: dict[str, Any] = {"roles": {}, "curve": []}
    for role, pids in by_role.items():
        longest = max(pids.values(), key=lambda ss: ss[-1]["t"] - ss[0]["t"])
        span = longest[-1]["t"] - longest[0]["t"]
        warm = min(60.0, span * 0.2)
        after = [s for s in longest if s["t"] - longest[0]["t"] >= warm] or longest
        cpu = sum(ss[-1]["cpu"] - ss[0]["cpu"] for ss in pids.values())
        figures["roles"][role] = {
            "processes": len(pids),
            "longest_pid": longest[0]["pid"],
            "longest_minutes": round(span / 60, 1),
            "warm_mib": round(after[0]["rss"] / 2**20, 1),
            "end_mib": round(longest[-1]["rss"] / 2**20, 1),
            "growth_mib": round((longest[-1]["rss"] - after[0]["rss"]) / 2**20, 1),
            "max_mib": round(max(s["rss"] for ss in pids.values() for s in ss) / 2**20, 1),
            "cpu_seconds": round(cpu, 1),
        }
    if samples:
        last = samples[-1]["t"]
        points = 12
        step = max(10.0, (last - t0) / points)
        k = 0
        while t0 + k * step <= last + 1:
            at = t0 + k * step
            row: dict[str, Any] = {"t": round(at - t0)}
            for role in sorted(by_role):
                near = [s for s in samples if s["role"] == role and abs(s["t"] - at) <= 6]
                row[role] = round(near[0]["rss"] / 2**20, 1) if near else None
            figures["curve"].append(row)
            k += 1
    return figures


# ---------------------------------------------------------------------- tracebacks

def tracebacks(run_dir: Path) -> list[dict[str, Any]]:
    """Every Python traceback in the logs (one entry per distinct last line, with its
    count and files), and Prosody's error lines."""
    found: dict[str, dict[str, Any]] = {}
    logs = Path(run_dir) / "logs"
    for path in sorted(logs.iterdir()) if logs.exists() else []:
        if path.suffix == ".jsonl":
            continue
        lines = path.read_text(errors="replace").splitlines()
        if path.name.startswith("prosody"):
            for line in lines:
                if "\terror\t" in line or "traceback" in line.lower():
                    key = "prosody: " + line.split("\t", 1)[-1][:200]
                    entry = found.setdefault(key, {"last_line": key, "count": 0, "files": set(), "first": line})
                    entry["count"] += 1
                    entry["files"].add(path.name)
            continue
        for i, line in enumerate(lines):
            if "Traceback (most recent call last)" not in line:
                continue
            block = [line]
            for nxt in lines[i + 1: i + 200]:
                block.append(nxt)
                if nxt and not nxt.startswith((" ", "\t", "Traceback")) and not nxt.startswith("During handling") \
                        and not nxt.startswith("The above exception"):
                    break
            last = block[-1].strip()[:200]
            entry = found.setdefault(last, {"last_line": last, "count": 0, "files": set(),
                                            "first": "\n".join(block[-8:])})
            entry["count"] += 1
            entry["files"].add(path.name)
    return [{**v, "files": sorted(v["files"])} for v in found.values()]


def summary_lines(result: dict[str, Any]) -> Iterable[str]:
    """A short text summary (printed at the end of a run)."""
    pub = result["published"]
    yield (f"published {pub['ok']} items acknowledged ({pub['fail']} unanswered) in {pub['seconds']} s; "
           f"{len(result['faults'])} faults")
    for v in result["hooks"]:
        extra = ""
        if not v["persistent"]:
            extra = (f", {v['incarnations']} kernels ({v['killed_incarnations']} killed), "
                     f"lost with a killed kernel {v['lost_with_killed_kernel']}, tail {v['tail_at_kernel_end']}, "
                     f"stalled {v['stalled']}")
        yield (f"  {v['name']:<5} {v['node']:<3} expected {v['expected']:>6} ran {v['ran']:>6} lost {v['lost']} "
               f"dup {v['duplicates_explained']}+{v['duplicates_unexplained']} order {v['order_violations']} "
               f"gaps {v['server_gap']}/{v['gaps_reported']} dropped {v['dropped_reported']} failed {v['failed_reported']} "
               f"early {v['early']}"
               f"{extra}: {'ok' if v['passed'] else 'FAIL'}")
    for role, r in sorted(result["rss"]["roles"].items()):
        yield (f"  RSS {role:<9} {r['processes']} process(es), longest {r['longest_minutes']} min: "
               f"{r['warm_mib']} -> {r['end_mib']} MiB ({r['growth_mib']:+} MiB), max {r['max_mib']} MiB")
    delays = [t["seconds"] for t in result.get("takeovers", []) if t["seconds"] is not None]
    if delays:
        yield (f"  takeovers after a SIGKILL: {len(delays)}, in {min(delays)}-{max(delays)} s "
               f"(median {sorted(delays)[len(delays) // 2]} s)")
    yield f"  tracebacks: {sum(t['count'] for t in result['tracebacks'])} ({len(result['tracebacks'])} distinct)"
    for failure in result["failures"]:
        yield f"FAIL {failure}"
    yield "PASSED" if result["passed"] else "FAILED"

