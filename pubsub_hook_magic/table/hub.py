"""The flush hub: every table of the accounts, one lock, and the coalescing refresh.

One hub shows every account of an :class:`~pubsub_hook_magic.accounts.Accounts` (or
one :class:`~pubsub_hook_magic.manager.HookManager`): it follows accounts being added
and removed, listens to each account's manager, and still refreshes at most once per
interval whatever the number of accounts. With one account a table looks as it always
did; with several, each account's hooks come under its group row and the header gives
every account's state. A button acts on its row's own account (hook ids are unique
across accounts: the hub finds the hook's account on the loop).

Runs and changes only mark rows dirty; a flush on the session's loop applies them, at
once on an idle table (leading edge) and then at most every ``interval`` seconds,
sending only cells whose text changed (an unchanged trait sends nothing). So the cost
is flat whatever the event rate, and tables stay live while a notebook cell blocks.

Thousands of hooks: a table shows a page of them (``page_size`` rows). A flush costs
the rows shown, not the hooks installed: the list of every hook (ids, accounts, what the
filter box matches: :class:`~.widgets.Listing`) is kept between flushes and made again
only when hooks come or go; each table picks its page of it; the hub then gathers the
summaries, last runs and owners' runs of those pages' hooks only (and of the hooks
whose triggers are shown), and the header's totals are sums over the runners' counters.

Threads: the hooks, runners and triggers belong to the session's loop, and so does the
hub's own bookkeeping (its tables, what is dirty, its listeners). A flush gathers the
hooks' plain data there (:meth:`TableHub._frame`) and renders every table under the
hub's lock. Clicks arrive on the kernel's thread; they read only the table's own state
(under the lock) and hand the rest to the loop (:meth:`TableHub.on_loop`, the
commands), which looks the hooks up there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..accounts import Accounts
from ..formatting import retry_summary
from ..hooks import HookError
from ..logs import LogEntry, RecentRecords
from ..states import HookState, SessionState, TriggerKind
from . import render
from .widgets import PAGE_SIZE, Frame, HookTable, Listing

if TYPE_CHECKING:
    import concurrent.futures

    from ..loopthread import LoopThread
    from ..manager import HookManager
    from ..runner import HookRunner
    from ..trigger import Trigger

__all__ = ["TableHub"]

log = logging.getLogger(__name__)
#: Seconds an idle table waits before showing an event: the other hooks of the same
#: item run meanwhile, and show in the same refresh.
LEADING = 0.02


class TableHub:
    """Every table of the accounts, one lock, and the coalescing flush.

    ``manager``: the :class:`~pubsub_hook_magic.accounts.Accounts` to show (followed as
    accounts come and go), or a single :class:`~pubsub_hook_magic.manager.HookManager`;
    ``accounts``, when given, is shown instead (so ``TableHub(manager, loop_thread,
    accounts=accounts)`` and ``TableHub(accounts, loop_thread)`` are the same table).
    Its bookkeeping (``tables``, what is dirty, the listeners it adds to the managers)
    changes on the session loop only; the public methods may be called from any thread.
    """

    def __init__(
        self,
        manager: HookManager | Accounts,
        loop_thread: LoopThread,
        interval: float = 0.3,
        keep: int = 8,
        log_records: RecentRecords | None = None,
        *,
        accounts: Accounts | None = None,
        page_size: int = PAGE_SIZE,
    ):
        if accounts is None and isinstance(manager, Accounts):
            accounts = manager
        self.accounts: Accounts | None = accounts
        self._single: HookManager | None = None if isinstance(manager, Accounts) else manager
        #: The managers whose listeners the hub added (on the loop).
        self._attached: list[HookManager] = []
        self.loop_thread = loop_thread
        self.interval = interval
        self.keep = keep  # tables kept live; older ones are closed
        #: The rows of a new table's page.
        self.page_size = page_size
        #: Where the extension's and slixmpp's warnings are kept: the last one shows in
        #: the header.
        self.log_records = log_records
        #: Held whenever a table's widgets change or its rows are read.
        self.lock = threading.RLock()
        self.tables: list[HookTable] = []
        self._dirty: set[str] = set()
        self._all_dirty = True
        self._scheduled = False
        self._last_flush = float("-inf")  # loop time of the last flush
        self._last_event_flush = float("-inf")  # …and of the last one that showed an event
        self._event_pending = False
        self._ticker: Any = None
        # Hook id -> (its position files' stamps, what its owner ran): hooks in standby.
        self._owner_files: dict[str, tuple[list[tuple[int, int] | None], render.OwnerRuns]] = {}
        # Every hook (kept between flushes, made again when hooks come or go): the
        # listing, the runners and managers by hook id, the hooks per account.
        self._listing: _Hooks | None = None
        # Hook id -> (its Hook, the texts the filter box matches but its state).
        self._search: dict[str, tuple[Any, tuple[str, ...]]] = {}
        self._on_loop_now(self._attach)

    # -------------------------------------------------------------- the accounts

    def managers(self) -> list[HookManager]:
        """The managers shown, in the table's order (the default account first): the
        accounts' when the hub has them, else the one manager."""
        if self.accounts is not None:
            return self.accounts.managers()
        return [self._single] if self._single is not None else []

    @property
    def manager(self) -> HookManager | None:
        """The first (default) account's manager (None: no account)."""
        return next(iter(self.managers()), None)

    def _shown(self) -> list[tuple[str | None, HookManager]]:
        """``(account, manager)`` of every account shown (on the loop)."""
        if self.accounts is not None:
            by_manager = {id(m): a for a, m in self.accounts.items()}
            return [(by_manager.get(id(m), m.jid), m) for m in self.accounts.managers()]
        return [(m.jid, m) for m in self.managers()]

    def _manager_of(self, hook_id: str) -> HookManager:
        """On the loop: the account that has hook ``hook_id`` (else the default one,
        whose command then says the hook is gone)."""
        managers = self.managers()
        for manager in managers:
            if hook_id in manager.runners:
                return manager
        if not managers:
            raise HookError("not connected to an XMPP server: connect first (%hook connect JID)")
        return managers[0]

    # -------------------------------------------------------------- public (any thread)

    def new_table(self) -> HookTable:
        """A table showing the current hooks; it then updates itself."""
        with self.lock:
            table = HookTable(self, self.page_size)
        # Added and first rendered on the session loop (consistent statistics).
        self._on_loop_now(self._add_table, table)
        return table

    def mark(self, hook_id: str | None = None) -> None:
        """Ask for a refresh (of one hook's row, or everything)."""
        self.on_loop(self._mark, hook_id)

    def refresh(self, table: HookTable) -> None:
        """Show ``table``'s page again, at once (another page, another filter)."""
        self.on_loop(self._refresh, table)

    def _refresh(self, table: HookTable) -> None:
        if table in self.tables and not table.closed:
            self._render([table], False, set())
            self._tick_later()

    def on_loop(self, func: Callable[..., Any], *args: Any) -> None:
        """Call ``func(*args)`` on the session loop (at once when already there)."""
        if self.loop_thread.in_thread():
            func(*args)
        else:
            self.loop_thread.call_soon(func, *args)

    def close(self) -> None:
        """Close every table and stop listening (on the loop while it runs)."""
        if self.loop_thread.alive:
            try:
                self._on_loop_now(self._close)
                return
            except (TimeoutError, RuntimeError):  # a stuck or stopping loop: close anyway
                pass
        self._close()

    # -------------------------------------------------------------- the buttons' commands

    def set_paused(self, table: HookTable, hook_id: str, paused: bool) -> None:
        self._submit(self._for_hook(hook_id, lambda m: m.set_paused(hook_id, paused)), table)

    def delete(self, table: HookTable, hook_id: str) -> None:
        self._submit(self._for_hook(hook_id, lambda m: m.delete_hooks(hook_id=hook_id)), table)

    def retry_failed(self, table: HookTable, hook_id: str) -> None:
        def said(triggers: list[Trigger]) -> str:
            return retry_summary(hook_id, [t.outcome for t in triggers])

        self._submit(self._for_hook(hook_id, lambda m: m.retry_failed(hook_id)), table, said)

    def replay(self, table: HookTable, hook_id: str, trigger: Trigger) -> None:
        self._submit(self._replay(hook_id, trigger), table)

    async def _for_hook(self, hook_id: str, command: Callable[[HookManager], Coroutine[Any, Any, Any]]) -> Any:
        """Run ``command(manager)`` for the account of hook ``hook_id`` (looked up on
        the session loop, when the click's command runs)."""
        return await command(self._manager_of(hook_id))

    async def _replay(self, hook_id: str, trigger: Trigger) -> Trigger:
        """Run a hook again on the item of one of its triggers (on the session loop,
        where the hook's runner is looked up)."""
        runner = self._manager_of(hook_id).runners.get(hook_id)
        if runner is None:
            raise HookError(f"hook {hook_id} is gone: nothing to replay")
        return await runner.run_now(trigger.payload, TriggerKind.REPLAY, publisher=trigger.publisher)

    def _submit(
        self, coro: Coroutine[Any, Any, Any], table: HookTable, said: Callable[[Any], str] | None = None
    ) -> None:
        """Run a button's command; an error shows in the table's message line, and so
        does ``said(result)`` when given."""

        def done(future: concurrent.futures.Future[Any]) -> None:
            if future.cancelled():
                return
            error = future.exception()
            if error is not None:
                markup = render.error_html(error)
            elif said is not None:
                markup = render.said_html(said(future.result()))
            else:
                return
            with self.lock:
                table.show_message(markup)
            if self.loop_thread.alive:
                self.on_loop(self._schedule)  # (its refreshes make it expire)

        self.loop_thread.submit(coro).add_done_callback(done)

    def _on_loop_now(self, func: Callable[..., Any], *args: Any) -> None:
        """Call ``func(*args)`` on the session loop and wait for it."""
        if self.loop_thread.in_thread():
            func(*args)
        else:
            self.loop_thread.run(_called(func, *args), 10)

    # -------------------------------------------------------------- on the session loop

    def _attach(self) -> None:
        if self.accounts is not None:
            self.accounts.add_change_listener(self._on_accounts)
        self._follow()
        if self.log_records is not None:
            self.log_records.add_listener(self._on_record)

    def _follow(self) -> None:
        """Listen to the accounts' managers: new ones added, removed ones left."""
        current = self.managers()
        for manager in self._attached:
            if not any(manager is m for m in current):
                manager.remove_trigger_listener(self._on_trigger)
                manager.remove_change_listener(self._on_change)
        for manager in current:
            if not any(manager is m for m in self._attached):
                manager.add_trigger_listener(self._on_trigger)
                manager.add_change_listener(self._on_change)
        self._attached = current

    def _on_accounts(self) -> None:
        """An account added or removed, or the default changed (on any thread)."""
        if self.loop_thread.alive:
            self.on_loop(self._accounts_changed)

    def _accounts_changed(self) -> None:
        self._follow()
        self._on_change()

    def _close(self) -> None:
        if self.accounts is not None:
            self.accounts.remove_change_listener(self._on_accounts)
        for manager in self._attached:
            manager.remove_trigger_listener(self._on_trigger)
            manager.remove_change_listener(self._on_change)
        self._attached = []
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
        self._render([table], True, set())
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
        shows within :data:`LEADING` seconds, which gather the runs of one item by
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
            loop.call_later(max(wait, LEADING), self._flush)

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
        self._render(self.tables, full, dirty)
        self._tick_later()

    def _hooks(self, full: bool) -> _Hooks:
        """Every hook of the accounts shown (on the loop): kept from the last flush
        unless hooks came or went (``full``, or an account's count changed)."""
        shown = self._shown()
        kept = self._listing
        counts = tuple((account, id(m), len(m.runners)) for account, m in shown)
        if not full and kept is not None and kept.counts == counts:
            return kept
        several = len(shown) > 1
        ids: dict[str, str | None] = {}
        runners: dict[str, HookRunner] = {}
        managers: dict[str, HookManager] = {}
        for account, manager in shown:
            for hook_id, runner in manager.runners.items():  # (in the table's order)
                if hook_id in runners:
                    continue
                runners[hook_id] = runner
                managers[hook_id] = manager
                ids[hook_id] = account if several else None
        search = self._search
        for gone in [h for h in search if h not in runners]:
            del search[gone]

        def fields(hook_id: str) -> tuple[str, ...]:
            runner = runners[hook_id]
            hook = runner.hook
            cached = search.get(hook_id)
            if cached is None or cached[0] is not hook:
                cached = (hook, render.search_fields(
                    hook_id, hook.node, hook.service, hook.type.value, hook.arg, ids.get(hook_id), ""
                )[:-1])
                search[hook_id] = cached
            return (*cached[1], str(runner.state).lower())

        accounts = tuple(a for a, _m in shown if a is not None) if several else ()
        self._listing = _Hooks(Listing(ids, fields, accounts), runners, managers, counts)
        return self._listing

    def _frame(self, hooks: _Hooks, wanted: Collection[str]) -> Frame:
        """The plain data of the hooks ``wanted`` (the tables' pages and selected
        hooks), the header's totals over every hook, the accounts' lines."""
        now = time.time()
        shown = self._shown()
        several = len(shown) > 1
        lines: list[render.AccountLine] = []
        for account, manager in shown:
            state = manager.state
            session = manager.session
            error = session.last_error if state == SessionState.FAILED and session else None
            lines.append(render.AccountLine(state, account, error, len(manager.runners)))
        runners = hooks.runners
        picked = {h: runners[h] for h in wanted if h in runners}
        summaries = {hook_id: runner.summary(recent=False) for hook_id, runner in picked.items()}
        last_runs = {hook_id: render.last_run(runner.triggers) for hook_id, runner in picked.items()}
        owner_runs = self._owner_runs(hooks, summaries)
        triggers = errors = failed = 0
        for runner in runners.values():  # (counters: cheap at thousands of hooks)
            triggers += runner.count
            errors += runner.errors
            failed += len(runner.dead_letters)
        first = lines[0] if lines else render.AccountLine(SessionState.DISCONNECTED)
        header = render.Header(
            state=first.state,
            jid=first.jid,
            error=first.error,
            hooks=len(runners),
            triggers=triggers,
            errors=errors,
            failed=failed,
            warning=self.log_records.last(logging.WARNING) if self.log_records is not None else None,
            accounts=tuple(lines) if several else (),
            hook_ids=runners.keys(),
        )
        groups = {line.jid: render.group_html(line) for line in lines if line.jid is not None} if several else {}
        ids = hooks.listing.ids
        accounts = {h: a for h in summaries if (a := ids.get(h)) is not None}
        return Frame(now, header, summaries, last_runs, owner_runs, groups, accounts, hooks.listing)

    def _owner_runs(self, hooks: _Hooks, summaries: dict[str, Any]) -> dict[str, render.OwnerRuns]:
        """What the owners of the hooks in standby here ran, from their position files
        (of the hooks shown): two ``stat`` calls per such hook and refresh, the files
        read only when they changed (``_owner_files``)."""
        found: dict[str, render.OwnerRuns] = {}
        for hook_id, summary in summaries.items():
            if summary["state"] != HookState.STANDBY:
                continue
            store = hooks.managers[hook_id].engine.positions.store
            if store is None:
                continue
            stamp: list[tuple[int, int] | None] = []
            for path in store.files_of(hook_id):
                try:
                    st = path.stat()
                    stamp.append((st.st_mtime_ns, st.st_size))
                except OSError:
                    stamp.append(None)
            cached = self._owner_files.get(hook_id)
            if cached is None or cached[0] != stamp:
                runs, last, item_id = store.activity(hook_id)
                cached = (stamp, render.OwnerRuns(runs, last if runs else None, item_id if runs else None))
                self._owner_files[hook_id] = cached
            found[hook_id] = cached[1]
        for gone in set(self._owner_files) - set(found):
            del self._owner_files[gone]
        return found

    def _render(self, tables: list[HookTable], full: bool, dirty: set[str]) -> None:
        """Render ``tables``; the selected hook's triggers when it changed (``dirty``)."""
        hooks = self._hooks(full)
        with self.lock:
            live = [t for t in tables if not t.closed]
            wanted: dict[str, None] = {}
            for table in live:
                try:
                    wanted.update(dict.fromkeys(table.select(hooks.listing)))
                except Exception:  # a display bug must not stop the session
                    log.exception("paging a hooks table failed")
                if table.selected is not None:
                    wanted[table.selected] = None
        frame = self._frame(hooks, wanted)
        runners = hooks.runners
        with self.lock:
            for table in live:
                if table.closed:
                    continue
                try:
                    # Relative times age: rows are re-rendered at every flush, but only
                    # cells whose text changed are sent.
                    table.render(frame)
                    selected = table.selected
                    if selected and (full or selected in dirty or selected not in frame.summaries):
                        runner = runners.get(selected)
                        table.render_details(frame.summaries.get(selected), list(runner.triggers) if runner else [])
                except Exception:  # a display bug must not stop the session
                    log.exception("rendering a hooks table failed")

    def _tick_later(self) -> None:
        """Refresh relative times ("3 s ago") once a second while tables are shown."""
        loop = self.loop_thread.loop
        if self._ticker is None or self._ticker.cancelled() or self._ticker.when() <= loop.time():
            self._ticker = loop.call_later(1.0, self._tick)

    def _tick(self) -> None:
        self._ticker = None
        now = time.time()
        hour_ago = now - 3600
        with self.lock:  # (the rows shown: their relative times age)
            ids = {h for t in self.tables for h in t.shown_ids()}
        runners = self._listing.runners if self._listing is not None else {}
        recent = any(
            (r.last_trigger and r.last_trigger.received > hour_ago) or r.standby
            for r in (runners.get(h) for h in ids)
            if r is not None
        ) or any(t.expiring(now) for t in self.tables)
        if not self.tables or not recent:
            return  # the next flush ticks again
        since = self.loop_thread.loop.time() - self._last_flush
        if since >= 0.9:
            self._schedule(event=False)
        else:  # a flush just refreshed the times: tick a second after it
            self._ticker = self.loop_thread.loop.call_later(1.0 - since, self._tick)


@dataclass(frozen=True, slots=True)
class _Hooks:
    """Every hook shown, as the hub keeps it between flushes."""

    listing: Listing
    runners: dict[str, HookRunner]
    managers: dict[str, HookManager]
    #: (account, id of its manager, its number of hooks), per account: the hooks came
    #: or went when it differs.
    counts: tuple[tuple[str | None, int, int], ...]


async def _called(func: Callable[..., Any], *args: Any) -> None:
    func(*args)
