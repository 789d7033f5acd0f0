"""The live hooks table: ipywidgets showing every hook and its recent triggers.

One :class:`TableHub` per manager owns every displayed :class:`HookTable` and the one
lock under which widgets change. Runs and changes only mark rows dirty; a flush on the
session's loop applies them at most every ``interval`` seconds, sending only cells
whose text changed (an unchanged trait sends nothing). So the cost is flat whatever
the event rate, and tables stay live while a notebook cell blocks.

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
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from ipywidgets.widgets import widget_string

from .formatting import ago, seconds, shorten
from .hooks import HookError
from .states import HookState, Outcome, SessionState, TriggerKind

if TYPE_CHECKING:
    from .loopthread import LoopThread
    from .manager import HookManager
    from .runner import HookRunner, Trigger

__all__ = ["TableHub", "HookTable"]

log = logging.getLogger(__name__)

_COLUMNS = ("id", "node", "type", "argument", "lifetime", "state · triggers · errors · last · duration", "")
_STATS_WIDTHS = (70, 100, 60, 90, 130)  # px of the cells inside the stats column
_GRID_COLUMNS = "70px minmax(120px, 230px) 90px minmax(120px, 260px) 85px 470px 270px"
_STATE_COLORS = {
    HookState.ACTIVE: "#1a7f37",
    HookState.CATCHING_UP: "#0969da",
    HookState.PAUSED: "#9a6700",
    HookState.BROKEN: "#cf222e",
}


def _stats_html(summary: dict[str, Any], now: float) -> str:
    """The live cells of a row, as one HTML value (one message when any changes)."""
    last = summary["last_trigger"]
    state = summary["state"]
    color = _STATE_COLORS.get(state, "inherit")
    errors = summary["errors"]
    extra = []
    if summary.get("skipped"):
        extra.append(f"{summary['skipped']} skipped")
    if summary.get("dropped"):
        extra.append(f"{summary['dropped']} dropped")
    cells = (
        f"<span style='color:{color}'>{html.escape(state)}</span>",
        f"{summary['triggers']}" + (f" <small>({', '.join(extra)})</small>" if extra else ""),
        f"<span style='color:{'#cf222e' if errors else 'inherit'}'>{errors}</span>",
        html.escape(ago(last["received"], now) if last else "never"),
        html.escape(f"{seconds(summary['last_duration'])} / {seconds(summary['mean_duration'])}"),
    )
    return "".join(
        f"<span style='display:inline-block;width:{w}px'>{c}</span>"
        for w, c in zip(_STATS_WIDTHS, cells)
    )


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
    """The recent triggers of one hook as an escaped HTML table (newest first)."""
    esc = html.escape
    title = f"Recent triggers of hook {esc(summary['id'])} ({esc(summary['node'])} @ {esc(summary['service'])})"
    if not triggers:
        return f"<b>{title}</b><div>No trigger yet.</div>"
    rows = []
    for t in reversed(triggers):
        when = time.strftime("%H:%M:%S", time.localtime(t.received))
        outcome = esc(t.outcome)
        if t.error:
            outcome += f": <code>{esc(shorten(t.error, 120))}</code>"
        rows.append(
            "<tr>"
            f"<td>{when}</td><td><code>{esc(t.item_id or '-')}</code></td>"
            f"<td>{esc(t.publisher or '-')}</td><td>{esc(seconds(t.duration))}</td>"
            f"<td>{outcome}</td><td><code>{esc(shorten(payload_text(t.payload, 160), 80))}</code></td>"
            "</tr>"
        )
    head = "".join(f"<th style='text-align:left'>{h}</th>" for h in ("time", "item", "publisher", "duration", "outcome", "payload"))
    return (
        f"<b>{title}</b><table class='phm-triggers' style='border-collapse:separate;border-spacing:10px 2px;font-size:90%'>"
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
    """The widgets of one hook's row; static cells are set once, stats and the pause
    button change in place."""

    def __init__(self, table: HookTable, summary: dict[str, Any]):
        self.hook_id = summary["id"]
        s = table.styles
        label = s.label

        def cell(text: str, layout: widgets.Layout, tooltip: str | None = None) -> widgets.Label:
            return widgets.Label(value=text, layout=layout, style=label, tooltip=tooltip)

        self.cells = [
            cell(summary["id"], s.cell),
            cell(f"{summary['node']} @ {summary['service']}", s.cell, f"node {summary['node']} of {summary['service']}"),
            cell(summary["type"], s.cell),
            cell(shorten(summary["arg"], 36), s.cell, summary["arg"]),
            cell("persistent" if summary["persistent"] else "temporary", s.cell),
        ]
        self.stats = widgets.HTML(layout=s.cell, style=s.html)
        self.pause = widgets.Button(layout=s.button, style=s.button_style)
        self.delete = widgets.Button(description="delete", icon="trash", layout=s.button, style=s.button_style, tooltip="delete this hook (and from the store if persistent)")
        self.details = widgets.Button(description="triggers", icon="list", layout=s.button, style=s.button_style, tooltip="show this hook's recent triggers")
        for w in (*self.cells, self.stats, self.pause, self.delete, self.details):
            w.add_class("phm-cell")
        self.pause.add_class("phm-pause")
        self.delete.add_class("phm-delete")
        self.details.add_class("phm-details")
        self.stats.add_class("phm-stats")
        self.cells[0].add_class("phm-id")
        self.actions = widgets.HBox([self.pause, self.delete, self.details], layout=s.actions)
        self.actions.add_class(f"phm-row-{self.hook_id}")
        table_ref = weakref.ref(table)
        hook_id = self.hook_id
        self.pause.on_click(lambda _b: table_ref() and table_ref()._toggle_pause(hook_id))  # type: ignore[union-attr]
        self.delete.on_click(lambda _b: table_ref() and table_ref()._delete(hook_id))  # type: ignore[union-attr]
        self.details.on_click(lambda _b: table_ref() and table_ref()._select(hook_id))  # type: ignore[union-attr]
        self.update(summary, time.time())

    @property
    def widgets(self) -> list[widgets.Widget]:
        return [*self.cells, self.stats, self.actions]

    def update(self, summary: dict[str, Any], now: float) -> None:
        self.stats.value = _stats_html(summary, now)
        #: What the row shows (set on the loop, under the hub's lock): the pause button
        #: does what its label says.
        self.paused = paused = bool(summary["paused"])
        self.pause.description = "resume" if paused else "pause"
        self.pause.icon = "play" if paused else "pause"

    def close(self) -> None:
        for w in (*self.cells, self.stats, self.pause, self.delete, self.details, self.actions):
            w.close()  # layouts and styles are shared: the table closes them


class _Styles:
    """Layouts and styles shared by every cell of a table (a few models, not one per cell)."""

    def __init__(self) -> None:
        self.cell = widgets.Layout(overflow="hidden", margin="0 4px 0 0")
        self.button = widgets.Layout(width="auto", margin="0 2px")
        self.actions = widgets.Layout(overflow="hidden")
        self.label = widget_string.LabelStyle()
        self.html = widget_string.HTMLStyle()
        self.button_style = widgets.ButtonStyle()
        self.grid = widgets.Layout(grid_template_columns=_GRID_COLUMNS, grid_gap="2px 0", align_items="center")
        self.box = widgets.Layout()

    def close(self) -> None:
        for w in (self.cell, self.button, self.actions, self.label, self.html, self.button_style, self.grid, self.box):
            w.close()


class HookTable:
    """One displayed table: a header, a grid of rows, and a details panel."""

    def __init__(self, hub: TableHub):
        self.hub = hub
        self.styles = _Styles()
        s = self.styles
        self.header = widgets.HTML(style=s.html)
        self.header.add_class("phm-header")
        self.message = widgets.HTML(style=s.html)
        self.message.add_class("phm-message")
        self._head_cells = [widgets.HTML(value=f"<b>{html.escape(c)}</b>", style=s.html) for c in _COLUMNS]
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
            layout=s.button, style=s.button_style,
        )
        self.replay_button.add_class("phm-replay")
        self.replay_button.on_click(lambda _b: self._replay())
        self.pick_box = widgets.HBox([self.trigger_pick, self.replay_button])
        self.detail_box = widgets.VBox([self.details, self.pick_box, self.trigger_detail], layout=widgets.Layout(display="none"))
        self.box = widgets.VBox([self.header, self.message, self.grid, self.detail_box], layout=s.box)
        s.box.width = "max-content"
        s.box.max_width = "100%"
        s.box.overflow = "auto"
        self.box.add_class("phm-table")
        self.rows: dict[str, _Row] = {}
        self.selected: str | None = None
        self._trigger_list: list[Trigger] = []
        self.closed = False
        self.trigger_pick.observe(self._on_pick, names="value")

    # -------------------------------------------------------------- rendering (under the hub lock)

    def render(self, header: str, summaries: dict[str, dict[str, Any]], now: float) -> None:
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
                self.rows[hook_id] = _Row(self, summaries[hook_id])
                changed_rows = True
            else:
                row.update(summaries[hook_id], now)  # unchanged cells send nothing
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
        for w in (self.header, self.message, *self._head_cells, self.grid, self.details, self.trigger_pick, self.replay_button, self.pick_box, self.trigger_detail, self.detail_box, self.box):
            w.close()
        self.pick_box.layout.close()
        self.detail_box.layout.close()
        self.trigger_pick.style.close()
        self.trigger_pick.layout.close()
        for w in (self.details, self.trigger_detail, self.header, self.message, *self._head_cells):
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

    def __init__(self, manager: HookManager, loop_thread: LoopThread, interval: float = 0.3, keep: int = 8):
        self.manager = manager
        self.loop_thread = loop_thread
        self.interval = interval
        self.keep = keep  # tables kept live; older ones are closed
        self.lock = threading.RLock()
        self.tables: list[HookTable] = []
        self._dirty: set[str] = set()
        self._all_dirty = True
        self._scheduled = False
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

    def submit(self, coro: Any, table: HookTable) -> None:
        """Run a command for a button; an error shows in the table's message line."""
        future = self.loop_thread.submit(coro)

        def done(f: Any) -> None:
            exc = f.exception() if not f.cancelled() else None
            if exc is not None:
                with self.lock:
                    if not table.closed:
                        table.message.value = f"<span style='color:#cf222e'>{html.escape(str(exc))}</span>"

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

    def _close(self) -> None:
        self.manager.remove_trigger_listener(self._on_trigger)
        self.manager.remove_change_listener(self._on_change)
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

    def _schedule(self) -> None:
        if self._scheduled or not self.tables:
            return
        self._scheduled = True
        self.loop_thread.loop.call_later(self.interval, self._flush)

    def _flush(self) -> None:
        self._scheduled = False
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
        summaries = {h.id: manager.runners[h.id].summary(recent=False) for h in manager.registry}
        header = self._header(now)
        with self.lock:
            for table in tables:
                if table.closed:
                    continue
                try:
                    # Relative times age: rows are re-rendered at every flush, but only
                    # cells whose text changed are sent.
                    table.render(header, summaries, now)
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
        jid = manager.jid
        if state == SessionState.CONNECTED:
            text = f"<b style='color:#1a7f37'>connected</b> as {html.escape(jid or '')}"
        elif state == SessionState.RECONNECTING:
            text = f"<b style='color:#9a6700'>reconnecting</b> as {html.escape(jid or '')}…"
        elif state == SessionState.FAILED:
            text = f"<b style='color:#cf222e'>failed</b>: {html.escape(manager.session.last_error or '') if manager.session else ''}"
        else:
            text = "<b>disconnected</b>"
        runners = manager.runners.values()
        triggers = sum(r.count for r in runners)
        errors = sum(r.errors for r in runners)
        return (
            f"{text} — {len(manager.registry)} hook(s), {triggers} trigger(s), "
            f"<span style='color:{'#cf222e' if errors else 'inherit'}'>{errors} error(s)</span>"
        )

    def _tick_later(self) -> None:
        """Refresh relative times ("3 s ago") once a second while tables are shown."""
        if self._ticker is None or self._ticker.cancelled() or self._ticker.when() <= self.loop_thread.loop.time():
            self._ticker = self.loop_thread.loop.call_later(1.0, self._tick)

    def _tick(self) -> None:
        self._ticker = None
        if any(r.last_trigger and time.time() - r.last_trigger.received < 3600 for r in self.manager.runners.values()):
            self._schedule()



async def _called(func: Any, *args: Any) -> None:
    func(*args)
