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
from typing import Any, Iterator

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
#: XEP-0060's access models (4.5) and publish models (``pubsub#publish_model``).
ACCESS_MODELS = ("open", "presence", "roster", "whitelist", "authorize")
PUBLISH_MODELS = ("publishers", "subscribers", "open")


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

    p = sub.add_parser(
        "failed",
        help="list the items a hook could not run, after its retries",
        description="List the failed items of hook ID (its dead letters), oldest first: "
        "item id, attempts, last failure time and error; -O json adds the payload and "
        "the traceback.",
    )
    add_failed_arguments(p)

    p = sub.add_parser(
        "retry",
        help="run a hook again on its failed items (or --discard them)",
        description="Run hook ID again on its failed items, in order (after fixing its "
        "code); those that succeed are removed, the others stay. --item ITEM_ID: only "
        "that item. --discard: drop them instead of running them.",
    )
    add_retry_arguments(p)

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
    _add_service_and_node(p, "node to publish to")
    p.add_argument("-i", "--id", default="", help="item id (default: the service chooses)")
    p.add_argument("payload", nargs="*", metavar="XML", help="the item's payload")

    p = sub.add_parser(
        "retract",
        help="retract an item you published (its subscribers are notified)",
        description="Retract item ITEM_ID from NODE of SERVICE, asking the service to notify "
        "the node's subscribers (hooks on retract run).",
    )
    _add_service_and_node(p, "node of the item")
    p.add_argument("item", metavar="ITEM_ID", help="the id of the item to retract")

    p = sub.add_parser("nodes", help="list the nodes a service offers (service discovery)")
    p.add_argument("service", nargs="?", default="", help="PubSub service JID (default: your own PEP)")

    p = sub.add_parser(
        "node",
        help="create a node (node create -n NODE), as Libervia's li pubsub node",
        description="Nodes of a PubSub service or of your PEP.",
    )
    node_sub = p.add_subparsers(dest="node_command", metavar="ACTION", parser_class=_Parser)
    p = node_sub.add_parser(
        "create",
        help="create a node, with its access model",
        description="Create NODE on SERVICE (default: your own PEP), as Libervia's "
        "li pubsub node create; -f sets any configuration field.",
    )
    _add_service_and_node(p, "the node's name")
    p.add_argument(
        "--access-model",
        choices=ACCESS_MODELS,
        default=None,
        help="who may subscribe and read items (default: the service's, usually open)",
    )
    p.add_argument(
        "--publish-model",
        choices=PUBLISH_MODELS,
        default=None,
        help="who may publish (default: the service's, usually publishers: the owner)",
    )
    p.add_argument(
        "-f",
        "--field",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="a configuration field, e.g. -f max_items 100 (repeatable; pubsub# is added)",
    )
    p.add_argument(
        "-F", "--full-prefix", action="store_true", help="do not add pubsub# before the -f keys"
    )

    p = sub.add_parser(
        "log",
        help="the recent log records of the extension and slixmpp",
        description="The last records the extension and slixmpp logged (warnings and "
        "errors unless you lower their loggers' levels), oldest first; they are never "
        "printed into cells.",
    )
    p.add_argument("-n", "--last", type=int, default=20, metavar="N", help="how many (default: 20)")

    sub.add_parser("status", help="the session's state and totals")
    return parser


def _add_service_and_node(p: argparse.ArgumentParser, node_help: str) -> None:
    p.add_argument("-s", "--service", default="", help="PubSub service JID (default: your own JID, i.e. PEP)")
    p.add_argument("-n", "--node", required=True, help=node_help)


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
    p.add_argument(
        "--retry",
        type=int,
        default=0,
        metavar="N",
        help="try a failed run (an error, or the time limit) again up to N times, the "
        "hook's later items waiting; an item that still fails is kept in the hook's "
        "failed items (default: 0)",
    )
    p.add_argument(
        "--retry-delay",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds before the first retry, twice as long before each next one, at "
        "most 5 min (default: 1)",
    )
    p.add_argument(
        "-e",
        "--event",
        default=None,
        metavar="EVENT[,EVENT]",
        help="the events the hook runs for: publish (default), retract, purge, delete; the "
        "hook tells them apart by item.name ('item', 'retract', 'purge', 'delete')",
    )
    p.add_argument(
        "--where",
        default=None,
        metavar="XPATH",
        help="run only for publications whose payload matches this ElementTree XPath "
        "(e.g. \".[@type='note']\" or '{urn:x}author'); the others count as filtered",
    )
    p.add_argument(
        "--ns",
        action="append",
        default=[],
        metavar="PREFIX=URI",
        help="a namespace prefix for --where (repeatable)",
    )
    p.add_argument("arg", nargs="*", metavar="ARG", help="module, file or code")


