"""The registry of sub-commands: each one's flags beside its handler, and explicit
dispatch.

A command module declares a sub-command with :func:`command`; the parser, the help,
the completion, the ``%hook`` magic and ``pubsub-hook`` read :data:`COMMANDS`. No list
of sub-commands is written anywhere else.

Handlers take ``(ctx, args)``: the :class:`Context` the magic gives (the façade, a
doorway to its loop, the settings), and the parsed arguments. They print their
result and raise :class:`~.parsing.CommandError` (or any ``HookError``) for the user.

Every sub-command takes ``-p/--profile ACCOUNT`` (added here, by
:meth:`SubCommand.add_to`, so that help and completion have it): the account it is
for, among those connected; :func:`account_for` picks the manager.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from .parsing import CommandError, Expand, Parser, Token, expand_words, parts, tokenize, unknown_command, unrecognized

__all__ = [
    "COMMANDS",
    "Context",
    "SubCommand",
    "account_for",
    "add_profile_argument",
    "build_parser",
    "command",
    "connected_managers",
    "dispatch",
    "full_help",
    "names",
    "parse_command",
    "parse_words",
    "parser",
    "register",
    "session_for",
]


class Context(Protocol):
    """What a handler may use of the magic (kernel thread side)."""

    @property
    def manager(self) -> Any: ...  # the HookManager façade

    @property
    def timeout(self) -> float: ...

    @property
    def time_limit(self) -> float: ...

    @property
    def list_format(self) -> str: ...

    @property
    def log_records(self) -> Any: ...

    @property
    def user_ns(self) -> dict[str, Any]: ...

    def run(self, coro: Any, timeout: float | None = None) -> Any:
        """Run a façade coroutine on the session's loop and wait for its result."""

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        """Call a plain function on the session's loop (to read the façade's state)."""

    def apply_config(self) -> None:
        """Hand the current settings to the façade (new hooks use them)."""

    def show_table(self, text: str) -> bool:
        """Show the live hooks table (``text`` for plain front ends); False: no front end."""

    # Several accounts (the magic's). A context without them (a stand-in of one
    # account) is served by ``manager`` alone: see :func:`account_for`.

    @property
    def accounts(self) -> Any: ...  # the Accounts: every connected account's manager

    def account(self, profile: str | None = None, hook_id: str | None = None) -> Any:
        """The manager of ``profile``, else of the account that has hook ``hook_id``,
        else the default account's (``manager``)."""

    def new_account(self) -> Any:
        """A manager for an account not connected yet (it joins ``accounts`` once
        connected)."""

    def session(self, profile: str | None = None) -> Any:
        """The Python API's session of ``profile`` (None: the default account), whose
        methods the sub-commands call (see :func:`session_for`)."""


def account_for(ctx: Context, args: argparse.Namespace, hook_id: str | None = None) -> Any:
    """The manager the command ``args`` is for: its ``-p`` account, else the account
    that has hook ``hook_id`` (ids are unique across accounts), else the default one.
    A context of one account (no ``account`` method): its ``manager``."""
    choose = getattr(ctx, "account", None)
    if choose is None:
        return ctx.manager
    return choose(getattr(args, "profile", None) or None, hook_id or None)


def session_for(ctx: Context, args: argparse.Namespace) -> Any:
    """The Python API's :class:`~..api.Session` the command ``args`` is for (its ``-p``
    account, else the default one; a hook id picks its own account): the sub-commands
    are its methods, printed."""
    return ctx.session(getattr(args, "profile", None) or None)


def connected_managers(ctx: Context) -> list[Any]:
    """Every connected account's manager, the default first ([] for a context of one
    account)."""
    accounts = getattr(ctx, "accounts", None)
    return accounts.managers() if accounts is not None else []


def add_profile_argument(p: argparse.ArgumentParser) -> None:
    """``-p/--profile ACCOUNT``, as Libervia's profiles (every sub-command has it)."""
    p.add_argument(
        "-p",
        "--profile",
        default=None,
        metavar="ACCOUNT",
        help="the account (bare JID, or its local part when no other connected account "
        "has it; default: the default account, see %%hook status)",
    )


Handler = Callable[[Context, argparse.Namespace], None]
#: A parser of a line whose rest is verbatim: (line, tokens after the sub-command, cell,
#: the expander of the words that are not verbatim, or None).
VerbatimParser = Callable[[str, Iterator[Token], "str | None", "Expand | None"], argparse.Namespace]


@dataclass(frozen=True)
class SubCommand:
    """One sub-command of ``%hook``: its help, its flags and its handler."""

    name: str
    help: str
    run: Handler | None = None
    #: Adds the flags to its parser.
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    description: str | None = None
    epilog: str | None = None
    #: Parses the line itself (code or XML taken verbatim); None: argparse on the words.
    parse: VerbatimParser | None = None
    #: Sub-commands of this one (``node create``), and the error without one.
    children: tuple[SubCommand, ...] = ()
    needs_child: str = ""

    def add_to(self, sub: Any) -> argparse.ArgumentParser:
        """Add this sub-command (and its children) to argparse's ``sub`` parsers."""
        # (Parser's formatter wraps the description and keeps the epilog's lines)
        kwargs: dict[str, Any] = {"help": self.help, "description": self.description}
        if self.epilog:
            kwargs.update(epilog=self.epilog)
        p = sub.add_parser(self.name, **kwargs)
        if self.arguments is not None:
            self.arguments(p)
        if not self.children:
            add_profile_argument(p)
        if self.children:
            nested = p.add_subparsers(dest=f"{self.name}_command", metavar="ACTION", parser_class=Parser)
            for child in self.children:
                child.add_to(nested)
        return p


