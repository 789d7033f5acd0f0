"""The sub-commands on hooks: ``create``, ``list``, ``delete``, ``pause`` and ``resume``.

``create`` parses its own line: the code of a ``python_code`` hook (the rest of the
line, or the cell of ``%%hook create``) is taken verbatim.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Iterable, Iterator
from typing import Any

from .. import formatting
from ..hooks import HookError, HookType, missing_names
from ..states import HookState
from .parsing import (
    CommandError,
    Expand,
    Token,
    expand_options,
    expand_word,
    expand_words,
    option_value,
    parts,
    split_verbatim,
    tokenize,
)
from .registry import Context, account_for, command, connected_managers, parse_words, session_for, subparser

__all__ = [
    "FORMATS",
    "add_create_arguments",
    "add_delete_arguments",
    "create_options",
    "default_type_hint",
    "hook_id_argument",
]

FORMATS = ("table", "text", "json")


def hook_id_argument(p: argparse.ArgumentParser, where: str = "%%hook list") -> None:
    p.add_argument("id", help=f"the hook's id (see {where})")


def _one_of(choices: Iterable[str]) -> str:
    *head, last = choices
    return f"{', '.join(head)} or {last}" if head else last


def add_create_arguments(p: argparse.ArgumentParser) -> None:
    """Libervia's flags of ``create``."""
    p.add_argument("-s", "--service", default="", help="PubSub service JID (default: your own JID, i.e. PEP)")
    p.add_argument("-n", "--node", required=True, help="node to hook")
    p.add_argument(
        "-t",
        "--type",
        default=None,
        choices=[t.value for t in HookType],
        metavar="TYPE",
        help=f"hook type: {_one_of(t.value for t in HookType)} (default: python; python_code for %%%%hook)",
    )
    p.add_argument("-P", "--persistent", action="store_true", help="store the hook: installed again at every connect")
    p.add_argument(
        "--again",
        action="store_true",
        help="add the hook even if an identical one is installed (it would run every item twice)",
    )
    p.add_argument(
        "--no-catch-up",
        dest="catch_up",
        action="store_false",
        help="do not run the items published while the session was away (at connect, "
        "after a reconnection)",
    )
    _add_retry_flags(p)
    _add_event_flags(p)
    p.add_argument("arg", nargs="*", metavar="ARG", help="module, file or code")


def _add_retry_flags(p: argparse.ArgumentParser) -> None:
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


def _add_event_flags(p: argparse.ArgumentParser) -> None:
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


def default_type_hint(args: argparse.Namespace, message: str) -> str:
    """``message`` (a failed create) with a hint when ``-t`` was left out and the type
    defaulted to ``python`` (a module name): ``%hook create -n news pass`` meant code."""
    if getattr(args, "type_given", True) or args.type != "python":
        return message
    return (
        f"{message} (no -t: the type defaulted to python, a module name; for code give "
        "-t python_code, or use %%hook create with the code in the cell)"
    )


# ---------------------------------------------------------------------- create

#: How to give code that starts with ``-`` (said when a word before the code looks
#: like a misspelled option).
CODE_AFTER_DASHES = "code that starts with - goes after --"


def parse_create(
    line: str, tokens: Iterator[Token], cell: str | None, expand: Expand | None = None
) -> argparse.Namespace:
    """``create``: options, then the hook's argument; for ``python_code`` the rest of
    the line (or the cell) verbatim.

    ``expand`` applies to the options before the code and their values, and to the
    argument of a ``-t python`` / ``-t python_file`` hook (a module name, a file path);
    never to code. Without ``-t`` the argument is kept as typed (it may be code meant
    for ``-t python_code``)."""
    options = parts(subparser("create")).options
    raw_words, code_start = split_verbatim(
        tokens, options, stop_at_dashes=True, prog=subparser("create").prog, dashes_hint=CODE_AFTER_DASHES
    )
    words = expand_words(raw_words, expand)  # options and their values: no code
    hook_type = option_value(words, options, "--type")
    late_type = False
    if hook_type is None and cell is None and code_start is not None:
        # -t may follow the argument of a module or file hook: look at the whole line,
        # as typed (it may be code: nothing of it is expanded here).
        hook_type = option_value([t.text for t in tokenize(line)][1:], options, "--type")
        late_type = hook_type is not None
    type_given = hook_type is not None
    hook_type = hook_type or ("python_code" if cell is not None else "python")
    if cell is not None or hook_type == "python_code":
        args = _code_hook(line, words, code_start, cell, hook_type)
    else:
        args = _one_argument_hook(line, hook_type, expand, type_given, late_type)
    if not args.arg.strip():
        raise CommandError("a python_code hook needs code: give it after the options, or use %%hook create")
    args.type_given = type_given
    return args


