"""The table's widgets: one :class:`HookTable` per ``%hook list``, one :class:`HookRow`
per hook shown on its page.

A table shows one page of hooks (``page_size`` rows, 50 by default), with a pager (prev,
next, "page 3 of 100") and a filter box above the grid once there are more than
:data:`FILTER_FROM` hooks. Its rows are a pool of at most ``page_size``
:class:`HookRow` s whose contents change (another page, another filter, hooks added or
deleted): a page of 5,000 hooks costs the widgets of 50 rows, and turning a page sends
only the cells whose text changed. The pool shrinks when there are fewer hooks than
rows (a deleted hook's row goes, and its widgets with it).

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

import collections
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
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

__all__ = [
    "FILTER_FROM",
    "Frame",
    "GroupRow",
    "HookRow",
    "HookTable",
    "Listing",
    "PageView",
    "Styles",
    "TableCommands",
    "TriggerRow",
    "WidgetOwner",
]

W = TypeVar("W", bound=widgets.Widget)
#: From this many hooks on, the table shows its filter box and pager.
FILTER_FROM = 10
#: The rows of a page (``%config HookMagics.table_page_size``).
PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Listing:
    """Every hook a table may show, without their summaries: what a table needs to pick
    the hooks of its page (gathered on the loop; cheap at 5,000 hooks)."""

    #: Hook id -> its account (None: a table of one account), in the table's order:
    #: each account's hooks together, the accounts in their group rows' order.
    ids: Mapping[str, str | None]
    #: A hook's texts the filter box matches (:func:`.render.search_fields`).
    fields: Callable[[str], Sequence[str]]
    #: The accounts, in their group rows' order (a table of several accounts; empty:
    #: one account, no group rows).
    accounts: tuple[str, ...] = ()

    @classmethod
    def of(cls, summaries: Mapping[str, Summary], groups: Sequence[str] = (),
           accounts: Mapping[str, str] | None = None) -> Listing:
        """The listing of ``summaries`` (every hook's; ``groups``: the accounts in their
        rows' order, ``accounts``: each hook's)."""
        accounts = accounts or {}
        ids: dict[str, str | None] = {}
        for account in groups:
            ids.update((h, account) for h in summaries if accounts.get(h) == account)
        ids.update((h, accounts.get(h)) for h in summaries if h not in ids)

        def fields(hook_id: str) -> tuple[str, ...]:
            s = summaries[hook_id]
            return render.search_fields(
                hook_id, str(s["node"]), str(s["service"]), str(s["type"]), str(s["arg"]), ids.get(hook_id),
                str(s["state"]),
            )

        return cls(ids, fields, tuple(groups))


@dataclass(frozen=True, slots=True)
class PageView:
    """The hooks a table shows: its page of the hooks its filter matches."""

    #: The grid's rows below the header: ("group", account) and ("hook", id).
    entries: tuple[tuple[str, str], ...]
    #: The hooks on the page, in order.
    ids: tuple[str, ...]
    #: The index (0-based) of the first among the matched hooks.
    first: int
    matched: int
    total: int
    page: int
    pages: int


@dataclass(frozen=True, slots=True)
class Frame:
    """What every table shows at one refresh (plain data, gathered on the loop)."""

    now: float
    #: What the header says (each table renders it: :func:`.render.header_html`,
    #: without the warnings it dismissed).
    header: render.Header
    #: The summaries of the hooks shown (the hub gathers those of the tables' pages
    #: and their selected hooks; without a ``listing``: every hook's, in the table's
    #: order).
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
    #: Every hook, for the pages and the filter (None: those of ``summaries``).
    listing: Listing | None = None


class TableCommands(Protocol):
    """What a table's buttons ask of its hub (any thread)."""

    lock: threading.RLock

    def on_loop(self, func: Callable[..., Any], *args: Any) -> None: ...
    def mark(self, hook_id: str | None = None) -> None: ...
    def set_paused(self, table: HookTable, hook_id: str, paused: bool) -> None: ...
    def delete(self, table: HookTable, hook_id: str) -> None: ...
    def retry_failed(self, table: HookTable, hook_id: str) -> None: ...
    def replay(self, table: HookTable, hook_id: str, trigger: Trigger) -> None: ...
    def refresh(self, table: HookTable) -> None: ...


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
    """The widgets of one row of the grid, showing one hook at a time (rows are reused
    across pages: :meth:`show` puts another hook in them). Unchanged cells send
    nothing; the buttons act on the hook the row shows when clicked."""

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
        self.cells = [self.html("phm-cell", cls, cell=True) for cls in _STATIC_CLASSES]
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
        for action in ("pause", "delete", "details", "failed"):
            button: widgets.Button = getattr(self, action)
            button.on_click(lambda _b, action=action: on_click(action, self.hook_id))
        self.show(summary, time.time() if now is None else now, last, account, owner)

    def _button(self, cls: str, icon: str = "", tooltip: str | None = None) -> widgets.Button:
        s = self.styles
        return self.own(widgets.Button(icon=icon, tooltip=tooltip, layout=s.button, style=s.button_style), cls)

    @property
    def widgets(self) -> list[widgets.Widget]:
        """The row's cells, in the grid's order."""
        return [*self.cells, self.stats, self.failed, self.actions]

    def show(
        self,
        summary: Summary,
        now: float,
        last: Trigger | None = None,
        account: str | None = None,
        owner: render.OwnerRuns | None = None,
    ) -> None:
        """Show hook ``summary`` (the same one again, or another: the row is reused)."""
        hook_id = summary["id"]
        if hook_id != self.hook_id:
            self.actions.remove_class(f"phm-row-{self.hook_id}")
            self.actions.add_class(f"phm-row-{hook_id}")
            self.hook_id = hook_id
        self.account = account
        for widget, (value, _cls) in zip(self.cells, render.static_cells(summary, account), strict=True):
            widget.value = value
        self.update(summary, now, last, owner)

    def update(
        self, summary: Summary, now: float, last: Trigger | None = None, owner: render.OwnerRuns | None = None
    ) -> None:
        """The cells that change while the row shows the same hook."""
        self.cells[3].value = render.arg_cell(summary)  # its --where tag counts
        self.stats.value = render.stats_html(summary, now, last, owner)
        self.paused = bool(summary["paused"])
        self.pause.icon, self.pause.tooltip = render.pause_button(self.paused)
        failed = int(summary.get("failed") or 0)
        self.failed.description = str(failed)
        self.failed.disabled = not failed
        self.failed.tooltip = render.failed_tooltip(self.hook_id, failed)


