"""The table as HTML text, from plain data: summaries, triggers, the session's figures.

Pure functions: no widgets, no loop, no I/O, so each is tested without a kernel
(``tests/test_table_render.py``). Everything that comes from the network (item ids,
payloads, publisher JIDs, error texts, the account's JID) and every hook's text (ids,
nodes, code) reaches the page as text: each piece is passed through :func:`html.escape`
here, where it is put in markup, and nowhere else.
"""

from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..formatting import ago, arg_text, seconds, shorten
from ..logs import LogEntry, printable
from ..states import Outcome, SessionState
from ..trigger import payload_text as trigger_payload_text
from .style import COLUMNS, STATE_CLASSES

if TYPE_CHECKING:
    from ..trigger import Trigger

__all__ = [
    "FILTER_KEYS",
    "AccountLine",
    "Header",
    "OwnerRuns",
    "arg_cell",
    "cell",
    "count_html",
    "filter_terms",
    "group_html",
    "head_cells",
    "header_html",
    "last_run",
    "matches",
    "page_label",
    "payload_text",
    "search_fields",
    "static_cells",
    "stats_html",
    "trigger_detail_html",
    "trigger_row_html",
    "trigger_row_title",
    "triggers_head_html",
    "triggers_html",
    "warning_shown",
]

#: A hook's summary (:class:`~pubsub_hook_magic.summary.HookSummary`), read as a mapping.
Summary = Mapping[str, Any]
#: Seconds the header shows the last warning the extension or slixmpp logged (unless
#: dismissed, or about a hook that is gone).
WARNING_SHOWN = 300.0
#: Seconds the message line shows what a button's command said (unless dismissed).
MESSAGE_SHOWN = 60.0
#: The message line of a table without hooks.
NO_HOOK = "<i>No hook found.</i>"
_TYPE_NAMES = {"python": "module", "python_file": "file", "python_code": "code", "python_function": "function"}
#: Outcomes of a trigger that did not run the hook (the "last" column skips them).
_NOT_RUN = {Outcome.SKIPPED, Outcome.DROPPED, Outcome.GAP}
_TAGS = re.compile(r"<[^>]*>")
#: A log message about one hook starts "hook ID …" (runner, engine, catch-up).
_ABOUT_HOOK = re.compile(r"^hook ([0-9A-Za-z_-]+)\b")
_esc = html.escape


def cell(text: str, title: str | None = None, cls: str = "") -> str:
    """One cut-with-an-ellipsis cell (escaped); ``title`` is its full text on hover."""
    hover = title if title is not None else text
    return f"<span class='phm-c {cls}' title='{_esc(hover, quote=True)}'>{_esc(text)}</span>"


def _clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


# ---------------------------------------------------------------------- the header


@dataclass(frozen=True, slots=True)
class AccountLine:
    """One account's session, for a table of several accounts."""

    state: str
    jid: str | None = None
    #: Why the session failed (shown when ``state`` is ``failed``).
    error: str | None = None
    hooks: int = 0


@dataclass(frozen=True, slots=True)
class Header:
    """What the header line shows: the session, and totals over the installed hooks."""

    state: str
    jid: str | None = None
    #: Why the session failed (shown when ``state`` is ``failed``).
    error: str | None = None
    hooks: int = 0
    triggers: int = 0
    errors: int = 0
    #: Dead letters: items that still failed after their retries.
    failed: int = 0
    #: The last warning logged (shown for :data:`WARNING_SHOWN` seconds).
    warning: LogEntry | None = None
    #: Every account, when the table shows several: the header then gives each one's
    #: state instead of ``state``, ``jid`` and ``error``.
    accounts: tuple[AccountLine, ...] = ()
    #: The installed hooks' ids (None: not known): a warning about another hook (one
    #: deleted since, a temporary hook of an old session) is not shown.
    hook_ids: Collection[str] | None = None


def warning_shown(header: Header, now: float, dismissed: float = float("-inf")) -> LogEntry | None:
    """The warning the header shows: the last one, if logged less than
    :data:`WARNING_SHOWN` seconds ago, after the table's messages were last dismissed
    (``dismissed``), and not about a hook that is gone."""
    last = header.warning
    if last is None or last.level < logging.WARNING:
        return None
    if now - last.created >= WARNING_SHOWN or last.created <= dismissed:
        return None
    about = _ABOUT_HOOK.match(last.message)
    if about and header.hook_ids is not None and about.group(1) not in header.hook_ids:
        return None
    return last


