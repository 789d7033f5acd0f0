"""Tab completion of a ``%hook`` line: sub-commands, options, their values, hook ids
and paths, read from the registry's parser (no IPython)."""

from __future__ import annotations

import argparse
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .parsing import ParserParts, parts
from .registry import COMMANDS, parser

__all__ = ["HINT_WIDTH", "Candidate", "complete", "complete_typed", "hook_hints"]

#: The longest hint (JupyterLab shows it in a narrow column beside the candidate).
HINT_WIDTH = 20


@dataclass(frozen=True)
class Candidate:
    """One completion: the text to insert, and what it is (the hint a front end shows
    beside it: ``command``, ``option``, a hook id's type and node…).

    A hint is at most :data:`HINT_WIDTH` characters and cannot wrap: its spaces are
    no-break spaces and its hyphens no-break hyphens (a front end's narrow hint
    column wraps at a space or a hyphen, over the next row)."""

    text: str
    type: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", _unbreakable(_cut(self.type, HINT_WIDTH)))


#: What an option's value is, by the option's ``dest``, for the completion hint.
_VALUE_KINDS = {
    "type": "type",
    "output": "format",
    "access_model": "access model",
    "publish_model": "publish model",
}

#: A hook type in a hint that has no room for its name.
_SHORT_TYPES = {"python": "module", "python_file": "file", "python_code": "code", "python_function": "function"}
_DOT = " · "


def _unbreakable(text: str) -> str:
    return text.replace(" ", "\u00a0").replace("-", "\u2011")


def _cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, cut at its end with an ellipsis."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, its middle left out (the ends tell
    nodes apart: ``urn:xmpp:microblog:0``, ``news-eu``)."""
    if len(text) <= width:
        return text
    if width < 3:
        return _cut(text, width)
    tail = (width - 1) // 2
    return text[: width - 1 - tail] + "…" + text[-tail:]


def hook_hints(hooks: list[tuple[str, str, str, str, str]]) -> list[str]:
    """The hint of each hook id in ``hooks`` (``(id, service, node, type, arg)``):
    its type and node (``python_code · news``; the type shortened, ``code``, and the
    node's middle left out when they do not fit), distinct per hook: hooks that would
    share one get the start of their argument too (``code · news · print(…``), or the
    part where their arguments differ."""
    first = [_type_and_node(str(h[3]), h[2]) for h in hooks]
    shared = Counter(first)
    hints = [_with_argument(h) if shared[hint] > 1 else hint for h, hint in zip(hooks, first, strict=True)]
    still = Counter(hints)
    for hint in [h for h, n in still.items() if n > 1]:
        group = [i for i, h in enumerate(hints) if h == hint]
        common = _common_start([_argument(hooks[i]) for i in group])
        for i in group:
            hints[i] = _with_argument(hooks[i], skip=common)
    return hints


def _common_start(texts: list[str]) -> int:
    """How many characters all ``texts`` start with."""
    shortest = min(texts, key=len)
    return next((i for i, c in enumerate(shortest) if any(t[i] != c for t in texts)), len(shortest))


def _type_and_node(hook_type: str, node: str) -> str:
    full = f"{hook_type}{_DOT}{node}"
    if len(full) <= HINT_WIDTH:
        return full
    short = _SHORT_TYPES.get(hook_type, hook_type)
    return f"{short}{_DOT}{_middle(node, HINT_WIDTH - len(short) - len(_DOT))}"


def _argument(hook: tuple[str, str, str, str, str]) -> str:
    """The argument as a hint shows it: a file's name, code on one line."""
    arg = hook[4] or ""
    return os.path.basename(arg) if str(hook[3]) == "python_file" else " ".join(arg.split())


def _with_argument(hook: tuple[str, str, str, str, str], skip: int = 0) -> str:
    short = _SHORT_TYPES.get(str(hook[3]), str(hook[3]))
    head = f"{short}{_DOT}{_middle(hook[2], 6)}{_DOT}"
    arg = _argument(hook)
    if skip:  # the start is the same as another hook's: from where they differ
        arg = "…" + arg[max(0, skip - 1) :]
    return head + _cut(arg, max(1, HINT_WIDTH - len(head)))


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
        return current, _starting(current, [Candidate(n, "command") for n in subs])
    sub = words[1]
    subparser = subs.get(sub)
    rest = words[2:]
    nested = parts(subparser).subparsers if subparser is not None else {}
    if nested:  # node create …: one more level of sub-commands
        if not rest:
            return current, _starting(current, [Candidate(n, "command") for n in nested])
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
    return [Candidate(h[0], hint) for h, hint in zip(hooks, hook_hints(hooks), strict=True)]


def _values(
    action: argparse.Action,
    hooks: list[tuple[str, str, str, str, str]],
    own_jid: str | None,
    accounts: Sequence[str] = (),
) -> list[Candidate]:
    """The values an option takes."""
    dest = action.dest
    if dest == "profile":
        return [Candidate(a, "default account" if i == 0 else "account") for i, a in enumerate(accounts)]
    if action.choices:
        return [Candidate(str(c), _VALUE_KINDS.get(dest, "choice")) for c in action.choices if c != ""]
    if dest == "service":
        services = sorted({h[1] for h in hooks} - {own_jid})
        mine = [Candidate(own_jid, "your PEP")] if own_jid else []
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
