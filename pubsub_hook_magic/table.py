"""The live hooks table: ipywidgets showing every hook and its recent triggers.

One :class:`TableHub` per manager owns every displayed :class:`HookTable` and the one
lock under which widgets change. Runs and changes only mark rows dirty; a flush on the
session's loop applies them, at once on an idle table (leading edge) and then at most
every ``interval`` seconds, sending only cells whose text changed (an unchanged trait
sends nothing). So the cost is flat whatever the event rate, and tables stay live
while a notebook cell blocks.

The grid fits a notebook's output area (about 760 px in JupyterLab at 1280x800 with
the file browser open): one header cell per column, long texts cut with an ellipsis and
whole in an HTML ``title`` (the widgets' own ``tooltip`` does not render on HTML), colours
from JupyterLab's theme variables (see :data:`_CSS`), a text in place of the table once
its kernel is gone.

Threads: the hooks, runners and triggers belong to the session's loop, and so does the
hub's own bookkeeping (its tables, what is dirty, its listeners). Button clicks and
picks arrive on the kernel's main thread; they read only the table's widgets (under
the hub's lock) and hand the rest to the loop (:meth:`TableHub.on_loop`,
:meth:`TableHub.submit`), which looks the hooks up there.

Everything that comes from the network (item ids, payloads, publisher JIDs, error
texts) reaches the page as text: Labels are text, and every HTML is built with
:func:`html.escape`.
"""

from __future__ import annotations

import html
import logging
import re
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from ipywidgets.widgets import widget_string

from .formatting import ago, seconds, shorten
from .hooks import HookError
from .logs import LogEntry, RecentRecords, printable
from .states import HookState, Outcome, SessionState, TriggerKind

if TYPE_CHECKING:
    from .loopthread import LoopThread
    from .manager import HookManager
    from .runner import HookRunner, Trigger

__all__ = ["TableHub", "HookTable"]

log = logging.getLogger(__name__)
#: Seconds an idle table waits before showing an event: the other hooks of the same
#: item run meanwhile, and show in the same refresh.
_LEADING = 0.02
#: Seconds the header shows the last warning the extension or slixmpp logged.
_WARNING_SHOWN = 600.0
_TAGS = re.compile(r"<[^>]*>")


def _strip_tags(markup: str) -> str:
    return html.unescape(_TAGS.sub("", markup))

#: The grid's columns: (header, what the header's hover text says, width). Widths in
#: px are fixed; "fr" columns share what is left. At their narrowest the columns need
#: about 700 px: the output area of a notebook in JupyterLab at 1280x800 with the file
#: browser open is about 760 px. Every long text is cut with an ellipsis and shown in
#: full on hover (an HTML ``title``).
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("id", "the hook's id (%hook pause ID, replay ID…)", "60px"),
    ("node", "node @ service", "minmax(60px, 1fr)"),
    ("type", "python (a module), python_file or python_code", "48px"),
    ("argument", "the module, file or code", "minmax(72px, 1.2fr)"),
    ("stored", "persistent: stored, installed again at every connect", "54px"),
    ("state", "active, catching up, paused, retrying, waiting, standby or broken", "86px"),
    ("triggers", "runs, with skipped and dropped items", "66px"),
    ("errors", "runs that failed", "52px"),
    ("last", "the last run (hover: its time and duration, and the mean)", "64px"),
    ("failed", "items that still failed after their retries: click to run them again", "54px"),
    ("", "", "96px"),
)
#: The live cells (state … last) are one HTML spanning their columns: one message per
#: row and refresh, whatever changed in it.
_STATS = slice(5, 9)
_STATS_WIDTHS = [int(c[2][:-2]) for c in _COLUMNS[_STATS]]
_GRID_COLUMNS = " ".join(c[2] for c in _COLUMNS)
_TYPE_NAMES = {"python": "module", "python_file": "file", "python_code": "code"}
_STATE_CLASSES = {
    HookState.ACTIVE: "phm-ok",
    HookState.CATCHING_UP: "phm-info",
    HookState.PAUSED: "phm-warn",
    HookState.BROKEN: "phm-err",
}
_STATE_CLASSES.update(
    {getattr(HookState, name): "phm-warn" for name in ("RETRYING", "WAITING") if hasattr(HookState, name)}
)
if hasattr(HookState, "STANDBY"):
    _STATE_CLASSES[HookState.STANDBY] = "phm-muted"
#: Outcomes of a trigger that did not run the hook (the "last" column skips them).
_NOT_RUN = {Outcome.SKIPPED, Outcome.DROPPED, Outcome.GAP}