def _session_html(header: Header) -> str:
    jid = _esc(header.jid or "")
    state = header.state
    if state == SessionState.CONNECTED:
        return f"<b class='phm-ok'>connected</b> as {jid}"
    if state == SessionState.RECONNECTING:
        return f"<b class='phm-warn'>reconnecting</b> as {jid}…"
    if state == SessionState.FAILED:
        return f"<b class='phm-err'>failed</b>: {_esc(header.error or '')}"
    return f"<b>{_esc(str(state))}</b>"


def _account_html(account: AccountLine) -> str:
    """One account's state in the header of a table of several accounts."""
    jid = _esc(account.jid or "")
    state = account.state
    if state == SessionState.CONNECTED:
        return f"<b class='phm-ok'>connected</b> as {jid}"
    if state == SessionState.RECONNECTING:
        return f"<b class='phm-warn'>reconnecting</b> {jid}…"
    if state == SessionState.FAILED:
        return f"<b class='phm-err'>failed</b> {jid}: {_esc(account.error or '')}"
    return f"<b>{_esc(str(state))}</b> {jid}"


def header_html(header: Header, now: float, dismissed: float = float("-inf")) -> str:
    """The header: the session's state (each account's, when several) and totals, and
    the last recent warning (:func:`warning_shown`), each one line cut with an ellipsis
    and whole on hover."""
    errors = header.errors
    if len(header.accounts) > 1:
        sessions = " · ".join(_account_html(a) for a in header.accounts)
    else:
        sessions = _session_html(header)
    totals = (
        f"{sessions} — {header.hooks} hook(s), {header.triggers} trigger(s), "
        f"<span class='{'phm-err' if errors else ''}'>{errors} error(s)</span>"
        + (f", <span class='phm-err'>{header.failed} failed item(s)</span>" if header.failed else "")
    )
    plain = html.unescape(_TAGS.sub("", totals))
    lines = [f"<span class='phm-c' title='{_esc(plain, quote=True)}'>{totals}</span>"]
    last = warning_shown(header, now, dismissed)
    if last is not None:
        first_line = (last.message.splitlines() or [""])[0]
        text = printable(f"⚠ {_clock(last.created)} {first_line} (%hook log)")
        lines.append(cell(text, printable(last.line()), "phm-warn phm-last-log"))
    return "".join(lines)


def message_html(markup: str, shown: float, now: float) -> str:
    """The message line: ``markup`` (what a button's command said) while less than
    :data:`MESSAGE_SHOWN` seconds old, else nothing."""
    return markup if markup and now - shown < MESSAGE_SHOWN else ""


_SESSION_CLASSES: dict[str, str] = {
    SessionState.CONNECTED: "phm-ok",
    SessionState.RECONNECTING: "phm-warn",
    SessionState.FAILED: "phm-err",
}


def group_html(account: AccountLine) -> str:
    """The row above an account's hooks, in a table of several accounts."""
    hooks = f"{account.hooks} hook(s)" if account.hooks else "no hook"
    state = str(account.state)
    cls = _SESSION_CLASSES.get(account.state, "phm-muted")
    why = f": {account.error}" if account.state == SessionState.FAILED and account.error else ""
    title = f"account {account.jid or ''}: {state}{why}, {hooks}"
    return (
        f"<span class='phm-c' title='{_esc(title, quote=True)}'><b>{_esc(account.jid or '')}</b> "
        f"<span class='{cls}'>{_esc(state)}{_esc(why)}</span> "
        f"<small class='phm-muted'>{_esc(hooks)}</small></span>"
    )


# ---------------------------------------------------------------------- the rows


def head_cells() -> list[str]:
    """The column headers, each with its hover text (in :data:`.style.COLUMNS`' order)."""
    return [cell(name, title) for _key, name, title, _width, _min in COLUMNS]


