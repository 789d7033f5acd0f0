"""The documentation: its examples run or parse, its reference covers every sub-command,
and (kernel lane) the site builds, with a section per sub-command, an entry per public
API method and no broken internal link."""

from __future__ import annotations

import argparse
import ast
import builtins
import configparser
import html.parser
import inspect
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt

from pubsub_hook_magic import commands
from pubsub_hook_magic.cli import build_parser as cli_parser
from pubsub_hook_magic.commands.parsing import CommandError, parts
from pubsub_hook_magic.magics import HookMagics
from pubsub_hook_magic.api import Session
from pubsub_hook_magic.manager import HookManager

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))
import hookref  # noqa: E402 - docs/_ext is on the path now

PAGES = [*sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts), ROOT / "README.md"]
TOP_AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
MODULE_NAME = re.compile(r"[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the fence
    lang: str
    text: str

    def where(self, offset: int = 0) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line + 1 + offset}"


def code_blocks(lang: str | None = None) -> list[Block]:
    """The fenced code blocks of the docs' pages and the README (not MyST directives)."""
    md = MarkdownIt("commonmark")
    found = []
    for page in PAGES:
        for token in md.parse(page.read_text()):
            info = token.info.strip().split(maxsplit=1)[0] if token.info.strip() else ""
            if token.type == "fence" and not info.startswith("{") and (lang is None or info == lang):
                found.append(Block(page, token.map[0] + 1 if token.map else 0, info, token.content))
    return found


# ---------------------------------------------------------------------- %hook lines


def check_hook_line(line: str, cell: str | None, where: str) -> argparse.Namespace:
    """``line`` (without ``%hook``/``%%hook``) parses, and what it would create can be:
    a module name for ``python``, code that compiles for ``python_code``, XML for
    ``publish``/``test``."""
    try:
        args = commands.parse_command(line, cell)
    except CommandError as exc:
        raise AssertionError(f"{where}: %hook {line!r} does not parse: {exc}") from None
    if args.command == "create":
        arg = args.arg if isinstance(args.arg, str) else " ".join(args.arg)
        kind = args.type or ("python_code" if cell is not None else "python")
        if kind == "python":
            assert MODULE_NAME.fullmatch(arg), (
                f"{where}: %hook {line!r} makes a python hook (the default type) of {arg!r}, "
                "which is not a module name: give -t python_code or -t python_file"
            )
        elif kind == "python_code":
            compile(arg, where, "exec", flags=TOP_AWAIT)
        else:
            assert arg.endswith(".py"), f"{where}: python_file hook of {arg!r}"
    if args.command in ("publish", "test"):
        try:
            ET.fromstring(args.payload)
        except ET.ParseError as exc:
            raise AssertionError(f"{where}: %hook {args.command} of XML that does not parse: {exc}") from None
    return args


def hook_lines() -> list[tuple[str, str | None, str]]:
    """Every ``%hook`` line of the docs' code blocks (Python and text), with its cell
    for ``%%hook`` blocks: (line without the magic, cell, where)."""
    found: list[tuple[str, str | None, str]] = []
    for block in code_blocks():
        if block.lang not in ("python", "text"):
            continue
        lines = block.text.splitlines()
        if lines and lines[0].startswith("%%hook "):
            found.append((lines[0][len("%%hook ") :], "\n".join(lines[1:]) + "\n", block.where()))
            continue
        for i, line in enumerate(lines):
            if line.startswith("%hook "):
                found.append((line[len("%hook ") :], None, block.where(i)))
    return found


def test_every_hook_line_in_the_docs_parses():
    lines = hook_lines()
    assert len(lines) >= 25, len(lines)  # the extraction finds them
    for line, cell, where in lines:
        check_hook_line(line, cell, where)
    shown = {commands.parse_command(line, cell).command for line, cell, _ in lines}
    assert {"connect", "create", "delete", "list", "publish", "retry", "failed", "node"} <= shown


def test_the_check_catches_the_old_where_example():
    """The README's old ``--where`` example had no ``-t python_code``: its code would be
    taken as a module name, and the check says so."""
    with pytest.raises(AssertionError, match="not a module name"):
        check_hook_line("""create -n news --where ".[@lang='en']" print(item["id"])""", None, "old README")
    with pytest.raises(AssertionError, match="does not parse"):
        check_hook_line("list    # every account's hooks", None, "a comment on the line")
    check_hook_line("""create -n news --where ".[@lang='en']" -t python_code print(item["id"])""", None, "fixed")