#: The sub-commands, in the order of the help (filled by the command modules).
COMMANDS: dict[str, SubCommand] = {}


def command(name: str, help: str, **spec: Any) -> Callable[[Handler], Handler]:
    """Declare the decorated function as the handler of sub-command ``name``."""

    def decorate(handler: Handler) -> Handler:
        register(SubCommand(name, help, handler, **spec))
        return handler

    return decorate


def register(spec: SubCommand) -> SubCommand:
    """Add ``spec`` to :data:`COMMANDS` (after those declared before it)."""
    if spec.name in COMMANDS:
        raise ValueError(f"sub-command {spec.name!r} declared twice")
    COMMANDS[spec.name] = spec
    return spec


def names() -> list[str]:
    """The sub-commands' names, in order."""
    return list(COMMANDS)


def build_parser(prog: str = "%hook") -> Parser:
    """The parser of every sub-command; its help is the magic's help."""
    top = Parser(
        prog=prog,
        description="XMPP PubSub hooks: run Python for every item published to a node.",
        add_help=True,
    )
    sub = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for spec in COMMANDS.values():
        spec.add_to(sub)
    return top


_PARSER: Parser | None = None


def parser() -> Parser:
    """The ``%hook`` parser (built once)."""
    global _PARSER
    if _PARSER is None:
        _PARSER = build_parser()
    return _PARSER


def subparser(name: str) -> argparse.ArgumentParser:
    return parts(parser()).subparsers[name]


def parse_command(line: str, cell: str | None = None, expand: Expand | None = None) -> argparse.Namespace:
    """Parse a ``%hook`` line (and the cell of ``%%hook``) into a namespace.

    ``expand`` (the magic's; None: nothing is expanded, as in ``pubsub-hook``) expands
    ``{expr}`` and ``$name`` in the options, their values and the plain positional
    words; never in the code of a ``python_code`` hook, a cell, or an XML payload.
    Raises :class:`CommandError` on bad input and :class:`HelpShown` after ``-h``.
    """
    if expand is not None:
        expand = _once_each(expand)
    tokens = tokenize(line)
    first = next(tokens, None)
    if first is None:
        *head, last = names()
        raise CommandError(f"%hook needs a sub-command: {', '.join(head)} or {last} (see %hook -h)")
    spec = COMMANDS.get(first.text)
    if spec is None and not first.text.startswith("-"):
        raise CommandError(unknown_command(parser().prog, first.text, names()))
    if spec is not None and spec.parse is not None:
        return spec.parse(line, tokens, cell, expand)
    words = [t.text for t in tokens]
    if spec is not None and spec.children and words and not words[0].startswith("-"):
        children = [c.name for c in spec.children]
        if words[0] not in children:
            raise CommandError(unknown_command(subparser(spec.name).prog, words[0], children))
    args = parse_words([first.text, *expand_words(words, expand)])
    if cell is not None and cell.strip():
        raise CommandError(f"%%hook {args.command} takes no cell body; only %%hook create does")
    return args


def parse_words(words: list[str]) -> argparse.Namespace:
    """``words`` (the sub-command's name first) parsed by the ``%hook`` parser. A word
    it does not know is refused by the sub-command's own parser (``%hook list:
    unrecognized arguments: -o json: did you mean -O? (see %hook list -h)``), not by
    ``%hook``'s, as argparse would."""
    args, extras = parser().parse_known_args(words)
    if extras:
        chosen = chosen_parser(args)
        raise CommandError(unrecognized(chosen.prog, extras, parts(chosen).options))
    return args


def chosen_parser(args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the (nested) sub-command ``args`` was parsed for."""
    name = getattr(args, "command", None)
    if name is None:
        return parser()
    chosen = subparser(name)
    child = getattr(args, f"{name}_command", None)
    return parts(chosen).subparsers.get(child, chosen) if child is not None else chosen


def _once_each(expand: Expand) -> Expand:
    """``expand`` evaluating each text once per line (a parser may read a word twice)."""
    done: dict[str, str] = {}

    def once(text: str) -> str:
        if text not in done:
            done[text] = expand(text)
        return done[text]

    return once


def dispatch(ctx: Context, args: argparse.Namespace) -> None:
    """Run the handler of the sub-command ``args`` was parsed for."""
    spec = COMMANDS[args.command]
    if spec.children:
        chosen = getattr(args, f"{spec.name}_command", None)
        child = next((c for c in spec.children if c.name == chosen), None)
        if child is None:
            raise CommandError(spec.needs_child)
        spec = child
    if spec.run is None:
        raise CommandError(f"%hook {args.command} does nothing by itself (see %hook {args.command} -h)")
    spec.run(ctx, args)


def full_help() -> str:
    """The help of every sub-command, nested ones included (``node create``), for
    ``%hook?``."""

    def helps(p: argparse.ArgumentParser) -> Iterator[str]:
        yield p.format_help()
        for sub in parts(p).subparsers.values():
            yield from helps(sub)

    return "\n".join(helps(parser()))
