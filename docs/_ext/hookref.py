"""The reference pages, generated from the code: a Sphinx extension.

Directives (used in ``docs/reference/*.md``):

``argparse-commands`` (argument ``module:function``, the function building the
    parser; option ``:prog:``): a section per sub-command, nested ones included
    (``%hook node create``), with its help, usage, options (flags, value, default,
    choices, help) and epilog. A sub-command or an option without help is a Sphinx
    warning, so the build (``-W``) fails: ``%hook`` is read from
    ``pubsub_hook_magic.commands:parser`` (the registry, :data:`COMMANDS`), and
    ``pubsub-hook`` from ``pubsub_hook_magic.cli:build_parser``.
``config-traits`` (argument ``module:Class``): a table of the class's configurable
    traits (``%config Class.name = value``) from their ``help``; a trait without help is
    a warning.
The model (:func:`commands_of`, :func:`problems`) and the rendering
(:func:`render_commands`) are plain functions, so the tests read the same entries the
pages show.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from pubsub_hook_magic.commands.parsing import parts

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Option:
    """One option or positional argument of a (sub-)command, as the reference shows it."""

    strings: tuple[str, ...]  # ("-n", "--node"); a positional: its metavar
    value: str  # what follows it ("NODE", "KEY VALUE"; "" for a flag)
    help: str
    default: str  # "" when there is none worth showing
    choices: tuple[str, ...]

    @property
    def positional(self) -> bool:
        return not self.strings[0].startswith("-")


@dataclass(frozen=True)
class Command:
    """One sub-command (``("%hook", "node", "create")``) with what its parser says."""

    path: tuple[str, ...]
    help: str
    description: str
    usage: str
    epilog: str
    options: tuple[Option, ...]
    children: tuple[Command, ...]

    @property
    def name(self) -> str:
        return " ".join(self.path)

    @property
    def anchor(self) -> str:
        """The section's id: ``hook-node-create``, ``pubsub-hook-run``."""
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")

    def walk(self) -> list[Command]:
        """This command and every nested one, in order."""
        return [self, *(c for child in self.children for c in child.walk())]


def load(target: str) -> Any:
    """``package.module:attribute`` -> the attribute."""
    module, _, attribute = target.partition(":")
    if not attribute:
        raise ValueError(f"{target!r}: give module:attribute")
    return getattr(importlib.import_module(module), attribute)


def _expand(action: argparse.Action, prog: str) -> str:
    """An action's help as argparse prints it (``%(default)s`` filled in, ``%%`` -> ``%``)."""
    text = action.help or ""
    if text == argparse.SUPPRESS:
        return ""
    params = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
    params["prog"] = prog
    if params.get("choices") is not None:
        params["choices"] = ", ".join(str(c) for c in params["choices"])
    try:
        return text % params
    except (KeyError, TypeError, ValueError):
        return text


def _value(action: argparse.Action) -> str:
    """What an option takes, as in the usage line (``NODE``, ``KEY VALUE``, ``[ARG ...]``)."""
    if action.nargs == 0:
        return ""
    if action.metavar is not None:
        metavar: str | tuple[str, ...] = action.metavar
    else:  # (choices are listed with the help, not in a {a,b,c} metavar)
        metavar = action.dest.upper() if action.option_strings else action.dest
    if isinstance(metavar, tuple):
        return " ".join(metavar)
    nargs = action.nargs
    if nargs == "?":
        return f"[{metavar}]"
    if nargs == "*":
        return f"[{metavar} ...]"
    if nargs == "+":
        return f"{metavar} [{metavar} ...]"
    if isinstance(nargs, int):
        return " ".join([metavar] * nargs)
    return metavar


def _default(action: argparse.Action, help_text: str) -> str:
    """The default worth showing (none for flags, empty values, or help that says it)."""
    default = action.default
    if action.nargs == 0 or default in (None, "", [], argparse.SUPPRESS) or "default" in help_text.lower():
        return ""
    return str(default)


def _options(parser: argparse.ArgumentParser, prog: str) -> tuple[Option, ...]:
    found = []
    for action in parts(parser).actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):  # noqa: SLF001 - argparse's own types
            continue
        help_text = _expand(action, prog)
        value = _value(action)
        strings = tuple(action.option_strings) or (value,)
        found.append(
            Option(
                strings=strings,
                value=value if action.option_strings else "",
                help=help_text,
                default=_default(action, help_text),
                choices=tuple(str(c) for c in action.choices if str(c)) if action.choices is not None else (),
            )
        )
    return tuple(found)


def commands_of(parser: argparse.ArgumentParser, path: Sequence[str] = ()) -> list[Command]:
    """The sub-commands of ``parser`` (and theirs, nested), in the parser's order."""
    prefix = tuple(path) or (parser.prog,)
    found = []
    top = parts(parser)
    for name, sub in top.subparsers.items():
        here = (*prefix, name)
        found.append(
            Command(
                path=here,
                help=top.subparser_help.get(name, ""),
                description=sub.description or "",
                usage=sub.format_usage().strip(),
                epilog=sub.epilog or "",
                options=_options(sub, " ".join(here)),
                children=tuple(commands_of(sub, here)),
            )
        )
    return found


