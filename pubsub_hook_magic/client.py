"""The one doorway between the caller's thread and the session's loop, and what a
notebook or a script shares: the accounts, the settings, and the cell being run.

:class:`HookClient` plays the part of Dask's ``Client``: it starts the session's loop
thread (:class:`~.loopthread.LoopThread`) at first use, holds every account's
:class:`~.manager.HookManager` (:class:`~.accounts.Accounts`), and runs their coroutines
there from any other thread (:meth:`HookClient.run`, with a timeout; Ctrl-C cancels).
The ``%hook`` magic and the synchronous API (:mod:`.api`) are two front ends on it; in
IPython they share one client, so ``%hook list`` shows the hooks a cell's decorator made.

It also ties hooks to cells (:mod:`.cells`): the front end says when a cell starts and
ends (:meth:`HookClient.begin_cell`, :meth:`HookClient.end_cell`); a create in between
records the cell as the hook's origin, and a cell run again replaces its hooks.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .accounts import Accounts
from .cells import CellRun
from .hooks import HookError
from .loopthread import LoopThread

if TYPE_CHECKING:
    from .hooks import Hook
    from .manager import HookManager

__all__ = ["HookClient", "Settings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """What new hooks and commands use (``%config HookMagics.*`` in IPython)."""

    #: How many recent triggers each hook keeps.
    history: int = 50
    #: How many items may wait for a busy hook before it drops some.
    queue_size: int = 1000
    #: Seconds one run of a hook may take.
    time_limit: float = 60.0
    #: How many failed items each hook keeps.
    dead_letters: int = 1000
    #: Seconds a command waits for the XMPP server.
    timeout: float = 30.0


class HookClient:
    """The session's loop thread, every account's manager, the settings and the cell
    being run: what the ``%hook`` magic and the synchronous API share."""

    def __init__(
        self,
        namespace: dict[str, Any] | None = None,
        *,
        shell: Any = None,
        kernel_loop: asyncio.AbstractEventLoop | None = None,
        settings: Settings | None = None,
        timeout_hint: str = "check its status(), or raise the limit with configure(timeout=60)",
    ):
        #: The namespace python_code hooks share (the notebook's user namespace).
        self.namespace: dict[str, Any] = namespace if namespace is not None else {}
        self.shell = shell
        self.kernel_loop = kernel_loop
        self.settings = settings or Settings()
        #: How to raise the limit, said when the server does not answer in time.
        self.timeout_hint = timeout_hint
        #: Raised for a user's mistake (``HookError``; in IPython one that shows as a
        #: one-line ``UsageError``, set by the magics).
        self.error_class: type[HookError] = HookError
        #: Shows a live table of the hooks (``text`` for plain front ends); None
        #: without a front end that can.
        self.show_table: Callable[[str], bool] | None = None
        #: Where messages for the user go (``print`` in a notebook; the log elsewhere).
        self.say: Callable[[str], None] = log.info
        #: The recent log records (:class:`.logs.RecentRecords`, kept by the extension
        #: in IPython; None elsewhere: they go to Python's logging).
        self.log_records: Any = None
        self.accounts = Accounts()
        self._loop_thread: LoopThread | None = None
        self._manager: HookManager | None = None
        self._cell: CellRun | None = None

    # ------------------------------------------------------------------ the loop

    @property
    def loop_thread(self) -> LoopThread:
        """The session's loop thread, started at first use."""
        if self._loop_thread is None:
            self._start()
        return self._loop_thread  # type: ignore[return-value]

    @property
    def started(self) -> bool:
        return self._loop_thread is not None and self._loop_thread.alive

    def adopt(self, loop_thread: LoopThread, manager: HookManager, accounts: Accounts) -> None:
        """Take over a running session (an older extension's, handed over by
        ``%reload_ext``)."""
        self._loop_thread, self._manager, self.accounts = loop_thread, manager, accounts
        atexit.register(self._at_exit)

    def _start(self) -> None:
        self._loop_thread = LoopThread()
        atexit.register(self._at_exit)  # an exit: keep where each hook got to
        self._manager = self._new_manager()

    def _new_manager(self) -> HookManager:
        from .manager import HookManager

        settings = self.settings
        return HookManager(
            self.namespace,
            shell=self.shell,
            kernel_loop=self.kernel_loop,
            history=settings.history,
            queue_size=settings.queue_size,
            time_limit=settings.time_limit,
            dead_letters=settings.dead_letters,
            accounts=self.accounts,
        )

    @property
    def timeout(self) -> float:
        return self.settings.timeout

    @property
    def time_limit(self) -> float:
        return self.settings.time_limit

    @property
    def user_ns(self) -> dict[str, Any]:
        return self.namespace

    def configure(self, **changes: Any) -> None:
        """Change settings (``history=``, ``timeout=``…); new hooks use them."""
        self.settings = dataclasses.replace(self.settings, **changes)

    def run(self, coro: Any, timeout: float | None = None) -> Any:
        """Run a manager's coroutine on the session's loop and wait for its result
        (``timeout`` seconds, else the settings'); Ctrl-C or the timeout cancels it."""
        limit = timeout if timeout is not None else self.settings.timeout
        with self._answer_within(limit):
            return self.loop_thread.run(coro, limit)

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        """Call a plain function on the session's loop (to read what the loop owns)."""
        limit = timeout if timeout is not None else self.settings.timeout
        with self._answer_within(limit):
            return self.loop_thread.call(fn, *args, timeout=limit)

    @contextlib.contextmanager
    def _answer_within(self, limit: float) -> Iterator[None]:
        from .commands import CommandError

        if self._loop_thread is not None and self._loop_thread.in_thread():
            raise HookError(
                "this call waits for the session's loop, and a hook runs on it: in a hook, "
                "await the async API instead (await host.publish(...), host.create_hook(...))"
            )
        try:
            yield
        except TimeoutError:
            raise CommandError(
                f"the XMPP server did not answer within {limit:g} s; {self.timeout_hint}"
            ) from None

    # ------------------------------------------------------------------ accounts

    @property
    def manager(self) -> HookManager:
        """The default account's manager; before any account is connected, the idle
        one (whose commands say "not connected")."""
        if self._manager is None:
            self._start()
        managers = self.accounts.managers()
        return managers[0] if managers else self._manager  # type: ignore[return-value]

    def account(self, profile: str | None = None, hook_id: str | None = None) -> HookManager:
        """The manager a command is for: ``profile``'s, else the account that has the
        hook ``hook_id``, else the default account's (see :class:`.Accounts`)."""
        if not profile and not len(self.accounts):
            return self.manager
        found = self.call(self.accounts.choose, profile, hook_id)
        return found if found is not None else self.manager

    def new_account(self) -> HookManager:
        """A manager to log in to one more account with: the first manager when it is
        idle, else a new one (on the same loop, sharing the namespace)."""
        if self._manager is None:
            self._start()
        if self._manager not in self.accounts.managers():
            return self._manager  # type: ignore[return-value]
        return self._new_manager()

    def all_managers(self) -> list[HookManager]:
        """The first manager and every account's (each once)."""
        managers = [] if self._manager is None else [self._manager]
        return managers + [m for m in self.accounts.managers() if m is not self._manager]

    def apply_config(self) -> None:
        """Hand the settings to every manager (new hooks use them)."""
        self.manager  # noqa: B018 - starts the session's loop and the first manager
        settings = self.settings
        for manager in self.all_managers():
            configure = functools.partial(
                manager.configure,
                history=settings.history,
                queue_size=settings.queue_size,
                time_limit=settings.time_limit,
                dead_letters=settings.dead_letters,
            )
            self.call(configure)

    def connected_jids(self) -> list[str]:
        """The connected accounts, the default first."""
        return [m.jid for m in self.accounts.managers() if m.jid is not None]

    # ------------------------------------------------------------------ cells

    def begin_cell(self, key: str | None) -> None:
        """A cell starts (``key`` from :func:`.cells.cell_key`; None: not a cell)."""
        self._cell = CellRun(key) if key else None

    @property
    def origin(self) -> str | None:
        """The cell being run, recorded on the hooks it makes."""
        return self._cell.key if self._cell is not None else None

    def cell_run(self) -> CellRun | None:
        """The cell being run, with the hooks its previous run made (read once)."""
        cell = self._cell
        if cell is not None and cell.previous is None:
            cell.previous = self._hooks_of(cell.key) if self.started else []
        return cell

    def _hooks_of(self, origin: str) -> list[Hook]:
        """The hooks the cell ``origin`` made: found in the published snapshots (no
        wait for the loop, which may be busy, after a cell that made none), then read
        on the loop."""
        managers = self.all_managers()
        ids = {h.id for m in managers for h in m.snapshot().hooks if h.origin == origin}
        if not ids:
            return []

        def read() -> list[Hook]:
            return [h for m in managers for h in m.hooks() if h.id in ids]

        return self.call(read)

    def end_cell(self, success: bool) -> list[str]:
        """A cell ended: after a run that succeeded, the hooks its previous run made and
        this one did not are deleted. Returns what was done, a line each."""
        cell, self._cell = self._cell, None
        if cell is None or not success or not self.started:
            return []
        if cell.previous is None:
            cell.previous = self._hooks_of(cell.key)
        lines = []
        for hook in cell.unclaimed():
            try:
                self.run(self.account(None, hook.id).delete_hooks(hook_id=hook.id))
            except HookError as exc:
                lines.append(f"Hook {hook.id} of this cell's previous run stays: {exc}")
            else:
                lines.append(f"Deleted hook {hook.id} ({hook.node}): the cell no longer makes it.")
        return lines

    # ------------------------------------------------------------------ life cycle

    def notebook_changed(self) -> None:
        """After a cell: hooks waiting for notebook names look again."""
        loop_thread = self._loop_thread
        if loop_thread is not None and loop_thread.alive:
            for manager in self.all_managers():
                loop_thread.call_soon(manager.notebook_changed)

    def _at_exit(self) -> None:
        # Before IPython empties the notebook's namespace (its own atexit runs after
        # ours): the runs in progress are stopped, not failed with a NameError, and run
        # again in the hook's next owner.
        loop_thread = self._loop_thread
        if loop_thread is not None and loop_thread.alive:
            for manager in self.all_managers():
                with contextlib.suppress(Exception):  # exiting anyway
                    loop_thread.run(manager.stop_runners(), 2)
                    loop_thread.call(manager.save_positions, timeout=2)

    def close(self) -> None:
        """Disconnect every account and stop the loop thread."""
        atexit.unregister(self._at_exit)
        loop_thread = self._loop_thread
        if loop_thread is not None and loop_thread.alive:
            for manager in self.all_managers():
                with contextlib.suppress(Exception):  # closing must finish
                    loop_thread.run(manager.disconnect(), 10)
            loop_thread.stop()

    def hand_over(self) -> tuple[LoopThread, HookManager, Accounts] | None:
        """Let go of the session without stopping it (``%reload_ext``); None when none
        was started."""
        if self._loop_thread is None or self._manager is None:
            return None
        atexit.unregister(self._at_exit)
        return self._loop_thread, self._manager, self.accounts