def pubsub_hook_lines() -> list[tuple[list[str], str]]:
    """Every ``pubsub-hook`` command line of the docs' shell blocks (and the unit's
    ExecStart), as arguments."""
    found = []
    for block in code_blocks("bash"):
        text = block.text.replace("\\\n", " ")
        for i, line in enumerate(text.splitlines()):
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                words.pop(0)
            if words and words[0] == "pubsub-hook":
                found.append((words[1:], block.where(i)))
    return found


def test_every_pubsub_hook_line_in_the_docs_parses():
    lines = pubsub_hook_lines()
    assert len(lines) >= 6, lines
    for words, where in lines:
        try:
            cli_parser().parse_args(words)
        except SystemExit as exc:
            raise AssertionError(f"{where}: pubsub-hook {shlex.join(words)} does not parse") from exc
    assert {words[0] for words, _ in lines} >= {"list", "create", "delete", "run", "failed", "retry"}


# ---------------------------------------------------------------------- Python blocks


def python_part(text: str) -> str:
    """The Python of an IPython cell: magic lines become ``pass`` (same line numbers);
    a ``%%hook create`` cell is its code, other cell magics are not Python."""
    lines = text.splitlines()
    if lines and lines[0].startswith("%%"):
        return "\n".join(lines[1:]) if lines[0].startswith("%%hook create") else ""
    return "\n".join(re.sub(r"^(\s*)%.*", r"\1pass", line) for line in lines)


def free_names(tree: ast.AST) -> set[str]:
    """Names a module reads that it never binds (nor are builtins)."""
    bound: set[str] = set()
    read: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return read - bound - set(dir(builtins))