#: The classes of a row's static cells, in :func:`.render.static_cells`' order.
_STATIC_CLASSES = ("phm-id", "phm-node", "phm-type", "phm-arg", "phm-lifetime")


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
    """One displayed table: a header, a message line (dismissable), the pager and
    filter box, a grid of rows (one :class:`HookRow` per hook of the page, at most
    ``page_size``) and the details panel of the selected hook (one clickable
    :class:`TriggerRow` per recent trigger). Display :attr:`box`."""

    def __init__(self, hub: TableCommands, page_size: int = PAGE_SIZE):
        super().__init__(Styles())
        self.hub = hub
        self.page_size = max(1, int(page_size))
        #: The rows shown, by hook id, in the page's order.
        self.rows: dict[str, HookRow] = {}
        #: Every row made (at most ``page_size``): reused from page to page.
        self._pool: list[HookRow] = []
        #: The page shown (0-based), and the filter box's text.
        self.page = 0
        self.query = ""
        self._terms: tuple[tuple[int | None, str], ...] = ()
        #: What :meth:`select` found, for the listing it was given.
        self.view: PageView | None = None
        self._view_of: tuple[Listing, str, int] | None = None
        # The hooks the (unfiltered) listing has, and each account's count, when it
        # was last matched.
        self._matched: tuple[Listing, list[str], dict[str | None, int]] | None = None
        #: The group row of each account, in a table of several accounts.
        self.groups: dict[str, GroupRow] = {}
        self.selected: str | None = None
        #: The picked trigger of the shown hook (an index into its trigger list).
        self.picked: int | None = None
        # The grid's rows, as the first widget of each (None: not laid out yet).
        self._laid_out: list[widgets.Widget] | None = None
        #: The last frame rendered.
        self.last_frame: Frame | None = None
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
        self.pager = self._build_pager()
        self.detail_box = self._build_details()
        self.box = self.own(
            widgets.VBox(
                [self.css, self.header, self.notice, self.pager, self.grid, self.detail_box], layout=self.styles.box
            ),
            "phm-table",
        )

    def _build_pager(self) -> widgets.HBox:
        self.filter = self.own(
            widgets.Text(
                placeholder="filter: node, state, id, argument… (state:paused)",
                continuous_update=True,
                layout=widgets.Layout(),
            ),
            "phm-filter",
        )
        self.filter.observe(_weak_query(self), "value")
        self.count = self.html("phm-count")
        self.prev_button = self.own(
            widgets.Button(icon="chevron-left", tooltip="previous page", layout=self.styles.button,
                           style=self.styles.button_style),
            "phm-prev",
        )
        self.next_button = self.own(
            widgets.Button(icon="chevron-right", tooltip="next page", layout=self.styles.button,
                           style=self.styles.button_style),
            "phm-next",
        )
        self.prev_button.on_click(lambda _b: self.hub.on_loop(self._turn, -1))
        self.next_button.on_click(lambda _b: self.hub.on_loop(self._turn, 1))
        self.page_text = self.html("phm-page")
        return self.own(
            widgets.HBox(
                [self.filter, self.count, self.prev_button, self.page_text, self.next_button],
                layout=widgets.Layout(display="none"),
            ),
            "phm-pager",
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

    def select(self, listing: Listing) -> tuple[str, ...]:
        """The hooks of the page shown, of ``listing`` (on the loop, under the hub's
        lock): those the filter matches, a page of them. Without a filter this costs
        the page's hooks; with one, matching every hook's texts."""
        key = (listing, self.query, self.page)
        if self._view_of is not None and self._view_of[0] is listing and self._view_of[1:] == key[1:] \
                and self.view is not None and not self._terms:
            return self.view.ids
        ids = listing.ids
        total = len(ids)
        if self._terms:
            terms = self._terms
            matched: Sequence[str] = [h for h in ids if render.matches(terms, listing.fields(h))]
            counts = _counts(listing, matched)
        elif self._matched is not None and self._matched[0] is listing:
            _, matched, counts = self._matched
        else:
            matched = list(ids)
            counts = _counts(listing, matched)
            self._matched = (listing, matched, counts)
        size = self.page_size
        pages = max(1, -(-len(matched) // size))
        self.page = min(max(self.page, 0), pages - 1)
        first = self.page * size
        shown = tuple(matched[first : first + size])
        self.view = PageView(
            _page_entries(listing, counts, shown, first, self.page == pages - 1), shown, first, len(matched), total,
            self.page, pages,
        )
        self._view_of = key
        return shown

    def render(self, frame: Frame) -> None:
        """Show ``frame``: the page's hooks in the pool's rows (unchanged cells send
        nothing), the pager and the count; with several accounts, each account's hooks
        under its group row."""
        self._header = frame.header
        self.last_frame = frame
        listing = frame.listing
        if listing is None:
            listing = Listing.of(frame.summaries, list(frame.groups), frame.accounts)
        view = self.view
        if view is None or self._view_of is None or self._view_of != (listing, self.query, self.page):
            self.select(listing)
            view = self.view
        assert view is not None
        summaries = frame.summaries
        if self.selected is not None and self.selected not in listing.ids:
            self._show_details(None)
        groups_gone = [a for a in self.groups if a not in frame.groups]
        for account in groups_gone:
            self.groups.pop(account).close()
        for account, markup in frame.groups.items():
            group = self.groups.get(account)
            if group is None:
                self.groups[account] = GroupRow(self.styles, account, markup)
            else:
                group.cell.value = markup
        self._fill(frame, view.ids, summaries, listing)
        order = [(kind, key) for kind, key in view.entries if kind == "hook" or key in self.groups]
        laid_out = [self.groups[k].cell if kind == "group" else self.rows[k].actions for kind, k in order]
        if self._laid_out != laid_out:
            self._laid_out = laid_out
            cells: list[widgets.Widget] = list(self._head_cells)
            for kind, key in order:
                if kind == "group":
                    cells.append(self.groups[key].cell)
                else:
                    cells.extend(self.rows[key].widgets)
            self.grid.children = tuple(cells)
        self._render_pager(view)
        self._render_notices(frame.now)

    def _fill(self, frame: Frame, ids: Sequence[str], summaries: Mapping[str, Summary], listing: Listing) -> None:
        """Put the page's hooks in rows: a row that showed one of them keeps it, the
        others take the free rows (made while fewer than a page, at most
        ``page_size``; closed when there are fewer hooks than rows)."""
        keep = min(self.page_size, len(listing.ids))
        while len(self._pool) > max(keep, len(ids)):
            row = self._pool.pop()
            row.close()
        wanted = set(ids)
        by_id = {row.hook_id: row for row in self._pool if row.hook_id in wanted}
        free = [row for row in self._pool if by_id.get(row.hook_id) is not row]
        on_click = _weak_click(self)
        rows: dict[str, HookRow] = {}
        for hook_id in ids:
            summary = summaries.get(hook_id)
            if summary is None:  # (gone since the page was picked)
                continue
            account = frame.accounts.get(hook_id) or listing.ids.get(hook_id)
            last, owner = frame.last_runs.get(hook_id), frame.owner_runs.get(hook_id)
            kept = by_id.get(hook_id)
            if kept is not None and kept.account == account:
                kept.update(summary, frame.now, last, owner)
                row = kept
            elif kept is not None or free:
                row = kept if kept is not None else free.pop()
                row.show(summary, frame.now, last, account, owner)
            else:
                row = HookRow(self.styles, summary, on_click, frame.now, last, account, owner)
                self._pool.append(row)
            rows[hook_id] = row
        self.rows = rows

    def _render_pager(self, view: PageView) -> None:
        """The pager and filter box: shown from :data:`FILTER_FROM` hooks (or while
        filtering), the count of what is shown, prev and next enabled when they lead
        somewhere."""
        filtered = bool(self._terms)
        shown = view.total > FILTER_FROM or view.pages > 1 or bool(self.query)
        self.pager.layout.display = None if shown else "none"
        self.count.value = render.count_html(view.first, len(view.ids), view.matched, view.total, filtered)
        self.page_text.value = render.page_label(view.page, view.pages)
        self.prev_button.disabled = view.page <= 0
        self.next_button.disabled = view.page >= view.pages - 1

    def set_query(self, query: str) -> None:
        """On the loop: the filter box's text changed: the first page of what it matches."""
        with self.hub.lock:
            if self.closed or query == self.query:
                return
            self.query = query
            self._terms = render.filter_terms(query)
            self.page = 0
        self.hub.refresh(self)

    def _turn(self, delta: int) -> None:
        """On the loop: the next or the previous page."""
        with self.hub.lock:
            if self.closed or self.view is None:
                return
            page = min(max(self.page + delta, 0), self.view.pages - 1)
            if page == self.page:
                return
            self.page = page
        self.hub.refresh(self)

    def shown_ids(self) -> tuple[str, ...]:
        """The hooks of the page shown (under the hub's lock)."""
        return tuple(self.rows)

    def _render_notices(self, now: float) -> None:
        """The header and the message line as of ``now``: old messages gone."""
        if self._header is not None:
            self.header.value = render.header_html(self._header, now, self.dismissed)
        said = render.message_html(self._message, self._message_at, now)
        if not said:
            self._message = ""  # expired (or none): nothing more to refresh for
        view = self.view
        empty = render.NO_MATCH if view is not None and view.total and not view.matched else render.NO_HOOK
        self.message.value = said or ("" if self.rows else empty)
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
        for row in self._pool:
            row.close()
        self._pool.clear()
        self.rows.clear()
        for group in self.groups.values():
            group.close()
        self.groups.clear()
        for trigger_row in self._trigger_rows:
            trigger_row.close()
        self._trigger_rows.clear()
        super().close()
        self.styles.close()


def _counts(listing: Listing, matched: Sequence[str]) -> dict[str | None, int]:
    """How many of ``matched`` each account has (a table of several accounts)."""
    if not listing.accounts:
        return {}
    ids = listing.ids
    return dict(collections.Counter(ids[h] for h in matched))


def _page_entries(
    listing: Listing, counts: Mapping[str | None, int], shown: Sequence[str], first: int, last_page: bool
) -> tuple[tuple[str, str], ...]:
    """The grid's rows of a page, ``shown`` being ``matched[first:…]``: with several
    accounts, each account's group row above its hooks on the page (again on each
    page its hooks continue on), and an account with no hook matched shows its group
    row where its hooks would be. One account: the hooks alone."""
    if not listing.accounts:
        return tuple(("hook", h) for h in shown)
    entries: list[tuple[str, str]] = []
    end = first + len(shown)
    start = 0  # where the account's hooks start among the matched
    for account in listing.accounts:
        count = counts.get(account, 0)
        if count:
            on_page = shown[max(start - first, 0) : max(min(start + count, end) - first, 0)]
            if on_page:
                entries.append(("group", account))
                entries.extend(("hook", h) for h in on_page)
        elif first <= start < end or (start == end and last_page) or not shown:
            entries.append(("group", account))
        start += count
    placed = {h for kind, h in entries if kind == "hook"}
    entries.extend(("hook", h) for h in shown if h not in placed)  # (a hook of no account shown)
    return tuple(entries)


def _weak_pick(table: HookTable) -> Callable[[TriggerRow], None]:
    """``table.on_pick`` without a reference to the table."""
    ref = weakref.ref(table)

    def pick(row: TriggerRow) -> None:
        target = ref()
        if target is not None:
            target.on_pick(row)

    return pick


def _weak_query(table: HookTable) -> Callable[[Any], None]:
    """The filter box's observer (a change arrives on the kernel's thread), without a
    reference to the table."""
    ref = weakref.ref(table)

    def changed(change: Any) -> None:
        target = ref()
        if target is not None:
            target.hub.on_loop(target.set_query, str(change["new"]))

    return changed


def _weak_click(table: HookTable) -> Callable[[str, str], None]:
    """``table.clicked`` without a reference to the table (rows do not keep it alive)."""
    ref = weakref.ref(table)

    def click(action: str, hook_id: str) -> None:
        target = ref()
        if target is not None:
            target.clicked(action, hook_id)

    return click
