"""``pubsub-hook``: the same hooks without Jupyter.

Libervia's CLI shape (``li pubsub hook``) over the per-account store the notebook uses::

    pubsub-hook create -p alice@example.org -n urn:xmpp:microblog:0 -t python_file ~/hook.py
    pubsub-hook list -p alice [-O json]
    pubsub-hook delete -p alice@example.org -n urn:xmpp:microblog:0
    pubsub-hook run alice@example.org      # runs the persistent hooks until SIGTERM / Ctrl-C
    pubsub-hook run alice@example.org bot@example.net --password-env ALICE_PW --password-env BOT_PW
    pubsub-hook failed -p alice ID [-O json]    # the items hook ID could not run
    pubsub-hook retry -p alice ID [--item I] [--discard]

The account: ``-p/--profile ACCOUNT`` (or ``--jid``), a bare JID or the local part of
an account that has a hook store here; else ``$XMPP_JID``; ``list`` and ``failed``
take the store's only account.

Hooks made here are persistent (there is no session to keep temporary ones in). The
password comes from ``--password-env VAR``, else ``$XMPP_PASSWORD``, else a prompt.

``run`` serves several accounts in one process, one :class:`.HookManager` each on one
loop, held by :class:`.Accounts` (``host.accounts`` in hooks): ``--password-env`` once
per account in the order of the JIDs (else a prompt for each; ``$XMPP_PASSWORD`` serves
a single account only), ``--host``/``--port`` once for all or once per account. An
account that cannot start (wrong password, server down) is logged and the others run;
the exit status is 2 only when none could start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from .account import Account, account_from_args, connect_options, refused_password, resolve_accounts, resolve_jid
from .accounts import Accounts
from .commands import COMMANDS, add_connect_arguments, create_options
from .commands.hooks import delete_selection
from .commands.parsing import parts, unknown_command, unrecognized
from .deadletters import DeadLetters
from .hooks import Hook, HookError, HookType, compile_code
from .manager import HookManager
from .persistence import SERVICE, TOOL
from .runner import HookRunner, Trigger
from .xmpp_requests import AuthFailed
from .xmpp_session import bare_jid
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

    def account(p: argparse.ArgumentParser) -> None:
        """``--jid`` and ``-p/--profile`` (after the registry's flags, which may have it)."""
        p.add_argument("--jid", default=None, help="the account (default: $XMPP_JID)")
        with contextlib.suppress(argparse.ArgumentError):
            p.add_argument(
                "-p", "--profile", default=None, metavar="ACCOUNT",
                help="the account: its bare JID, or the local part of one with a hook store here",
            )

    def shared(name: str, connects: bool, **kwargs: Any) -> argparse.ArgumentParser:
        """The sub-command ``name`` with the flags of ``%hook name`` (the registry's)."""
        p = sub.add_parser(name, **kwargs)
        if connects:
            add_connect_arguments(p)
        arguments = COMMANDS[name].arguments
        if arguments is not None:
            arguments(p)
        account(p)
        return p

    shared("create", True, help="create a persistent hook (validated, subscribed)")
    shared("delete", True, help=COMMANDS["delete"].help)

    p = sub.add_parser("list", help="list the account's persistent hooks (no connection)")
    account(p)
    p.add_argument("-O", "--output", choices=("text", "json"), default="text", help="output format")

    shared("failed", False, help="list the items a persistent hook could not run (no connection)")
    shared(
        "retry",
        True,
        help="run a persistent hook again on its failed items (connects), or --discard them",
        description="Connect, run hook ID here on its failed items, in order, and remove "
        "those that succeed; --discard drops them without connecting.",
    )

    p = sub.add_parser(
        "run",
        help="connect and run the persistent hooks of one or more accounts until stopped",
        description="Log in to each account and run its persistent hooks until SIGTERM or "
        "Ctrl-C, all in this process. An account that cannot start is logged; the others run.",
        conflict_handler="resolve",  # --password-env, --host, --port: per account here
    )
    p.add_argument(
        "jids", nargs="*", metavar="JID",
        help="the accounts (bare JIDs, or local parts of accounts with a hook store here; "
        "default: $XMPP_JID)",
    )
    add_connect_arguments(p)
    p.add_argument(
        "--password-env", action="append", default=None, metavar="VAR",
        help="environment variable holding the password: once per account, in the order of "
        "the JIDs (default: $XMPP_PASSWORD for one account, else a prompt)",
    )
    p.add_argument(
        "--host", action="append", default=None,
        help="server address: once for all accounts, or once per account in their order "
        "(default: $XMPP_HOST, else each JID's domain via DNS SRV)",
    )
    p.add_argument(
        "--port", action="append", type=int, default=None,
        help="server port: once for all accounts, or once per account (default: $XMPP_PORT, else 5222)",
    )
    p.add_argument(
        "--grace", type=float, default=5.0, metavar="S", help="seconds in-flight hooks get to finish at stop"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="log errors only, not every trigger")
    return parser


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line. A typo is refused in one line naming the sub-command that
    refuses it, what was meant and that sub-command's ``-h`` (argparse would name
    ``pubsub-hook`` itself); other errors are argparse's."""
    parser = build_parser()
    words = sys.argv[1:] if argv is None else list(argv)
    subs = parts(parser).subparsers
    if words and not words[0].startswith("-") and words[0] not in subs:
        raise _Fail(unknown_command(parser.prog, words[0], list(subs)))
    args, extras = parser.parse_known_args(words)
    if extras:
        chosen = subs.get(args.command, parser)
        raise _Fail(unrecognized(chosen.prog, extras, parts(chosen).options))
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parse(argv)
    except _Fail as exc:
        print(exc, file=sys.stderr)  # (it names pubsub-hook and the sub-command)
        return 2
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    # What slixmpp logs as errors (a failed login…) is reported by us, in one line.
    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)
    try:
        if args.command == "run":
            args.jids = [_profile_jid(jid) for jid in args.jids]
            return asyncio.run(_run(args))
        if getattr(args, "profile", None):
            named = _profile_jid(args.profile)
            if args.jid and bare_jid(args.jid).lower() != named.lower():
                raise _Fail(f"--jid {args.jid} and -p {args.profile} name two accounts: give one")
            args.jid = named
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
            f"({', '.join(accounts)}): give one with -p ACCOUNT"
        )
    return accounts[0] if accounts else None