# Colours come from JupyterLab's theme variables, mixed with the theme's own text colour
# (black in light themes, white in dark ones) so that each reads at 4.5:1 or more on
# both; the fallbacks are for front ends without the variables. A table whose kernel is
# gone (restarted, shut down) says so instead of showing stale rows under ipywidgets'
# broken-link icons.
_MIX = "color-mix(in srgb, var(--jp-{0}-color1, {1}) 70%, var(--jp-content-font-color0, #000))"
_CSS = (
    ".phm-table{"
    + "".join(
        f"--phm-{name}:{fallback};--phm-{name}:{_MIX.format(var, fallback)};"
        for name, var, fallback in (
            ("ok", "success", "#2d7230"),
            ("info", "brand", "#145ea8"),
            ("warn", "warn", "#ac5700"),
            ("err", "error", "#a92626"),
        )
    )
    + "--phm-muted:var(--jp-content-font-color2, #666);"
    "font-size:var(--jp-widgets-font-size, 13px);max-width:100%;}"
    ".phm-table .phm-ok{color:var(--phm-ok)}.phm-table .phm-info{color:var(--phm-info)}"
    ".phm-table .phm-warn{color:var(--phm-warn)}.phm-table .phm-err{color:var(--phm-err)}"
    ".phm-table .phm-muted{color:var(--phm-muted)}"
    ".phm-table .phm-cell{margin:0;min-width:0;width:auto;overflow:hidden}"
    ".phm-table .phm-cell .widget-html-content{min-width:0;width:100%;overflow:hidden}"
    ".phm-table .phm-c{display:block;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;"
    "padding-right:6px;box-sizing:border-box}"
    ".phm-table .phm-head-cell .phm-c{font-weight:bold}"
    f".phm-table .phm-stats{{grid-column:span {_STATS.stop - _STATS.start}}}"
    ".phm-table .phm-stats-row{display:flex}"
    ".phm-table .phm-stats-row>.phm-c{flex:none}"
    + "".join(
        f".phm-table .phm-stats-row>.phm-c:nth-child({i + 1}){{width:{w}px}}"
        for i, w in enumerate(_STATS_WIDTHS)
    )
    + ".phm-table .phm-num{font-variant-numeric:tabular-nums}"
    ".phm-table .phm-id .phm-c{font-family:var(--jp-code-font-family, monospace)}"
    ".phm-table .phm-actions{margin:0;overflow:hidden}"
    ".phm-table .phm-actions .jupyter-button,.phm-table .phm-failed{width:28px;padding:0;margin:0 2px 0 0}"
    ".phm-table .phm-failed{width:50px}"
    ".phm-table .phm-header .phm-c{padding-right:0}"
    ".phm-table .phm-triggers{table-layout:fixed;width:100%;border-collapse:collapse;font-size:95%}"
    ".phm-table .phm-triggers th{text-align:left}"
    ".phm-table .phm-triggers td,.phm-table .phm-triggers th{padding:1px 0;overflow:hidden}"
    ".phm-table .phm-trigger-detail pre{white-space:pre-wrap;overflow-wrap:anywhere}"
    ".phm-table .phm-triggers-panel,.phm-table .phm-trigger-detail{min-width:0;width:auto;margin:0}"
    ".phm-table.jupyter-widgets-disconnected>*{display:none!important}"
    ".phm-table .jupyter-widgets-disconnected::before,.phm-table.jupyter-widgets-disconnected::before"
    "{content:none!important;display:none!important}"
    ".phm-table.jupyter-widgets-disconnected::after{content:'The kernel of this table is gone "
    "(restarted or shut down): it no longer updates. Run %hook list for a live one.';"
    "display:block;padding:4px 0;color:var(--jp-content-font-color2, #666);font-style:italic}"
)


def _cell(text: str, title: str | None = None, cls: str = "") -> str:
    """One cut-with-an-ellipsis cell (escaped); ``title`` is its full text on hover."""
    esc = html.escape
    hover = title if title is not None else text
    return f"<span class='phm-c {cls}' title='{esc(hover, quote=True)}'>{esc(text)}</span>"


def _state_detail(summary: dict[str, Any]) -> str:
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
    return str(state)


