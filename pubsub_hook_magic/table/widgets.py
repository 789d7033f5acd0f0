"""The table's widgets: one :class:`HookTable` per ``%hook list``, one :class:`HookRow`
per hook in it.

Each is the owner of the widgets it makes (:class:`WidgetOwner`): its ``close`` closes
every one of them, with the layouts and styles they made for themselves, and none of
the few layouts and styles every cell of a table shares (:class:`Styles`, closed by the
table). So a deleted hook leaves no widget model behind in the kernel or the page.

The markup comes from :mod:`.render`; these classes only put it in widgets. They change
widgets under the hub's lock, on the session's loop (the hub renders there; a click
that changes what a table shows is handed to the loop). Clicks arrive on the kernel's
thread: they read the table's own state and hand commands to the hub
(:class:`TableCommands`), which runs them on the loop.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import ipywidgets as widgets
from ipywidgets.widgets import widget_string

from . import render
from .render import Summary
from .style import COLUMNS, CSS

if TYPE_CHECKING:
    import threading

    from ..trigger import Trigger

__all__ = ["Frame", "GroupRow", "HookRow", "HookTable", "Styles", "TableCommands", "TriggerRow", "WidgetOwner"]

W = TypeVar("W", bound=widgets.Widget)


@dataclass(frozen=True, slots=True)
class Frame:
    """What every table shows at one refresh (plain data, gathered on the loop)."""

    now: float
    #: What the header says (each table renders it: :func:`.render.header_html`,
    #: without the warnings it dismissed).
    header: render.Header
    #: Every installed hook's summary, in the table's order.
    summaries: Mapping[str, Summary]
    #: The last trigger that ran each hook.
    last_runs: Mapping[str, Trigger | None] = field(default_factory=dict)
    #: What the owner of each hook in standby here ran (read from its position files).
    owner_runs: Mapping[str, render.OwnerRuns] = field(default_factory=dict)
    #: A table of several accounts: each account's group row markup
    #: (:func:`.render.group_html`), in the table's order; empty for one account (no
    #: group rows, the table as it always was).
    groups: Mapping[str, str] = field(default_factory=dict)
    #: The account of each hook (a table of several accounts).
    accounts: Mapping[str, str] = field(default_factory=dict)


class TableCommands(Protocol):
    """What a table's buttons ask of its hub (any thread)."""

    lock: threading.RLock

    def on_loop(self, func: Callable[..., Any], *args: Any) -> None: ...
    def mark(self, hook_id: str | None = None) -> None: ...
    def set_paused(self, table: HookTable, hook_id: str, paused: bool) -> None: ...
    def delete(self, table: HookTable, hook_id: str) -> None: ...
    def retry_failed(self, table: HookTable, hook_id: str) -> None: ...
    def replay(self, table: HookTable, hook_id: str, trigger: Trigger) -> None: ...


class Styles:
    """Layouts and styles shared by every cell of a table (a few models, not one per cell)."""

    def __init__(self) -> None:
        self.cell = widgets.Layout(overflow="hidden", margin="0", min_width="0")
        self.button = widgets.Layout(width="28px", margin="0 2px 0 0", padding="0")
        self.failed = widgets.Layout(width="50px", margin="0", padding="0")
        self.actions = widgets.Layout(overflow="hidden", margin="0")
        self.html = widget_string.HTMLStyle()
        self.button_style = widgets.ButtonStyle()
        # (The columns are the CSS's: they change with the table's width.)
        self.grid = widgets.Layout(grid_gap="2px 0", align_items="center")
        self.box = widgets.Layout(width="100%", max_width="100%", overflow="hidden")
        self._all = (
            self.cell, self.button, self.failed, self.actions, self.html, self.button_style, self.grid, self.box
        )

    def shares(self, model: widgets.Widget) -> bool:
        return any(model is shared for shared in self._all)

    def close(self) -> None:
        for model in self._all:
            model.close()


