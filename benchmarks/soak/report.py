"""``benchmarks/SOAK.md``: the last full soak run, written from the checker's result."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

SOAK_MD = Path(__file__).resolve().parents[1] / "SOAK.md"

#: Bugs the soak found, each with the regression test that covers it (kept by hand).
BUGS: list[tuple[str, str, str]] = [
    (
        "After any reconnection (TCP cut, server restart), hooks on the account's own PEP nodes "
        "got no live item any more, in the kernel and in `pubsub-hook run`, until the next "
        "reconnection's catch-up: slixmpp keeps disco features per full JID, the new stream has "
        "a new resource, and the unchanged `+notify` interests were not added and announced again",
        "`tests/test_soak_regressions.py::test_an_own_pep_hook_gets_live_items_after_a_reconnection`",
        "found with seed 15 (2 min); fixed in 8545f08",
    ),
    (
        "Same cause: after a reconnection a session no longer advertised that it runs persistent "
        "hooks, so another machine's session stopped warning \"items may run twice\"",
        "`tests/test_soak_regressions.py::test_another_machine_is_still_reported_after_it_reconnects`",
        "found reading the first; fixed in 8545f08 (a session keeps its resource)",
    ),
    (
        "A catch-up that failed (its request unanswered: the session was cut again 0.3 s after "
        "it was restored, between two proxy blocks) released the node's held live items into the "
        "hooks, moving their resume position past the items they had missed; the next "
        "reconnection caught up from there: 181 items of a persistent PEP hook never ran",
        "`tests/test_soak_regressions.py::test_a_catch_up_that_fails_does_not_skip_the_missed_items`",
        "found with seed 7 (30 min, before the fixes); fixed in 8545f08",
    ),
    (
        "At a graceful kernel shutdown, hooks kept running while IPython emptied the notebook's "
        "namespace (its atexit handler): python_code hooks failed with NameError; a persistent "
        "hook's item failed so is dead-lettered and its position moves on, so the next owner "
        "never runs it",
        "`tests/test_soak_regressions.py::test_a_kernel_shutdown_does_not_fail_the_items_its_hooks_are_running`",
        "found with seed 7 (30 min, before the fixes); fixed in 8545f08",
    ),
    (
        "A lost session was logged with the reason of an earlier loss (\"lost (stream error: "
        "system-shutdown)\" for a SIGKILLed server; or a failed reconnection attempt's error): "
        "the last failure was never cleared when a session was restored",
        "`tests/test_soak_regressions.py::test_a_lost_session_says_why_this_time_not_why_last_time`",
        "found with seed 15 (2 min); fixed in 8545f08",
    ),
]


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    return str(value).replace("|", "\\|")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return out


def render(result: dict[str, Any], when: float | None = None) -> str:
    r = result
    m = r.get("machine", {})
    pub = r["published"]
    lines = [
        "# Soak: faults under steady load (issue 15)",
        "",
        "Written by `python -m benchmarks.soak` (see [README.md](README.md#soak-issue-15)); "
        "do not edit by hand, run it again.",
        "",
        f"**{'PASSED' if r['passed'] else 'FAILED'}**: seed **{r['seed']}**, {r['minutes']:g} minutes of "
        f"publishing at {r['rate']:g} items/s, **{len(r['faults'])} faults**; "
        f"{pub['ok']:,} items acknowledged by the server ({pub['fail']} publishes unanswered at a server "
        f"kill or stop: they may or may not be on the node, and count neither way).",
        "",
        f"Run: `{r.get('command') or 'python -m benchmarks.soak'}`, "
        f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(when or time.time()))}"
        + (f", product at commit {r['commit']}" if r.get("commit") else "") + ".",
        "",
        "Machine: " + ", ".join(
            str(x) for x in (
                m.get("os"), m.get("system"), m.get("cpu"), f"{m.get('cores')} cores",
                f"{m.get('memory_gib')} GiB", f"Python {m.get('python')}", f"Prosody {m.get('prosody')}",
                f"load average {m.get('load_at_start')} at the start, {m.get('load_at_end')} at the end",
            ) if x
        ) + ".",
        "",
        "## What ran",
        "",
        "A private Prosody with SQLite storage (`TestServer(storage=\"sqlite\")`, nodes keep "
        "5,000 items); a publisher process publishing unique numbered items round robin to "
        "three nodes of `pubsub.localhost` (s0-s2) and two PEP nodes of alice (p0, p1); "
        "alice's notebook (a real IPython kernel with `%load_ext pubsub_hook_magic`) and "
        "`pubsub-hook run` on the same account and store, both through a fault proxy "
        "(`TcpProxy`). Persistent hooks (made in the kernel with `-P`; each runs in one of "
        "the two processes, the other stands by): P-s0 (`python_file`), P-s1 (`python_file`, "
        "`async`, 5 ms in flight after its write), P-s2 (`python_code`), P-p0 (`python_file`, PEP). "
        "Temporary hooks of the kernel, made again in each new kernel: T-s0 (`python_file`), "
        "T-s1 (`python_code` with `await`), T-p1 (`python_code`, PEP). Every hook appends "
        "`PID ITEM TIME` to its own log per item; the checker reads those logs, the "
        "publisher's, and the recorded events only.",
        "",
        "## Schedule",
        "",
        "Drawn from the seed before the run (`benchmarks/soak/schedule.py`). *at*: planned "
        "seconds after publishing began; *began*: when it started (a fault waits while an "
        "earlier one on the same target is still under way); *took*: until its effect ended "
        "(a restarted kernel: connected again, temporary hooks made again).",
        "",
    ]
    rows = []
    for f in r["faults"]:
        desc = _describe(f)
        pids = ""
        if f.get("pid"):
            pids = f"pid {f['pid']}" + (f" -> {f['new_pid']}" if f.get("new_pid") else "")
        rows.append([f["n"], f"{f['at']:.1f}", f.get("began"), f["kind"], desc, f.get("took"), pids])
    lines += _table(["#", "at (s)", "began (s)", "fault", "parameters", "took (s)", "process"], rows)
    lines += ["", "## Verdicts per hook", ""]
    lines += [
        "*expected*: items acknowledged on the hook's node after it was made (for a temporary hook: "
        "in the lifetime of each kernel's copy); *lost*: expected, never run, still on the node "
        "(for temporary hooks, not counting a SIGKILLed kernel's); *dup*: runs of an item already "
        "run, explained (the item was in flight when the process running it was SIGKILLed: its "
        "last line in that hook's log) + unexplained; *order*: an item run after a newer one of its "
        "node; *gaps*: items the node had evicted before the hook could run them / gaps the "
        "product reported; *failed*: runs the product recorded as failed (the soak's hooks never raise); "
        "*early*: items published before the hook was made that ran; latency: "
        "from the server's acknowledgement to the run, seconds (catch-ups after outages included).",
        "",
    ]
    rows = []
    for v in r["hooks"]:
        rows.append([
            v["name"], v["node"] + (" (PEP)" if v["pep"] else ""), "persistent" if v["persistent"] else "temporary",
            v["kind"], v["expected"], v["ran"], v["lost"], f"{v['duplicates_explained']} + {v['duplicates_unexplained']}",
            v["order_violations"], f"{v['server_gap']} / {v['gaps_reported']}", v.get("failed_reported", 0), v["early"],
            f"{v['latency_p50']} / {v['latency_p99']} / {v['latency_max']}",
            "ok" if v["passed"] else "**FAIL**: " + "; ".join(v["problems"]),
        ])
    lines += _table(["hook", "node", "", "type", "expected", "ran", "lost", "dup", "order", "gaps",
                     "failed", "early", "latency p50 / p99 / max", "verdict"], rows)
    temp = [v for v in r["hooks"] if not v["persistent"]]
    if temp:
        lines += ["", "Temporary hooks, kernel by kernel: what a kernel had not run when it ended (its "
                  "*tail*) went with it and is not counted, nor what a SIGKILLed kernel had not run, "
                  "except the items of the tail published while its session was up and its process "
                  "running (its own log; SIGSTOPs excluded) more than 10 s before it ended: those it "
                  "should have run, and count as lost (*stalled*).", ""]
        rows = [[v["name"], v["incarnations"], v["killed_incarnations"], v["lost_with_killed_kernel"],
                 v["tail_at_kernel_end"], v.get("stalled", 0), v["dropped_reported"]] for v in temp]
        lines += _table(["hook", "kernels", "of which SIGKILLed", "not run by a SIGKILLed kernel",
                         "tail at a kernel's end", "stalled", "dropped (reported)"], rows)
    lines += ["", "## Processes", ""]
    rows = [[role, p["started"], p["killed"], ", ".join(f"{k}: {n}" for k, n in sorted(p["ended"].items()))]
            for role, p in sorted(r["processes"].items())]
    lines += _table(["role", "started", "SIGKILLed", "ends"], rows)
    took = [t for t in r.get("takeovers", [])]
    if took:
        lines += ["", "## Takeovers", "",
                  "After each SIGKILL of the process running persistent hooks: how long until another "
                  "process ran each of them (its first run after the kill; an item comes every 0.1 s "
                  "per node).", ""]
        by_kill: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for t in took:
            by_kill.setdefault((t["t"], t["role"], t["pid"]), []).append(t)
        rows = []
        for (at, role, pid), ts in by_kill.items():
            secs = [t["seconds"] for t in ts if t["seconds"] is not None]
            rows.append([at, f"{role} {pid}", len(ts), ", ".join(sorted({f"{t.get('by_role') or ''} {t['by']}".strip() for t in ts})),
                         f"{min(secs)}–{max(secs)}" if secs else "–"])
        lines += _table(["at (s)", "SIGKILLed", "hooks it ran", "taken over by", "after (s)"], rows)
        lines += ["", "A takeover waits for the standby's session: when the kill falls in a proxy block, "
                  "a server restart or a SIGSTOP of the standby, it comes after that ends (and after the "
                  "session's reconnection backoff)."]
    lines += ["", "## Memory (RSS) and CPU", "",
              "Sampled every 10 s. Growth: the longest-lived process of each role, from its "
              "first sample after warm-up (60 s, or a fifth of its life if shorter) to its last.", ""]
    rows = [[role, x["processes"], x["longest_minutes"], x["warm_mib"], x["end_mib"], f"{x['growth_mib']:+}",
             x["max_mib"], x["cpu_seconds"]] for role, x in sorted(r["rss"]["roles"].items())]
    lines += _table(["role", "processes", "longest life (min)", "after warm-up (MiB)", "at its end (MiB)",
                     "growth (MiB)", "max (MiB)", "CPU (s, all its processes)"], rows)
    curve = r["rss"]["curve"]
    if curve:
        roles = [k for k in curve[0] if k != "t"]
        lines += ["", "RSS over the run (MiB; the process of that role alive then):", ""]
        lines += _table(["t (s)", *roles], [[c["t"], *(c.get(k) for k in roles)] for c in curve])
    lines += ["", "## Tracebacks and errors in the logs", ""]
    if r["tracebacks"]:
        rows = [[t["count"], ", ".join(t["files"]), "`" + t["last_line"].replace("`", "'") + "`"] for t in r["tracebacks"]]
        lines += _table(["count", "files", "last line"], rows)
    else:
        lines.append("None: no Python traceback in any log (kernels, `pubsub-hook run`, publisher), "
                     "no error line in Prosody's.")
    lines += ["", "## Bugs the soak found", ""]
    if BUGS:
        lines += _table(["bug", "regression test", "status"], [list(b) for b in BUGS])
    else:
        lines.append("None.")
    if r["failures"]:
        lines += ["", "## Failures", ""] + [f"- {f}" for f in r["failures"]]
    return "\n".join(lines) + "\n"


def _describe(f: dict[str, Any]) -> str:
    p = f.get("params") or {}
    if f["kind"] in ("prosody-kill", "prosody-restart"):
        return f"down {p.get('down')} s"
    if f["kind"] == "proxy-block":
        return f"{p.get('seconds')} s"
    if f["kind"] == "sigstop":
        return f"{p.get('process')}, {p.get('seconds')} s"
    if f["kind"] == "burst":
        return f"{p.get('count')} items on {p.get('node')}"
    return ""


def write(result: dict[str, Any], path: Path = SOAK_MD) -> Path:
    path.write_text(render(result), encoding="utf-8")
    return path
