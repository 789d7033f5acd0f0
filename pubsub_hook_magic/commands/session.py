"""The session's sub-commands: ``connect``, ``disconnect``, ``status`` and ``log``.

Several accounts may be connected at once (:mod:`..accounts`): ``connect`` adds one,
``disconnect`` closes one (``-p``) or ``--all``, ``status`` shows a block each.
"""

from __future__ import annotations

import argparse
import getpass
import time
from typing import Any

from .. import formatting
from ..account import account_from_args, connect_options, refused_password, resolve_jid
from ..hooks import HookError
from ..states import HookState, TriggerKind
from ..xmpp_requests import AuthFailed
from .parsing import CommandError
from .registry import Context, account_for, command, connected_managers

__all__ = ["add_connect_arguments", "connect_account"]


def add_connect_arguments(p: argparse.ArgumentParser) -> None:
    """Where and how to log in (shared by ``%hook connect`` and ``pubsub-hook``)."""
    p.add_argument("--password-env", metavar="VAR", help="environment variable holding the password")
    p.add_argument("--host", help="server address (default: $XMPP_HOST, else the JID's domain via DNS SRV)")
    p.add_argument("--port", type=int, help="server port (default: $XMPP_PORT, else 5222 or DNS SRV)")
    p.add_argument(
        "--no-tls",
        action="store_true",
        help="allow a plaintext stream (only for a test server on loopback); TLS is "
        "otherwise required and its certificate verified",
    )
    p.add_argument(
        "--direct-tls", action="store_true", help="TLS from the first byte (port 5223 style) instead of STARTTLS"
    )
    p.add_argument("--ca-file", metavar="PEM", help="trust this CA certificate (a private server's)")
    p.add_argument("--timeout", type=float, default=None, metavar="S", help="seconds to wait for the session")


def _connect_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("jid", nargs="?", default=None, help="the account, user@domain (default: $XMPP_JID)")
    add_connect_arguments(p)
    p.add_argument(
        "--default",
        action="store_true",
        help="make it the default account: the one commands without -p are for",
    )


def _account(manager: Any) -> tuple[str | None, int]:
    """On the session loop: the account's JID (None without a session) and how many
    hooks are installed."""
    return manager.jid, len(manager.hooks())


def _after_connect(manager: Any, since: float, final: bool) -> tuple[list[str], bool]:
    """On the session loop, right after a connect: the hooks that caught up (or still
    catch up) on what was published while the session was away, and those waiting for
    notebook names, a line each; and whether a catch-up is still going on (then,
    unless ``final``, no catch-up line yet: the caller asks again)."""
    catching: list[str] = []
    caught = 0
    going_on = False
    waiting: list[str] = []
    for runner in manager.runners.ordered():
        hook_id = runner.hook.id
        if runner.waiting_for:
            names = ", ".join(runner.waiting_for)
            them = "it" if len(runner.waiting_for) == 1 else "them"
            waiting.append(
                f"Hook {hook_id} waits for {names}: once a cell defines {them}, it runs what was "
                "published meanwhile, then live items."
            )
            continue
        ran = sum(1 for t in runner.triggers if t.kind == TriggerKind.CATCH_UP and t.received >= since)
        going = runner.state == HookState.CATCHING_UP
        going_on = going_on or going
        if going or ran:
            catching.append(hook_id)
            caught += ran + runner.catch_up_left
    lines = []
    which = f"hook {catching[0]}" if len(catching) == 1 else f"hooks {', '.join(catching)}"
    if going_on and final:
        count = f" ({caught} so far)" if caught else ""
        lines.append(
            f"Catching up: {which} first run{'s' if len(catching) == 1 else ''} the items published while "
            f"the session was away{count}; %hook list shows the progress."
        )
    elif not going_on and caught:
        lines.append(f"Caught up: {which} ran the {caught} item(s) published while the session was away.")
    return lines + waiting, going_on


def _after_connect_lines(ctx: Context, manager: Any, since: float) -> list[str]:
    """:func:`_after_connect`, once the catch-up is done, or after 1 s at most."""
    deadline = time.monotonic() + 1.0
    while True:
        final = time.monotonic() >= deadline
        lines, going_on = ctx.call(_after_connect, manager, since, final)
        if not going_on or final:
            return lines
        time.sleep(0.02)


def _failed(manager: Any) -> bool:
    return manager.state == "failed"


def _jid(manager: Any) -> str | None:
    return manager.jid


@command(
    "connect",
    help="log in to an XMPP account and install its persistent hooks",
    description="Log in to an XMPP account; its persistent hooks are installed again. "
    "The password comes from --password-env VAR, else $XMPP_PASSWORD, else a prompt; "
    "it is never stored, printed or logged.",
    arguments=_connect_arguments,
)
def connect(ctx: Context, args: argparse.Namespace) -> None:
    for line in connect_account(ctx, args, getpass.getpass):  # the kernel's getpass: asks the front end
        print(line)
    show_catch_up = getattr(ctx, "show_catch_up", None)
    if show_catch_up is not None:  # (the magic: a progress bar while many hooks catch up)
        show_catch_up()