class WidgetOwner:
    """Closes, at :meth:`close`, every widget it made (:meth:`own`) and the layout and
    style each made for itself; never the shared :class:`Styles`."""

    def __init__(self, styles: Styles):
        self.styles = styles
        self._made: list[widgets.Widget] = []
        self.closed = False

    def own(self, widget: W, *classes: str) -> W:
        for cls in classes:
            widget.add_class(cls)
        self._made.append(widget)
        return widget

    def html(self, *classes: str, value: str = "", cell: bool = False) -> widgets.HTML:
        """An HTML widget (a grid cell when ``cell``: the shared cell layout)."""
        s = self.styles
        layout = {"layout": s.cell} if cell else {}
        return self.own(widgets.HTML(value=value, style=s.html, **layout), *classes)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for widget in reversed(self._made):
            parts = (widget, getattr(widget, "layout", None), getattr(widget, "style", None))
            for model in parts:
                if model is not None and not self.styles.shares(model):
                    model.close()
        self._made.clear()


class HookRow(WidgetOwner):
    """The widgets of one hook's row: static cells set once; the stats, the failed
    button and the pause button change in place (an unchanged trait sends nothing)."""

    def __init__(
        self,
        styles: Styles,
        summary: Summary,
        on_click: Callable[[str, str], None],
        now: float | None = None,
        last: Trigger | None = None,
        account: str | None = None,
        owner: render.OwnerRuns | None = None,
    ):
        super().__init__(styles)
        self.hook_id: str = summary["id"]
        #: The hook's account, in a table of several accounts (None: one account).
        self.account = account
        #: What the row shows (set on the loop, under the hub's lock): the pause button
        #: does what its icon says.
        self.paused = False
        s = styles
        self.cells = [
            self.html("phm-cell", cls, value=v, cell=True) for v, cls in render.static_cells(summary, account)
        ]
        self.stats = self.html("phm-cell", "phm-stats", cell=True)
        self.failed = self.own(
            widgets.Button(description="0", icon="redo", layout=s.failed, style=s.button_style), "phm-failed"
        )
        self.pause = self._button("phm-pause")
        self.delete = self._button("phm-delete", "trash", "delete this hook (from the store too if persistent)")
        self.details = self._button("phm-details", "list", "show this hook's recent triggers")
        self.actions = self.own(
            widgets.HBox([self.pause, self.delete, self.details], layout=s.actions),
            "phm-actions",
            f"phm-row-{self.hook_id}",
        )
        hook_id = self.hook_id
        for action in ("pause", "delete", "details", "failed"):
            button: widgets.Button = getattr(self, action)
            button.on_click(lambda _b, action=action: on_click(action, hook_id))
        self.update(summary, time.time() if now is None else now, last, owner)

    def _button(self, cls: str, icon: str = "", tooltip: str | None = None) -> widgets.Button:
        s = self.styles
        return self.own(widgets.Button(icon=icon, tooltip=tooltip, layout=s.button, style=s.button_style), cls)

    @property
    def widgets(self) -> list[widgets.Widget]:
        """The row's cells, in the grid's order."""
        return [*self.cells, self.stats, self.failed, self.actions]

    def update(
        self, summary: Summary, now: float, last: Trigger | None = None, owner: render.OwnerRuns | None = None
    ) -> None:
        self.cells[3].value = render.arg_cell(summary)  # its --where tag counts
        self.stats.value = render.stats_html(summary, now, last, owner)
        self.paused = bool(summary["paused"])
        self.pause.icon, self.pause.tooltip = render.pause_button(self.paused)
        failed = int(summary.get("failed") or 0)
        self.failed.description = str(failed)
        self.failed.disabled = not failed
        self.failed.tooltip = render.failed_tooltip(self.hook_id, failed)


class GroupRow(WidgetOwner):
    """The row above one account's hooks (a table of several accounts): one cell as
    wide as the grid."""

    def __init__(self, styles: Styles, account: str, markup: str):
        super().__init__(styles)
        self.account = account
        self.cell = self.html("phm-cell", "phm-group", f"phm-group-{account}", value=markup, cell=True)