def add_failed_arguments(p: argparse.ArgumentParser) -> None:
    """``failed ID``: the items a hook could not run (shared with ``pubsub-hook``)."""
    p.add_argument("id", help="the hook's id (see list)")
    p.add_argument("-O", "--output", choices=("text", "json"), default="text", help="output format (default: text)")


def add_retry_arguments(p: argparse.ArgumentParser) -> None:
    """``retry ID [--item ITEM_ID] [--discard]`` (shared with ``pubsub-hook``)."""
    p.add_argument("id", help="the hook's id (see list)")
    p.add_argument("--item", default="", metavar="ITEM_ID", help="only the failed item with this id")
    p.add_argument("--discard", action="store_true", help="drop the failed items instead of running them")


def create_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``HookManager.create_hook`` that ``create``'s flags give
    (shared by ``%hook create`` and ``pubsub-hook create``)."""
    return {
        "catch_up": args.catch_up,
        "retry": args.retry,
        "retry_delay": args.retry_delay,
        "events": args.event,
        "where": args.where,
        "namespaces": args.ns,
    }


def add_delete_arguments(p: argparse.ArgumentParser) -> None:
    """Libervia's flags of ``delete``."""
    p.add_argument("-s", "--service", default="", help="PubSub service JID (default: your own JID)")
    p.add_argument("-n", "--node", default="", help="node of the hooks")
    p.add_argument("-t", "--type", default="", choices=["", *(t.value for t in HookType)], help="only hooks of this type")
    p.add_argument("-a", "--arg", default="", help="only hooks with this argument (a python_file path is made absolute)")
    p.add_argument("--id", default="", help="delete the one hook with this id")
    p.add_argument("-e", "--event", default="", metavar="EVENT[,EVENT]", help="only hooks that run for these events")


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
            "replay, test, failed, retry, publish, retract, nodes, node, status, log or disconnect (see %hook -h)"
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
    type_given = hook_type is not None
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
    args.type_given = type_given
    return args


def default_type_hint(args: argparse.Namespace, message: str) -> str:
    """``message`` (a failed create) with a hint when ``-t`` was left out and the type
    defaulted to ``python`` (a module name): ``%hook create -n news pass`` meant code."""
    if getattr(args, "type_given", True) or args.type != "python":
        return message
    return (
        f"{message} (no -t: the type defaulted to python, a module name; for code give "
        "-t python_code, or use %%hook create with the code in the cell)"
    )


def node_config(args: argparse.Namespace) -> dict[str, str]:
    """The configuration fields of ``node create`` (Libervia's -f KEY VALUE, with
    ``pubsub#`` added unless -F, and the --access-model / --publish-model shorthands)."""
    config: dict[str, str] = {}
    for key, value in args.field:
        config[key if args.full_prefix or key.startswith("pubsub#") else f"pubsub#{key}"] = value
    if args.access_model:
        config["pubsub#access_model"] = args.access_model
    if args.publish_model:
        config["pubsub#publish_model"] = args.publish_model
    return config


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


@dataclass(frozen=True)
class Candidate:
    """One completion: the text to insert, and what it is (the hint a front end shows
    beside it: ``sub-command``, ``option``, a hook id's type and node…)."""

    text: str
    type: str


#: What an option's value is, by the option's ``dest``, for the completion hint.
_VALUE_KINDS = {
    "type": "hook type",
    "output": "format",
    "access_model": "access model",
    "publish_model": "publish model",
}