def _stats_html(summary: dict[str, Any], now: float, last_run: Any = None) -> str:
    """The live cells of a row (state, triggers, errors, last), as one HTML value (one
    message when any changes). ``last_run``: the last trigger that ran the hook."""
    state = summary["state"]
    detail = _state_detail(summary)
    reload_error = summary.get("reload_error")
    if reload_error:
        state_text = f"⚠ {state}"
        detail += f"; runs the previous version: {reload_error}"
        state_cls = "phm-warn"
    else:
        state_text = str(state)
        state_cls = _STATE_CLASSES.get(state, "")
    triggers = summary["triggers"]
    extra = [
        f"{summary[k]} {k}" + (" (paused)" if k == "skipped" else " (queue full)")
        for k in ("skipped", "dropped")
        if summary.get(k)
    ]
    more = sum(summary.get(k) or 0 for k in ("skipped", "dropped"))
    count = f"{triggers} run(s)" + (f"; {', '.join(extra)}" if extra else "")
    errors = summary["errors"]
    if last_run is not None:
        when = time.strftime("%H:%M:%S", time.localtime(last_run.received))
        last_text = ago(last_run.received, now)
        last_title = (
            f"last run at {when} ({last_run.outcome}, {seconds(last_run.duration)}); "
            f"mean {seconds(summary['mean_duration'])}"
        )
    else:
        last_text, last_title = "never", "no run yet"
    esc = html.escape
    triggers_cell = (
        f"<span class='phm-c phm-num' title='{esc(count, quote=True)}'>{triggers}"
        + (f" <small class='phm-muted'>+{more}</small>" if more else "")
        + "</span>"
    )
    return (
        "<div class='phm-stats-row'>"
        + _cell(state_text, detail, state_cls)
        + triggers_cell
        + _cell(str(errors), f"{errors} failed run(s)", "phm-num" + (" phm-err" if errors else ""))
        + _cell(last_text, last_title)
        + "</div>"
    )


def _last_run(runner: HookRunner) -> Trigger | None:
    """The last trigger that ran the hook (not one it skipped, dropped or a gap)."""
    for trigger in reversed(runner.triggers):
        if trigger.outcome not in _NOT_RUN:
            return trigger
    return None


