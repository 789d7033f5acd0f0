"""Plain-text renderings of hooks and status, for terminals and ``-O text``."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .states import SessionState

__all__ = [
    "JSON_INDENTED_UP_TO",
    "TEXT_FALLBACK_ROWS",
    "accounts_status_text",
    "ago",
    "arg_text",
    "failed_text",
    "hooks_json",
    "hooks_text",
    "retry_summary",
    "seconds",
    "shorten",
    "status_text",
]


def shorten(text: str, width: int = 40) -> str:
    """One line of at most ``width`` characters, with an ellipsis when cut."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def ago(timestamp: float | None, now: float | None = None) -> str:
    """``3 s ago``, ``5 min ago``…; ``never`` for None."""
    if timestamp is None:
        return "never"
    delta = max(0.0, (now or time.time()) - timestamp)
    if delta < 60:
        return f"{delta:.0f} s ago"
    if delta < 3600:
        return f"{delta / 60:.0f} min ago"
    if delta < 86400:
        return f"{delta / 3600:.0f} h ago"
    return f"{delta / 86400:.0f} d ago"


def seconds(value: float | None) -> str:
    """A duration for people: ``0.4 ms``, ``12 ms``, ``1.5 s``; ``-`` for None."""
    if value is None:
        return "-"
    if value < 0.01:
        return f"{value * 1000:.1f} ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f} s"


def arg_text(summary: Mapping[str, Any]) -> str:
    """A hook's argument as listed: a function hook's name as a call, ``on_news()``;
    the others' module, file or code as they are."""
    arg = str(summary["arg"])
    return f"{arg}()" if summary.get("type") == "python_function" and arg else arg


#: Up to this many hooks, ``-O json`` indents every key of every hook (for people);
#: more are one hook per line (for tools, and fast: thousands of hooks in tens of ms).
JSON_INDENTED_UP_TO = 100
#: The hooks the text beside a live table shows (what a front end without widgets,
#: or nbconvert, shows instead): the first ones.
TEXT_FALLBACK_ROWS = 100
_encode = json.JSONEncoder(ensure_ascii=False).encode


def hooks_json(summaries: Sequence[Mapping[str, Any]]) -> str:
    """The hooks as a stable JSON array (one object per hook, the keys of
    :class:`~.summary.HookSummary`): indented up to :data:`JSON_INDENTED_UP_TO`
    hooks, else one hook per line (the same JSON to a parser; Python's indenting
    encoder takes ~0.6 s for 5,000 hooks, its C encoder ~0.08 s)."""
    if len(summaries) <= JSON_INDENTED_UP_TO:
        return json.dumps(list(summaries), indent=2, ensure_ascii=False)
    if not summaries:
        return "[]"
    return "[\n" + ",\n".join(["  " + _encode(s) for s in summaries]) + "\n]"


_COLUMNS = ("id", "service", "node", "type", "argument", "stored", "state", "runs", "errors", "last")
#: The listing's width: a notebook's output area shows 100 columns without wrapping.
WIDTH = 100
#: Columns that give up width when a row is wider than :data:`WIDTH`, in this order
#: (argument first, service next), each down to its minimum.
_SHRINK = (("argument", 16), ("service", 12), ("node", 10), ("argument", 8), ("service", 8), ("node", 6),
           ("account", 8))


def _fit(columns: Sequence[str], rows: list[list[str]], width: int = WIDTH) -> list[int]:
    """Column widths whose line (two spaces between columns) fits ``width``: the
    columns of :data:`_SHRINK` give up width, in its order; their cut cells get an
    ellipsis (the rows are changed in place)."""
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    for name, least in _SHRINK:  # (a column may come twice: to a first minimum, then less)
        over = sum(widths) + 2 * (len(widths) - 1) - width
        if over <= 0:
            break
        if name not in columns:
            continue
        i = columns.index(name)
        widths[i] = w = min(widths[i], max(least, len(name), widths[i] - over))
        for r in rows:
            if len(r[i]) > w:
                r[i] = shorten(r[i], w)
    return widths