def complete_typed(
    text_until_cursor: str,
    hooks: list[tuple[str, str, str, str, str]],
    own_jid: str | None = None,
) -> tuple[str, list[Candidate]]:
    """Completions for a ``%hook`` line up to the cursor: the fragment they replace
    (the word being typed) and the candidates, in the order to show them.

    ``hooks`` are ``(id, service, node, type, arg)`` of the installed hooks. An empty
    list means "nothing of ours here" (e.g. the code of a ``python_code`` hook).
    """
    words = text_until_cursor.split()
    current = "" if not text_until_cursor or text_until_cursor[-1:].isspace() else words.pop()
    subs = _subparsers()
    if len(words) <= 1:
        return current, _starting(current, [Candidate(n, "sub-command") for n in subs])
    sub = words[1]
    subparser = subs.get(sub)
    rest = words[2:]
    if sub == "node":  # node create …: one more level of sub-commands
        nested = _subparsers(subparser) if subparser is not None else {}
        if not rest:
            return current, _starting(current, [Candidate(n, "sub-command") for n in nested])
        subparser, rest = nested.get(rest[0]), rest[1:]
    if subparser is None:
        return current, []
    actions = subparser._option_string_actions  # noqa: SLF001 - argparse has no public lookup
    prev = actions.get(rest[-1]) if rest else None
    if prev is not None and prev.nargs != 0:
        return current, _starting(current, _values(prev, hooks, own_jid))
    if current.startswith("-"):
        options = [Candidate(o, "option") for o in _options(subparser) if o not in ("-h", "--help")]
        return current, _starting(current, options)
    positionals = [a for a in subparser._positionals._group_actions if a.option_strings == []]  # noqa: SLF001
    given = _positionals_given(rest, actions)
    if positionals and positionals[0].dest == "id" and given == 0:
        return current, _starting(current, _hook_ids(hooks))
    if sub == "create" and "python_file" in words:
        return current, _paths(current)
    if sub in ("create", "publish", "test") and current:
        return current, []  # code or XML: not ours
    options = [Candidate(o, "option") for o in _options(subparser) if o not in ("-h", "--help")]
    return current, _starting(current, options)


def complete(
    text_until_cursor: str,
    hooks: list[tuple[str, str, str, str, str]],
    own_jid: str | None = None,
) -> list[str]:
    """The texts of :func:`complete_typed` (file names included)."""
    return [c.text for c in complete_typed(text_until_cursor, hooks, own_jid)[1]]


def _starting(current: str, candidates: list[Candidate]) -> list[Candidate]:
    return [c for c in candidates if c.text.startswith(current)]


def _options(subparser: argparse.ArgumentParser) -> list[str]:
    """Long options first, in the parser's order, then the short ones."""
    names = [o for a in subparser._actions for o in a.option_strings]  # noqa: SLF001
    return [o for o in names if o.startswith("--")] + [o for o in names if not o.startswith("--")]


def _positionals_given(rest: list[str], actions: dict) -> int:
    count, skip = 0, 0
    for word in rest:
        if skip:
            skip -= 1
        elif word.startswith("-"):
            action = actions.get(word.split("=", 1)[0])
            if action is not None and "=" not in word and action.nargs != 0:
                skip = action.nargs if isinstance(action.nargs, int) else 1
        else:
            count += 1
    return count


def _hook_ids(hooks: list[tuple[str, str, str, str, str]]) -> list[Candidate]:
    return [Candidate(h[0], f"hook: {h[3]} on {h[2]} @ {h[1]}") for h in hooks]


def _values(action: argparse.Action, hooks: list[tuple[str, str, str, str, str]], own_jid: str | None) -> list[Candidate]:
    """The values an option takes."""
    dest = action.dest
    if action.choices:
        return [Candidate(str(c), _VALUE_KINDS.get(dest, "choice")) for c in action.choices if c != ""]
    if dest == "service":
        services = sorted({h[1] for h in hooks} - {own_jid})
        return ([Candidate(own_jid, "service: your PEP")] if own_jid else []) + [Candidate(s, "service") for s in services]
    if dest == "node":
        return [Candidate(n, "node") for n in sorted({h[2] for h in hooks})]
    if dest == "arg":
        return [Candidate(a, "argument") for a in sorted({h[4] for h in hooks})]
    if dest == "id":
        return _hook_ids(hooks)
    return []


def _paths(current: str) -> list[Candidate]:
    """Directories and Python files whose path starts with ``current``."""
    import os

    head, _, prefix = current.rpartition("/")
    where = os.path.expanduser(head + "/" if head or current.startswith("/") else ".")
    try:
        entries = sorted(os.scandir(where), key=lambda e: e.name)
    except OSError:
        return []
    found = []
    for entry in entries:
        if not entry.name.startswith(prefix) or (entry.name.startswith(".") and not prefix.startswith(".")):
            continue
        text = (head + "/" if head or current.startswith("/") else "") + entry.name
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        if is_dir:
            found.append(Candidate(text + "/", "directory"))
        elif entry.name.endswith(".py"):
            found.append(Candidate(text, "file"))
    return found


def _subparsers(of: argparse.ArgumentParser | None = None) -> dict[str, _Parser]:
    """The sub-command parsers of the ``%hook`` parser (or of ``of``), in order."""
    top = of if of is not None else parser()
    for action in top._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}
