"""The ``%hook`` command line: sub-commands, their flags and their help.

Shared by the IPython magic and the ``pubsub-hook`` command, so both take Libervia's
flags (``li pubsub hook``). Imports no IPython: errors are :class:`CommandError`, which
the magic turns into ``UsageError``.

Lines are tokenized here, POSIX-style (quotes removed), except the code of a
``python_code`` hook: everything after the options is taken verbatim, quotes, ``$``
and ``{}`` included.
"""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import dataclass
from typing import Iterator

from .hooks import HookError, HookType

__all__ = ["CommandError", "HelpShown", "build_parser", "parse_command", "tokenize"]


class CommandError(HookError):
    """Bad command-line input; the message says what to do."""


class HelpShown(Exception):
    """``-h`` was given: the help is printed, nothing else is to be done."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CommandError(f"{self.prog}: {message} (see {self.prog} -h)")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            raise CommandError(message.strip())
        raise HelpShown()


# ---------------------------------------------------------------------- tokenizing


@dataclass(frozen=True)
class Token:
    text: str  # with quotes removed and escapes applied
    start: int  # offset of its first character in the line


def tokenize(line: str) -> Iterator[Token]:
    """Split ``line`` like a POSIX shell (quotes and backslashes), with offsets."""
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i].isspace():
            i += 1
        if i >= n:
            return
        start, chars = i, []
        while i < n and not line[i].isspace():
            c = line[i]
            if c in "'\"":
                end = line.find(c, i + 1)
                if c == '"':
                    # a backslash escapes a double quote inside double quotes
                    while end != -1 and line[end - 1] == "\\":
                        end = line.find(c, end + 1)
                if end == -1:
                    raise CommandError(f"unclosed {c} quote in: {line[start:].strip()}")
                body = line[i + 1 : end]
                chars.append(body.replace('\\"', '"') if c == '"' else body)
                i = end + 1
            elif c == "\\" and i + 1 < n:
                chars.append(line[i + 1])
                i += 2
            else:
                chars.append(c)
                i += 1
        yield Token("".join(chars), start)


# ---------------------------------------------------------------------- the parser

_FORMATS = ("table", "text", "json")


def build_parser(prog: str = "%hook") -> _Parser:
    """The parser of every sub-command; its help is the magic's help."""
    parser = _Parser(
        prog=prog,
        description="XMPP PubSub hooks: run Python for every item published to a node.",
        add_help=True,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "connect",
        help="log in to an XMPP account and install its persistent hooks",
        description="Log in to an XMPP account; its persistent hooks are installed again. "
        "The password comes from --password-env VAR, else $XMPP_PASSWORD, else a prompt; "
        "it is never stored, printed or logged.",
    )
    p.add_argument("jid", nargs="?", default=None, help="the account, user@domain (default: $XMPP_JID)")
    add_connect_arguments(p)

    sub.add_parser(
        "disconnect",
        help="close the session; temporary hooks are dropped, persistent ones stay stored",
    )

    p = sub.add_parser(
        "create",
        help="create a hook on a node",
        description="Create a hook: every item published to NODE of SERVICE calls it as "
        "hook(host, client, item). With %%hook create, the cell is python_code.",
        epilog=textwrap.dedent(
            """\
            types:
              python       ARG is a module (package.module) with a function hook;
                           package.module:function names another function
              python_file  ARG is a Python file defining hook (path made absolute)
              python_code  the rest of the line (or the cell) is code, run with host,
                           client and item set, in the notebook's namespace; may await
            """
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_create_arguments(p)

    p = sub.add_parser(
        "delete",
        help="delete hooks (all those on the node, narrowed by -t and -a)",
        description="Delete the hooks on NODE of SERVICE; -t and -a narrow the selection "
        "(empty matches all). Persistent hooks are removed from the store too.",
    )
    add_delete_arguments(p)

    p = sub.add_parser(
        "replay",
        help="run a hook again on an item it saw (recorded as a replay)",
        description="Run hook ID again: on its last item, on --item ITEM_ID (from its "
        "recent triggers or the node), or on the node's --last N stored items.",
    )
    p.add_argument("id", help="the hook's id (see %%hook list)")
    p.add_argument("--item", default="", metavar="ITEM_ID", help="the item to run it on")
    p.add_argument("--last", type=int, default=0, metavar="N", help="the node's last N stored items")

    p = sub.add_parser(
        "test",
        help="run a hook on an item built here (no network)",
        description="Run hook ID on an item whose payload is the XML after the id, or the "
        "cell of %%hook test ID.",
    )
    p.add_argument("id", help="the hook's id (see %%hook list)")
    p.add_argument("--item-id", default="", help="the test item's id")
    p.add_argument("payload", nargs="*", metavar="XML", help="the item's payload")

    for name, what in (("pause", "pause a hook: the items it skips are counted"), ("resume", "resume a paused hook")):
        p = sub.add_parser(name, help=what)
        p.add_argument("id", help="the hook's id (see %%hook list)")

    p = sub.add_parser("list", help="list the hooks, their triggers and errors")
    p.add_argument("-O", "--output", choices=_FORMATS, default=None, help="output format (default: table)")

    p = sub.add_parser(
        "publish",
        help="publish an item from your account (to try hooks)",
        description="Publish one item to NODE of SERVICE from the connected account. The "
        "payload is one XML element: the rest of the line, or the cell of %%hook publish.",
    )
    p.add_argument("-s", "--service", default="", help="PubSub service JID (default: your own JID, i.e. PEP)")
    p.add_argument("-n", "--node", required=True, help="node to publish to")
    p.add_argument("-i", "--id", default="", help="item id (default: the service chooses)")
    p.add_argument("payload", nargs="*", metavar="XML", help="the item's payload")

    p = sub.add_parser("nodes", help="list the nodes a service offers (service discovery)")
    p.add_argument("service", nargs="?", default="", help="PubSub service JID (default: your own PEP)")

    sub.add_parser("status", help="the session's state and totals")
    return parser


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
    p.add_argument("--direct-tls", action="store_true", help="TLS from the first byte (port 5223 style) instead of STARTTLS")
    p.add_argument("--ca-file", metavar="PEM", help="trust this CA certificate (a private server's)")
    p.add_argument("--timeout", type=float, default=None, metavar="S", help="seconds to wait for the session")


def add_create_arguments(p: argparse.ArgumentParser) -> None:
    """Libervia's flags of ``create``."""
    p.add_argument("-s", "--service", default="", help="PubSub service JID (default: your own JID, i.e. PEP)")
    p.add_argument("-n", "--node", required=True, help="node to hook")
    p.add_argument(
        "-t",
        "--type",
        default=None,
        choices=[t.value for t in HookType],
        help="hook type (default: python; python_code for %%%%hook)",
    )
    p.add_argument("-P", "--persistent", action="store_true", help="store the hook: installed again at every connect")
    p.add_argument(
        "--no-catch-up",
        dest="catch_up",
        action="store_false",
        help="do not run the items published while the session was away (at connect, "
        "after a reconnection)",
    )
    p.add_argument("arg", nargs="*", metavar="ARG", help="module, file or code")


def add_delete_arguments(p: argparse.ArgumentParser) -> None:
    """Libervia's flags of ``delete``."""
    p.add_argument("-s", "--service", default="", help="PubSub service JID (default: your own JID)")
    p.add_argument("-n", "--node", default="", help="node of the hooks")
    p.add_argument("-t", "--type", default="", choices=["", *(t.value for t in HookType)], help="only hooks of this type")
    p.add_argument("-a", "--arg", default="", help="only hooks with this argument (a python_file path is made absolute)")
    p.add_argument("--id", default="", help="delete the one hook with this id")


_PARSER: _Parser | None = None


def parser() -> _Parser:
    global _PARSER
    if _PARSER is None:
        _PARSER = build_parser()
    return _PARSER


def parse_command(line: str, cell: str | None = None) -> argparse.Namespace:
    """Parse a ``%hook`` line (and the cell of ``%%hook``) into a namespace.

    Raises :class:`CommandError` on bad input and :class:`HelpShown` after ``-h``.
    """
    top = parser()
    tokens = tokenize(line)
    first = next(tokens, None)
    if first is None:
        raise CommandError(
            "%hook needs a sub-command: connect, create, list, delete, pause, resume, "
            "replay, test, publish, nodes, status or disconnect (see %hook -h)"
        )
    if first.text == "create":
        args = _parse_create(line, first, tokens, cell)
    elif first.text in ("publish", "test"):
        args = _parse_with_payload(first.text, line, tokens, cell)
    else:
        words = [first.text, *(t.text for t in tokens)]
        args = top.parse_args(words)
        if cell is not None and cell.strip():
            raise CommandError(f"%%hook {args.command} takes no cell body; only %%hook create does")
    return args


def _parse_create(line: str, first: Token, tokens: Iterator[Token], cell: str | None) -> argparse.Namespace:
    create = _subparser("create")
    actions = create._option_string_actions  # noqa: SLF001 - argparse has no public lookup
    options: list[str] = []
    code_start: int | None = None
    for token in tokens:
        text = token.text
        if text == "--":
            rest = next(tokens, None)
            code_start = rest.start if rest is not None else None
            break
        name = text.split("=", 1)[0]
        if text.startswith("-") and name in actions:
            options.append(text)
            if actions[name].nargs != 0 and "=" not in text:
                value = next(tokens, None)
                if value is not None:
                    options.append(value.text)
            continue
        code_start = token.start
        break
    hook_type = _option_value(options, actions, "--type")
    if hook_type is None and cell is None and code_start is not None:
        # -t may follow the argument of a module or file hook: look at the whole line.
        hook_type = _option_value([t.text for t in tokenize(line)][1:], actions, "--type")
    hook_type = hook_type or ("python_code" if cell is not None else "python")
    if cell is not None or hook_type == "python_code":
        args = parser().parse_args(["create", *options])
        args.type = hook_type
        if cell is not None:
            if hook_type != "python_code":
                raise CommandError(
                    "%%hook create runs the cell as python_code: drop -t, or use %hook create"
                )
            if code_start is not None:
                raise CommandError(
                    "%%hook create takes its code from the cell: give no code on the line"
                )
            args.arg = cell
        else:
            args.arg = line[code_start:].strip() if code_start is not None else ""
    else:
        # Other types take one argument; options may also follow it, as in argparse.
        args = parser().parse_args([t.text for t in tokenize(line)])
        args.type = hook_type
        if len(args.arg) != 1:
            what = "a module name" if hook_type == "python" else "a file path"
            if not args.arg:
                raise CommandError(f"a {hook_type} hook needs {what} after the options")
            raise CommandError(
                f"a {hook_type} hook takes one argument, got {len(args.arg)}: quote a path "
                "with spaces"
            )
        args.arg = args.arg[0]
    if not args.arg.strip():
        raise CommandError("a python_code hook needs code: give it after the options, or use %%hook create")
    return args


def _parse_with_payload(command: str, line: str, tokens: Iterator[Token], cell: str | None) -> argparse.Namespace:
    """``publish`` and ``test``: options (and the hook id), then the XML payload
    verbatim, or the cell."""
    actions = _subparser(command)._option_string_actions  # noqa: SLF001
    options: list[str] = []
    payload_start: int | None = None
    positional = 1 if command == "test" else 0  # the hook id comes before the payload
    for token in tokens:
        if positional and not token.text.startswith("-"):
            options.append(token.text)
            positional -= 1
            continue
        name = token.text.split("=", 1)[0]
        if token.text.startswith("-") and name in actions:
            options.append(token.text)
            if actions[name].nargs != 0 and "=" not in token.text:
                value = next(tokens, None)
                if value is not None:
                    options.append(value.text)
            continue
        payload_start = token.start
        break
    args = parser().parse_args([command, *options])
    payload = line[payload_start:].strip() if payload_start is not None else ""
    if cell is not None and cell.strip():
        if payload:
            raise CommandError(f"%%hook {command} takes its payload from the cell: give none on the line")
        payload = cell.strip()
    if not payload:
        raise CommandError("give the item's payload, one XML element, after the options")
    args.payload = payload
    return args


def _option_value(words: list[str], actions: dict, dest_option: str) -> str | None:
    """The last value given to the option ``dest_option`` (any of its spellings)."""
    wanted = actions[dest_option]
    value = None
    words = list(words)
    for i, word in enumerate(words):
        name, eq, inline = word.partition("=")
        if actions.get(name) is wanted:
            value = inline if eq else (words[i + 1] if i + 1 < len(words) else None)
    return value


def _subparser(name: str) -> _Parser:
    return _subparsers()[name]


def full_help() -> str:
    """The help of every sub-command, for ``%hook?``."""
    return "\n".join([parser().format_help(), *(sub.format_help() for sub in _subparsers().values())])


# ---------------------------------------------------------------------- completion


def complete(
    text_until_cursor: str,
    hooks: list[tuple[str, str, str, str, str]],
    own_jid: str | None = None,
) -> list[str] | None:
    """Completions for a ``%hook`` line up to the cursor; None means "complete a path".

    ``hooks`` are ``(id, service, node, type, arg)`` of the installed hooks.
    """
    words = text_until_cursor.split()
    current = "" if text_until_cursor[-1:].isspace() else (words.pop() if words else "")
    sub_names = list(_subparsers())
    if len(words) <= 1:
        return [name for name in sub_names if name.startswith(current)]
    sub = words[1]
    prev = words[-1] if len(words) > 2 else ""
    subparser = _subparsers().get(sub)
    if subparser is None:
        return []
    if prev in ("-t", "--type"):
        choices = [t.value for t in HookType]
    elif prev in ("-s", "--service"):
        choices = sorted({h[1] for h in hooks} | ({own_jid} if own_jid else set()))
    elif prev in ("-n", "--node"):
        choices = sorted({h[2] for h in hooks})
    elif prev in ("-a", "--arg"):
        choices = sorted({h[4] for h in hooks})
    elif prev in ("-O", "--output"):
        choices = list(_FORMATS)
    elif prev == "--id" or (sub in ("pause", "resume", "replay", "test") and len(words) == 2):
        choices = [h[0] for h in hooks]
    elif current.startswith("-"):
        choices = sorted(subparser._option_string_actions)  # noqa: SLF001
    elif sub == "create" and any(w == "python_file" for w in words):
        return None  # a path: let IPython complete file names
    else:
        choices = []
    return [c for c in choices if c.startswith(current)]


def _subparsers() -> dict[str, _Parser]:
    for action in parser()._subparsers._group_actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}