def _profile_jid(profile: str) -> str:
    """The account ``-p ACCOUNT`` (or ``run ACCOUNT``) names: a bare JID as given, or
    a local part naming one account with a hook store here, or that of ``$XMPP_JID``."""
    wanted = profile.strip()
    if "@" in wanted:
        return wanted
    lowered = wanted.lower()
    data_dir = default_data_dir()
    named = [a for a in stored_accounts(data_dir) if a.split("@", 1)[0].lower() == lowered]
    env_jid = os.environ.get("XMPP_JID") or ""
    if not named and env_jid.split("@", 1)[0].lower() == lowered and "@" in env_jid:
        named = [bare_jid(env_jid)]
    if len(named) == 1:
        return named[0]
    if named:
        raise _Fail(f"{wanted}: several accounts are {wanted} ({', '.join(named)}): give the whole JID")
    raise _Fail(f"{wanted}: no account of that name has a hook store in {data_dir}: give the whole JID (user@domain)")


def _usage(command: str) -> str:
    """How ``command`` takes the account, for the message when it has none."""
    where = "user@domain" if command == "run" else "-p user@domain"
    return f"pubsub-hook {command} {where}"


async def _connect(args: Any) -> tuple[HookManager, list[str]]:
    prompt = getpass.getpass if sys.stdin.isatty() else None
    account = account_from_args(args, prompt, _usage(args.command))
    # The service runs every persistent hook it can load; create and delete run none.
    role = SERVICE if args.command == "run" else TOOL
    manager = HookManager({}, strict_names=True, role=role)
    options = connect_options(account, args, args.timeout or 30.0)
    try:
        warnings = await manager.connect(account.jid, account.password, **options)
    except AuthFailed as exc:
        raise HookError(refused_password(account, str(exc))) from None
    return manager, warnings


async def _create(args: Any) -> int:
    if args.type == HookType.PYTHON_FUNCTION:
        raise _Fail(
            "python_function hooks are made from a notebook or a script (create(node, "
            "func=f)): here, make a python_file hook with the function as hook"
        )
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
            again=args.again,  # Libervia's semantics: an identical hook is refused, with its id
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
        elif hook.type is HookType.PYTHON_FUNCTION:
            if not hook.source:
                return f"the function {hook.arg} has no stored source: create the hook again from the function"
            compile(hook.source, f"<hook {hook.id} {hook.arg}>", "exec", dont_inherit=True)
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
    print(formatting.retry_summary(args.id, [t.outcome for t in triggers], "pubsub-hook failed") + ".")
    return 0 if ok == len(triggers) else 1


