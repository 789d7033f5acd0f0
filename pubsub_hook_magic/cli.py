"""``pubsub-hook``: the same hooks without Jupyter.

Libervia's CLI shape (``li pubsub hook``) over the per-account store the notebook uses::

    pubsub-hook create --jid alice@example.org -n urn:xmpp:microblog:0 -t python_file ~/hook.py
    pubsub-hook list --jid alice@example.org [-O json]
    pubsub-hook delete --jid alice@example.org -n urn:xmpp:microblog:0
    pubsub-hook run alice@example.org      # runs the persistent hooks until SIGTERM / Ctrl-C
    pubsub-hook failed --jid alice@example.org ID [-O json]    # the items hook ID could not run
    pubsub-hook retry --jid alice@example.org ID [--item I] [--discard]

Hooks made here are persistent (there is no session to keep temporary ones in). The
password comes from ``--password-env VAR``, else ``$XMPP_PASSWORD``, else a prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib.util
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from .accountfiles import stored_accounts
from . import __version__, formatting
from .account import account_from_args, connect_options, resolve_jid
from .commands import COMMANDS, add_connect_arguments, create_options
from .commands.hooks import delete_selection
from .deadletters import DeadLetters
from .hooks import Hook, HookError, HookType, compile_code
from .manager import HookManager
from .persistence import SERVICE, TOOL
from .runner import HookRunner, Trigger
from .session import bare_jid
from .states import HookState, Outcome
from .store import HookStore, default_data_dir
from .summary import HookSummary, needs_newer, summarize

__all__ = ["main"]

log = logging.getLogger("pubsub_hook_magic.cli")


class _Fail(Exception):
    """A one-line error for the user; exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pubsub-hook",
        description="XMPP PubSub hooks without Jupyter: manage an account's persistent "
        "hooks, and run them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def account(p: argparse.ArgumentParser, positional: bool = False) -> None:
        if positional:
            p.add_argument("jid", nargs="?", default=None, help="the account (default: $XMPP_JID)")
        else:
            p.add_argument("--jid", default=None, help="the account (default: $XMPP_JID)")

    def shared(name: str, connects: bool, **kwargs: Any) -> argparse.ArgumentParser:
        """The sub-command ``name`` with the flags of ``%hook name`` (the registry's)."""
        p = sub.add_parser(name, **kwargs)
        account(p)
        if connects:
            add_connect_arguments(p)
        arguments = COMMANDS[name].arguments
        if arguments is not None:
            arguments(p)
        return p

    shared("create", True, help="create a persistent hook (validated, subscribed)")
    shared("delete", True, help=COMMANDS["delete"].help)

    p = sub.add_parser("list", help="list the account's persistent hooks (no connection)")
    account(p)
    p.add_argument("-O", "--output", choices=("text", "json"), default="text")

    shared("failed", False, help="list the items a persistent hook could not run (no connection)")
    shared(
        "retry",
        True,
        help="run a persistent hook again on its failed items (connects), or --discard them",
        description="Connect, run hook ID here on its failed items, in order, and remove "
        "those that succeed; --discard drops them without connecting.",
    )

    p = sub.add_parser("run", help="connect and run the account's persistent hooks until stopped")
    account(p, positional=True)
    add_connect_arguments(p)
    p.add_argument(
        "--grace", type=float, default=5.0, metavar="S", help="seconds in-flight hooks get to finish at stop"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="log errors only, not every trigger")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    # What slixmpp logs as errors (a failed login…) is reported by us, in one line.
    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)
    try:
        if args.command in ("list", "failed") and not args.jid and not os.environ.get("XMPP_JID"):
            args.jid = _only_stored_account()  # reading the store needs no password
        args.jid = resolve_jid(args.jid, usage=_usage(args.command))
        if args.command == "list":
            return _list(args)
        if args.command == "failed" or (args.command == "retry" and args.discard):
            return _failed(args)
        return asyncio.run(_COMMANDS[args.command](args))
    except (_Fail, HookError) as exc:
        print(f"pubsub-hook: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _only_stored_account() -> str | None:
    """The account of the store's one hooks file (None: none, or several)."""
    data_dir = default_data_dir()
    accounts = stored_accounts(data_dir)
    if len(accounts) > 1:
        raise _Fail(
            f"the store ({data_dir}) holds hooks of {len(accounts)} accounts "
            f"({', '.join(accounts)}): give one with --jid"
        )
    return accounts[0] if accounts else None


def _usage(command: str) -> str:
    """How ``command`` takes the account, for the message when it has none."""
    where = "user@domain" if command == "run" else "--jid user@domain"
    return f"pubsub-hook {command} {where}"


async def _connect(args: Any) -> tuple[HookManager, list[str]]:
    prompt = getpass.getpass if sys.stdin.isatty() else None
    account = account_from_args(args, prompt, _usage(args.command))
    # The service runs every persistent hook it can load; create and delete run none.
    role = SERVICE if args.command == "run" else TOOL
    manager = HookManager({}, strict_names=True, role=role)
    options = connect_options(account, args, args.timeout or 30.0)
    warnings = await manager.connect(account.jid, account.password, **options)
    return manager, warnings


async def _create(args: Any) -> int:
    if not args.arg:
        raise _Fail("give the hook's module, file or code after the options")
    manager, _warnings = await _connect(args)
    try:
        hook = await manager.create_hook(
            args.service or None,
            args.node,
            args.type or "python",
            " ".join(args.arg),
            persistent=True,
            **create_options(args),
        )
        print(f"Created {hook.describe()}.")
        for note in hook.notes:
            print(f"Note: {note}")
    finally:
        await manager.disconnect()
    return 0


async def _delete(args: Any) -> int:
    positional, keywords = delete_selection(args)
    manager, _warnings = await _connect(args)
    try:
        count = await manager.delete_hooks(*positional, **keywords)
        print(f"{count} hook(s) have been deleted")
    finally:
        await manager.disconnect()
    return 0


def _list(args: Any) -> int:
    """The account's stored hooks, read from the store: none is loaded or run here."""
    account = bare_jid(args.jid)
    store = HookStore(account)
    summaries = [_stored_summary(account, record) for record in store.hooks()]
    summaries += [needs_newer(record) for record in store.newer_hooks()]
    print(formatting.hooks_json(summaries) if args.output == "json" else formatting.hooks_text(summaries))
    return 0


def _stored_summary(account: str, record: dict[str, Any]) -> HookSummary:
    """A stored hook as ``list`` shows it: ``paused`` if it is, ``broken`` if its code
    cannot load (checked without running it), else ``stored``."""
    try:
        hook = Hook.from_record(record)
    except (KeyError, TypeError, ValueError, HookError) as exc:
        return needs_newer(record) | {"state": HookState.BROKEN.value, "load_error": f"unreadable record: {exc}"}
    problem = _load_problem(hook)
    paused = bool(record.get("paused"))
    state = HookState.BROKEN if problem is not None else HookState.PAUSED if paused else HookState.STORED
    dead = DeadLetters.for_hook(account, hook.id)
    summary = summarize(hook, state=state, dead_letters=dead, load_error=problem)
    summary["paused"] = paused
    return summary


def _load_problem(hook: Hook) -> str | None:
    """Why ``hook`` would not load (None: it should), found without running its code:
    its code compiles, its file exists and compiles, its module's package is found."""
    try:
        if hook.type is HookType.PYTHON_CODE:
            compile_code(hook.arg, f"<hook {hook.id}>")
        elif hook.type is HookType.PYTHON_FILE:
            path = Path(hook.arg)
            if not path.is_file():
                return f"{hook.arg} does not exist: give the path of a Python file"
            compile(path.read_text(encoding="utf-8"), str(path), "exec", dont_inherit=True)
        else:
            top = hook.arg.partition(":")[0].split(".")[0]
            if not top.isidentifier() or importlib.util.find_spec(top) is None:
                return f"no module named {top!r}: install it, or give another module"
    except HookError as exc:
        return str(exc)
    except SyntaxError as exc:
        return f"{hook.arg}, line {exc.lineno}: SyntaxError: {exc.msg}"
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"cannot read {hook.arg}: {exc}"
    return None


def _failed(args: Any) -> int:
    """``failed ID`` and ``retry ID --discard``: on the hook's dead-letter file, without
    connecting."""
    account = bare_jid(args.jid)
    if args.id not in {str(r.get("id")) for r in HookStore(account).hooks()}:
        raise _Fail(f"no persistent hook {args.id!r} for {account}: pubsub-hook list shows the ids")
    dead = DeadLetters.for_hook(account, args.id)
    if args.command == "retry":
        count = dead.settle({letter.seq for letter in dead.letters(args.item or None)})
        print(f"Discarded {count} failed item(s) of hook {args.id}.")
        return 0
    letters = [letter.as_dict() for letter in dead.letters()]
    print(formatting.hooks_json(letters) if args.output == "json" else formatting.failed_text(args.id, letters))
    return 0


async def _retry(args: Any) -> int:
    """``retry ID``: connect, run the hook here on its failed items (as ``%hook retry``
    does), update its file, disconnect. Exit 1 if some still fail."""
    manager, _warnings = await _connect(args)
    try:
        triggers = await manager.retry_failed(args.id, args.item or None)
    finally:
        await manager.disconnect()
    for trigger in triggers:
        print(f"retry of item {trigger.item_id}: {trigger.outcome} ({formatting.seconds(trigger.duration)})")
        if trigger.error:
            print(f"  {trigger.error}")
    ok = sum(1 for t in triggers if t.outcome == Outcome.OK)
    print(f"{ok} of {len(triggers)} failed item(s) ran and were removed.")
    return 0 if ok == len(triggers) else 1


async def _run(args: Any) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    manager, warnings = await _connect(args)
    for warning in warnings:
        log.warning("%s", warning)

    def on_trigger(runner: HookRunner, trigger: Trigger) -> None:
        what = f"hook {runner.hook.id} ({runner.hook.node}) item {trigger.item_id}: {trigger.outcome}"
        if trigger.outcome == Outcome.OK:
            log.info("%s in %s", what, formatting.seconds(trigger.duration))
        else:
            log.error("%s: %s", what, trigger.error)

    manager.add_trigger_listener(on_trigger)
    views = manager.snapshot().hooks
    standby = [h for h in views if h.state == HookState.STANDBY]
    running = [h for h in views if h.state not in (HookState.STANDBY, HookState.BROKEN)]
    log.info(
        "connected as %s: running %d persistent hook(s)%s; stop with SIGTERM or Ctrl-C",
        manager.jid,
        len(running),
        f", {len(standby)} in standby (run by another process until it lets go)" if standby else "",
    )
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await _finish_in_flight(manager, args.grace)
        await manager.disconnect()
        log.info("stopped")
    return 0


async def _finish_in_flight(manager: HookManager, grace: float) -> None:
    """Let running hooks finish for up to ``grace`` seconds; say which are cancelled."""
    deadline = asyncio.get_running_loop().time() + grace
    while any(r.running_since is not None for r in manager.runners.values()):
        if asyncio.get_running_loop().time() >= deadline:
            for runner in manager.runners.values():
                if runner.running_since is not None:
                    log.warning("hook %s was still running: cancelled", runner.hook.id)
            return
        await asyncio.sleep(0.05)


_COMMANDS = {"create": _create, "delete": _delete, "retry": _retry, "run": _run}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
