"""Tokenizing a ``%hook`` line, and the argparse parser that raises instead of exiting.

Lines are tokenized POSIX-style (quotes removed), except the code of a ``python_code``
hook and the XML of ``publish`` / ``test``: everything after the options is taken
verbatim, quotes, ``$`` and ``{}`` included (:func:`split_verbatim`).

Variables: the magic gives the parsers an :data:`Expand` (``{expr}`` and ``$name``, as
IPython expands other magics' lines); they apply it to the text of each token that is
an option, an option's value or a plain positional word (:func:`expand_word`), never
to the verbatim rest of a line nor to a cell. ``pubsub-hook`` gives none: nothing is
expanded.

:func:`parts` is the one place that reads argparse's private attributes (argparse
has no public lookup of a parser's options, positionals or sub-parsers).
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..hooks import HookError

__all__ = [
    "CommandError",
    "Expand",
    "HelpFormatter",
    "HelpShown",
    "Parser",
    "ParserParts",
    "Token",
    "closest",
    "expand_options",
    "expand_word",
    "expand_words",
    "looks_like_option",
    "parts",
    "split_verbatim",
    "tokenize",
    "unknown_command",
    "unrecognized",
]

#: Expands ``{expr}`` and ``$name`` in one word of a line (the magic's, built on
#: IPython's ``DollarFormatter`` over the caller's namespace). None: no expansion.
Expand = Callable[[str], str]


class CommandError(HookError):
    """Bad command-line input; the message says what to do."""


class HelpShown(Exception):
    """``-h`` was given: the help is printed, nothing else is to be done."""


#: The width of the help (``%hook -h``, ``%hook?``) in a notebook, and at most in a terminal.
HELP_WIDTH = 88


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, :data:`HELP_WIDTH` columns wide (in a narrower terminal,
    its width), that wraps a text written as one line (a description) and keeps a
    text laid out in lines (an epilog, a table of types) as written."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None):
        if width is None:  # a terminal's width when narrower; a notebook's (no tty): HELP_WIDTH
            isatty = getattr(sys.stdout, "isatty", None)
            columns = shutil.get_terminal_size().columns - 2 if isatty is not None and isatty() else HELP_WIDTH
            width = max(40, min(HELP_WIDTH, columns))
        super().__init__(prog, indent_increment, max_help_position, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip("\n"):  # laid out in lines: as written
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting, and wraps its description
    (:class:`HelpFormatter`). Its errors name its own ``prog`` (``%hook list``) and
    point to its own ``-h``."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CommandError(f"{self.prog}: {message} (see {self.prog} -h)")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            raise CommandError(message.strip())
        raise HelpShown()


@dataclass(frozen=True)
class ParserParts:
    """What completion and the verbatim parsers need to know of a parser."""

    #: Every option string (``-n``, ``--node``…) to its action.
    options: dict[str, argparse.Action]
    #: Its actions in order (options and positionals).
    actions: list[argparse.Action]
    #: Its positional arguments, in order.
    positionals: list[argparse.Action]
    #: Its sub-parsers by name, in order (empty: none).
    subparsers: dict[str, argparse.ArgumentParser]
    #: The one-line help of each sub-parser, by name ("" when it was given none).
    subparser_help: dict[str, str]


def parts(parser: argparse.ArgumentParser) -> ParserParts:
    """The options, positionals and sub-parsers of ``parser``."""
    actions = list(parser._actions)  # noqa: SLF001 - argparse has no public lookup
    subparsers: dict[str, argparse.ArgumentParser] = {}
    subparser_help: dict[str, str] = {}
    for action in actions:
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            subparsers = dict(action.choices)
            helps = {a.dest: a.help for a in action._choices_actions}  # noqa: SLF001
            subparser_help = {name: helps.get(name) or "" for name in subparsers}
    return ParserParts(
        options=dict(parser._option_string_actions),  # noqa: SLF001
        actions=actions,
        positionals=[a for a in actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)],  # noqa: SLF001
        subparsers=subparsers,
        subparser_help=subparser_help,
    )


# ---------------------------------------------------------------------- tokenizing


@dataclass(frozen=True)
class Token:
    text: str  # with quotes removed and escapes applied
    start: int  # offset of its first character in the line


def tokenize(line: str) -> Iterator[Token]:
    """Split ``line`` like a POSIX shell (quotes and backslashes), with offsets.

    A balanced ``{...}`` is kept whole and as typed (spaces and quotes in it are its
    expression's: ``-i n{i + 1}``, ``-n {cfg['node']}``); ``{{`` is a literal brace,
    and a ``{`` without its ``}`` an ordinary character."""
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
                end = _closing_quote(line, c, i)
                if end == -1:
                    raise CommandError(f"unclosed {c} quote in: {line[start:].strip()}")
                body = line[i + 1 : end]
                chars.append(body.replace('\\"', '"') if c == '"' else body)
                i = end + 1
            elif c == "\\" and i + 1 < n:
                chars.append(line[i + 1])
                i += 2
            elif c == "{":
                escaped = line.startswith("{{", i)
                end = -1 if escaped else _closing_brace(line, i)
                if end == -1:  # {{ (an escape) or a { without its }: plain characters
                    end = i + 1 if escaped else i
                chars.append(line[i : end + 1])
                i = end + 1
            else:
                chars.append(c)
                i += 1
        yield Token("".join(chars), start)


def _closing_quote(line: str, quote: str, i: int) -> int:
    end = line.find(quote, i + 1)
    if quote == '"':
        # a backslash escapes a double quote inside double quotes
        while end != -1 and line[end - 1] == "\\":
            end = line.find(quote, end + 1)
    return end


def _closing_brace(line: str, i: int) -> int:
    """The offset of the ``}`` closing the ``{`` at ``i`` (nested braces and Python
    strings skipped), or -1."""
    depth, j, n = 0, i, len(line)
    while j < n:
        c = line[j]
        if c in "'\"":
            j += 1
            while j < n and line[j] != c:
                j += 2 if line[j] == "\\" else 1
            if j >= n:
                return -1
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    return -1


def split_verbatim(
    tokens: Iterator[Token],
    options: dict[str, argparse.Action],
    positional: int = 0,
    stop_at_dashes: bool = False,
    prog: str = "",
    dashes_hint: str = "",
) -> tuple[list[str], int | None]:
    """Read ``tokens`` while they are options of ``options`` (with their values), or
    one of the first ``positional`` plain words; return those words and the offset
    where the verbatim rest (code, XML) starts (None: nothing is left). With
    ``stop_at_dashes``, ``--`` ends the options and is dropped.

    With ``prog`` (the sub-command's, ``%hook create``), a word that looks like an
    option (:func:`looks_like_option`) but is none of ``options`` is refused as
    argparse refuses it, with the closest option (a misspelled flag never becomes
    code or payload); ``dashes_hint`` says how to give a rest that starts with ``-``.
    Options are recognized as argparse does: ``--opt=value``, a unique prefix of a
    long option, ``-xVALUE`` and clustered short flags."""
    words: list[str] = []
    for token in tokens:
        text = token.text
        if stop_at_dashes and text == "--":
            rest = next(tokens, None)
            return words, rest.start if rest is not None else None
        if positional and not text.startswith("-"):
            words.append(text)
            positional -= 1
            continue
        option = _read_option(text, options, prog)
        if option is not None:
            words.append(text)
            if option[0].nargs != 0 and option[1] is None:
                value = next(tokens, None)
                if value is not None:
                    words.append(value.text)
            continue
        if prog and looks_like_option(text):
            raise CommandError(unrecognized(prog, [text], options, dashes_hint))
        return words, token.start
    return words, None


def _read_option(
    text: str, options: dict[str, argparse.Action], prog: str = ""
) -> tuple[argparse.Action, str | None] | None:
    """The option the word ``text`` gives, as argparse reads it (``--opt=value``, a
    unique prefix of a long option, ``-xVALUE``, flags together: ``-Pt``), and its
    value when the word holds it (None: the next word is its value, if it takes
    one); None: none of ``options``."""
    name, eq, inline = text.partition("=")
    if not text.startswith("-") or name == "--":  # ("--" not ending the options: the rest's)
        return None
    if name not in options and name.startswith("--"):  # argparse's allow_abbrev
        longer = sorted({o for o in options if o.startswith(name)})
        if len(longer) > 1 and prog:
            raise CommandError(f"{prog}: ambiguous option: {name} could match {', '.join(longer)} (see {prog} -h)")
        if len(longer) != 1:
            return None
        name = longer[0]
    if name in options:
        return options[name], (inline if eq else None)
    if len(text) > 2 and not text.startswith("--"):  # -nNODE, or flags together: -Pq
        flag = None
        for i in range(1, len(text)):
            flag = options.get("-" + text[i])
            if flag is None:
                return None
            if flag.nargs != 0:  # the rest of the word is its value, else the next word
                return flag, (text[i + 1 :].removeprefix("=") or None)
        return (flag, None) if flag is not None else None
    return None


_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


def looks_like_option(text: str) -> bool:
    """Whether argparse would take the word ``text`` for an option: it starts with
    ``-``, is not ``-`` alone, a negative number, or a word with a space (quoted)."""
    return text.startswith("-") and text != "-" and " " not in text and not _NEGATIVE_NUMBER.match(text)


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` was most likely meant to be (``--persistant``:
    ``--persistent``, ``-o``: ``-O``, ``lst``: ``list``), or None."""
    choices = list(choices)
    name = word.partition("=")[0]
    same = [c for c in choices if c.lower() == name.lower()]
    if same:
        return same[0]
    if name.startswith("-"):  # compared without their dashes (they would make any two alike)
        if not name.startswith("--") and len(name) <= 2:
            return None  # -x is like no one-letter option in particular
        # (-persistent: --persistent)
        longs = {c.lstrip("-"): c for c in choices if c.startswith("--")}
        found = difflib.get_close_matches(name.lstrip("-"), list(longs), n=1)
        return longs[found[0]] if found else None
    found = difflib.get_close_matches(name, [c for c in choices if not c.startswith("-")], n=1)
    return found[0] if found else None


def unrecognized(prog: str, words: list[str], options: Iterable[str], hint: str = "") -> str:
    """argparse's "unrecognized arguments" for ``words`` in sub-command ``prog``, with
    the option closest to the first that looks like one, and ``prog``'s ``-h``."""
    message = f"{prog}: unrecognized arguments: {' '.join(words)}"
    flag = next((w for w in words if looks_like_option(w)), None)
    meant = closest(flag, options) if flag is not None else None
    if meant is not None:
        message += f": did you mean {meant}?"
    return f"{message} ({hint}; see {prog} -h)" if hint else f"{message} (see {prog} -h)"


def unknown_command(prog: str, word: str, choices: list[str]) -> str:
    """The error for the unknown sub-command ``word`` of ``prog`` (``%hook lst``:
    did you mean list?), pointing to ``prog``'s ``-h``."""
    meant = closest(word, choices)
    if meant is not None:
        return f"{prog}: unknown sub-command {word!r}: did you mean {meant}? (see {prog} -h)"
    *head, last = choices
    among = f"{', '.join(head)} or {last}" if head else last
    return f"{prog}: unknown sub-command {word!r}: choose from {among} (see {prog} -h)"


def option_value(words: list[str], options: dict[str, argparse.Action], dest_option: str) -> str | None:
    """The last value given to the option ``dest_option`` (any of its spellings)."""
    wanted = options[dest_option]
    value = None
    for i, word in enumerate(words):
        option = _read_option(word, options)
        if option is not None and option[0] is wanted:
            value = option[1] if option[1] is not None else (words[i + 1] if i + 1 < len(words) else None)
    return value


# ---------------------------------------------------------------------- expansion


def expand_word(text: str, expand: Expand | None) -> str:
    """``text`` with its ``{expr}`` and ``$name`` expanded by ``expand``; unchanged
    without an expander, without any ``$``, ``{`` or ``}`` (nothing is evaluated), or
    when the expansion fails (an undefined name, ``{urn:x}author``), as IPython's
    ``var_expand`` leaves a line it cannot expand."""
    if expand is None or not any(c in text for c in "${}"):
        return text
    try:
        return expand(text)
    except Exception:  # any failure of the user's expression: keep the text
        return text


def expand_words(words: list[str], expand: Expand | None) -> list[str]:
    """Each of ``words`` (options, their values, plain words: no code) expanded."""
    return [expand_word(w, expand) for w in words]


def expand_options(
    words: list[str], options: dict[str, argparse.Action], expand: Expand | None, positionals: bool = True
) -> list[str]:
    """``words`` (a whole line's, for argparse) with the options' values expanded, and
    the positional words too unless ``positionals`` is False (then they are kept as
    typed: ``create`` without ``-t``, whose argument may be code meant for
    ``-t python_code``). Option names are never expanded."""
    if expand is None:
        return list(words)
    out: list[str] = []
    values = 0  # how many words after an option are its values
    dashes = False  # after "--": positional words only
    for word in words:
        if values:
            out.append(expand_word(word, expand))
            values -= 1
            continue
        if word == "--" and not dashes:
            dashes = True
            out.append(word)
            continue
        name, eq, _ = word.partition("=")
        action = options.get(name) if word.startswith("-") and not dashes else None
        if action is not None:
            if eq:
                out.append(f"{name}={expand_word(word[len(name) + 1 :], expand)}")
            else:
                out.append(word)
                if action.nargs != 0:
                    values = action.nargs if isinstance(action.nargs, int) else 1
            continue
        out.append(expand_word(word, expand) if positionals else word)
    return out