async def _run(args: Any) -> int:
    """Run the persistent hooks of every account given until SIGTERM or Ctrl-C: one
    manager per account on this loop, each started on its own, so that one account's
    failure (wrong password, server down) delays or stops none of the others."""
    prompt = getpass.getpass if sys.stdin.isatty() else None
    configs = resolve_accounts(
        args.jids, hosts=args.host, ports=args.port, direct_tls=args.direct_tls,
        password_envs=args.password_env, prompt=prompt, usage=_usage("run"),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    accounts = Accounts()
    namespace: dict[str, Any] = {}  # shared by the accounts' python_code hooks
    several = len(configs) > 1
    starts = [
        loop.create_task(_start(account, args, accounts, namespace, several), name=f"pubsub-hook start {account.jid}")
        for account in configs
    ]
    stopping = loop.create_task(stop.wait())
    try:
        pending: set[asyncio.Task[Any]] = set(starts)
        while pending and not stop.is_set():
            _done, pending = await asyncio.wait(pending | {stopping}, return_when=asyncio.FIRST_COMPLETED)
            pending.discard(stopping)
        if not stop.is_set():
            failures = [error for error in (task.result() for task in starts) if error is not None]
            if len(failures) == len(configs):
                if not several:
                    # One account: its error, in one line, as always.
                    raise failures[0] if isinstance(failures[0], HookError) else _Fail(str(failures[0]))
                raise _Fail(f"none of the {len(configs)} accounts could start (see above)")
            await stop.wait()
    finally:
        for task in starts:
            task.cancel()
        await asyncio.gather(*starts, return_exceptions=True)
        stopping.cancel()
        managers = accounts.managers()
        if managers:
            log.info("stopping")
            await asyncio.gather(*(_finish_in_flight(m, args.grace) for m in managers))
            results = await asyncio.gather(*(m.disconnect() for m in managers), return_exceptions=True)
            for manager, result in zip(managers, results, strict=True):
                if isinstance(result, BaseException):
                    log.warning("%s: disconnecting: %s", manager.jid, result)
            log.info("stopped")
    return 0


async def _start(
    account: Account, args: Any, accounts: Accounts, namespace: dict[str, Any], several: bool
) -> Exception | None:
    """Log in as ``account`` and run its persistent hooks; its failure, logged (None:
    it runs)."""
    manager = HookManager(namespace, strict_names=True, role=SERVICE, accounts=accounts)
    prefix = f"{account.jid}: " if several else ""

    def on_trigger(runner: HookRunner, trigger: Trigger) -> None:
        what = f"{prefix}hook {runner.hook.id} ({runner.hook.node}) item {trigger.item_id}: {trigger.outcome}"
        if trigger.outcome == Outcome.OK:
            log.info("%s in %s", what, formatting.seconds(trigger.duration))
        elif trigger.outcome == Outcome.SKIPPED:
            # Not run, on purpose (the hook is paused): no error, a count at DEBUG.
            log.debug("%s (paused; %d skipped so far)", what, runner.skipped)
        elif trigger.error:
            log.error("%s: %s", what, trigger.error)
        else:
            log.warning("%s", what)

    try:
        try:
            warnings = await manager.connect(
                account.jid, account.password, **connect_options(account, args, args.timeout or 30.0)
            )
        except AuthFailed as exc:
            raise HookError(refused_password(account, str(exc))) from None
    except (HookError, OSError) as exc:
        if several:
            log.error("%snot running: %s", prefix, exc)
        return exc
    except Exception as exc:  # a bug of ours must not stop the other accounts
        log.exception("%snot running", prefix)
        return exc
    if manager.jid not in accounts:  # (a manager given its accounts joins them at connect)
        accounts.add(manager)
    for warning in warnings:
        log.warning("%s%s", prefix, warning)
    manager.add_trigger_listener(on_trigger)
    log.info("%s", _started_line(manager))
    return None


def _started_line(manager: HookManager) -> str:
    """What this process runs of the account, and what it leaves to another process:
    ``connected as JID: running 2 persistent hook(s) (a1, b2), 1 waits for the kernel
    (pid 4242) to let go (c3); stop with SIGTERM or Ctrl-C``."""
    views = [h for h in manager.snapshot().hooks if h.persistent]
    standby = [h for h in views if h.state == HookState.STANDBY]
    broken = [h for h in views if h.state == HookState.BROKEN]
    running = [h for h in views if h not in standby and h not in broken]
    line = f"connected as {manager.jid}: running {len(running)} persistent hook(s)"
    if running:
        line += f" ({', '.join(h.id for h in running)})"
    by_owner: dict[str, list[str]] = {}
    for h in standby:
        by_owner.setdefault(_process_name(h.owner), []).append(h.id)
    for owner, ids in by_owner.items():
        verb = "waits" if len(ids) == 1 else "wait"
        line += f", {len(ids)} {verb} for {owner} to let go ({', '.join(ids)}): it runs here then"
    elsewhere = [h for h in broken if h.owner]  # (a hook that does not load is never run here)
    broken = [h for h in broken if not h.owner]
    for h in elsewhere:
        line += f", 1 runs in {_process_name(h.owner)} and does not load here ({h.id})"
    if broken:
        line += f", {len(broken)} broken ({', '.join(h.id for h in broken)})"
    return line + "; stop with SIGTERM or Ctrl-C"


def _process_name(owner: str | None) -> str:
    """``"kernel, pid 4242"`` as ``"the kernel (pid 4242)"``."""
    if not owner:
        return "another process"
    role, sep, pid = owner.partition(", ")
    return f"the {role} ({pid})" if sep else owner


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


_COMMANDS = {"create": _create, "delete": _delete, "retry": _retry}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