def test_every_python_block_compiles_and_the_self_contained_ones_run(tmp_path):
    blocks = code_blocks("python")
    assert len(blocks) >= 20, len(blocks)
    ran = {}
    for block in blocks:
        source = python_part(block.text)
        try:
            tree = compile(source, block.where(), "exec", flags=TOP_AWAIT | ast.PyCF_ONLY_AST)
        except SyntaxError as exc:
            raise AssertionError(f"{block.where()}: does not compile: {exc}") from None
        if source.strip() != block.text.strip() or free_names(tree):
            continue  # a notebook cell (magics), or code that needs hook or notebook names
        if "connect(" in source:
            continue  # needs an account: tests/test_kernel_docs_cells.py runs these in a kernel
        try:
            compile(source, block.where(), "exec")
        except SyntaxError:
            continue  # top-level await: a notebook cell
        result = subprocess.run(
            [sys.executable, "-c", source], cwd=tmp_path, capture_output=True, text=True, timeout=60,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        assert result.returncode == 0, f"{block.where()}: {result.stderr}"
        ran[block.where()] = (source, result.stdout)
    # e.g. the --where filter tried on a payload, in the events guide
    [events] = [out for where, (source, out) in ran.items() if "PayloadFilter" in source]
    assert events == "True False\n"
    assert len(ran) >= 2, ran


def test_the_systemd_unit_runs_the_service():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string((DOCS / "pubsub-hook.service").read_text())
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    service = unit["Service"]
    words = shlex.split(service["ExecStart"])
    assert words[0].endswith("/pubsub-hook") and words[1] == "run", words
    args = cli_parser().parse_args(words[1:])
    assert args.command == "run" and args.jids and args.password_env == ["XMPP_PASSWORD"]
    assert service["KillSignal"] == "SIGTERM"
    assert float(service["TimeoutStopSec"]) > args.grace  # the hooks' grace fits in the stop
    assert service["Restart"] in ("on-failure", "always")
    assert "EnvironmentFile" in service  # the password is not on the command line
    assert unit["Install"]["WantedBy"]
    # the operations page shows this file as it is
    assert "```{literalinclude} pubsub-hook.service" in (DOCS / "operations.md").read_text()


# ---------------------------------------------------------------------- the reference


def rendered(parser: argparse.ArgumentParser, prog: str) -> dict[str, tuple[str, set[str]]]:
    """Each sub-command's section of the generated reference, by name: its text, and the
    option strings of its option list."""
    sections = hookref.render_commands(hookref.commands_of(parser, (prog,)))
    found = {}
    for top in sections:
        for section in top.findall(lambda n: n.tagname == "section"):
            title = section.children[0].astext()
            own = [c for c in section.children[1:] if c.tagname != "section"]
            options = {n.astext() for c in own for n in c.findall(lambda n: n.tagname == "option_string")}
            found[title] = ("\n".join(c.astext() for c in own), options)
    return found


def expected(parser: argparse.ArgumentParser, prog: str) -> dict[str, argparse.ArgumentParser]:
    """Every sub-command (nested ones included) of the parser, by its full name."""
    found = {}
    for name, sub in parts(parser).subparsers.items():
        found[f"{prog} {name}"] = sub
        found.update(expected(sub, f"{prog} {name}"))
    return found


@pytest.mark.parametrize("which", ["%hook", "pubsub-hook"])
def test_the_reference_has_every_sub_command_and_option(which):
    parser = commands.parser() if which == "%hook" else cli_parser()
    text = rendered(parser, which)
    subs = expected(parser, which)
    if which == "%hook":  # the registry's names, not only the parser's
        registry = {f"%hook {n}" for n in commands.names()}
        registry |= {f"%hook {n} {c.name}" for n, s in commands.COMMANDS.items() for c in s.children}
        assert registry == set(subs)
    assert set(text) == set(subs), set(subs) ^ set(text)
    for name, sub in subs.items():
        parent, _, last = name.rpartition(" ")
        help_text = parts(subs.get(parent, parser)).subparser_help[last]
        body, options = text[name]
        assert help_text and body.startswith(hookref._sentence(help_text)), name
        assert sub.format_usage().strip() in body, name
        for option in parts(sub).options:
            if option not in ("-h", "--help"):
                assert option in options, (name, option)
        for positional in parts(sub).positionals:
            assert (positional.metavar or positional.dest) in " ".join(options), (name, positional.dest)
    assert hookref.problems(hookref.commands_of(parser, (which,))) == []


def test_the_reference_has_every_config_trait():
    rows = {name: help_text for name, _kind, _default, help_text in hookref.trait_rows(HookMagics)}
    assert set(rows) == set(HookMagics.class_traits(config=True))
    assert all(rows.values())


MINI_CONF = """
import sys
sys.path[:0] = [{ext!r}, {here!r}]
extensions = ["hookref"]
"""
MINI_BUILDER = """
from pubsub_hook_magic.commands.parsing import Parser
from pubsub_hook_magic.commands.registry import SubCommand

def parser():
    top = Parser(prog="%hook")
    sub = top.add_subparsers(dest="command", parser_class=Parser)
    SubCommand("documented", "a sub-command with help").add_to(sub)
    SubCommand("bare", {help!r}).add_to(sub)
    return top
"""


@pytest.mark.parametrize("help_text", ["", "now with help"])
def test_a_sub_command_without_help_fails_the_build(tmp_path, help_text):
    """The reference is built with -W: a sub-command registered without help is a
    warning of docs/_ext/hookref.py, so the build fails (and passes once it has help)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(MINI_CONF.format(ext=str(DOCS / "_ext"), here=str(src)))
    (src / "minicli.py").write_text(MINI_BUILDER.format(help=help_text))
    (src / "index.rst").write_text("Commands\n========\n\n.. argparse-commands:: minicli:parser\n")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "text", str(src), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if help_text:
        assert result.returncode == 0, result.stderr
        built = (tmp_path / "out" / "index.txt").read_text()
        assert "%hook bare" in built and "Now with help." in built
    else:
        assert result.returncode != 0
        assert "the sub-command '%hook bare' has no help text" in result.stderr


class Links(html.parser.HTMLParser):
    """The ids, and the href/src targets, of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value)
            elif (tag == "a" and name == "href") or (tag == "img" and name == "src"):
                self.targets.append(value)


def read_page(path: Path) -> Links:
    links = Links()
    links.feed(path.read_text())
    return links


def broken_links(site: Path) -> list[str]:
    """Relative links of the site whose file, or whose #anchor in it, does not exist."""
    pages = {p: read_page(p) for p in site.rglob("*.html") if "_sources" not in p.parts}
    broken = []
    for page, links in pages.items():
        for target in links.targets:
            split = urlsplit(target)
            if split.scheme or split.netloc or target.startswith(("mailto:", "javascript:")):
                continue
            path = (page.parent / unquote(split.path)).resolve() if split.path else page
            if path.is_dir():
                path = path / "index.html"
            if not path.exists():
                broken.append(f"{page.relative_to(site)}: {target} (no such file)")
            elif split.fragment and path.suffix == ".html":
                ids = pages[path].ids if path in pages else read_page(path).ids
                if unquote(split.fragment) not in ids:
                    broken.append(f"{page.relative_to(site)}: {target} (no such anchor)")
    return sorted(broken)