def static_cells(summary: Summary, account: str | None = None) -> list[tuple[str, str]]:
    """The cells of a row (id, node, type, argument, stored) as ``(html, class)``
    pairs; ``account``: the hook's account, said on the id's hover (a table of several
    accounts). Only the argument's cell changes later (:func:`arg_cell`: its
    ``--where`` tag counts the filtered items)."""
    hook_type = str(summary["type"])
    stored = (
        "persistent: stored, installed again at every connect"
        if summary["persistent"]
        else "temporary: ends with the session"
    )
    return [
        (cell(summary["id"], f"hook {summary['id']} of {account}" if account else None), "phm-id"),
        (node_cell(summary), "phm-node"),
        (cell(_TYPE_NAMES.get(hook_type, hook_type), hook_type), "phm-type"),
        (arg_cell(summary), "phm-arg"),
        (cell("yes" if summary["persistent"] else "no", stored), "phm-lifetime"),
    ]


def node_cell(summary: Summary) -> str:
    """``node @ service``: when cut, the service's part first (then the node's name)."""
    node, service = str(summary["node"]), str(summary["service"])
    title = _esc(f"node {node} of {service}", quote=True)
    return (
        f"<span class='phm-c phm-split' title='{title}'>"
        f"<span class='phm-c' title='{title}'>{_esc(node)}</span>"
        f"<span class='phm-c phm-muted' title='{title}'>&nbsp;@ {_esc(service)}</span></span>"
    )


def hook_tags(summary: Summary) -> list[tuple[str, str]]:
    """What makes the hook other than "runs every publication once", as ``(tag,
    hover text)``: the events it runs on, ``--where`` (with the items it filtered out)
    and ``--retry``."""
    tags = []
    events = [str(e) for e in summary.get("events") or ("publish",)]
    if events != ["publish"]:
        others = "+".join(e for e in events if e != "publish")
        label = f"+{others}" if "publish" in events else others
        tags.append((label, f"-e {','.join(events)}: runs on {', '.join(events)}"))
    where = summary.get("where")
    if where:
        filtered = int(summary.get("filtered") or 0)
        tags.append(
            (f"where {filtered}", f"--where {where}: runs on the publications it matches; {filtered} filtered out")
        )
    retry = int(summary.get("retry") or 0)
    if retry:
        delay = seconds(float(summary.get("retry_delay") or 0))
        tags.append(
            (f"retry {retry}", f"--retry {retry}: a failed item runs again up to {retry} time(s), "
             f"first after {delay}, then doubling; then it is a failed item")
        )
    return tags


def arg_cell(summary: Summary) -> str:
    """The argument, after the hook's tags (:func:`hook_tags`); cut first, whole on hover
    with what the tags say."""
    tags = hook_tags(summary)
    text = shorten(arg_text(summary), 200)
    title = _arg_title(summary)
    if not tags:
        return cell(text, title)
    full = "; ".join([title, *(t for _, t in tags)])
    badges = "".join(f"<span class='phm-tag' title='{_esc(t, quote=True)}'>{_esc(tag)}</span>" for tag, t in tags)
    return (
        f"<span class='phm-c phm-split' title='{_esc(full, quote=True)}'>"
        f"<span class='phm-c phm-tags' title='{_esc(full, quote=True)}'>{badges}</span>"
        f"<span class='phm-c' title='{_esc(full, quote=True)}'>{_esc(text)}</span></span>"
    )


def _arg_title(summary: Summary) -> str:
    """The argument's hover text: in full (a function hook: which function)."""
    if summary["type"] == "python_function":
        return f"the function {summary['arg']}, called as {summary['arg']}(host, client, item)"
    return str(summary["arg"])


@dataclass(frozen=True, slots=True)
class OwnerRuns:
    """What the process that runs a standby hook wrote of its runs (its position files)."""

    #: Items it ran (or skipped), as its files count them.
    runs: int
    #: When it last wrote one (None: never).
    last: float | None
    #: The last item's id.
    item_id: str | None = None


def state_detail(summary: Summary) -> str:
    """Why the hook is in its state, for the state's hover text."""
    state = summary["state"]
    if state == "standby":
        return f"standby: run by {summary.get('owner') or 'another process of this account'}"
    if state == "waiting":
        names = ", ".join(summary.get("waiting_for") or ()) or "notebook names"
        return f"waiting for {names}: its items run once a cell defines them"
    if state == "retrying":
        last = summary.get("last_error") or {}
        attempt = summary.get("attempt")
        of = f" (attempt {attempt} of {summary.get('retry', 0) + 1})" if attempt else ""
        return f"retrying item {last.get('item_id') or '?'}{of}: {last.get('error') or ''}".rstrip(": ")
    if state == "broken":
        return f"broken: {summary.get('load_error') or 'its code does not load'}"
    if state == "catching up":
        return "catching up: running what was published while the session was away"
    problem = summary.get("node_problem")
    if problem:
        return f"{state}: {problem}"
    live_only = summary.get("live_only")
    if live_only:
        return f"{state}, live items only: {live_only}"
    return str(state)


