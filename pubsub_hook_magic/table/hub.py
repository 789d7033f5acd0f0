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
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ..accounts import Accounts
from ..formatting import retry_summary
from ..hooks import HookError
from ..logs import LogEntry, RecentRecords
from ..states import HookState, SessionState, TriggerKind
from . import render
from .widgets import Frame, HookTable

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
            table = HookTable(self)
        # Added and first rendered on the session loop (consistent statistics).
        self._on_loop_now(self._add_table, table)
        return table

    def mark(self, hook_id: str | None = None) -> None:
        """Ask for a refresh (of one hook's row, or everything)."""
        self.on_loop(self._mark, hook_id)

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

    def _frame(self) -> tuple[Frame, dict[str, HookRunner]]:
        """The hooks' plain data, for every table of this refresh, and their runners
        (every account's, by hook id)."""
        now = time.time()
        shown = self._shown()
        several = len(shown) > 1
        runners: dict[str, HookRunner] = {}
        hook_accounts: dict[str, str] = {}
        lines: list[render.AccountLine] = []
        for account, manager in shown:
            theirs = manager.runners  # id -> runner, in the table's order
            for hook_id, runner in theirs.items():
                runners.setdefault(hook_id, runner)
                if several and account is not None:
                    hook_accounts.setdefault(hook_id, account)
            state = manager.state
            session = manager.session
            error = session.last_error if state == SessionState.FAILED and session else None
            lines.append(render.AccountLine(state, account, error, len(theirs)))
        summaries = {hook_id: runner.summary(recent=False) for hook_id, runner in runners.items()}
        last_runs = {hook_id: render.last_run(runner.triggers) for hook_id, runner in runners.items()}
        owner_runs = self._owner_runs(shown, summaries)
        first = lines[0] if lines else render.AccountLine(SessionState.DISCONNECTED)
        header = render.Header(
            state=first.state,
            jid=first.jid,
            error=first.error,
            hooks=len(summaries),
            triggers=sum(r.count for r in runners.values()),
            errors=sum(r.errors for r in runners.values()),
            failed=sum(len(r.dead_letters) for r in runners.values()),
            warning=self.log_records.last(logging.WARNING) if self.log_records is not None else None,
            accounts=tuple(lines) if several else (),
            hook_ids=frozenset(runners),
        )
        groups = {line.jid: render.group_html(line) for line in lines if line.jid is not None} if several else {}
        frame = Frame(now, header, summaries, last_runs, owner_runs, groups, hook_accounts)
        return frame, runners

    def _owner_runs(
        self, shown: list[tuple[str | None, HookManager]], summaries: dict[str, Any]
    ) -> dict[str, render.OwnerRuns]:
        """What the owners of the hooks in standby here ran, from their position files:
        two ``stat`` calls per such hook and refresh, the files read only when they
        changed (``_owner_files``)."""
        found: dict[str, render.OwnerRuns] = {}
        for _account, manager in shown:
            store = manager.engine.positions.store
            if store is None:
                continue
            for hook_id in manager.runners:
                summary = summaries.get(hook_id)
                if summary is None or summary["state"] != HookState.STANDBY:
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
        frame, runners = self._frame()
        with self.lock:
            for table in tables:
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
        recent = any(
            (r.last_trigger and r.last_trigger.received > hour_ago) or r.standby
            for manager in self.managers()
            for r in manager.runners.values()
        ) or any(t.expiring(now) for t in self.tables)
        if not self.tables or not recent:
            return  # the next flush ticks again
        since = self.loop_thread.loop.time() - self._last_flush
        if since >= 0.9:
            self._schedule(event=False)
        else:  # a flush just refreshed the times: tick a second after it
            self._ticker = self.loop_thread.loop.call_later(1.0 - since, self._tick)


async def _called(func: Callable[..., Any], *args: Any) -> None:
    func(*args)