def payload_text(item: Any, limit: int = 400) -> str:
    """The payload of an item stanza as (unescaped) XML text, shortened."""
    if item is None:
        return ""
    try:
        from slixmpp.xmlstream import tostring as xmpp_tostring

        children = list(item.xml)
        text = xmpp_tostring(children[0]) if children else ""  # with xmlns, no ns0: prefixes
    except Exception:  # noqa: BLE001 - a display helper must not fail
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def triggers_html(summary: dict[str, Any], triggers: list[Trigger]) -> str:
    """The recent triggers of one hook as an escaped HTML table (newest first), as wide
    as the table: long cells cut, whole on hover."""
    esc = html.escape
    title = f"Recent triggers of hook {esc(summary['id'])} ({esc(summary['node'])} @ {esc(summary['service'])})"
    if not triggers:
        return f"<b>{title}</b><div>No trigger yet.</div>"
    rows = []
    for t in reversed(triggers):
        when = time.strftime("%H:%M:%S", time.localtime(t.received))
        outcome = str(t.outcome) + (f": {t.error}" if t.error else "")
        payload = payload_text(t.payload, 400)
        cls = "phm-err" if t.outcome in (Outcome.ERROR, Outcome.TIMEOUT) else ""
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{_cell(text, full, c)}</td>"
                for text, full, c in (
                    (when, f"{t.kind} at {when}", ""),
                    (t.item_id or "-", t.item_id or "no item id", ""),
                    (t.publisher or "-", t.publisher or "the server did not say", ""),
                    (seconds(t.duration), seconds(t.duration), ""),
                    (outcome, outcome, cls),
                    (payload, payload, ""),
                )
            )
            + "</tr>"
        )
    head = "".join(f"<th>{_cell(h)}</th>" for h in ("time", "item", "publisher", "duration", "outcome", "payload"))
    cols = "".join(f"<col style='width:{w}'>" for w in ("70px", "17%", "17%", "70px", "24%", "auto"))
    return (
        f"<b>{title}</b><table class='phm-triggers'><colgroup>{cols}</colgroup>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def trigger_detail_html(trigger: Trigger | None) -> str:
    """One trigger in full: its payload and, for an error, its traceback (escaped)."""
    if trigger is None:
        return ""
    esc = html.escape
    parts = [f"<b>item</b> <code>{esc(trigger.item_id or '-')}</code> — {esc(trigger.outcome)}"]
    payload = payload_text(trigger.payload, 4000)
    if payload:
        parts.append(f"<div><b>payload</b></div><pre class='phm-payload'>{esc(payload)}</pre>")
    if trigger.traceback:
        parts.append(f"<div><b>traceback</b></div><pre class='phm-traceback'>{esc(trigger.traceback)}</pre>")
    elif trigger.error:
        parts.append(f"<pre>{esc(trigger.error)}</pre>")
    return "".join(parts)


class _Row:
    """The widgets of one hook's row: static cells set once; the stats, the failed
    button and the pause button change in place."""

    def __init__(self, table: HookTable, summary: dict[str, Any], last_run: Any = None):
        self.hook_id = summary["id"]
        s = table.styles

        def cell(value: str, cls: str) -> widgets.HTML:
            w = widgets.HTML(value=value, layout=s.cell, style=s.html)
            w.add_class("phm-cell")
            w.add_class(cls)
            return w

        where = f"{summary['node']} @ {summary['service']}"
        hook_type = summary["type"]
        persistent = summary["persistent"]
        self.cells = [
            cell(_cell(summary["id"]), "phm-id"),
            cell(_cell(where, f"node {summary['node']} of {summary['service']}"), "phm-node"),
            cell(_cell(_TYPE_NAMES.get(hook_type, hook_type), hook_type), "phm-type"),
            cell(_cell(shorten(summary["arg"], 200), summary["arg"]), "phm-arg"),
            cell(
                _cell(
                    "yes" if persistent else "no",
                    "persistent: stored, installed again at every connect"
                    if persistent
                    else "temporary: ends with the session",
                ),
                "phm-lifetime",
            ),
        ]
        self.stats = widgets.HTML(layout=s.cell, style=s.html)
        self.stats.add_class("phm-cell")
        self.stats.add_class("phm-stats")
        self.failed = widgets.Button(description="0", icon="redo", layout=s.failed, style=s.button_style)
        self.failed.add_class("phm-failed")
        self.pause = widgets.Button(layout=s.button, style=s.button_style)
        self.delete = widgets.Button(icon="trash", layout=s.button, style=s.button_style, tooltip="delete this hook (from the store too if persistent)")
        self.details = widgets.Button(icon="list", layout=s.button, style=s.button_style, tooltip="show this hook's recent triggers")
        self.pause.add_class("phm-pause")
        self.delete.add_class("phm-delete")
        self.details.add_class("phm-details")
        self.actions = widgets.HBox([self.pause, self.delete, self.details], layout=s.actions)
        self.actions.add_class("phm-actions")
        self.actions.add_class(f"phm-row-{self.hook_id}")
        table_ref = weakref.ref(table)
        hook_id = self.hook_id
        self.pause.on_click(lambda _b: table_ref() and table_ref()._toggle_pause(hook_id))  # type: ignore[union-attr]
        self.delete.on_click(lambda _b: table_ref() and table_ref()._delete(hook_id))  # type: ignore[union-attr]
        self.details.on_click(lambda _b: table_ref() and table_ref()._select(hook_id))  # type: ignore[union-attr]
        self.failed.on_click(lambda _b: table_ref() and table_ref()._retry_failed(hook_id))  # type: ignore[union-attr]
        self.update(summary, time.time(), last_run)

    @property
    def widgets(self) -> list[widgets.Widget]:
        return [*self.cells, self.stats, self.failed, self.actions]

    def update(self, summary: dict[str, Any], now: float, last_run: Any = None) -> None:
        self.stats.value = _stats_html(summary, now, last_run)
        #: What the row shows (set on the loop, under the hub's lock): the pause button
        #: does what its icon says.
        self.paused = paused = bool(summary["paused"])
        self.pause.icon = "play" if paused else "pause"
        self.pause.tooltip = "resume this hook" if paused else "pause this hook (it skips items, and counts them)"
        failed = int(summary.get("failed") or 0)
        self.failed.description = str(failed)
        self.failed.disabled = not failed
        self.failed.tooltip = (
            f"run the hook again on its {failed} failed item(s) (%hook retry {self.hook_id})"
            if failed
            else "no failed item (items that still fail after their retries)"
        )

    def close(self) -> None:
        for w in (*self.cells, self.stats, self.failed, self.pause, self.delete, self.details, self.actions):
            w.close()  # layouts and styles are shared: the table closes them


class _Styles:
    """Layouts and styles shared by every cell of a table (a few models, not one per cell)."""

    def __init__(self) -> None:
        self.cell = widgets.Layout(overflow="hidden", margin="0", min_width="0")
        self.button = widgets.Layout(width="28px", margin="0 2px 0 0", padding="0")
        self.failed = widgets.Layout(width="50px", margin="0", padding="0")
        self.actions = widgets.Layout(overflow="hidden", margin="0")
        self.html = widget_string.HTMLStyle()
        self.button_style = widgets.ButtonStyle()
        self.grid = widgets.Layout(grid_template_columns=_GRID_COLUMNS, grid_gap="2px 0", align_items="center", overflow="hidden")
        self.box = widgets.Layout(width="100%", max_width="100%", overflow="hidden")

    def close(self) -> None:
        for w in (self.cell, self.button, self.failed, self.actions, self.html, self.button_style, self.grid, self.box):
            w.close()


class HookTable:
    """One displayed table: a header, a grid of rows, and a details panel."""

    def __init__(self, hub: TableHub):
        self.hub = hub
        self.styles = _Styles()
        s = self.styles
        self.css = widgets.HTML(value=f"<style>{_CSS}</style>", style=s.html)
        self.css.add_class("phm-css")
        self.header = widgets.HTML(style=s.html)
        self.header.add_class("phm-header")
        self.message = widgets.HTML(style=s.html)
        self.message.add_class("phm-message")
        self._head_cells = []
        for name, title, _width in _COLUMNS:
            head = widgets.HTML(value=_cell(name, title), layout=s.cell, style=s.html)
            head.add_class("phm-cell")
            head.add_class("phm-head-cell")
            self._head_cells.append(head)
        self.grid = widgets.GridBox(layout=s.grid)
        self.grid.add_class("phm-grid")
        self.details = widgets.HTML(style=s.html)
        self.details.add_class("phm-triggers-panel")
        self.trigger_pick = widgets.Dropdown(options=[], description="trigger", style={"description_width": "60px"})
        self.trigger_pick.add_class("phm-trigger-pick")
        self.trigger_detail = widgets.HTML(style=s.html)
        self.trigger_detail.add_class("phm-trigger-detail")
        self.replay_button = widgets.Button(
            description="replay", icon="redo", tooltip="run the hook again on this trigger's item",
            layout=widgets.Layout(width="auto"), style=s.button_style,
        )
        self.replay_button.add_class("phm-replay")
        self.replay_button.on_click(lambda _b: self._replay())
        self.trigger_pick.layout.width = "auto"
        self.trigger_pick.layout.max_width = "100%"
        self.pick_box = widgets.HBox([self.trigger_pick, self.replay_button], layout=widgets.Layout(flex_flow="row wrap"))
        self.detail_box = widgets.VBox(
            [self.details, self.pick_box, self.trigger_detail],
            layout=widgets.Layout(display="none", overflow="auto"),
        )
        self.box = widgets.VBox([self.css, self.header, self.message, self.grid, self.detail_box], layout=s.box)
        self.box.add_class("phm-table")
        self.rows: dict[str, _Row] = {}
        self.selected: str | None = None
        self._trigger_list: list[Trigger] = []
        self.closed = False
        self.trigger_pick.observe(self._on_pick, names="value")

    # -------------------------------------------------------------- rendering (under the hub lock)

    def render(
        self,
        header: str,
        summaries: dict[str, dict[str, Any]],
        now: float,
        last_runs: dict[str, Any] | None = None,
    ) -> None:
        last_runs = last_runs or {}
        self.header.value = header
        order = list(summaries)
        changed_rows = False
        for hook_id in [h for h in self.rows if h not in summaries]:
            self.rows.pop(hook_id).close()
            changed_rows = True
            if self.selected == hook_id:
                self._show_details(None)
        for hook_id in order:
            row = self.rows.get(hook_id)
            if row is None:
                self.rows[hook_id] = _Row(self, summaries[hook_id], last_runs.get(hook_id))
                changed_rows = True
            else:
                row.update(summaries[hook_id], now, last_runs.get(hook_id))  # unchanged cells send nothing
        if changed_rows or list(self.rows) != order:
            self.rows = {h: self.rows[h] for h in order}
            children: list[widgets.Widget] = list(self._head_cells)
            for row in self.rows.values():
                children.extend(row.widgets)
            self.grid.children = tuple(children)
            if not self.rows:
                self.message.value = "<i>No hook found.</i>"
            elif self.message.value == "<i>No hook found.</i>":
                self.message.value = ""

    def render_details(self, summary: dict[str, Any] | None, triggers: list[Trigger]) -> None:
        if summary is None:
            self._show_details(None)
            return
        self.details.value = triggers_html(summary, triggers)
        self._trigger_list = list(triggers)
        options = [
            (f"{time.strftime('%H:%M:%S', time.localtime(t.received))} {shorten(t.item_id or '-', 30)} {t.outcome}", i)
            for i, t in reversed(list(enumerate(self._trigger_list)))
        ]
        current = self.trigger_pick.value
        self.trigger_pick.options = options
        if options and current is None:
            errors = [i for i, t in enumerate(self._trigger_list) if t.outcome == Outcome.ERROR]
            self.trigger_pick.value = errors[-1] if errors else options[0][1]

    def _show_details(self, hook_id: str | None) -> None:
        self.selected = hook_id
        self.detail_box.layout.display = None if hook_id else "none"
        if hook_id is None:
            self.details.value = ""
            self.trigger_pick.options = []
            self.trigger_detail.value = ""

    def _on_pick(self, change: dict[str, Any]) -> None:
        # A pick in the browser arrives on the kernel's thread: the trigger (the loop's)
        # is read and shown on the loop.
        self.hub.on_loop(self._show_pick, change["new"])

    def _show_pick(self, index: int | None) -> None:
        """On the session loop."""
        with self.hub.lock:
            if self.closed:
                return
            trigger = self._trigger_list[index] if index is not None and index < len(self._trigger_list) else None
            self.trigger_detail.value = trigger_detail_html(trigger)

    # -------------------------------------------------------------- buttons (main thread)

    def _toggle_pause(self, hook_id: str) -> None:
        with self.hub.lock:
            row = self.rows.get(hook_id)
            paused = row.paused if row is not None else None
        if paused is not None:  # pause what shows as running, resume what shows as paused
            self.hub.submit(self.hub.manager.set_paused(hook_id, not paused), self)

    def _replay(self) -> None:
        self.hub.on_loop(self._replay_on_loop)

    def _replay_on_loop(self) -> None:
        """On the session loop: the picked trigger of the shown hook, run again."""
        with self.hub.lock:
            index = self.trigger_pick.value
            trigger = self._trigger_list[index] if index is not None and index < len(self._trigger_list) else None
            hook_id = self.selected
            if hook_id is None or trigger is None or trigger.payload is None:
                self.message.value = "<i>Pick a trigger that has an item to replay.</i>"
                return
        self.hub.submit(_replay_trigger(self.hub.manager, hook_id, trigger), self)

    def _delete(self, hook_id: str) -> None:
        self.hub.submit(self.hub.manager.delete_hooks(hook_id=hook_id), self)

    def _retry_failed(self, hook_id: str) -> None:
        manager = self.hub.manager
        if not hasattr(manager, "retry_failed"):
            return

        def said(triggers: Any) -> str:
            ok = sum(1 for t in triggers if t.outcome == Outcome.OK)
            return f"hook {hook_id}: {ok} of {len(triggers)} failed item(s) ran again and were removed"

        self.hub.submit(manager.retry_failed(hook_id), self, said)

    def _select(self, hook_id: str) -> None:
        with self.hub.lock:
            if self.selected == hook_id:
                self._show_details(None)
                return
            self.trigger_pick.options = []
            self._show_details(hook_id)
        self.hub.mark(hook_id)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for row in self.rows.values():
            row.close()
        self.rows.clear()
        for w in (self.css, self.header, self.message, *self._head_cells, self.grid, self.details, self.trigger_pick, self.replay_button, self.pick_box, self.trigger_detail, self.detail_box, self.box):
            w.close()
        self.pick_box.layout.close()
        self.detail_box.layout.close()
        self.replay_button.layout.close()
        self.trigger_pick.style.close()
        self.trigger_pick.layout.close()
        for w in (self.css, self.details, self.trigger_detail, self.header, self.message):
            w.layout.close()
        self.styles.close()


async def _replay_trigger(manager: HookManager, hook_id: str, trigger: Trigger) -> Trigger:
    """Run a hook again on the item of one of its triggers (on the session loop, where
    the hook's runner is looked up)."""
    runner = manager.runners.get(hook_id)
    if runner is None:
        raise HookError(f"hook {hook_id} is gone: nothing to replay")
    return await runner.run_now(trigger.payload, TriggerKind.REPLAY, publisher=trigger.publisher)


class TableHub:
    """Every table of one manager, one lock, and the coalescing flush.

    Its bookkeeping (``tables``, what is dirty, the listeners it adds to the manager)
    changes on the session loop only; the public methods may be called from any thread.
    """

    def __init__(
        self,
        manager: HookManager,
        loop_thread: LoopThread,
        interval: float = 0.3,
        keep: int = 8,
        log_records: RecentRecords | None = None,
    ):
        self.manager = manager
        self.loop_thread = loop_thread
        self.interval = interval
        self.keep = keep  # tables kept live; older ones are closed
        #: Where the extension's and slixmpp's warnings are kept: the last one shows in
        #: the header.
        self.log_records = log_records
        self.lock = threading.RLock()
        self.tables: list[HookTable] = []
        self._dirty: set[str] = set()
        self._all_dirty = True
        self._scheduled = False
        self._last_flush = float("-inf")  # loop time of the last flush
        self._last_event_flush = float("-inf")  # …and of the last one that showed an event
        self._event_pending = False
        self._ticker: Any = None
        self.flushes = 0
        self._on_loop_now(self._attach)

    # -------------------------------------------------------------- public (any thread)

    def new_table(self) -> HookTable:
        """A table showing the current hooks; it then updates itself."""
        with self.lock:
            table = HookTable(self)
        # Added and first rendered on the session loop (consistent statistics).
        self._on_loop_now(self._add_table, table)
        return table

    def mark(self, hook_id: str | None = None) -> None:
        """Ask for a refresh (of one hook's row, or everything)."""
        self.on_loop(self._mark, hook_id)

    def on_loop(self, func: Any, *args: Any) -> None:
        """Call ``func(*args)`` on the session loop (at once when already there)."""
        if self.loop_thread.in_thread():
            func(*args)
        else:
            self.loop_thread.call_soon(func, *args)

    def submit(self, coro: Any, table: HookTable, said: Any = None) -> None:
        """Run a command for a button; an error shows in the table's message line, and
        so does ``said(result)`` when given."""
        future = self.loop_thread.submit(coro)

        def done(f: Any) -> None:
            if f.cancelled():
                return
            exc = f.exception()
            if exc is not None:
                text = f"<span class='phm-err'>{html.escape(str(exc))}</span>"
            elif said is not None:
                text = html.escape(said(f.result()))
            else:
                return
            with self.lock:
                if not table.closed:
                    table.message.value = text

        future.add_done_callback(done)

    def close(self) -> None:
        """Close every table and stop listening (on the loop while it runs)."""
        if self.loop_thread.alive:
            try:
                self._on_loop_now(self._close)
                return
            except (TimeoutError, RuntimeError):  # a stuck or stopping loop: close anyway
                pass
        self._close()

    def _on_loop_now(self, func: Any, *args: Any) -> None:
        """Call ``func(*args)`` on the session loop and wait for it."""
        if self.loop_thread.in_thread():
            func(*args)
        else:
            self.loop_thread.run(_called(func, *args), 10)

    # -------------------------------------------------------------- on the session loop

    def _attach(self) -> None:
        self.manager.add_trigger_listener(self._on_trigger)
        self.manager.add_change_listener(self._on_change)
        if self.log_records is not None:
            self.log_records.add_listener(self._on_record)

    def _close(self) -> None:
        self.manager.remove_trigger_listener(self._on_trigger)
        self.manager.remove_change_listener(self._on_change)
        if self.log_records is not None:
            self.log_records.remove_listener(self._on_record)
        with self.lock:
            for table in self.tables:
                table.close()
            self.tables = []
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def _add_table(self, table: HookTable) -> None:
        self.tables.append(table)
        while len(self.tables) > self.keep:
            old = self.tables.pop(0)
            with self.lock:
                old.close()
        self._render_now([table], True, set())
        self._schedule()

    def _mark(self, hook_id: str | None) -> None:
        if hook_id is None:
            self._all_dirty = True
        else:
            self._dirty.add(hook_id)
        self._schedule()

    def _on_trigger(self, runner: HookRunner, _trigger: Trigger) -> None:
        self._dirty.add(runner.hook.id)
        self._schedule()

    def _on_change(self) -> None:
        self._all_dirty = True
        self._schedule()

    def _on_record(self, entry: LogEntry) -> None:
        """A log record (on any thread): the header shows the last warning."""
        if entry.level >= logging.WARNING and self.loop_thread.alive:
            self.on_loop(self._schedule)

    def _schedule(self, event: bool = True) -> None:
        """Flush soon. For an event (a trigger, a change): at once when no event was
        shown in the last ``interval`` (leading edge: a single trigger on an idle table
        shows within :data:`_LEADING` seconds, which gather the runs of one item by
        several hooks into one refresh), else ``interval`` after that one, so a table
        refreshes for events at most once per interval whatever their rate. The
        once-a-second refresh of the relative times (``event=False``) does not hold
        back the next event."""
        if not self.tables:
            return
        if event:
            self._event_pending = True
        if self._scheduled:
            return
        self._scheduled = True
        loop = self.loop_thread.loop
        if not event:
            loop.call_soon(self._flush)
        else:
            wait = self._last_event_flush + self.interval - loop.time()
            loop.call_later(max(wait, _LEADING), self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        self._last_flush = self.loop_thread.loop.time()
        if self._event_pending:
            self._event_pending = False
            self._last_event_flush = self._last_flush
        self.tables = [t for t in self.tables if not t.closed]
        if not self.tables:
            return
        full = self._all_dirty
        dirty, self._dirty, self._all_dirty = self._dirty, set(), False
        self.flushes += 1
        self._render_now(self.tables, full, dirty)
        self._tick_later()

    def _render_now(self, tables: list[HookTable], full: bool, dirty: set[str]) -> None:
        manager = self.manager
        now = time.time()
        runners = manager.runners
        summaries = {hook_id: runner.summary(recent=False) for hook_id, runner in runners.items()}
        last_runs = {hook_id: _last_run(runners[hook_id]) for hook_id in summaries}
        header = self._header(now)
        with self.lock:
            for table in tables:
                if table.closed:
                    continue
                try:
                    # Relative times age: rows are re-rendered at every flush, but only
                    # cells whose text changed are sent.
                    table.render(header, summaries, now, last_runs)
                    if table.selected and (full or table.selected in dirty or table.selected not in summaries):
                        runner = manager.runners.get(table.selected)
                        table.render_details(
                            summaries.get(table.selected), list(runner.triggers) if runner else []
                        )
                except Exception:  # noqa: BLE001 - a display bug must not stop the session
                    log.exception("rendering a hooks table failed")

    def _header(self, now: float) -> str:
        manager = self.manager
        state = manager.state
        esc = html.escape
        jid = esc(manager.jid or "")
        if state == SessionState.CONNECTED:
            text = f"<b class='phm-ok'>connected</b> as {jid}"
        elif state == SessionState.RECONNECTING:
            text = f"<b class='phm-warn'>reconnecting</b> as {jid}…"
        elif state == SessionState.FAILED:
            text = f"<b class='phm-err'>failed</b>: {esc(manager.session.last_error or '') if manager.session else ''}"
        else:
            text = f"<b>{esc(str(state))}</b>"
        runners = manager.runners.values()
        triggers = sum(r.count for r in runners)
        errors = sum(r.errors for r in runners)
        failed = sum(len(r.dead_letters) for r in runners if hasattr(r, "dead_letters"))
        totals = (
            f"{text} — {len(manager.runners)} hook(s), {triggers} trigger(s), "
            f"<span class='{'phm-err' if errors else ''}'>{errors} error(s)</span>"
            + (f", <span class='phm-err'>{failed} failed item(s)</span>" if failed else "")
        )
        lines = [f"<span class='phm-c' title='{esc(_strip_tags(totals), quote=True)}'>{totals}</span>"]
        last = self.log_records.last(logging.WARNING) if self.log_records is not None else None
        if last is not None and now - last.created < _WARNING_SHOWN:
            lines.append(
                _cell(
                    printable(
                        f"⚠ {time.strftime('%H:%M:%S', time.localtime(last.created))} "
                        f"{(last.message.splitlines() or [''])[0]} (%hook log)"
                    ),
                    printable(last.line()),
                    "phm-warn phm-last-log",
                )
            )
        return "".join(lines)

    def _tick_later(self) -> None:
        """Refresh relative times ("3 s ago") once a second while tables are shown."""
        if self._ticker is None or self._ticker.cancelled() or self._ticker.when() <= self.loop_thread.loop.time():
            self._ticker = self.loop_thread.loop.call_later(1.0, self._tick)

    def _tick(self) -> None:
        self._ticker = None
        if not self.tables or not any(
            r.last_trigger and time.time() - r.last_trigger.received < 3600 for r in self.manager.runners.values()
        ):
            return  # the next flush ticks again
        since = self.loop_thread.loop.time() - self._last_flush
        if since >= 0.9:
            self._schedule(event=False)
        else:  # a flush just refreshed the times: tick a second after it
            self._ticker = self.loop_thread.loop.call_later(1.0 - since, self._tick)



async def _called(func: Any, *args: Any) -> None:
    func(*args)
