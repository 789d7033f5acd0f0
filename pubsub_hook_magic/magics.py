"""IPython connectivity: the ``%hook`` / ``%%hook`` magic.

A thin layer: parse the line, call the :class:`~.manager.HookManager` on its loop
thread, print the result. Bad input and failures become one-line ``UsageError``s.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import getpass
from typing import TYPE_CHECKING, Any

from IPython.core.completer import SimpleCompletion, completion_matcher
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Float, Integer, TraitError, Unicode, validate

from . import commands, formatting, logs
from .account import account_from_args
from .hooks import HookError, HookType, missing_names
from .loopthread import LoopThread
from .snapshot import Snapshot
from .states import HookState

if TYPE_CHECKING:
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

    @validate("list_format")
    def _valid_format(self, proposal: Any) -> str:
        if proposal["value"] not in ("table", "text", "json"):
            raise TraitError("list_format must be table, text or json")
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

    def __init__(self, shell: Any, handover: tuple[LoopThread, HookManager] | None = None, **kwargs: Any):
        super().__init__(shell, **kwargs)
        self._tables: Any = None  # the TableHub, made at the first table
        #: Our and slixmpp's log records: kept for %hook log, never printed into cells.
        self.log_records = logs.install()
        # After each cell: start the persistent hooks waiting for notebook names.
        shell.events.register("post_run_cell", self._after_cell)
        self._loop_thread: LoopThread | None = None
        self._manager: HookManager | None = None
        if handover is not None and handover[0].alive:  # %reload_ext: keep the session
            self._loop_thread, self._manager = handover
            return
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
        if self._manager is None:
            self._start()
        return self._manager  # type: ignore[return-value]

    def _start(self) -> None:
        from .manager import HookManager

        self._loop_thread = LoopThread()
        atexit.register(self._at_exit)  # a kernel shutdown: keep where each hook got to
        self._manager = HookManager(
            self.shell.user_ns,
            shell=self.shell,
            kernel_loop=self._kernel_loop,
            history=self.history,
            queue_size=self.queue_size,
            time_limit=self.time_limit,
            dead_letters=self.dead_letters,
        )

    # ------------------------------------------------------------------ plumbing

    def _call(self, coro: Any, timeout: float | None = None) -> Any:
        """Run a manager coroutine on the session loop; failures become UsageError."""
        limit = timeout if timeout is not None else self.timeout
        try:
            return self.loop_thread.run(coro, limit)
        except HookError as exc:
            raise UsageError(str(exc)) from None
        except TimeoutError:
            raise UsageError(
                f"the XMPP server did not answer within {limit:g} s; check %hook status, "
                "or raise the limit with %config HookMagics.timeout = 60"
            ) from None

    def complete(self, event: Any) -> list[str]:
        """The texts :meth:`matcher` would offer for ``event.text_until_cursor``."""
        return [c.text for c in self._candidates(event.text_until_cursor)[1]]

    def _candidates(self, text_until_cursor: str) -> tuple[str, list[commands.Candidate]]:
        # On the kernel's thread: read the loop's published snapshot, never its objects.
        snapshot = self._manager.snapshot() if self._manager is not None else Snapshot.EMPTY
        hooks = [(h.id, h.service, h.node, h.type, h.arg) for h in snapshot.hooks]
        return commands.complete_typed(text_until_cursor, hooks, snapshot.jid)

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

    def _at_exit(self) -> None:
        if self.loop_thread.alive:
            try:
                self.loop_thread.run(self._save_positions(), 2)
            except Exception:  # noqa: BLE001 - exiting anyway
                pass

    async def _save_positions(self) -> None:
        # Before IPython empties the notebook's namespace (its own atexit runs after
        # ours): the runs in progress are stopped, not failed with a NameError, and run
        # again in the hook's next owner.
        await self.manager.stop_runners()
        self.manager.save_positions()

    def close_tables(self) -> None:
        if self._tables is not None:
            self._tables.close()
            self._tables = None

    def hand_over(self) -> tuple[LoopThread, HookManager] | None:
        """Within ``%reload_ext``: let go of the session without stopping it, and
        return it (None when none was started) for the reloaded magics to take."""
        with contextlib.suppress(ValueError):
            self.shell.events.unregister("post_run_cell", self._after_cell)
        self.close_tables()
        if self._loop_thread is None or self._manager is None:
            return None
        return self._loop_thread, self._manager

    def _after_cell(self, _result: Any = None) -> None:
        if self._loop_thread is not None and self._manager is not None and self._loop_thread.alive:
            self._loop_thread.call_soon(self._manager.persistent.notebook_changed)

    def close(self) -> None:
        """Disconnect and stop the loop thread (``%unload_ext``)."""
        with contextlib.suppress(ValueError):
            self.shell.events.unregister("post_run_cell", self._after_cell)
        self.close_tables()
        atexit.unregister(self._at_exit)
        loop_thread, manager = self._loop_thread, self._manager
        if loop_thread is not None and manager is not None and loop_thread.alive:
            try:
                loop_thread.run(manager.disconnect(), 10)
            except Exception:  # noqa: BLE001 - closing must finish
                pass
            loop_thread.stop()

    # ------------------------------------------------------------------ the magic

    @no_var_expand
    @line_cell_magic
    def hook(self, line: str, cell: str | None = None) -> None:
        try:
            args = commands.parse_command(line, cell)
        except commands.HelpShown:
            return
        except HookError as exc:
            raise UsageError(str(exc)) from None
        if args.command is None:
            commands.parser().print_help()
            return
        getattr(self, f"_cmd_{args.command}")(args)

    def _cmd_connect(self, args: Any) -> None:
        jid, _count = self._call(self._account())
        if jid is not None:
            raise UsageError(f"already connected as {jid}: %hook disconnect first")
        try:
            # the kernel's getpass: asks the front end where it can
            account = account_from_args(args, getpass.getpass, "%hook connect user@domain")
        except HookError as exc:
            raise UsageError(str(exc)) from None
        self._apply_config()
        timeout = args.timeout or self.timeout
        warnings = self._call(
            self.manager.connect(
                account.jid,
                account.password,
                host=account.host,
                port=account.port,
                tls=not args.no_tls,
                direct_tls=args.direct_tls,
                ca_file=args.ca_file,
                timeout=timeout,
            ),
            timeout + 30,
        )
        jid, count = self._call(self._account())
        print(f"Connected as {jid}" + (f"; {count} persistent hook(s) installed." if count else "."))
        for warning in warnings:
            print(f"Warning: {warning}")

    def _cmd_disconnect(self, args: Any) -> None:
        jid = self._call(self._disconnect())
        print(f"Disconnected {jid}." if jid is not None else "Not connected.")

    async def _account(self) -> tuple[str | None, int]:
        """On the session loop: the account's JID (None without a session) and how many
        hooks are installed."""
        return self.manager.jid, len(self.manager.hooks())

    async def _disconnect(self) -> str | None:
        """On the session loop: disconnect; the JID that was connected (None: none was)."""
        jid = self.manager.jid
        await self.manager.disconnect()  # without a session: nothing to do
        return jid

    def _apply_config(self) -> None:
        """Hand the current %config values to the manager (new hooks use them)."""
        manager = self.manager
        manager.configure(
            history=self.history, queue_size=self.queue_size, time_limit=self.time_limit,
            dead_letters=self.dead_letters,
        )

    def _cmd_create(self, args: Any) -> None:
        self._apply_config()
        try:
            hook = self._call(
                self.manager.create_hook(
                    args.service or None,
                    args.node,
                    args.type,
                    args.arg,
                    persistent=args.persistent,
                    **commands.create_options(args),
                )
            )
        except UsageError as exc:
            raise UsageError(commands.default_type_hint(args, str(exc))) from None
        print(f"Created {hook.describe()}.")
        for note in hook.notes:
            print(f"Note: {note}")
        view = self.manager.snapshot().hook(hook.id)
        if view is not None and view.state == HookState.STANDBY:
            print(f"It runs in {view.owner or 'the account service'}; standby here.")
        if hook.type is HookType.PYTHON_CODE:
            names = missing_names(hook.arg, self.shell.user_ns)
            if names:
                print(f"Note: the code uses {', '.join(names)}, not defined in the notebook yet.")
            notebook_names = missing_names(hook.arg, {})
            if hook.persistent and notebook_names:
                print(
                    f"After a kernel restart it waits for {', '.join(notebook_names)} until a "
                    "cell defines them; its items run then."
                )

    def _cmd_delete(self, args: Any) -> None:
        if not args.node and not args.id:
            raise UsageError("give the node of the hooks to delete (-n NODE), or --id ID")
        count = self._call(
            self.manager.delete_hooks(
                args.service or None,
                args.node or None,
                args.type or None,
                args.arg or None,
                hook_id=args.id or None,
                events=args.event or None,
            )
        )
        print(f"{count} hook(s) have been deleted")

    def _cmd_list(self, args: Any) -> None:
        output = args.output or self.list_format
        summaries = self._call(self._summaries())
        if output == "json":
            print(formatting.hooks_json(summaries))
        elif output == "table" and self._has_frontend():
            self._display_table(formatting.hooks_text(summaries))
        else:
            print(formatting.hooks_text(summaries))

    def _has_frontend(self) -> bool:
        """Whether widgets can be shown: a kernel with a front end, not a terminal."""
        return getattr(self.shell, "kernel", None) is not None

    def _display_table(self, text: str) -> None:
        from IPython.display import display

        from .table import TableHub

        if self._tables is None:
            self._tables = TableHub(
                self.manager, self.loop_thread, interval=self.table_refresh, log_records=self.log_records
            )
        self._tables.interval = self.table_refresh
        table = self._tables.new_table()
        bundle = table.box._repr_mimebundle_()
        bundle["text/plain"] = text  # what nbconvert and plain front ends show
        display(bundle, raw=True)

    async def _summaries(self) -> list[dict[str, Any]]:
        return self.manager.list_hooks()  # read on the session loop: no torn statistics

    def _cmd_publish(self, args: Any) -> None:
        item_id = self._call(
            self.manager.publish(args.service or None, args.node, args.payload, args.id or None)
        )
        print(f"Published item {item_id} to {args.node}.")

    def _cmd_retract(self, args: Any) -> None:
        self._call(self.manager.retract(args.service or None, args.node, args.item))
        print(f"Retracted item {args.item} from {args.node}.")

    def _cmd_replay(self, args: Any) -> None:
        if args.item and args.last:
            raise UsageError("give --item or --last, not both")
        triggers, reload_error = self._call(
            self._with_reload_error(args.id, self.manager.replay(args.id, args.item or None, args.last or None))
        )
        for trigger in triggers:
            self._print_run("replay", trigger, reload_error)

    def _cmd_test(self, args: Any) -> None:
        trigger, reload_error = self._call(
            self._with_reload_error(args.id, self.manager.test(args.id, args.payload, args.item_id or None))
        )
        self._print_run("test", trigger, reload_error)

    async def _with_reload_error(self, hook_id: str, run: Any) -> tuple[Any, str | None]:
        """On the session loop: run a replay or test, then read whether the hook's last
        edit failed to load (the run then used the previous version)."""
        result = await run
        runner = self.manager.runners.get(hook_id)
        return result, (runner.reload_error if runner is not None else None)

    @staticmethod
    def _print_run(what: str, trigger: Any, reload_error: str | None = None) -> None:
        print(
            f"{what} of item {trigger.item_id}: {trigger.outcome} "
            f"({formatting.seconds(trigger.duration)})"
        )
        if reload_error:
            print(f"ran the previous version: {reload_error}")
        if trigger.traceback:
            print(trigger.traceback.rstrip())
        elif trigger.error:
            print(trigger.error)

    def _cmd_failed(self, args: Any) -> None:
        letters = self._call(self._failed(args.id))
        if args.output == "json":
            print(formatting.hooks_json(letters))
        else:
            print(formatting.failed_text(args.id, letters))

    async def _failed(self, hook_id: str) -> list[dict[str, Any]]:
        return self.manager.failed(hook_id)

    def _cmd_retry(self, args: Any) -> None:
        if args.discard:
            count = self._call(self.manager.discard_failed(args.id, args.item or None))
            print(f"Discarded {count} failed item(s) of hook {args.id}.")
            return
        view = self.manager.snapshot().hook(args.id)
        if view is not None and view.state == HookState.STANDBY:
            self._call(self.manager.retry_failed(args.id, args.item or None))
            print(
                f"Hook {args.id} runs in {view.owner or 'another process'}: asked it to retry "
                f"the failed item(s); %hook failed {args.id} shows what is left."
            )
            return
        waiting = len(self._call(self._failed(args.id)))
        # each item may take up to the time limit
        triggers = self._call(
            self.manager.retry_failed(args.id, args.item or None),
            self.timeout + waiting * self.time_limit,
        )
        if not triggers:
            print(f"Hook {args.id} has no failed item.")
            return
        for trigger in triggers:
            self._print_run("retry", trigger)
        ok = sum(1 for t in triggers if t.outcome == "ok")
        print(
            f"{ok} of {len(triggers)} failed item(s) ran and were removed"
            + (f"; {len(triggers) - ok} still fail (%hook failed {args.id})." if ok < len(triggers) else ".")
        )

    def _cmd_pause(self, args: Any) -> None:
        hook = self._call(self.manager.set_paused(args.id, True))
        print(f"Paused hook {hook.id}.")

    def _cmd_resume(self, args: Any) -> None:
        hook = self._call(self.manager.set_paused(args.id, False))
        print(f"Resumed hook {hook.id}.")

    def _cmd_nodes(self, args: Any) -> None:
        nodes = self._call(self.manager.nodes(args.service or None))
        if not nodes:
            print("No node found.")
        for node, name in nodes:
            print(f"{node}  ({name})" if name and name != node else node)

    def _cmd_node(self, args: Any) -> None:
        if args.node_command != "create":
            raise UsageError("give an action: %hook node create -n NODE [-s SERVICE] [--access-model MODEL]")
        service, node = self._call(self._create_node(args.service or None, args.node, commands.node_config(args)))
        print(f"Created node {node} on {service}.")

    async def _create_node(self, service: str | None, node: str, config: dict[str, str]) -> tuple[str, str]:
        """On the session loop: create a node (your PEP by default)."""
        from .session import RequestError, bare_jid

        session = self.manager.session
        if session is None or not session.connected:
            raise HookError("not connected to an XMPP server: connect first (%hook connect JID)")
        service = bare_jid(service, "service JID") if service else session.bare
        try:
            return service, await session.create_node(service, node, config)
        except RequestError as exc:
            raise HookError(str(exc)) from None

    def _cmd_log(self, args: Any) -> None:
        entries = self.log_records.recent(max(1, args.last))
        if not entries:
            print(
                "No log record yet. (The extension and slixmpp keep their warnings and "
                "errors here, never in cells; for more, "
                "logging.getLogger('pubsub_hook_magic').setLevel('INFO').)"
            )
        for entry in entries:
            print(entry.line())

    def _cmd_status(self, args: Any) -> None:
        status = self._call(self._status())
        print(formatting.status_text(status))

    async def _status(self) -> dict[str, Any]:
        return self.manager.status()


HookMagics.hook.__doc__ = (
    "Run Python for every item published to an XMPP PubSub node.\n\n"
    "Examples::\n\n"
    "  %hook connect alice@example.org --password-env ALICE_PW\n"
    "  %hook create -s pubsub.example.org -n news -t python_code print(item['id'])\n"
    "  %hook create -n urn:xmpp:microblog:0 -t python_file --persistent ~/hook.py\n"
    "  %hook list -O json\n"
    "  %hook delete -s pubsub.example.org -n news\n\n"
    "A hook is called as hook(host, client, item): host is the extension's manager\n"
    "(host.shell, host.call_in_kernel), client the slixmpp client, item the\n"
    "published <item/> stanza (item['id'], item['payload']).\n\n"
    + commands.full_help()
)