def hooks_text(summaries: Sequence[Mapping[str, Any]], accounts: bool = False) -> str:
    """The hooks as an aligned text table (persistent first), at most :data:`WIDTH`
    columns wide: one line per hook, then a line for what a line cannot hold (the
    whole argument when it was cut, the events, ``--where`` and ``--retry``, problems),
    wrapped; ``No hook found.`` if none. With ``accounts``, a first column: each
    hook's ``account`` (several connected)."""
    if not summaries:
        return "No hook found."
    now = time.time()
    columns = (("account",) if accounts else ()) + _COLUMNS
    rows = [
        [
            *((s.get("account") or "-",) if accounts else ()),
            s["id"],
            s["service"],
            s["node"],
            s["type"],
            shorten(arg_text(s), 60),
            "yes" if s["persistent"] else "no",
            s["state"],
            str(s["triggers"]),
            str(s["errors"]),
            ago(s["last_trigger"]["received"], now) if s["last_trigger"] else "never",
        ]
        for s in summaries
    ]
    widths = _fit(columns, rows)
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    notes: list[str] = []
    at = {name: columns.index(name) for name in ("service", "node", "argument")}
    for s, r in zip(summaries, rows, strict=True):
        whole = " ".join(arg_text(s).split())
        if r[at["service"]] != s["service"] or r[at["node"]] != s["node"]:
            notes.append(f"hook {s['id']} is on node {s['node']} of {s['service']}, and runs: {whole}")
        elif r[at["argument"]] != whole:
            notes.append(f"hook {s['id']} runs: {whole}")
        note = _events_note(s)
        if note:
            notes.append(f"hook {s['id']} runs{note}")
    lines += notes
    for s in summaries:
        if s.get("node_problem"):
            lines.append(f"hook {s['id']} is {s['state']}: {s['node_problem']}")
        if s.get("live_only"):
            lines.append(f"hook {s['id']} runs live items only: {s['live_only']}")
        if s.get("load_error"):
            lines.append(f"hook {s['id']} is broken: {s['load_error']}")
        if s.get("reload_error"):
            lines.append(f"hook {s['id']} runs the previous version: {s['reload_error']}")
        failed = s.get("last_error")
        if failed:
            lines.append(
                f"hook {s['id']} last failed on item {failed['item_id']} "
                f"({ago(failed['received'], now)}): {failed['error']}"
            )
        if s.get("attempt") and failed:
            lines.append(
                f"hook {s['id']} is retrying item {failed['item_id']}: attempt "
                f"{s['attempt']} of {s['retry'] + 1}"
            )
        if s.get("failed") or s.get("failed_dropped"):
            dropped = f" ({s['failed_dropped']} older dropped)" if s.get("failed_dropped") else ""
            lines.append(f"hook {s['id']} has {s['failed']} failed item(s){dropped}: %hook failed {s['id']}")
    return "\n".join(lines[: len(rows) + 1] + _wrapped(lines[len(rows) + 1 :]))


def _wrapped(notes: Sequence[str], width: int = WIDTH) -> list[str]:
    """Each note in lines of at most ``width`` columns, its next lines indented (as
    :func:`textwrap.wrap`; a note of single-spaced words short enough, the common
    case, without it: thousands of notes stay fast)."""
    import textwrap

    out: list[str] = []
    indent = "    "
    for note in notes:
        if len(note) <= width:
            out.append(note)
            continue
        words = note.split(" ")
        if any(not w or len(w) > width - len(indent) or not w.isprintable() for w in words):
            out += textwrap.wrap(note, width, subsequent_indent=indent, break_on_hyphens=False) or [""]
            continue
        line = words[0]
        for word in words[1:]:
            if len(line) + 1 + len(word) <= width:
                line += " " + word
            else:
                out.append(line)
                line = indent + word
        out.append(line)
    return out


