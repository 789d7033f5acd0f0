"""Tab completion of a ``%hook`` line: sub-commands, options, their values, hook ids
and paths, read from the registry's parser (no IPython)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass

from .parsing import ParserParts, parts
from .registry import COMMANDS, parser

__all__ = ["Candidate", "complete", "complete_typed"]


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
    accounts: Sequence[str] = (),
) -> tuple[str, list[Candidate]]:
    """Completions for a ``%hook`` line up to the cursor: the fragment they replace
    (the word being typed) and the candidates, in the order to show them.

    ``hooks`` are ``(id, service, node, type, arg)`` of the installed hooks (of every
    account), ``accounts`` the connected accounts' JIDs, the default first (the values
    of ``-p``). An empty list means "nothing of ours here" (e.g. the code of a
    ``python_code`` hook).
    """
    words = text_until_cursor.split()
    current = "" if not text_until_cursor or text_until_cursor[-1:].isspace() else words.pop()
    subs = parts(parser()).subparsers
    if len(words) <= 1:
        return current, _starting(current, [Candidate(n, "sub-command") for n in subs])
    sub = words[1]
    subparser = subs.get(sub)
    rest = words[2:]
    nested = parts(subparser).subparsers if subparser is not None else {}
    if nested:  # node create …: one more level of sub-commands
        if not rest:
            return current, _starting(current, [Candidate(n, "sub-command") for n in nested])
        subparser, rest = nested.get(rest[0]), rest[1:]
    if subparser is None:
        return current, []
    found = parts(subparser)
    actions = found.options
    prev = actions.get(rest[-1]) if rest else None
    if prev is not None and prev.nargs != 0:
        return current, _starting(current, _values(prev, hooks, own_jid, accounts))
    if current.startswith("-"):
        return current, _starting(current, _option_candidates(found))
    positionals = found.positionals
    given = _positionals_given(rest, actions)
    if positionals and positionals[0].dest == "id" and given == 0:
        return current, _starting(current, _hook_ids(hooks))
    if sub == "create" and "python_file" in words:
        return current, _paths(current)
    if current and COMMANDS[sub].parse is not None:
        return current, []  # code or XML, taken verbatim: not ours
    return current, _starting(current, _option_candidates(found))


def complete(
    text_until_cursor: str,
    hooks: list[tuple[str, str, str, str, str]],
    own_jid: str | None = None,
    accounts: Sequence[str] = (),
) -> list[str]:
    """The texts of :func:`complete_typed` (file names included)."""
    return [c.text for c in complete_typed(text_until_cursor, hooks, own_jid, accounts)[1]]


def _starting(current: str, candidates: list[Candidate]) -> list[Candidate]:
    return [c for c in candidates if c.text.startswith(current)]


def _option_candidates(found: ParserParts) -> list[Candidate]:
    """Long options first, in the parser's order, then the short ones (not -h)."""
    names = [o for a in found.actions for o in a.option_strings if o not in ("-h", "--help")]
    ordered = [o for o in names if o.startswith("--")] + [o for o in names if not o.startswith("--")]
    return [Candidate(o, "option") for o in ordered]


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


def _values(
    action: argparse.Action,
    hooks: list[tuple[str, str, str, str, str]],
    own_jid: str | None,
    accounts: Sequence[str] = (),
) -> list[Candidate]:
    """The values an option takes."""
    dest = action.dest
    if dest == "profile":
        return [Candidate(a, "account (default)" if i == 0 else "account") for i, a in enumerate(accounts)]
    if action.choices:
        return [Candidate(str(c), _VALUE_KINDS.get(dest, "choice")) for c in action.choices if c != ""]
    if dest == "service":
        services = sorted({h[1] for h in hooks} - {own_jid})
        mine = [Candidate(own_jid, "service: your PEP")] if own_jid else []
        return mine + [Candidate(s, "service") for s in services]
    if dest == "node":
        return [Candidate(n, "node") for n in sorted({h[2] for h in hooks})]
    if dest == "arg":
        return [Candidate(a, "argument") for a in sorted({h[4] for h in hooks})]
    if dest == "id":
        return _hook_ids(hooks)
    return []


def _paths(current: str) -> list[Candidate]:
    """Directories and Python files whose path starts with ``current``."""
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