def public_methods(cls: type) -> list[str]:
    """The public methods and properties of ``cls``, inherited ones included (not object's)."""
    names = []
    for name, value in inspect.getmembers(cls):
        owner = next((k for k in cls.__mro__ if name in vars(k)), object)
        if name.startswith("_") or owner is object:
            continue
        if inspect.isfunction(value) or isinstance(value, property):
            names.append(name)
    return names


def test_the_link_check_finds_broken_links(tmp_path):
    (tmp_path / "a.html").write_text('<h1 id="top">A</h1><a href="b.html#there">b</a><a href="#top">up</a>')
    (tmp_path / "b.html").write_text('<p id="here">B</p><a href="a.html">a</a><a href="c.html">c</a><img src="x.png">')
    assert broken_links(tmp_path) == [
        "a.html: b.html#there (no such anchor)",
        "b.html: c.html (no such file)",
        "b.html: x.png (no such file)",
    ]


@pytest.mark.kernel
@pytest.mark.timeout(400)
def test_the_site_builds(tmp_path):
    """scripts/build_docs.py, as scripts/docs.sh runs it (a private Prosody, the
    notebooks executed, -W --keep-going), into a temp dir; then the pages."""
    site = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_docs.py"), "--out", str(site)],
        capture_output=True, text=True, timeout=380, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]

    # a section per sub-command, nested ones included, in the generated reference
    magic = read_page(site / "reference" / "magic.html").ids
    for name in expected(commands.parser(), "%hook"):
        assert hookref.Command((name,), "", "", "", "", (), ()).anchor in magic, name
    cli = read_page(site / "reference" / "cli.html").ids
    for name in expected(cli_parser(), "pubsub-hook"):
        assert hookref.Command((name,), "", "", "", "", (), ()).anchor in cli, name
    config = read_page(site / "reference" / "config.html").ids
    for trait in HookMagics.class_traits(config=True):
        assert f"config-{trait.replace('_', '-')}" in config, trait

    # an entry per public HookManager method (inherited ones included), by autodoc
    api = read_page(site / "reference" / "api.html").ids
    methods = public_methods(HookManager)
    assert {"connect", "create_hook", "delete_hooks", "retract", "nodes", "snapshot", "add_trigger_listener"} <= set(
        methods
    )
    missing = [m for m in methods if f"pubsub_hook_magic.manager.HookManager.{m}" not in api]
    assert not missing, missing
    for name in ("Hook", "HookType", "Trigger", "HookSummary"):
        assert any(i.endswith(f".{name}") for i in api), name
    # the notebook API: connect, session, and every public method of its Session
    for name in ("connect", "session", "Session"):
        assert f"pubsub_hook_magic.api.{name}" in api, name
    missing = [m for m in public_methods(Session) if f"pubsub_hook_magic.api.Session.{m}" not in api]
    assert not missing, missing
    assert {"hook", "create", "list", "delete", "publish", "retract", "replay", "retry"} <= set(public_methods(Session))

    # the notebooks were executed: their outputs are on the pages
    quickstart = (site / "tutorial" / "quickstart.html").read_text()
    assert "Connected as alice@localhost" in quickstart and "journal: ['day one', 'day two']" in quickstart
    assert "6 posts:" in (site / "tutorial" / "microblog.html").read_text()
    # the table's pictures are shown
    assert {p.name for p in (site / "_images").iterdir()} >= {"hooks-table.png", "hooks-table-dark.png"}

    # the home page reaches install, the first hook, the commands and the API in one click
    home = read_page(site / "index.html").targets
    for page in ("install.html", "tutorial/quickstart.html", "reference/magic.html", "reference/api.html"):
        assert page in home, page

    assert broken_links(site) == []
    assert len(list(site.rglob("*.html"))) > 25


def test_readme_is_a_front_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 12 * 1024
    assert readme.index("bash scripts/quickstart.sh") < readme.index("## ")
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if not target.startswith(("http:", "https:")):
            assert (ROOT / target).exists(), target
    for page in ("docs/install.md", "docs/reference/magic.md", "docs/reference/api.md", "docs/guide/hooks.md"):
        assert f"]({page})" in readme, page