def _state_cell(summary: Summary) -> str:
    state = summary["state"]
    detail = state_detail(summary)
    reload_error = summary.get("reload_error")
    if reload_error:
        return cell(f"⚠ {state}", f"{detail}; runs the previous version: {reload_error}", "phm-warn")
    return cell(str(state), detail, STATE_CLASSES.get(state, ""))


def _triggers_cell(summary: Summary, owner: OwnerRuns | None = None) -> str:
    if owner is not None:
        who = summary.get("owner") or "another process of this account"
        count = f"{owner.runs} item(s) run by {who} (its position journal): this process stands by"
        return f"<span class='phm-c phm-num phm-owners' title='{_esc(count, quote=True)}'>{owner.runs}</span>"
    triggers = summary["triggers"]
    extra = [
        f"{summary[k]} {k}" + (" (paused)" if k == "skipped" else " (queue full)")
        for k in ("skipped", "dropped")
        if summary.get(k)
    ]
    more = sum(summary.get(k) or 0 for k in ("skipped", "dropped"))
    count = f"{triggers} run(s)" + (f"; {', '.join(extra)}" if extra else "")
    return (
        f"<span class='phm-c phm-num' title='{_esc(count, quote=True)}'>{_esc(str(triggers))}"
        + (f" <small class='phm-muted'>+{more}</small>" if more else "")
        + "</span>"
    )


def _last_cell(summary: Summary, now: float, last: Trigger | None, owner: OwnerRuns | None = None) -> str:
    if owner is not None:
        who = summary.get("owner") or "another process of this account"
        if owner.last is None:
            return cell("never", f"{who} has run no item yet", "phm-owners")
        item = f" (item {owner.item_id})" if owner.item_id else ""
        return cell(ago(owner.last, now), f"{who} ran its last item{item} at {_clock(owner.last)}", "phm-owners")
    if last is None:
        return cell("never", "no run yet")
    title = (
        f"last run at {_clock(last.received)} ({last.outcome}, {seconds(last.duration)}); "
        f"mean {seconds(summary['mean_duration'])}"
    )
    return cell(ago(last.received, now), title)


def stats_html(summary: Summary, now: float, last: Trigger | None = None, owner: OwnerRuns | None = None) -> str:
    """The live cells of a row (state, triggers, errors, last), as one HTML value (one
    message when any changes). ``last``: the last trigger that ran the hook; ``owner``:
    for a hook in standby here, what its owner ran (its counts, in italics)."""
    errors = summary["errors"]
    return (
        "<div class='phm-stats-row'>"
        + _state_cell(summary)
        + _triggers_cell(summary, owner)
        + (
            cell("-", "its owner's errors are in the owner's log", "phm-num phm-owners")
            if owner is not None
            else cell(str(errors), f"{errors} failed run(s)", "phm-num" + (" phm-err" if errors else ""))
        )
        + _last_cell(summary, now, last, owner)
        + "</div>"
    )


def pause_button(paused: bool) -> tuple[str, str]:
    """The pause button's ``(icon, tooltip)``: it does what its icon says."""
    if paused:
        return "play", "resume this hook"
    return "pause", "pause this hook (it skips items, and counts them)"


def failed_tooltip(hook_id: str, failed: int) -> str:
    """The hover text of the failed-items button."""
    if failed:
        return f"run the hook again on its {failed} failed item(s) (%hook retry {hook_id})"
    return "no failed item (items that still fail after their retries)"


def last_run(triggers: Iterable[Trigger]) -> Trigger | None:
    """The last trigger that ran the hook (not one it skipped, dropped or a gap)."""
    return next((t for t in reversed(list(triggers)) if t.outcome not in _NOT_RUN), None)


# ---------------------------------------------------------------------- the pager and the filter box