def _events_note(summary: Mapping[str, Any]) -> str:
    """`` on retract`` / ``, where EXPR (3 filtered)`` / ``, --retry 3 (…)``: what
    fires the hook, when it is not every publication once."""
    events = summary.get("events") or ["publish"]
    parts = [] if list(events) == ["publish"] else [f" on {','.join(events)}"]
    if summary.get("where"):
        parts.append(f" where {summary['where']} ({summary.get('filtered', 0)} filtered)")
    if summary.get("retry"):
        delay = seconds(float(summary.get("retry_delay") or 0))
        parts.append(f" with --retry {summary['retry']} ({delay} apart, then doubling)")
    return ",".join(parts)


def failed_text(hook_id: str, letters: Sequence[dict[str, Any]]) -> str:
    """``%hook failed ID``: one line per failed item, oldest first: id, attempts, last
    failure, error."""
    if not letters:
        return f"Hook {hook_id} has no failed item."
    now = time.time()
    rows = [
        (
            str(d["item_id"]),
            str(d["attempts"]),
            ago(d["last_failed"], now),
            shorten(d["error"] or d["outcome"], 100),
        )
        for d in letters
    ]
    columns = ("item", "attempts", "last failed", "error")
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def retry_summary(hook_id: str, outcomes: Sequence[str], failed_command: str = "%hook failed") -> str:
    """What a retry of hook ``hook_id``'s failed items did, from each run's outcome:
    ``3 failed item(s) of hook ab12cd ran again: 1 succeeded (removed), 2 failed again
    (kept; %hook failed ab12cd)``."""
    ok = sum(1 for outcome in outcomes if outcome == "ok")
    again = len(outcomes) - ok
    line = f"{len(outcomes)} failed item(s) of hook {hook_id} ran again: {ok} succeeded (removed)"
    if again:
        line += f", {again} failed again (kept; {failed_command} {hook_id})"
    return line


def status_text(status: dict[str, Any]) -> str:
    """``%hook status`` for people."""
    if status["state"] == SessionState.DISCONNECTED and not status["jid"]:
        return "Not connected. Use %hook connect JID."
    lines = [f"{status['state']} as {status['jid']}"]
    if status["server"]:
        lines[0] += f" via {status['server']}" + ("" if status["tls"] else " (no TLS)")
    if status.get("last_error"):
        lines.append(status["last_error"])
    if status["connected_since"]:
        lines.append(
            f"session up since {ago(status['connected_since'])}"
            + (f", {status['reconnects']} reconnection(s)" if status.get("reconnects") else "")
            + (f" ({status['resumptions']} resumed: no login, no catch-up)" if status.get("resumptions") else "")
        )
    lines.append(
        f"{status['hooks']} hook(s) ({status['persistent']} persistent) on "
        f"{status['nodes']} node(s); {status['events_received']} event(s) received, "
        f"{status['triggers']} trigger(s), {status['errors']} error(s)"
    )
    if status["store"]:
        lines.append(f"persistent hooks stored in {status['store']}")
    for problem in status.get("node_problems") or ():
        lines.append(f"node {problem['node']} on {problem['service']}: {problem['state']}: {problem['reason']}")
    for node in status.get("live_only") or ():
        lines.append(f"node {node['node']} on {node['service']}: live items only: {node['reason']}")
    lines.extend(f"warning: {w}" for w in status.get("warnings") or ())
    return "\n".join(lines)


def accounts_status_text(statuses: Sequence[dict[str, Any]], default: str | None) -> str:
    """``%hook status`` with several accounts: a block each (as :func:`status_text`),
    separated by a blank line, the default account's first line marked."""
    blocks = []
    for status in statuses:
        block = status_text(status)
        if default is not None and status["jid"] == default:
            first, _, rest = block.partition("\n")
            block = f"{first} (default)" + (f"\n{rest}" if rest else "")
        blocks.append(block)
    return "\n\n".join(blocks)
