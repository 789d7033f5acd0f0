"""The sub-commands that run a hook outside its queue: ``replay``, ``test``, and its
failed items: ``failed``, ``retry``."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from .. import formatting
from ..states import HookState
from .hooks import hook_id_argument
from .parsing import CommandError, Expand, Token, expand_words, parts, split_verbatim
from .registry import Context, account_for, command, parse_words, session_for, subparser

__all__ = ["add_failed_arguments", "add_retry_arguments", "parse_with_payload"]


def parse_with_payload(
    command: str, line: str, tokens: Iterator[Token], cell: str | None, expand: Expand | None = None
) -> argparse.Namespace:
    """``publish`` and ``test``: options (and the hook id), then the XML payload
    verbatim (after ``--`` too), or the cell. A misspelled option before it is
    refused, never taken for the payload. ``expand`` applies to the options, their
    values and the hook id, never to the payload."""
    options = parts(subparser(command)).options
    positional = 1 if command == "test" else 0  # the hook id comes before the payload
    words, payload_start = split_verbatim(
        tokens, options, positional=positional, stop_at_dashes=True, prog=subparser(command).prog
    )
    args = parse_words([command, *expand_words(words, expand)])
    payload = line[payload_start:].strip() if payload_start is not None else ""
    if cell is not None and cell.strip():
        if payload:
            raise CommandError(f"%%hook {command} takes its payload from the cell: give none on the line")
        payload = cell.strip()
    if not payload:
        raise CommandError("give the item's payload, one XML element, after the options")
    args.payload = payload
    return args


def print_previous_version(reload_error: str | None) -> None:
    """Before the runs' results: they ran the previous version of the code, because
    its last edit does not load (a warning, first, so that "ok" is not read alone)."""
    if reload_error:
        print(f"Warning: {reload_error}: ran the previous version instead")


def print_run(what: str, trigger: Any, reload_error: str | None = None) -> None:
    """One run's result (``reload_error``: warned first, see :func:`print_previous_version`)."""
    print_previous_version(reload_error)
    print(f"{what} of item {trigger.item_id}: {trigger.outcome} ({formatting.seconds(trigger.duration)})")
    if trigger.traceback:
        print(trigger.traceback.rstrip())
    elif trigger.error:
        print(trigger.error)


def _reload_error(manager: Any, hook_id: str) -> str | None:
    """On the session loop: why the hook's last edit did not load (the run then used
    the previous version); None: it loaded."""
    runner = manager.runners.get(hook_id)
    return runner.reload_error if runner is not None else None


# ---------------------------------------------------------------------- replay, test


def _replay_arguments(p: argparse.ArgumentParser) -> None:
    hook_id_argument(p)
    p.add_argument("--item", default="", metavar="ITEM_ID", help="the item to run it on")
    p.add_argument("--last", type=int, default=0, metavar="N", help="the node's last N stored items")


@command(
    "replay",
    help="run a hook again on an item it saw (recorded as a replay)",
    description="Run hook ID again: on its last item, on --item ITEM_ID (from its "
    "recent triggers or the node), or on the node's --last N stored items.",
    arguments=_replay_arguments,
)
def replay(ctx: Context, args: argparse.Namespace) -> None:
    if args.item and args.last:
        raise CommandError("give --item or --last, not both")
    triggers = session_for(ctx, args).replay(args.id, args.item or None, last=args.last or None)
    reload_error = ctx.call(_reload_error, account_for(ctx, args, args.id), args.id)
    print_previous_version(reload_error)
    for trigger in triggers:
        print_run("replay", trigger)


def _test_arguments(p: argparse.ArgumentParser) -> None:
    hook_id_argument(p)
    p.add_argument("--item-id", default="", help="the test item's id")
    p.add_argument("payload", nargs="*", metavar="XML", help="the item's payload")


def _parse_test(
    line: str, tokens: Iterator[Token], cell: str | None, expand: Expand | None = None
) -> argparse.Namespace:
    return parse_with_payload("test", line, tokens, cell, expand)


@command(
    "test",
    help="run a hook on an item built here (no network)",
    description="Run hook ID on an item whose payload is the XML after the id, or the cell of %%hook test ID.",
    arguments=_test_arguments,
    parse=_parse_test,
)
def test(ctx: Context, args: argparse.Namespace) -> None:
    trigger = session_for(ctx, args).test(args.id, args.payload, item_id=args.item_id or None)
    print_run("test", trigger, ctx.call(_reload_error, account_for(ctx, args, args.id), args.id))


# ---------------------------------------------------------------------- failed, retry


def add_failed_arguments(p: argparse.ArgumentParser) -> None:
    """``failed ID``: the items a hook could not run (shared with ``pubsub-hook``)."""
    hook_id_argument(p, "list")
    p.add_argument("-O", "--output", choices=("text", "json"), default="text", help="output format (default: text)")


@command(
    "failed",
    help="list the items a hook could not run, after its retries",
    description="List the failed items of hook ID (its dead letters), oldest first: "
    "item id, attempts, last failure time and error; -O json adds the payload and "
    "the traceback.",
    arguments=add_failed_arguments,
)
def failed(ctx: Context, args: argparse.Namespace) -> None:
    letters = session_for(ctx, args).failed(args.id)
    if args.output == "json":
        print(formatting.hooks_json(letters))
    else:
        print(formatting.failed_text(args.id, letters))


def add_retry_arguments(p: argparse.ArgumentParser) -> None:
    """``retry ID [--item ITEM_ID] [--discard]`` (shared with ``pubsub-hook``)."""
    hook_id_argument(p, "list")
    p.add_argument("--item", default="", metavar="ITEM_ID", help="only the failed item with this id")
    p.add_argument("--discard", action="store_true", help="drop the failed items instead of running them")


@command(
    "retry",
    help="run a hook again on its failed items (or --discard them)",
    description="Run hook ID again on its failed items, in order (after fixing its "
    "code); those that succeed are removed, the others stay. --item ITEM_ID: only "
    "that item. --discard: drop them instead of running them.",
    arguments=add_retry_arguments,
)
def retry(ctx: Context, args: argparse.Namespace) -> None:
    manager = account_for(ctx, args, args.id)
    session = session_for(ctx, args)
    if args.discard:
        count = session.retry(args.id, args.item or None, discard=True)
        print(f"Discarded {count} failed item(s) of hook {args.id}.")
        return
    view = manager.snapshot().hook(args.id)
    if view is not None and view.state == HookState.STANDBY:
        ctx.run(manager.retry_failed(args.id, args.item or None))
        print(
            f"Hook {args.id} runs in {view.owner or 'another process'}: asked it to retry "
            f"the failed item(s); %hook failed {args.id} shows what is left."
        )
        return
    triggers = session.retry(args.id, args.item or None)  # (each item may take up to the time limit)
    if not triggers:
        print(f"Hook {args.id} has no failed item.")
        return
    for trigger in triggers:
        print_run("retry", trigger)
    print(formatting.retry_summary(args.id, [t.outcome for t in triggers]) + ".")
