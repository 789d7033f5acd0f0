"""IPython connectivity: the ``%hook`` / ``%%hook`` magic.

A thin layer: parse the line and dispatch it to its sub-command (:mod:`.commands`,
which calls the :class:`~.manager.HookManager` on its loop thread and prints the
result). This class gives the sub-commands their :class:`~.commands.Context`: the
façade, the one doorway to its loop (:meth:`HookMagics.run`, :meth:`HookMagics.call`),
the settings (config traits) and the live table. Bad input and failures become
one-line ``UsageError``s.

Several accounts, as Libervia's profiles: each connected account has its own
:class:`~.manager.HookManager`, all on the one loop thread, held by
:class:`~.accounts.Accounts` (``-p ACCOUNT`` picks one; ``manager`` is the default
account's, or the idle one before any connect).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from IPython.core.completer import SimpleCompletion, completion_matcher
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Float, Integer, TraitError, Unicode, observe, validate

from . import commands, logs
from .accounts import Accounts
from .commands.hooks import FORMATS
from .hooks import HookError
from .loopthread import LoopThread
from .snapshot import Snapshot

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .manager import HookManager

__all__ = ["HookMagics"]


@magics_class
class HookMagics(Magics):
    """The ``%hook`` magic and its session, one per shell."""

    history = Integer(50, help="How many recent triggers each hook keeps.").tag(config=True)
    queue_size = Integer(
        1000, help="How many items may wait for a busy hook before it drops some."
    ).tag(config=True)
    time_limit = Float(
        60.0, help="Seconds one run of a hook may take; past it the run is stopped."
    ).tag(config=True)
    timeout = Float(
        30.0, help="Seconds a command waits for the XMPP server before giving up."
    ).tag(config=True)
    table_refresh = Float(
        0.3, help="Seconds between two refreshes of a live hooks table (coalesced updates)."
    ).tag(config=True)
    dead_letters = Integer(
        1000,
        help="How many failed items (after their retries) each hook keeps for %hook "
        "failed / %hook retry; past it the oldest are dropped and counted.",
    ).tag(config=True)
    list_format = Unicode(
        "table",
        help="Default format of %hook list: table (live widget in a notebook, text "
        "elsewhere), text or json.",
    ).tag(config=True)
    default_profile = Unicode(
        "",
        help="The account commands without -p are for, whenever it is connected (a bare "
        "JID, or its local part); empty: the first one connected (or the one of "
        "%hook connect --default).",
    ).tag(config=True)

    @observe("default_profile")
    def _prefer(self, change: Any) -> None:
        if getattr(self, "_accounts", None) is not None:  # (not while config loads)
            self._set_preferred(change["new"])

    def _set_preferred(self, profile: str) -> None:
        """Tell the accounts which one to prefer as default (on the session's loop, where
        they change, once it runs)."""
        loop_thread = self._loop_thread
        if loop_thread is not None and loop_thread.alive:
            self.call(self._accounts.prefer, profile)
        else:
            self._accounts.prefer(profile)

    @validate("list_format")
    def _valid_format(self, proposal: Any) -> str:
        if proposal["value"] not in FORMATS:
            *others, last = FORMATS
            raise TraitError(f"list_format must be {', '.join(others)} or {last}")
        return proposal["value"]

    @validate("history", "queue_size", "dead_letters")
    def _positive_int(self, proposal: Any) -> int:
        if proposal["value"] < 1:
            raise TraitError(f"{proposal['trait'].name} must be at least 1")
        return proposal["value"]

    @validate("timeout", "table_refresh", "time_limit")
    def _positive_float(self, proposal: Any) -> float:
        if proposal["value"] <= 0:
            raise TraitError(f"{proposal['trait'].name} must be positive")
        return proposal["value"]

    def __init__(self, shell: Any, handover: tuple[Any, ...] | None = None, **kwargs: Any):
        super().__init__(shell, **kwargs)
        self._tables: Any = None  # the TableHub, made at the first table
        #: Our and slixmpp's log records: kept for %hook log, never printed into cells.
        self.log_records = logs.install()
        # After each cell: start the persistent hooks waiting for notebook names.
        shell.events.register("post_run_cell", self._after_cell)
        self._loop_thread: LoopThread | None = None
        #: The first manager: the default account's until another is, and the idle
        #: one new accounts log in with (each further account gets its own).
        self._manager: HookManager | None = None
        self._accounts = Accounts()
        if handover is not None and handover[0].alive:  # %reload_ext: keep the session
            self._loop_thread, self._manager = handover[0], handover[1]
            if len(handover) > 2:  # (an older version handed over one account only)
                self._accounts = handover[2]
            if self.default_profile != self._accounts.preferred:
                self._set_preferred(self.default_profile)
            return
        if self.default_profile:
            self._set_preferred(self.default_profile)
        try:  # the kernel's loop, captured once: hooks reach it via host.call_in_kernel
            self._kernel_loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._kernel_loop = None

    # The session's loop thread and the engine are made at the first use of %hook, not
    # at %load_ext: loading the extension stays cheap (the engine is most of the code).

    @property
    def loop_thread(self) -> LoopThread:
        if self._loop_thread is None:
            self._start()
        return self._loop_thread  # type: ignore[return-value]

    @property
    def manager(self) -> HookManager:
        """The default account's manager; before any account is connected, the idle
        one (whose commands say "not connected")."""
        if self._manager is None:
            self._start()
        managers = self._accounts.managers()
        return managers[0] if managers else self._manager  # type: ignore[return-value]

    @property
    def accounts(self) -> Accounts:
        """Every connected account's manager, by bare JID (``host.accounts`` in hooks)."""
        return self._accounts

    def account(self, profile: str | None = None, hook_id: str | None = None) -> HookManager:
        """The manager a command is for: ``-p profile``'s, else the account that has
        the hook ``hook_id``, else the default account's (see :class:`.Accounts`)."""
        if not profile and not len(self._accounts):
            return self.manager
        found = self.call(self._accounts.choose, profile, hook_id)
        return found if found is not None else self.manager

    def new_account(self) -> HookManager:
        """A manager to log in to one more account with: the first manager when it is
        idle, else a new one (on the same loop, sharing the notebook's namespace)."""
        if self._manager is None:
            self._start()
        if self._manager not in self._accounts.managers():
            return self._manager  # type: ignore[return-value]
        return self._new_manager()

    def _all_managers(self) -> list[HookManager]:
        """The first manager and every account's (each once)."""
        managers = [] if self._manager is None else [self._manager]
        return managers + [m for m in self._accounts.managers() if m is not self._manager]

    def _start(self) -> None:
        self._loop_thread = LoopThread()
        atexit.register(self._at_exit)  # a kernel shutdown: keep where each hook got to
        self._manager = self._new_manager()

    def _new_manager(self) -> HookManager:
        from .manager import HookManager

        return HookManager(
            self.ip.user_ns,
            shell=self.shell,
            kernel_loop=self._kernel_loop,
            history=self.history,
            queue_size=self.queue_size,
            time_limit=self.time_limit,
            dead_letters=self.dead_letters,
            accounts=self._accounts,
        )

    # ------------------------------------------------------------------ the doorway

    @property
    def ip(self) -> InteractiveShell:
        """The shell (the magics are always made with one)."""
        assert self.shell is not None
        return self.shell

    @property
    def user_ns(self) -> dict[str, Any]:
        return self.ip.user_ns

    def run(self, coro: Any, timeout: float | None = None) -> Any:
        """Run a façade coroutine on the session loop and wait for its result."""
        limit = timeout if timeout is not None else self.timeout
        with _answer_within(limit):
            return self.loop_thread.run(coro, limit)

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        """Call a plain function on the session loop (to read what the loop owns)."""
        limit = timeout if timeout is not None else self.timeout
        with _answer_within(limit):
            return self.loop_thread.call(fn, *args, timeout=limit)

    def apply_config(self) -> None:
        """Hand the current %config values to every manager (new hooks use them)."""
        self.manager  # noqa: B018 - starts the session's loop and the first manager
        for manager in self._all_managers():
            configure = functools.partial(
                manager.configure,
                history=self.history,
                queue_size=self.queue_size,
                time_limit=self.time_limit,
                dead_letters=self.dead_letters,
            )
            self.call(configure)

    def show_table(self, text: str) -> bool:
        """Show a live hooks table (``text`` for plain front ends and nbconvert); False
        without a front end (a terminal): the caller prints the text."""
        if getattr(self.shell, "kernel", None) is None:
            return False
        from IPython.core.formatters import format_display_data
        from IPython.display import display

        from .table import TableHub

        if self._tables is None:
            self._tables = TableHub(  # (one table of every account, following them)
                self._accounts, self.loop_thread, interval=self.table_refresh, log_records=self.log_records
            )
        self._tables.interval = self.table_refresh
        table = self._tables.new_table()
        data, metadata = format_display_data(table.box)
        data["text/plain"] = text
        display(data, metadata=metadata, raw=True)
        return True

    # ------------------------------------------------------------------ completion

    def complete(self, event: Any) -> list[str]:
        """The texts :meth:`matcher` would offer for ``event.text_until_cursor``."""
        return [c.text for c in self._candidates(event.text_until_cursor)[1]]

    def _candidates(self, text_until_cursor: str) -> tuple[str, list[commands.Candidate]]:
        # On the kernel's thread: read the loop's published snapshots, never its objects.
        managers = self._accounts.managers() or ([self._manager] if self._manager is not None else [])
        snapshots = [m.snapshot() for m in managers] or [Snapshot.EMPTY]
        hooks = [(h.id, h.service, h.node, h.type, h.arg) for s in snapshots for h in s.hooks]
        accounts = [s.jid for s in snapshots if s.jid is not None]
        return commands.complete_typed(text_until_cursor, hooks, snapshots[0].jid, accounts)

    @completion_matcher(identifier="pubsub_hook_magic", priority=100, api_version=2)
    def matcher(self, context: Any) -> dict[str, Any]:
        """Tab completion of a ``%hook`` line (IPython's matcher API v2, registered by
        the extension): our candidates, typed (sub-command, option, hook id with its
        type and node…), in our order, and only them (``suppress``: no Python keywords
        or names after ``%hook``)."""
        line = context.text_until_cursor
        stripped = line.lstrip()
        first = stripped.split(None, 1)[0] if stripped else ""
        if first not in ("%hook", "%%hook") or stripped == first:
            return {"completions": [], "suppress": False}
        if first == "%%hook" and context.cursor_line != 0:
            return {"completions": [], "suppress": False}  # the body of a %%hook cell
        fragment, candidates = self._candidates(stripped)
        return {
            "completions": [SimpleCompletion(c.text, type=c.type) for c in candidates],
            "matched_fragment": fragment,
            "suppress": True,
            "ordered": True,
        }

    # ------------------------------------------------------------------ life cycle

    def _at_exit(self) -> None:
        # Before IPython empties the notebook's namespace (its own atexit runs after
        # ours): the runs in progress are stopped, not failed with a NameError, and run
        # again in the hook's next owner.
        if self.loop_thread.alive:
            for manager in self._all_managers():
                with contextlib.suppress(Exception):  # exiting anyway
                    self.loop_thread.run(manager.stop_runners(), 2)
                    self.loop_thread.call(manager.save_positions, timeout=2)

    def close_tables(self) -> None:
        if self._tables is not None:
            self._tables.close()
            self._tables = None

    def hand_over(self) -> tuple[LoopThread, HookManager, Accounts] | None:
        """Within ``%reload_ext``: let go of the sessions without stopping them, and
        return them (None when none was started) for the reloaded magics to take: the
        loop thread, the first manager, and every account's."""
        with contextlib.suppress(ValueError):
            self.ip.events.unregister("post_run_cell", self._after_cell)
        self.close_tables()
        if self._loop_thread is None or self._manager is None:
            return None
        return self._loop_thread, self._manager, self._accounts

    def _after_cell(self, _result: Any = None) -> None:
        if self._loop_thread is not None and self._manager is not None and self._loop_thread.alive:
            for manager in self._all_managers():
                self._loop_thread.call_soon(manager.notebook_changed)

    def close(self) -> None:
        """Disconnect and stop the loop thread (``%unload_ext``)."""
        with contextlib.suppress(ValueError):
            self.ip.events.unregister("post_run_cell", self._after_cell)
        self.close_tables()
        atexit.unregister(self._at_exit)
        loop_thread = self._loop_thread
        if loop_thread is not None and self._manager is not None and loop_thread.alive:
            for manager in self._all_managers():
                with contextlib.suppress(Exception):  # closing must finish
                    loop_thread.run(manager.disconnect(), 10)
            loop_thread.stop()

    # ------------------------------------------------------------------ the magic

    @no_var_expand
    @line_cell_magic
    def hook(self, line: str, cell: str | None = None) -> None:
        try:
            args = commands.parse_command(line, cell)
            if args.command is None:
                commands.parser().print_help()
                return
            commands.dispatch(self, args)
        except commands.HelpShown:
            return
        except HookError as exc:
            raise UsageError(str(exc)) from None