#: What the filter box matches, in the order of :func:`search_fields`; ``key:text``
#: matches one of them only (``state:paused``, ``node:sensors/``).
FILTER_KEYS = ("id", "node", "service", "type", "arg", "account", "state")
_FILTER_ALIASES = {"argument": "arg", "jid": "account", "profile": "account"}
#: The message line of a table whose filter matches no hook.
NO_MATCH = "<i>No hook matches the filter.</i>"


def search_fields(
    hook_id: str, node: str, service: str, hook_type: str, arg: str, account: str | None, state: str
) -> tuple[str, ...]:
    """A hook's texts the filter box matches (lower case, in :data:`FILTER_KEYS`'
    order); the type both as stored (``python_code``) and as shown (``code``)."""
    shown_type = _TYPE_NAMES.get(hook_type, hook_type)
    return (
        hook_id.lower(), node.lower(), service.lower(), f"{hook_type} {shown_type}".lower(), arg.lower(),
        (account or "").lower(), state.lower(),
    )


def filter_terms(query: str) -> tuple[tuple[int | None, str], ...]:
    """The filter box's text as terms, each ``(field index or None: any field, text)``:
    words separated by spaces, all of which a hook must match (substrings, any case);
    ``state:paused`` matches the state only. An unknown ``word:`` prefix is part of
    the text (a node may be called ``a:b``)."""
    terms: list[tuple[int | None, str]] = []
    for word in query.lower().split():
        key, colon, text = word.partition(":")
        key = _FILTER_ALIASES.get(key, key)
        if colon and key in FILTER_KEYS:
            if text:
                terms.append((FILTER_KEYS.index(key), text))
        else:
            terms.append((None, word))
    return tuple(terms)


def matches(terms: Sequence[tuple[int | None, str]], fields: Sequence[str]) -> bool:
    """Whether a hook's :func:`search_fields` match every term of :func:`filter_terms`."""
    for index, text in terms:
        if index is None:
            if not any(text in f for f in fields):
                return False
        elif text not in fields[index]:
            return False
    return True


def count_html(first: int, shown: int, matched: int, total: int, filtered: bool) -> str:
    """``showing 51-100 of 4,212 (filtered from 5,000)`` (an en dash): the hooks on the page (1-based,
    ``first`` 0-based), of those the filter matches, of all."""
    if matched == 0:
        text = f"no hook matches (of {total:,})" if filtered else "no hook"
    else:
        text = f"showing {first + 1:,}\u2013{first + shown:,} of {matched:,}"
        if filtered:
            text += f" (filtered from {total:,})"
    return cell(text, cls="phm-muted")


def page_label(page: int, pages: int) -> str:
    """``page 3 of 100`` (``page`` 0-based)."""
    return cell(f"page {page + 1:,} of {max(pages, 1):,}")


# ---------------------------------------------------------------------- the details panel


def payload_text(item: Any, limit: int = 400) -> str:
    """The payload of an item stanza as (unescaped) XML text, shortened."""
    text = trigger_payload_text(item) or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


_PANEL_COLUMNS = (
    ("time", "when the item arrived (hover: how it ran: live, catch-up, replay, retry)"),
    ("item", "the item's id"),
    ("publisher", "who published it, as the server said (some servers do not say)"),
    ("duration", "how long the hook ran"),
    ("outcome", "ok, error, timeout, skipped…; a retried run shows its attempt"),
    ("payload", "the item's payload, as XML"),
)


def _attempt(t: Trigger, retry: int) -> tuple[str, str]:
    """A retried run's mark and what it means ("" for a first run not retried)."""
    if t.attempt <= 1 and not t.retried:
        return "", ""
    of = f" of {retry + 1}" if retry else ""
    then = "; it failed and runs again" if t.retried else ""
    return f"#{t.attempt}", f"attempt {t.attempt}{of}{then}"