def _code_hook(
    line: str, words: list[str], code_start: int | None, cell: str | None, hook_type: str
) -> argparse.Namespace:
    """``words``: the options before the code, expanded already; the code is the
    verbatim rest of ``line`` (or ``cell``)."""
    args = parse_words(["create", *words])
    args.type = hook_type
    if cell is None:
        args.arg = line[code_start:].strip() if code_start is not None else ""
        return args
    if hook_type != "python_code":
        raise CommandError("%%hook create runs the cell as python_code: drop -t, or use %hook create")
    if code_start is not None:
        raise CommandError("%%hook create takes its code from the cell: give no code on the line")
    args.arg = cell
    return args


def _one_argument_hook(
    line: str, hook_type: str, expand: Expand | None = None, type_given: bool = True, late_type: bool = False
) -> argparse.Namespace:
    """Other types take one argument; options may also follow it, as in argparse.

    ``late_type``: ``-t`` came after the argument, as typed (``-t $kind``): its value
    alone is expanded first, and a ``python_code`` there is refused before anything
    else of the line is expanded (the argument would be code)."""
    options = parts(subparser("create")).options
    raw = [t.text for t in tokenize(line)]
    if late_type and expand is not None:
        hook_type = expand_word(hook_type, expand)
        if hook_type == "python_code":
            raise CommandError(
                "-t python_code goes before the code: %hook create -n NODE -t python_code CODE"
            )
    words = [raw[0], *expand_options(raw[1:], options, expand, positionals=type_given)]
    args = parse_words(words)
    args.type = args.type or hook_type
    if len(args.arg) != 1:
        what = {"python": "a module name", "python_function": "the name of a notebook function"}.get(
            args.type, "a file path"
        )
        if not args.arg:
            raise CommandError(f"a {args.type} hook needs {what} after the options")
        raise CommandError(f"a {args.type} hook takes one argument, got {len(args.arg)}: quote a path with spaces")
    args.arg = args.arg[0]
    return args


