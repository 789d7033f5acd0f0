"""The session's sub-commands: ``connect``, ``disconnect``, ``status`` and ``log``."""

from __future__ import annotations

import argparse
import getpass
from typing import Any

from .. import formatting
from ..account import account_from_args, connect_options
from .parsing import CommandError
from .registry import Context, command

__all__ = ["add_connect_arguments"]


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


def _account(manager: Any) -> tuple[str | None, int]:
    """On the session loop: the account's JID (None without a session) and how many
    hooks are installed."""
    return manager.jid, len(manager.hooks())


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
    manager = ctx.manager
    jid, _count = ctx.call(_account, manager)
    failed = jid is not None and ctx.call(_failed, manager)
    if jid is not None and not failed:
        raise CommandError(f"already connected as {jid}: %hook disconnect first")
    # the kernel's getpass: asks the front end where it can
    account = account_from_args(args, getpass.getpass, "%hook connect user@domain")
    ctx.apply_config()
    timeout = args.timeout or ctx.timeout
    options = connect_options(account, args, timeout)
    warnings = ctx.run(manager.connect(account.jid, account.password, **options), timeout + 30)
    jid, count = ctx.call(_account, manager)
    if failed:  # logged in again: the hooks stayed installed
        print(f"Reconnected as {jid}" + (f"; its {count} hook(s) go on running." if count else "."))
        return
    print(f"Connected as {jid}" + (f"; {count} persistent hook(s) installed." if count else "."))
    for warning in warnings:
        print(f"Warning: {warning}")


@command("disconnect", help="close the session; temporary hooks are dropped, persistent ones stay stored")
def disconnect(ctx: Context, args: argparse.Namespace) -> None:
    jid = ctx.call(_jid, ctx.manager)
    ctx.run(ctx.manager.disconnect())  # without a session: nothing to do
    print(f"Disconnected {jid}." if jid is not None else "Not connected.")


def _log_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--last", type=int, default=20, metavar="N", help="how many (default: 20)")


@command(
    "log",
    help="the recent log records of the extension and slixmpp",
    description="The last records the extension and slixmpp logged (warnings and "
    "errors unless you lower their loggers' levels), oldest first; they are never "
    "printed into cells.",
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


@command("status", help="the session's state and totals")
def status(ctx: Context, args: argparse.Namespace) -> None:
    print(formatting.status_text(ctx.call(ctx.manager.status)))
