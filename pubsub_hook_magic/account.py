"""Which account to log in to, on which server, with which password.

One set of rules for ``%hook connect`` and ``pubsub-hook``: what is given explicitly
wins, then the environment, then (for the password only) a prompt the caller supplies.

- the account: the argument, else ``$XMPP_JID``;
- the server: ``--host``/``--port``, else ``$XMPP_HOST``/``$XMPP_PORT``; a host without
  a port gets 5222 (5223 with direct TLS); no host at all means "find it from the JID's
  domain" (DNS SRV);
- the password: ``--password-env VAR`` (the variable's name), else ``$XMPP_PASSWORD``,
  else ``prompt("Password for JID: ")``.

Several accounts in one process (``pubsub-hook run A B``, :func:`resolve_accounts`):
``--password-env`` once per account, in the order of the JIDs; without it each
password comes from a prompt (``$XMPP_PASSWORD`` serves a single account only);
``--host``/``--port`` once for all, or once per account in the order of the JIDs.

Bad input raises :class:`~.hooks.HookError` with one line saying what to do. The
password is never logged, printed or kept anywhere but in the returned
:class:`Account`, whose ``repr`` leaves it out. Imports no IPython.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Mapping

from .hooks import HookError

__all__ = [
    "Account", "account_from_args", "connect_options", "refused_password", "resolve_account", "resolve_accounts",
    "resolve_jid",
]

_PORT = re.compile(r"\s*[0-9]{1,5}\s*")


@dataclass(frozen=True)
class Account:
    """Where and as whom to log in. ``repr``/``str`` never show the password."""

    jid: str
    host: str | None
    port: int | None
    password: str = field(repr=False)
    #: Where the password came from, as the user gave it: ``--password-env VAR``,
    #: ``$XMPP_PASSWORD``, ``the prompt`` or ``password=`` (the Python API).
    password_source: str = field(default="", compare=False)


def resolve_jid(
    jid: str | None = None,
    *,
    usage: str = "user@domain",
    environ: Mapping[str, str] | None = None,
) -> str:
    """The account: ``jid``, else ``$XMPP_JID``.

    ``usage`` is how the caller's front end takes the account, shown when there is
    none (``"%hook connect user@domain"``, ``"pubsub-hook list --jid user@domain"``).
    """
    env = os.environ if environ is None else environ
    account = jid or env.get("XMPP_JID")
    if not account:
        raise HookError(f"give the account: {usage} (or set $XMPP_JID)")
    return account


def resolve_account(
    jid: str | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    direct_tls: bool = False,
    password_env: str | None = None,
    prompt: Callable[[str], str] | None = None,
    usage: str = "user@domain",
    environ: Mapping[str, str] | None = None,
    password: str | None = None,
) -> Account:
    """The account, server and password to log in with, from the arguments, else the
    environment, else (the password) ``prompt``.

    ``prompt`` is called with ``"Password for JID: "`` only when neither
    ``password_env`` nor ``$XMPP_PASSWORD`` gives a password; ``None`` means this
    front end cannot prompt, as does a prompt raising ``NotImplementedError``
    (IPython's ``StdinNotImplementedError``), ``EOFError`` or ``OSError``.
    ``environ`` defaults to ``os.environ``. Raises :class:`HookError` on bad input.
    """
    env = os.environ if environ is None else environ
    account = resolve_jid(jid, usage=usage, environ=env)
    host = host or env.get("XMPP_HOST") or None
    if port is not None:
        if not 1 <= port <= 65535:
            raise HookError(f"--port {port} is not a port number: give one from 1 to 65535")
    elif env.get("XMPP_PORT"):
        port = _env_port(env["XMPP_PORT"])
    if host and not port:
        port = 5223 if direct_tls else 5222
    if password is not None:  # given by a caller (the Python API): it wins
        if not password:
            raise HookError("the password given is empty: pass the account's password")
        return Account(account, host, port, password, "password=")
    return Account(account, host, port, *_password(account, password_env, prompt, env))


def refused_password(account: Account, message: str) -> str:
    """What to say when the server refused ``account``'s password: where it came from
    and what to do about it (``message``: the session's own words, when the source is
    unknown)."""
    jid, source = account.jid, account.password_source
    if source.startswith("--password-env "):
        var = source.split(" ", 1)[1]
        return f"the password from {source} was refused for {jid}: check ${var} (and the JID)"
    if source == "$XMPP_PASSWORD":
        return (
            f"the password from $XMPP_PASSWORD was refused for {jid} (is it another account's?): "
            "use --password-env VAR, or unset XMPP_PASSWORD to be asked for it"
        )
    if source == "the prompt":
        return f"the password typed at the prompt was refused for {jid}: connect again and retype it (check the JID)"
    if source == "password=":
        return f"the password given (password=) was refused for {jid}: check it (and the JID)"
    return message


def resolve_accounts(
    jids: list[str],
    *,
    hosts: list[str] | None = None,
    ports: list[int] | None = None,
    direct_tls: bool = False,
    password_envs: list[str] | None = None,
    prompt: Callable[[str], str] | None = None,
    usage: str = "user@domain",
    environ: Mapping[str, str] | None = None,
) -> list[Account]:
    """The accounts of one process (``pubsub-hook run A B``), each with its server and
    password, in the order of ``jids`` (none: ``$XMPP_JID``).

    ``password_envs``: one variable's name per account, in the same order (or none:
    a prompt for each; ``$XMPP_PASSWORD`` for a single account only, since it holds
    one password). ``hosts``/``ports``: none (``$XMPP_HOST``/``$XMPP_PORT``), one for
    every account, or one per account. Raises :class:`HookError` on bad input, before
    any password is asked for.
    """
    env = os.environ if environ is None else environ
    accounts = list(jids) or [resolve_jid(None, usage=usage, environ=env)]
    seen: set[str] = set()
    for jid in accounts:
        if jid.lower() in seen:
            raise HookError(f"{jid} is given twice: give each account once")
        seen.add(jid.lower())
    count = len(accounts)
    envs = list(password_envs or [])
    if envs and len(envs) != count:
        raise HookError(
            f"--password-env is given {len(envs)} time(s) for {count} account(s): give it once "
            "per account, in the order of the JIDs (or leave it out to be asked)"
        )
    host_of = _per_account("--host", list(hosts or []), count)
    port_of = _per_account("--port", list(ports or []), count)
    if count > 1:
        # $XMPP_PASSWORD is one password: it is not taken for several accounts.
        env = {k: v for k, v in env.items() if k != "XMPP_PASSWORD"}
        if not envs and prompt is None:
            raise HookError(
                f"no passwords for {count} accounts: give --password-env VAR once per account, "
                "in the order of the JIDs (this front end cannot prompt; $XMPP_PASSWORD "
                "serves a single account only)"
            )
    return [
        resolve_account(
            jid, host=host_of[i], port=port_of[i], direct_tls=direct_tls,
            password_env=envs[i] if envs else None, prompt=prompt, usage=usage, environ=env,
        )
        for i, jid in enumerate(accounts)
    ]


def _per_account(flag: str, values: list[Any], count: int) -> list[Any]:
    """A flag given for all accounts (zero or one time) or per account (``count`` times)."""
    if not values:
        return [None] * count
    if len(values) == 1:
        return values * count
    if len(values) == count:
        return values
    raise HookError(
        f"{flag} is given {len(values)} times for {count} account(s): give it once for all, "
        "or once per account in the order of the JIDs"
    )


def account_from_args(args: Any, prompt: Callable[[str], str] | None, usage: str) -> Account:
    """:func:`resolve_account` from parsed command-line arguments: ``args.jid`` and the
    flags of :func:`~.commands.add_connect_arguments` (``%hook connect``, ``pubsub-hook``)."""
    return resolve_account(
        args.jid,
        host=args.host,
        port=args.port,
        direct_tls=args.direct_tls,
        password_env=args.password_env,
        prompt=prompt,
        usage=usage,
        password=getattr(args, "password", None),
    )


def connect_options(account: Account, args: Any, timeout: float) -> dict[str, Any]:
    """``HookManager.connect``'s keyword arguments for ``account`` and the connect
    flags (``--no-tls``, ``--direct-tls``, ``--ca-file``) of ``%hook connect`` and
    ``pubsub-hook``."""
    return {
        "host": account.host,
        "port": account.port,
        "tls": not args.no_tls,
        "direct_tls": args.direct_tls,
        "ca_file": args.ca_file,
        "timeout": timeout,
    }


def _env_port(value: str) -> int:
    port = int(value) if _PORT.fullmatch(value) else 0
    if not 1 <= port <= 65535:
        raise HookError(
            f"$XMPP_PORT is not a port number ({value[:20]!r}): set it to one from 1 to "
            "65535, or unset it"
        )
    return port


def _password(
    jid: str, password_env: str | None, prompt: Callable[[str], str] | None, env: Mapping[str, str]
) -> tuple[str, str]:
    """The password and where it came from (see :attr:`Account.password_source`)."""
    if password_env:
        password = env.get(password_env)
        if not password:
            state = "is not set" if password is None else "is empty"
            raise HookError(
                f"the environment variable {password_env} {state}: set it, or leave out "
                "--password-env to use $XMPP_PASSWORD or a prompt"
            )
        return password, f"--password-env {password_env}"
    password = env.get("XMPP_PASSWORD")
    if password:
        return password, "$XMPP_PASSWORD"
    if prompt is not None:
        try:
            password = prompt(f"Password for {jid}: ")
        except (NotImplementedError, EOFError, OSError):
            prompt = None
    if prompt is None:
        raise HookError(
            "no password: use --password-env VAR or set XMPP_PASSWORD (this front end "
            "cannot prompt for one)"
        )
    if not password:
        raise HookError(
            "no password: type it at the prompt, or use --password-env VAR or set XMPP_PASSWORD"
        )
    return password, "the prompt"