def problems(commands: Sequence[Command]) -> list[str]:
    """What the reference cannot say: a sub-command or an option without help."""
    found = []
    for command in (c for top in commands for c in top.walk()):
        if not command.help.strip():
            found.append(f"the sub-command {command.name!r} has no help text: give it help=")
        for option in command.options:
            if not option.help.strip():
                found.append(f"{command.name} {'/'.join(option.strings)} has no help text: give it help=")
    return found


# ---------------------------------------------------------------------- rendering


def _sentence(text: str) -> str:
    """``create a hook on a node`` -> ``Create a hook on a node.``"""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?:" else text + "."


def _option_item(option: Option) -> nodes.option_list_item:
    group = nodes.option_group()
    for i, string in enumerate(option.strings):
        opt = nodes.option("", nodes.option_string(text=string))
        if option.value and i == len(option.strings) - 1:  # -n, --node NODE
            opt += nodes.option_argument(text=option.value, delimiter=" ")
        group += opt
    text = _sentence(option.help)
    if option.choices and not all(re.search(rf"\b{re.escape(c)}\b", option.help) for c in option.choices):
        text += f" One of: {', '.join(option.choices)}."
    if option.default:
        text += f" Default: {option.default}."
    return nodes.option_list_item("", group, nodes.description("", nodes.paragraph(text=text)))


def render_command(command: Command) -> nodes.section:
    """A section for ``command``: help, description, usage, options, epilog, children."""
    section = nodes.section(ids=[command.anchor], names=[command.anchor])
    section += nodes.title("", "", nodes.literal(text=command.name))
    section += nodes.paragraph(text=_sentence(command.help))
    if command.description and command.description.strip().rstrip(".") != command.help.strip().rstrip("."):
        section += nodes.paragraph(text=command.description)
    section += nodes.literal_block(command.usage, command.usage, language="text")
    if command.options:
        items = nodes.option_list()
        for option in command.options:
            items += _option_item(option)
        section += items
    if command.epilog:
        section += nodes.literal_block(command.epilog, command.epilog.rstrip(), language="text")
    for child in command.children:
        section += render_command(child)
    return section


def render_commands(commands: Sequence[Command]) -> list[nodes.section]:
    return [render_command(c) for c in commands]


def _table(headers: Sequence[str], rows: Sequence[tuple[list[nodes.Node], str]], widths: Sequence[int]) -> nodes.table:
    """A docutils table; each row is (its cells' nodes, the row's id)."""
    table = nodes.table(classes=["hookref-table"])
    group = nodes.tgroup(cols=len(headers))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    head += nodes.row("", *(nodes.entry("", nodes.paragraph(text=h)) for h in headers))
    group += head
    body = nodes.tbody()
    for cells, row_id in rows:
        row = nodes.row(ids=[row_id])
        for cell in cells:
            row += nodes.entry("", *cell)
        body += row
    group += body
    return table


def trait_rows(cls: type) -> list[tuple[str, str, str, str]]:
    """(name, type, default, help) of ``cls``'s configurable traits, in declaration order."""
    traits = cls.class_traits(config=True)  # type: ignore[attr-defined]
    order = [name for klass in reversed(cls.__mro__) for name in vars(klass) if name in traits]
    seen: list[str] = []
    for name in order:
        if name not in seen:
            seen.append(name)
    rows = []
    for name in seen:
        trait = traits[name]
        rows.append((name, type(trait).__name__, repr(trait.default_value), trait.help or ""))
    return rows


# ---------------------------------------------------------------------- directives


class ArgparseCommands(SphinxDirective):
    """``.. argparse-commands:: module:function`` (``:prog:`` names the command)."""

    required_arguments = 1
    option_spec: dict[str, Callable[[str], Any]] = {"prog": str}  # noqa: RUF012 - docutils' API

    def run(self) -> list[nodes.Node]:
        builder = load(self.arguments[0])
        parser = builder()
        prog = self.options.get("prog") or parser.prog
        commands = commands_of(parser, (prog,))
        for problem in problems(commands):
            log.warning("%s (%s)", problem, self.arguments[0], location=self.get_location())
        if not commands:
            log.warning("%s has no sub-commands", self.arguments[0], location=self.get_location())
        sections = render_commands(commands)
        for section in (s for top in sections for s in top.findall(nodes.section)):
            self.state.document.note_explicit_target(section)
        return list(sections)


class ConfigTraits(SphinxDirective):
    """``.. config-traits:: module:Class``: a table of its ``%config`` traits."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        cls = load(self.arguments[0])
        rows = trait_rows(cls)
        out = []
        for name, kind, default, help_text in rows:
            if not help_text.strip():
                log.warning("the trait %s.%s has no help text", cls.__name__, name, location=self.get_location())
            out.append(
                (
                    [
                        [nodes.paragraph("", "", nodes.literal(text=f"{cls.__name__}.{name}"))],
                        [nodes.paragraph(text=kind)],
                        [nodes.paragraph("", "", nodes.literal(text=default))],
                        [nodes.paragraph(text=_sentence(help_text))],
                    ],
                    f"config-{name.replace('_', '-')}",
                )
            )
        if not out:
            log.warning("%s has no configurable traits", self.arguments[0], location=self.get_location())
        return [_table(["name", "type", "default", "what it sets"], out, [22, 8, 10, 60])]


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("argparse-commands", ArgparseCommands)
    app.add_directive("config-traits", ConfigTraits)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