@command(
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
          python_function
                       ARG names a function of the notebook, f(host, client, item),
                       sync or async def; with -P its source is stored
        """
    ),
    arguments=add_create_arguments,
    parse=parse_create,
)
def create(ctx: Context, args: argparse.Namespace) -> None:
    ctx.apply_config()
    manager = account_for(ctx, args)
    options = create_options(args)
    if args.type == HookType.PYTHON_FUNCTION:
        args.arg = args.arg.strip().removesuffix("()")
        options["func"] = notebook_function(ctx.user_ns, args.arg)
    cell = getattr(ctx, "client", None)  # the notebook cell being run (see .cells)
    try:
        made = ctx.run(
            manager.place_hook(
                args.service or None, args.node, args.type, args.arg, persistent=args.persistent,
                again=args.again, cell=cell.cell_run() if cell is not None else None, **options,
            )
        )
    except HookError as exc:
        raise CommandError(default_type_hint(args, str(exc))) from None
    for line in made.lines():
        print(line)
    hook = made.hook
    if made.outcome == "kept":
        return
    view = manager.snapshot().hook(hook.id)
    if view is not None and view.state == HookState.STANDBY:
        print(f"It runs in {view.owner or 'the account service'}; standby here.")
    if hook.code is not None:
        _print_missing_names(hook, ctx.user_ns)


def notebook_function(user_ns: dict[str, Any], name: str) -> Any:
    """The function ``name`` (``on_news``, ``handlers.on_news``; ``on_news()`` too) of
    the notebook, for ``-t python_function``; a CommandError when there is none."""
    name = name.strip().removesuffix("()")
    first, *attributes = name.split(".")
    value = user_ns.get(first)
    for attribute in attributes:
        value = getattr(value, attribute, None)
    if value is None or not callable(value):
        raise CommandError(f"no function {name} in the notebook: define it in a cell first")
    return value


def _print_missing_names(hook: Any, user_ns: dict[str, Any]) -> None:
    code = hook.code
    # A live function reads its own globals (the notebook's, for a function of a cell).
    namespace = getattr(hook.function, "__globals__", user_ns) if hook.function is not None else user_ns
    names = missing_names(code, namespace)
    if names:
        print(f"Note: the code uses {', '.join(names)}, not defined in the notebook yet.")
    notebook_names = missing_names(code, {})
    if hook.persistent and notebook_names:
        them = "them" if len(notebook_names) > 1 else "it"
        print(
            f"After a kernel restart it waits for {', '.join(notebook_names)} until a "
            f"cell defines {them}; its items run then."
        )


# ---------------------------------------------------------------------- list, delete


def _list_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-O", "--output", choices=FORMATS, default=None, help="output format (default: table)")


@command(
    "list",
    help="list the hooks, their triggers and errors",
    description="List the hooks of every connected account (-p: of one), with their "
    "triggers and errors; -O json gives each hook's account.",
    arguments=_list_arguments,
)
def list_hooks(ctx: Context, args: argparse.Namespace) -> None:
    output = args.output or ctx.list_format
    every = [] if args.profile else connected_managers(ctx)
    several = len(every) > 1
    managers = every if several else [account_for(ctx, args)]
    summaries = ctx.call(_listed, managers)  # read on the session loop: no torn statistics
    if output == "json":
        print(formatting.hooks_json(summaries))
        return
    if output == "table":
        # The text a plain front end (or nbconvert) shows instead of the widget: the
        # first hooks, as the table's first page; the widget pages through the rest.
        text = formatting.hooks_text(summaries[: formatting.TEXT_FALLBACK_ROWS], accounts=several)
        left = len(summaries) - formatting.TEXT_FALLBACK_ROWS
        if left > 0:
            text += f"\n… and {left:,} more hook(s): %hook list -O text lists them all"
        if ctx.show_table(text):
            return
    print(formatting.hooks_text(summaries, accounts=several))


def _listed(managers: list[Any]) -> list[dict[str, Any]]:
    """On the session loop: every hook of ``managers``, each with its ``account``."""
    return [
        {**summary, "account": getattr(manager, "jid", None)}
        for manager in managers
        for summary in manager.list_hooks()
    ]


def add_delete_arguments(p: argparse.ArgumentParser) -> None:
    """Libervia's flags of ``delete``."""
    p.add_argument("-s", "--service", default="", help="PubSub service JID (default: your own JID)")
    p.add_argument(
        "-n", "--node", default="", help="node of the hooks, or a pattern of nodes: -n 'sensors/*' (quote it)"
    )
    types = ["", *(t.value for t in HookType)]
    p.add_argument(
        "-t", "--type", default="", choices=types, metavar="TYPE",
        help=f"only hooks of this type: {_one_of(t.value for t in HookType)}",
    )
    p.add_argument(
        "-a", "--arg", default="", help="only hooks with this argument (a python_file path is made absolute)"
    )
    p.add_argument("--id", default="", help="delete the one hook with this id")
    p.add_argument("-e", "--event", default="", metavar="EVENT[,EVENT]", help="only hooks that run for these events")
    p.add_argument(
        "--all", dest="every", action="store_true",
        help="every hook of the account, on any node (narrowed by -s, -t, -a and -e)",
    )


#: Without a node or an id, ``delete`` refuses (shared with ``pubsub-hook delete``).
DELETE_NEEDS = "give the node of the hooks to delete (-n NODE, or a pattern: -n 'news/*'), --id ID, or --all"


def delete_selection(args: argparse.Namespace) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments of ``HookManager.delete_hooks`` that ``delete``'s flags give."""
    every = getattr(args, "every", False)
    if not args.node and not args.id and not every:
        raise CommandError(DELETE_NEEDS)
    if every and (args.node or args.id):
        raise CommandError("--all is every node: give it without -n or --id")
    return (
        (args.service or None, args.node or None, args.type or None, args.arg or None),
        {"hook_id": args.id or None, "events": args.event or None, "every": every},
    )


@command(
    "delete",
    help="delete hooks (all those on the node, narrowed by -t and -a)",
    description="Delete the hooks on NODE of SERVICE; -t and -a narrow the selection "
    "(empty matches all). Persistent hooks are removed from the store too.",
    arguments=add_delete_arguments,
)
def delete(ctx: Context, args: argparse.Namespace) -> None:
    (service, node, hook_type, arg), keywords = delete_selection(args)
    count = session_for(ctx, args).delete(
        keywords["hook_id"], node=node, service=service, type=hook_type, arg=arg, events=keywords["events"],
        every=keywords["every"],
    )
    print(f"{count} hook(s) have been deleted")


# ---------------------------------------------------------------------- pause, resume


def hook_ids_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", nargs="+", metavar="ID", help="the hooks' ids (see %%hook list)")


@command("pause", help="pause hooks: the items they skip are counted", arguments=hook_ids_argument)
def pause(ctx: Context, args: argparse.Namespace) -> None:
    session = session_for(ctx, args)
    paused = [session.pause(hook_id).id for hook_id in args.id]
    print(f"Paused hook {paused[0]}." if len(paused) == 1 else f"Paused {len(paused)} hooks: {', '.join(paused)}.")


@command(
    "resume",
    help="resume a paused hook, or one kept from its node: subscribe again (unsubscribed, pending), "
    "look for its node now (node deleted); several ids: each",
    arguments=hook_ids_argument,
)
def resume(ctx: Context, args: argparse.Namespace) -> None:
    session = session_for(ctx, args)
    for hook_id in args.id:
        for line in session.resume(hook_id):
            print(line)
