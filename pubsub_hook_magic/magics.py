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
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.completer import SimpleCompletion, completion_matcher
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, needs_local_scope, no_var_expand
from traitlets import Float, Integer, TraitError, Unicode, observe, validate

from . import commands, logs
from .accounts import Accounts
from .api import Session
from .cells import cell_key
from .client import HookClient, Settings
from .commands.hooks import FORMATS
from .hooks import HookError
from .loopthread import LoopThread
from .snapshot import Snapshot

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .manager import HookManager

__all__ = ["HookMagics", "NotebookHookError"]


class NotebookHookError(HookError, UsageError):
    """A :class:`~.hooks.HookError` of the Python API raised in IPython: shown as a
    one-line ``UsageError`` (no traceback), caught as a ``HookError``."""

    def _render_traceback_(self) -> list[str]:
        # (IPython shows UsageError itself, not its subclasses, without a traceback)
        return [f"UsageError: {self}"]


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
    table_page_size = Integer(
        50,
        help="Rows on a page of a live hooks table (its pager and filter box show the "
        "others): the widgets of a page, whatever the number of hooks.",
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
        if getattr(self, "client", None) is not None:  # (not while config loads)
            self._set_preferred(change["new"])

    def _set_preferred(self, profile: str) -> None:
        """Tell the accounts which one to prefer as default (on the session's loop, where
        they change, once it runs)."""
        if self.client.started:
            self.call(self.client.accounts.prefer, profile)
        else:
            self.client.accounts.prefer(profile)

    @validate("list_format")
    def _valid_format(self, proposal: Any) -> str:
        if proposal["value"] not in FORMATS:
            *others, last = FORMATS
            raise TraitError(f"list_format must be {', '.join(others)} or {last}")
        return proposal["value"]

    @validate("history", "queue_size", "dead_letters", "table_page_size")
    def _positive_int(self, proposal: Any) -> int:
        if proposal["value"] < 1:
            raise TraitError(f"{proposal['trait'].name} must be at least 1")
        return proposal["value"]

    @validate("timeout", "table_refresh", "time_limit")
    def _positive_float(self, proposal: Any) -> float:
        if proposal["value"] <= 0:
            raise TraitError(f"{proposal['trait'].name} must be positive")
        return proposal["value"]

    def __init__(self, shell: Any, handover: Any = None, **kwargs: Any):
        super().__init__(shell, **kwargs)
        self._tables: Any = None  # the TableHub, made at the first table
        #: Our and slixmpp's log records: kept for %hook log, never printed into cells.
        self.log_records = logs.install()
        # Before each cell: the hooks it makes are tied to it; after: it ends, and
        # persistent hooks waiting for notebook names look again.
        shell.events.register("pre_run_cell", self._before_cell)
        shell.events.register("post_run_cell", self._after_cell)
        try:  # the kernel's loop, captured once: hooks reach it via host.call_in_kernel
            kernel_loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            kernel_loop = None
        if isinstance(handover, HookClient):  # %reload_ext: keep the session
            self.client = handover
        else:
            self.client = HookClient(
                shell.user_ns, shell=shell, kernel_loop=kernel_loop, settings=self._settings(),
                timeout_hint="check %hook status, or raise the limit with %config HookMagics.timeout = 60",
            )
            if handover is not None and handover[0].alive:  # (an older version's tuple)
                loop_thread, manager, *accounts = handover
                self.client.adopt(loop_thread, manager, accounts[0] if accounts else Accounts())
        self.client.settings = self._settings()
        self.client.error_class = NotebookHookError
        self.client.show_table = self.show_table
        self.client.say = print
        self.client.log_records = self.log_records
        if self.default_profile != self.client.accounts.preferred:
            self._set_preferred(self.default_profile)

    def _settings(self) -> Settings:
        return Settings(
            history=self.history, queue_size=self.queue_size, time_limit=self.time_limit,
            dead_letters=self.dead_letters, timeout=self.timeout,
        )

    @observe("history", "queue_size", "time_limit", "dead_letters", "timeout")
    def _settings_changed(self, _change: Any) -> None:
        if getattr(self, "client", None) is not None:  # (not while config loads)
            self.client.settings = self._settings()

    # The session's loop thread and the engine are made at the first use of %hook, not
    # at %load_ext: loading the extension stays cheap (the engine is most of the code).
    # The doorway, the accounts and the cells are the client's (:mod:`.client`).

    @property
    def loop_thread(self) -> LoopThread:
        return self.client.loop_thread

    @property
    def manager(self) -> HookManager:
        """The default account's manager; before any account is connected, the idle
        one (whose commands say "not connected")."""
        return self.client.manager

    @property
    def accounts(self) -> Accounts:
        """Every connected account's manager, by bare JID (``host.accounts`` in hooks)."""
        return self.client.accounts

    def account(self, profile: str | None = None, hook_id: str | None = None) -> HookManager:
        """The manager a command is for (see :meth:`.HookClient.account`)."""
        return self.client.account(profile, hook_id)

    def new_account(self) -> HookManager:
        return self.client.new_account()

    def session(self, profile: str | None = None) -> Session:
        """The Python API's session of ``profile`` (None: the default account)."""
        return Session(self.client, profile or None)

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
        return self.client.run(coro, timeout)

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        """Call a plain function on the session loop (to read what the loop owns)."""
        return self.client.call(fn, *args, timeout=timeout)

    def apply_config(self) -> None:
        """Hand the current %config values to every manager (new hooks use them)."""
        self.client.apply_config()

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
                self.client.accounts, self.loop_thread, interval=self.table_refresh, log_records=self.log_records,
                page_size=self.table_page_size,
            )
        self._tables.interval = self.table_refresh
        self._tables.page_size = self.table_page_size
        table = self._tables.new_table()
        data, metadata = format_display_data(table.box)
        data["text/plain"] = text
        display(data, metadata=metadata, raw=True)
        return True

    def show_catch_up(self) -> None:
        """After a connect: a progress bar of the persistent hooks still catching up
        (hundreds of them take seconds), updated from the session's loop as they catch
        up, until every one has; nothing without a front end or for a few hooks."""
        if getattr(self.shell, "kernel", None) is None:
            return
        from .progress import SHOW_FROM, progress_of

        for manager in self.client.accounts.managers():
            progress = progress_of(manager.snapshot())
            if progress.total >= SHOW_FROM and not progress.finished:
                self._follow_catch_up(manager, progress)

    def _follow_catch_up(self, manager: HookManager, progress: Any) -> None:
        import ipywidgets
        from IPython.display import display

        from .progress import CatchUpProgress, Progress

        bar = ipywidgets.IntProgress(value=progress.done, max=progress.total, description=manager.jid or "")
        label = ipywidgets.Label(progress.line(0.0))
        display(ipywidgets.HBox([bar, label]))

        def report(now: Progress, seconds: float) -> None:  # (on the session's loop)
            bar.value, label.value = now.done, now.line(seconds)
            if now.finished:
                bar.bar_style = "success"

        follower = CatchUpProgress(manager.snapshot, report, interval=self.table_refresh)

        def on_change() -> None:
            follower.changed()
            if follower.done:
                manager.remove_change_listener(on_change)

        self.call(manager.add_change_listener, on_change)
        self.client.loop_thread.call_soon(on_change)  # (it may have caught up meanwhile)

    # ------------------------------------------------------------------ completion

    def complete(self, event: Any) -> list[str]:
        """The texts :meth:`matcher` would offer for ``event.text_until_cursor``."""
        return [c.text for c in self._candidates(event.text_until_cursor)[1]]

    def _candidates(self, text_until_cursor: str) -> tuple[str, list[commands.Candidate]]:
        # On the kernel's thread: read the loop's published snapshots, never its objects.
        managers = self.client.accounts.managers() or self.client.all_managers()[:1]
        snapshots = [m.snapshot() for m in managers] or [Snapshot.EMPTY]
        hooks = [(h.id, h.service, h.node, h.type, h.arg) for s in snapshots for h in s.hooks]
        accounts = [s.jid for s in snapshots if s.jid is not None]
        return commands.complete_typed(text_until_cursor, hooks, snapshots[0].jid, accounts)

    @completion_matcher(identifier="pubsub_hook_magic", priority=100, api_version=2)
    def matcher(self, context: Any) -> dict[str, Any]:
        """Tab completion of a ``%hook`` line (IPython's matcher API v2, registered by
        the extension): our candidates, typed (``command``, ``option``, a hook id's
        ``python_code · news``…: hints of at most 20 characters that cannot wrap in
        JupyterLab's narrow hint column, distinct per hook; see
        :mod:`.commands.complete`), in our order, and only them (``suppress``: no
        Python keywords or names after ``%hook``)."""
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

    def close_tables(self) -> None:
        if self._tables is not None:
            self._tables.close()
            self._tables = None

    def _unregister(self) -> None:
        for event, callback in (("pre_run_cell", self._before_cell), ("post_run_cell", self._after_cell)):
            with contextlib.suppress(ValueError):
                self.ip.events.unregister(event, callback)

    def hand_over(self) -> HookClient | None:
        """Within ``%reload_ext``: let go of the session without stopping it, and
        return its client for the reloaded magics to take (None when none was
        started)."""
        self._unregister()
        self.close_tables()
        return self.client if self.client.started else None

    def _before_cell(self, info: Any = None) -> None:
        key = cell_key(getattr(info, "cell_id", None), getattr(info, "raw_cell", None))
        self.client.begin_cell(key if not getattr(info, "silent", False) else None)

    def _after_cell(self, result: Any = None) -> None:
        success = bool(getattr(result, "success", True))
        try:
            lines = self.client.end_cell(success)
        except Exception as exc:  # (a cell's end must not raise into the next one)
            lines = [f"Could not tidy this cell's previous hooks: {exc}"]
        for line in lines:
            print(line)
        self.client.notebook_changed()

    def close(self) -> None:
        """Disconnect and stop the loop thread (``%unload_ext``)."""
        self._unregister()
        self.close_tables()
        self.client.close()

    # ------------------------------------------------------------------ the magic

    @no_var_expand  # expanded word by word by the parser: never the code, a cell or XML
    @line_cell_magic
    @needs_local_scope
    def hook(self, line: str, cell: str | None = None, local_ns: dict[str, Any] | None = None) -> None:
        from IPython.utils.text import DollarFormatter

        def expand(text: str) -> str:
            """IPython's expansion of one word (``{expr}``, ``$name``, ``$$``/``{{ }}``):
            the caller's local names first (a function's, for a line in its body), then
            the notebook's."""
            user_ns = self.user_ns
            names = user_ns if local_ns is None or local_ns is user_ns else {**user_ns, **local_ns}
            return DollarFormatter().vformat(text, args=[], kwargs=names)

        try:
            args = commands.parse_command(line, cell, expand=expand)
            if args.command is None:
                commands.parser().print_help()
                return
            commands.dispatch(self, args)
        except commands.HelpShown:
            return
        except HookError as exc:
            raise UsageError(str(exc)) from None


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
    "{expr} and $name expand in options, their values, ids, nodes and paths (never in\n"
    "code, a cell or XML; $$ and {{ }} for a literal $ or braces): in a loop,\n"
    "%hook publish -n news -i n{i} <x xmlns='urn:x'/> publishes n0, n1...\n\n"
    "A hook is called as hook(host, client, item): host is the extension's manager\n"
    "(host.shell, host.call_in_kernel), client the slixmpp client, item the\n"
    "published <item/> stanza (item['id'], item['payload']).\n\n"
    "Several accounts may be connected: every sub-command takes -p ACCOUNT (a bare\n"
    "JID, or its local part); without it, the default account (the first connected,\n"
    "%config HookMagics.default_profile, or %hook connect JID --default). In a hook,\n"
    "host and client are its own account's; host.accounts['bot@example.org'] another's.\n\n"
    "One sub-command's help: %hook create -h, %hook node create -h. Every\n"
    "sub-command's follows.\n\n"
    + commands.full_help()
)