class TriggerRow(WidgetOwner):
    """One row of the triggers panel: its cells (HTML), and a transparent button laid
    over them (a click anywhere in the row picks it). Rows are reused: ``index`` is the
    trigger it shows (an index into the table's trigger list)."""

    def __init__(self, styles: Styles, on_pick: Callable[[TriggerRow], None]):
        super().__init__(styles)
        self.index: int | None = None
        self.cells = self.html("phm-trigger-cells")
        self.pick = self.own(
            widgets.Button(description="", layout=widgets.Layout(), style=styles.button_style), "phm-row-pick"
        )
        self.pick.on_click(lambda _b: on_pick(self))
        self.box = self.own(widgets.HBox([self.cells, self.pick]), "phm-trigger-row")

    def show(self, index: int, trigger: Trigger, retry: int, picked: bool) -> None:
        self.index = index
        self.cells.value = render.trigger_row_html(trigger, retry)
        self.pick.tooltip = render.trigger_row_title(trigger, retry)
        self.set_picked(picked)

    def set_picked(self, picked: bool) -> None:
        if picked:
            self.box.add_class("phm-picked")
        else:
            self.box.remove_class("phm-picked")


class HookTable(WidgetOwner):
    """One displayed table: a header, a message line (dismissable), a grid of rows (one
    :class:`HookRow` per hook) and the details panel of the selected hook (one
    clickable :class:`TriggerRow` per recent trigger). Display :attr:`box`."""

    def __init__(self, hub: TableCommands):
        super().__init__(Styles())
        self.hub = hub
        self.rows: dict[str, HookRow] = {}
        #: The group row of each account, in a table of several accounts.
        self.groups: dict[str, GroupRow] = {}
        self.selected: str | None = None
        #: The picked trigger of the shown hook (an index into its trigger list).
        self.picked: int | None = None
        # The grid's order: ("group", account) and ("hook", id) (None: not laid out yet).
        self._laid_out: list[tuple[str, str]] | None = None
        self._trigger_list: list[Trigger] = []
        self._trigger_rows: list[TriggerRow] = []
        self._retry = 0
        # What the message line and the header show, and since when (see expiring()).
        self._header: render.Header | None = None
        self._message = ""
        self._message_at = 0.0
        #: Warnings logged before this (time.time()) are not shown: dismissed.
        self.dismissed = float("-inf")
        self.css = self.html("phm-css", value=f"<style>{CSS}</style>")
        self.header = self.html("phm-header")
        self.message = self.html("phm-message")
        self.dismiss = self.own(
            widgets.Button(
                icon="times",
                tooltip="dismiss these messages",
                layout=widgets.Layout(display="none"),
                style=self.styles.button_style,
            ),
            "phm-dismiss",
        )
        self.dismiss.on_click(lambda _b: self.hub.on_loop(self._dismiss))
        self.notice = self.own(widgets.HBox([self.message, self.dismiss]), "phm-notice")
        self._head_cells = [
            self.html("phm-cell", "phm-head-cell", f"phm-h-{key}", value=v, cell=True)
            for (key, *_), v in zip(COLUMNS, render.head_cells(), strict=True)
        ]
        self.grid = self.own(widgets.GridBox(layout=self.styles.grid), "phm-grid")
        self.detail_box = self._build_details()
        self.box = self.own(
            widgets.VBox([self.css, self.header, self.notice, self.grid, self.detail_box], layout=self.styles.box),
            "phm-table",
        )

    def _build_details(self) -> widgets.VBox:
        self.details = self.html("phm-triggers-panel")
        self.trigger_rows = self.own(widgets.VBox([]), "phm-trigger-rows")
        self.trigger_detail = self.html("phm-trigger-detail")
        self.replay_button = self.own(
            widgets.Button(
                description="replay",
                icon="redo",
                tooltip="run the hook again on the picked trigger's item",
                layout=widgets.Layout(width="auto"),
                style=self.styles.button_style,
            ),
            "phm-replay",
        )
        self.replay_button.on_click(lambda _b: self.hub.on_loop(self._replay))
        return self.own(
            widgets.VBox(
                [self.details, self.trigger_rows, self.replay_button, self.trigger_detail],
                layout=widgets.Layout(display="none", overflow="auto"),
            ),
            "phm-details-panel",
        )

    # -------------------------------------------------------------- rendering (on the loop, under the hub lock)

    def render(self, frame: Frame) -> None:
        """Show ``frame``: rows added, updated (unchanged cells send nothing), removed;
        with several accounts, each account's hooks under its group row."""
        self._header = frame.header
        summaries = frame.summaries
        gone = [h for h in self.rows if h not in summaries or self.rows[h].account != frame.accounts.get(h)]
        for hook_id in gone:
            self.rows.pop(hook_id).close()
            if self.selected == hook_id and hook_id not in summaries:
                self._show_details(None)
        groups_gone = [a for a in self.groups if a not in frame.groups]
        for account in groups_gone:
            self.groups.pop(account).close()
        added = False
        for account, markup in frame.groups.items():
            group = self.groups.get(account)
            if group is None:
                self.groups[account] = GroupRow(self.styles, account, markup)
                added = True
            else:
                group.cell.value = markup
        on_click = _weak_click(self)
        for hook_id, summary in summaries.items():
            row = self.rows.get(hook_id)
            last = frame.last_runs.get(hook_id)
            owner = frame.owner_runs.get(hook_id)
            if row is None:
                hook_account = frame.accounts.get(hook_id)
                self.rows[hook_id] = HookRow(self.styles, summary, on_click, frame.now, last, hook_account, owner)
                added = True
            else:
                row.update(summary, frame.now, last, owner)
        order = _grid_order(frame)
        if gone or groups_gone or added or self._laid_out != order:
            self._laid_out = order
            self.rows = {h: self.rows[h] for kind, h in order if kind == "hook"}
            cells: list[widgets.Widget] = list(self._head_cells)
            for kind, key in order:
                if kind == "group":
                    cells.append(self.groups[key].cell)
                else:
                    cells.extend(self.rows[key].widgets)
            self.grid.children = tuple(cells)
        self._render_notices(frame.now)

    def _render_notices(self, now: float) -> None:
        """The header and the message line as of ``now``: old messages gone."""
        if self._header is not None:
            self.header.value = render.header_html(self._header, now, self.dismissed)
        said = render.message_html(self._message, self._message_at, now)
        if not said:
            self._message = ""  # expired (or none): nothing more to refresh for
        self.message.value = said or ("" if self.rows else render.NO_HOOK)
        shown = bool(self._message and self.message.value) or self._warning_shown(now)
        self.dismiss.layout.display = None if shown else "none"

    def _warning_shown(self, now: float) -> bool:
        header = self._header
        return header is not None and render.warning_shown(header, now, self.dismissed) is not None

    def expiring(self, now: float) -> bool:
        """Whether something shown goes away with time (a message, a warning): the hub
        then keeps refreshing."""
        return bool(self._message) or self._warning_shown(now)

    def render_details(self, summary: Summary | None, triggers: list[Trigger]) -> None:
        """Show the selected hook's recent triggers (``summary`` None: it is gone), one
        clickable row each, newest first; the picked one highlighted and shown whole."""
        if summary is None:
            self._show_details(None)
            return
        self.details.value = render.triggers_head_html(summary) + ("" if triggers else "<div>No trigger yet.</div>")
        self._trigger_list = list(triggers)
        self._retry = int(summary.get("retry") or 0)
        if self.picked is None or self.picked >= len(self._trigger_list):
            self.picked = render.default_pick(self._trigger_list)
        order = render.trigger_order(self._trigger_list)
        while len(self._trigger_rows) < len(order):
            self._trigger_rows.append(TriggerRow(self.styles, _weak_pick(self)))
        for row, index in zip(self._trigger_rows, order, strict=False):
            row.show(index, self._trigger_list[index], self._retry, index == self.picked)
        self.trigger_rows.children = tuple(r.box for r in self._trigger_rows[: len(order)])
        self.trigger_detail.value = render.trigger_detail_html(self._picked())

    def show_message(self, markup: str) -> None:
        """Show what a button's command said (escaped markup), for
        :data:`.render.MESSAGE_SHOWN` seconds or until dismissed."""
        if not self.closed:
            self._message, self._message_at = markup, time.time()
            self._render_notices(self._message_at)

    def _dismiss(self) -> None:
        """On the loop: the message and the warnings shown so far go away."""
        with self.hub.lock:
            if self.closed:
                return
            self.dismissed = time.time()
            self._message = ""
            self._render_notices(self.dismissed)

    def _show_details(self, hook_id: str | None) -> None:
        self.selected = hook_id
        self.picked = None
        self.detail_box.layout.display = None if hook_id else "none"
        if hook_id is None:
            self.details.value = ""
            self._trigger_list = []
            self.trigger_rows.children = ()
            self.trigger_detail.value = ""

    def _picked(self) -> Trigger | None:
        index = self.picked
        return self._trigger_list[index] if index is not None and index < len(self._trigger_list) else None

    def on_pick(self, row: TriggerRow) -> None:
        # A click in the browser arrives on the kernel's thread: the trigger (the loop's)
        # is read and shown on the loop.
        self.hub.on_loop(self._pick, row)

    def _pick(self, row: TriggerRow) -> None:
        with self.hub.lock:
            if self.closed or row.index is None:
                return
            self.picked = row.index
            for other in self._trigger_rows:
                other.set_picked(other.index == self.picked and other.box in self.trigger_rows.children)
            self.trigger_detail.value = render.trigger_detail_html(self._picked())

    # -------------------------------------------------------------- buttons

    def clicked(self, action: str, hook_id: str) -> None:
        """A row's button (on the kernel's thread)."""
        hub = self.hub
        if action == "pause":
            with hub.lock:
                row = self.rows.get(hook_id)
                paused = row.paused if row is not None else None
            if paused is not None:  # pause what shows as running, resume what shows as paused
                hub.set_paused(self, hook_id, not paused)
        elif action == "delete":
            hub.delete(self, hook_id)
        elif action == "failed":
            hub.retry_failed(self, hook_id)
        elif action == "details":
            hub.on_loop(self._select, hook_id)

    def _select(self, hook_id: str) -> None:
        """On the loop: show the hook's triggers, or hide them when already shown."""
        with self.hub.lock:
            if self.closed:
                return
            if self.selected == hook_id:
                self._show_details(None)
                return
            self._show_details(hook_id)
        self.hub.mark(hook_id)

    def _replay(self) -> None:
        """On the loop: the picked trigger of the shown hook, run again."""
        with self.hub.lock:
            if self.closed:
                return
            trigger, hook_id = self._picked(), self.selected
            if hook_id is None or trigger is None or trigger.payload is None:
                self.show_message("<i>Pick a trigger that has an item to replay.</i>")
                return
        self.hub.replay(self, hook_id, trigger)

    def close(self) -> None:
        if self.closed:
            return
        for row in self.rows.values():
            row.close()
        self.rows.clear()
        for group in self.groups.values():
            group.close()
        self.groups.clear()
        for trigger_row in self._trigger_rows:
            trigger_row.close()
        self._trigger_rows.clear()
        super().close()
        self.styles.close()


def _grid_order(frame: Frame) -> list[tuple[str, str]]:
    """The grid's rows: each account's group row and then its hooks (several accounts),
    or the hooks (one account)."""
    if not frame.groups:
        return [("hook", h) for h in frame.summaries]
    order: list[tuple[str, str]] = []
    placed: set[str] = set()
    for account in frame.groups:
        order.append(("group", account))
        for hook_id in frame.summaries:
            if frame.accounts.get(hook_id) == account:
                order.append(("hook", hook_id))
                placed.add(hook_id)
    order.extend(("hook", h) for h in frame.summaries if h not in placed)
    return order


def _weak_pick(table: HookTable) -> Callable[[TriggerRow], None]:
    """``table.on_pick`` without a reference to the table."""
    ref = weakref.ref(table)

    def pick(row: TriggerRow) -> None:
        target = ref()
        if target is not None:
            target.on_pick(row)

    return pick


def _weak_click(table: HookTable) -> Callable[[str, str], None]:
    """``table.clicked`` without a reference to the table (rows do not keep it alive)."""
    ref = weakref.ref(table)

    def click(action: str, hook_id: str) -> None:
        target = ref()
        if target is not None:
            target.clicked(action, hook_id)

    return click