@contextlib.contextmanager
def _answer_within(limit: float) -> Iterator[None]:
    """A timeout of the session's loop as the error that says what to do."""
    try:
        yield
    except TimeoutError:
        raise commands.CommandError(
            f"the XMPP server did not answer within {limit:g} s; check %hook status, "
            "or raise the limit with %config HookMagics.timeout = 60"
        ) from None


HookMagics.hook.__doc__ = (
    "Run Python for every item published to an XMPP PubSub node.\n\n"
    "Examples::\n\n"
    "  %hook connect alice@example.org --password-env ALICE_PW\n"
    "  %hook create -s pubsub.example.org -n news -t python_code print(item['id'])\n"
    "  %hook create -n urn:xmpp:microblog:0 -t python_file --persistent ~/hook.py\n"
    "  %hook list -O json\n"
    "  %hook connect bot@example.org --password-env BOT_PW   (one more account)\n"
    "  %hook list -p bot\n"
    "  %hook delete -s pubsub.example.org -n news\n\n"
    "A hook is called as hook(host, client, item): host is the extension's manager\n"
    "(host.shell, host.call_in_kernel), client the slixmpp client, item the\n"
    "published <item/> stanza (item['id'], item['payload']).\n\n"
    "Several accounts may be connected: every sub-command takes -p ACCOUNT (a bare\n"
    "JID, or its local part); without it, the default account (the first connected,\n"
    "%config HookMagics.default_profile, or %hook connect JID --default). In a hook,\n"
    "host and client are its own account's; host.accounts['bot@example.org'] another's.\n\n"
    + commands.full_help()
)