def connect_account(ctx: Context, args: argparse.Namespace, prompt: Any = None) -> list[str]:
    """Log in to the account of ``args`` (``connect``'s flags; ``args.password``, when
    set, is the password) and return what to tell the user, a line each. ``prompt``
    asks for a password (None: this front end cannot). Shared by ``%hook connect``
    and the Python API's ``connect()``."""
    manager = _connecting(ctx, args)
    jid, _count = ctx.call(_account, manager)
    failed = jid is not None and ctx.call(_failed, manager)
    if jid is not None and not failed:
        if args.default:  # connected already: only made the default
            _make_default(ctx, jid)
            return [f"Already connected as {jid}; it is now the default account."]
        raise CommandError(f"already connected as {jid}: %hook disconnect first")
    account = account_from_args(args, prompt, "%hook connect user@domain")
    ctx.apply_config()
    timeout = args.timeout or ctx.timeout
    options = connect_options(account, args, timeout)
    since = time.time()
    try:
        warnings = ctx.run(manager.connect(account.jid, account.password, **options), timeout + 30)
    except AuthFailed as exc:
        raise HookError(refused_password(account, str(exc))) from None
    jid, count = ctx.call(_account, manager)
    if args.default and jid is not None:
        _make_default(ctx, jid)
    after = _after_connect_lines(ctx, manager, since)
    if failed:  # logged in again: the hooks stayed installed
        return [f"Reconnected as {jid}" + (f"; its {count} hook(s) go on running." if count else "."), *after]
    lines = [f"Connected as {jid}" + (f"; {count} persistent hook(s) installed." if count else ".")]
    lines.extend(after)
    lines.extend(f"Warning: {warning}" for warning in warnings)
    others = [a for a in _connected(ctx) if a != jid]
    if others:
        default = _connected(ctx)[0]
        lines.append(
            f"Accounts: {', '.join([jid or '', *others])}; commands without -p are for {default}"
            + ("." if default == jid else f" (%hook connect {jid} --default to change).")
        )
    return lines


def _make_default(ctx: Context, jid: str) -> None:
    accounts = getattr(ctx, "accounts", None)
    if accounts is not None:  # (a context of one account: it is the default)
        ctx.call(accounts.set_default, jid)


def _connected(ctx: Context) -> list[str]:
    """The connected accounts' JIDs, the default first ([] for a context of one account)."""
    return [m.jid for m in connected_managers(ctx)]


def _connecting(ctx: Context, args: argparse.Namespace) -> Any:
    """The manager ``connect`` logs in with: the account's own when it is connected
    (already connected, or its failed session to log in again), else an idle one."""
    if args.jid and args.profile and args.jid != args.profile:
        raise CommandError(f"%hook connect {args.jid} -p {args.profile}: give the account once")
    wanted = args.jid or args.profile
    if not _connected(ctx):
        if args.profile and not args.jid:
            args.jid = args.profile
        return ctx.manager  # one account: as it always was
    if not wanted:
        try:  # $XMPP_JID, else the default account ("already connected")
            wanted = resolve_jid(None)
        except HookError:
            return ctx.manager
    try:  # the account is the bare JID
        manager = ctx.call(ctx.accounts.resolve, wanted.split("/", 1)[0])
    except HookError:  # not connected yet: an account of its own
        args.jid = wanted
        return ctx.new_account()
    args.jid = ctx.call(_jid, manager)
    return manager


def _disconnect_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--all", action="store_true", help="every connected account")


@command(
    "disconnect",
    help="close the session; temporary hooks are dropped, persistent ones stay stored",
    description="Close the session of the default account, of -p ACCOUNT, or of --all "
    "accounts; the others go on running. Temporary hooks are dropped, persistent ones "
    "stay stored.",
    arguments=_disconnect_arguments,
)
def disconnect(ctx: Context, args: argparse.Namespace) -> None:
    if args.all and args.profile:
        raise CommandError("give -p ACCOUNT or --all, not both")
    managers = connected_managers(ctx) if args.all else [account_for(ctx, args)]
    if not managers:
        print("Not connected.")
    for manager in managers:
        jid = ctx.call(_jid, manager)
        ctx.run(manager.disconnect())  # without a session: nothing to do
        print(f"Disconnected {jid}." if jid is not None else "Not connected.")


def _log_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--last", type=int, default=20, metavar="N", help="how many (default: 20)")


@command(
    "log",
    help="the recent log records of the extension and slixmpp",
    description="The last records the extension and slixmpp logged (warnings and "
    "errors unless you lower their loggers' levels), oldest first; they are never "
    "printed into cells. The log is every account's.",
    arguments=_log_arguments,
)
def log(ctx: Context, args: argparse.Namespace) -> None:
    entries = ctx.log_records.recent(max(1, args.last))
    if not entries:
        print(
            "No log record yet. (The extension and slixmpp keep their warnings and "
            "errors here, never in cells; for more, "
            "logging.getLogger('pubsub_hook_magic').setLevel('INFO').)"
        )
    for entry in entries:
        print(entry.line())


@command("status", help="the session's state and totals (a block per account, the default marked)")
def status(ctx: Context, args: argparse.Namespace) -> None:
    managers = [] if args.profile else connected_managers(ctx)  # the default first
    if len(managers) < 2:
        print(formatting.status_text(ctx.call(account_for(ctx, args).status)))
        return
    print(formatting.accounts_status_text([ctx.call(m.status) for m in managers], managers[0].jid))