def _trigger_cells(t: Trigger, retry: int = 0) -> list[tuple[str, str, str]]:
    when = _clock(t.received)
    outcome = str(t.outcome) + (f": {t.error}" if t.error else "")
    mark, attempt = _attempt(t, retry)
    payload = payload_text(t.payload, 400)
    cls = "phm-err" if t.outcome in (Outcome.ERROR, Outcome.TIMEOUT) else ""
    return [
        (when, f"{t.kind} at {when}", ""),
        (t.item_id or "-", t.item_id or "no item id", ""),
        (t.publisher or "-", t.publisher or "the server did not say who published it", ""),
        (seconds(t.duration), seconds(t.duration), ""),
        (f"{mark} {outcome}" if mark else outcome, f"{attempt}: {outcome}" if mark else outcome, cls),
        (payload, payload, ""),
    ]


def triggers_head_html(summary: Summary) -> str:
    """The triggers panel's title and column headers."""
    title = (
        f"Recent triggers of hook {_esc(summary['id'])} "
        f"({_esc(summary['node'])} @ {_esc(summary['service'])}): click one to see it whole"
    )
    head = "".join(cell(h, t) for h, t in _PANEL_COLUMNS)
    return f"<b>{title}</b><div class='phm-tr phm-tr-head'>{head}</div>"


def trigger_row_html(t: Trigger, retry: int = 0) -> str:
    """One trigger as a row of the panel (its cells cut, whole on hover); ``retry``: the
    hook's ``--retry`` (a retried run says "attempt 2 of 4")."""
    cells = "".join(cell(text, full, c) for text, full, c in _trigger_cells(t, retry))
    return f"<div class='phm-tr'>{cells}</div>"


def trigger_row_title(t: Trigger, retry: int = 0) -> str:
    """The row's hover text (plain): what it shows, in full."""
    when, item, publisher, duration, outcome, _payload = _trigger_cells(t, retry)
    return f"{when[1]}: item {item[0]} from {publisher[0]}, {duration[0]}, {outcome[1]} (click: see it whole)"


def triggers_html(summary: Summary, triggers: Sequence[Trigger]) -> str:
    """The recent triggers of one hook as escaped HTML (newest first): long cells cut,
    whole on hover. (The table shows the same rows, each clickable.)"""
    if not triggers:
        return f"{triggers_head_html(summary)}<div>No trigger yet.</div>"
    retry = int(summary.get("retry") or 0)
    return triggers_head_html(summary) + "".join(trigger_row_html(t, retry) for t in reversed(triggers))


def trigger_order(triggers: Sequence[Trigger]) -> list[int]:
    """The panel's rows, newest first, as indexes into ``triggers``."""
    return list(range(len(triggers) - 1, -1, -1))


def trigger_options(triggers: Sequence[Trigger]) -> list[tuple[str, int]]:
    """The triggers as ``(label, index)``, newest first (plain-text labels)."""
    return [
        (f"{_clock(t.received)} {shorten(t.item_id or '-', 30)} {t.outcome}", i)
        for i, t in reversed(list(enumerate(triggers)))
    ]


def default_pick(triggers: Sequence[Trigger]) -> int | None:
    """The trigger picked first: the last error, else the newest."""
    errors = [i for i, t in enumerate(triggers) if t.outcome == Outcome.ERROR]
    if errors:
        return errors[-1]
    return len(triggers) - 1 if triggers else None


def trigger_detail_html(trigger: Trigger | None) -> str:
    """One trigger in full: its payload and, for an error, its traceback (escaped)."""
    if trigger is None:
        return ""
    attempt = f" (attempt {trigger.attempt})" if trigger.attempt > 1 else ""
    publisher = f" from <code>{_esc(trigger.publisher)}</code>" if trigger.publisher else ""
    parts = [
        f"<b>item</b> <code>{_esc(trigger.item_id or '-')}</code>{publisher} — "
        f"{_esc(trigger.outcome)}{attempt}"
    ]
    payload = payload_text(trigger.payload, 4000)
    if payload:
        parts.append(f"<div><b>payload</b></div><pre class='phm-payload'>{_esc(payload)}</pre>")
    if trigger.traceback:
        parts.append(f"<div><b>traceback</b></div><pre class='phm-traceback'>{_esc(trigger.traceback)}</pre>")
    elif trigger.error:
        parts.append(f"<pre>{_esc(trigger.error)}</pre>")
    return "".join(parts)


def error_html(error: BaseException) -> str:
    """A failed button's command, for the table's message line."""
    return f"<span class='phm-err'>{_esc(str(error))}</span>"


def said_html(text: str) -> str:
    """What a button's command has to say, for the table's message line."""
    return _esc(text)
