"""Parsing of %hook lines: Libervia's flags, verbatim python_code, clear errors; the
registry of sub-commands and its dispatch, with a stand-in for the façade (no kernel,
no server)."""

import asyncio
import pathlib
import re
import types

import pytest

from pubsub_hook_magic import commands
from pubsub_hook_magic.api import Session
from pubsub_hook_magic.hooks import HookError
from pubsub_hook_magic.commands import CommandError, HelpShown, parse_command, tokenize
from pubsub_hook_magic.commands.parsing import parts


def test_tokenize_handles_quotes_and_offsets():
    line = """delete -a 'seen.append(item["id"])' -n "my node" x\\ y"""
    tokens = list(tokenize(line))
    assert [t.text for t in tokens] == ["delete", "-a", 'seen.append(item["id"])', "-n", "my node", "x y"]
    assert line[tokens[2].start] == "'"


def test_unclosed_quote_is_an_error():
    with pytest.raises(CommandError, match="unclosed"):
        list(tokenize("delete -a 'oops"))


def test_python_code_is_taken_verbatim():
    args = parse_command("""create -s pubsub.localhost -n news -t python_code seen.append(item["id"]) # $x {y} 'q'""")
    assert args.type == "python_code"
    assert args.arg == """seen.append(item["id"]) # $x {y} 'q'"""
    assert (args.service, args.node, args.persistent) == ("pubsub.localhost", "news", False)


def test_python_code_with_odd_quotes_is_not_tokenized():
    args = parse_command("create -n n -t python_code print(\"it's\", 'x)")
    assert args.arg == "print(\"it's\", 'x)"


def test_python_file_takes_one_argument_and_options_anywhere():
    args = parse_command("create ~/hook.py -n urn:xmpp:microblog:0 -t python_file --persistent")
    assert (args.arg, args.node, args.type, args.persistent) == (
        "~/hook.py", "urn:xmpp:microblog:0", "python_file", True
    )
    with pytest.raises(CommandError, match="one argument"):
        parse_command("create -n n -t python_file a.py b.py")
    with pytest.raises(CommandError, match="needs a file path"):
        parse_command("create -n n -t python_file")


def test_default_type_is_python_and_cell_is_python_code():
    assert parse_command("create -n n mypackage.hooks").type == "python"
    args = parse_command("create -s pubsub.localhost -n news", cell="x = 1\nawait y\n")
    assert (args.type, args.arg) == ("python_code", "x = 1\nawait y\n")
    with pytest.raises(CommandError, match="cell"):
        parse_command("create -n n -t python_file", cell="x = 1")
    with pytest.raises(CommandError, match="cell"):
        parse_command("create -n n print(1)", cell="x = 1")


@pytest.mark.parametrize(
    "line, message",
    [
        ("", "needs a sub-command"),
        ("frobnicate", "unknown sub-command 'frobnicate': choose from connect, "),
        ("create -t nope -n x a", "invalid choice"),
        ("create -t python a", "-n/--node"),
        ("create -n n -t python_code", "needs code"),
        ("list -O yaml", "invalid choice"),
        ("status --bogus", "unrecognized"),
        ("create -n news --retry x -t python_code pass", "invalid int value: 'x'"),
        ("create -n news --retry-delay soon -t python_code pass", "invalid float value: 'soon'"),
        ("failed", "the following arguments are required: id"),
        ("retry h1 --item", "expected one argument"),
    ],
)
def test_bad_input_is_a_command_error(line, message):
    with pytest.raises(CommandError, match=message):
        parse_command(line)


def test_help_is_not_an_error(capsys):
    with pytest.raises(HelpShown):
        parse_command("create -h")
    assert "python_code" in capsys.readouterr().out


def test_retry_flags_and_the_failed_and_retry_sub_commands():
    args = parse_command("create -n news --retry 3 --retry-delay 0.5 -t python_code raise ValueError('x')")
    assert (args.retry, args.retry_delay, args.arg) == (3, 0.5, "raise ValueError('x')")
    args = parse_command("create -n news -t python_file hook.py")
    assert (args.retry, args.retry_delay) == (0, 1.0)
    args = parse_command("failed ab12cd -O json")
    assert (args.command, args.id, args.output) == ("failed", "ab12cd", "json")
    args = parse_command("retry ab12cd --item i7 --discard")
    assert (args.id, args.item, args.discard) == ("ab12cd", "i7", True)
    assert parse_command("retry ab12cd").discard is False



def test_delete_flags_follow_libervia():
    args = parse_command("delete -s pubsub.localhost -n news -t python_file -a ./hook.py")
    assert (args.service, args.node, args.type, args.arg) == ("pubsub.localhost", "news", "python_file", "./hook.py")
    args = parse_command("delete -n news")
    assert (args.type, args.arg) == ("", "")


# ---------------------------------------------------------------------- the registry


class FakeManager:
    """Stands for the HookManager: records the façade calls."""

    jid = None

    def __init__(self):
        self.calls = []

    def hooks(self):
        return []

    def list_hooks(self):
        self.calls.append(("list_hooks",))
        return []

    def status(self):
        return {"state": "disconnected", "jid": None, "hooks": 0}

    def configure(self, **options):
        self.calls.append(("configure", options))

    async def create_node(self, service, node, config=None):
        self.calls.append(("create_node", service, node, config))
        return service or "me@example.org", node

    async def delete_hooks(self, *args, **kwargs):
        self.calls.append(("delete_hooks", args, kwargs))
        return 2

    async def set_paused(self, hook_id, paused):
        self.calls.append(("set_paused", hook_id, paused))
        return types.SimpleNamespace(id=hook_id)

    async def nodes(self, service=None):
        return [("news", "News"), ("blog", "blog")]

    async def disconnect(self):
        self.calls.append(("disconnect",))


class FakeContext:
    """The Context a handler gets, without IPython or a loop thread."""

    timeout, time_limit, list_format = 30.0, 60.0, "text"
    user_ns: dict = {}  # noqa: RUF012 - read only
    log_records = types.SimpleNamespace(recent=lambda n: [])

    def __init__(self):
        self.manager = FakeManager()

    def run(self, coro, timeout=None):
        return asyncio.run(coro)

    def call(self, fn, *args, timeout=None):
        return fn(*args)

    def apply_config(self):
        self.manager.configure(history=50)

    def show_table(self, text):
        return False

    # What the Python API's Session needs of its client (the handlers call it).
    error_class = HookError

    def account(self, profile=None, hook_id=None):
        return self.manager

    def session(self, profile=None):
        return Session(self, profile)


def run_line(line, capsys=None):
    ctx = FakeContext()
    commands.dispatch(ctx, parse_command(line))
    return ctx.manager.calls, (capsys.readouterr().out if capsys else "")


def test_every_sub_command_has_a_handler_and_help():
    assert commands.names()[0] == "connect" and len(commands.names()) == len(set(commands.names()))
    for name, spec in commands.COMMANDS.items():
        assert spec.help, name
        assert spec.run is not None or spec.children, name
        assert f"usage: %hook {name}" in commands.full_help(), name
    assert list(parts(commands.parser()).subparsers) == commands.names()


def test_the_missing_sub_command_error_lists_the_registry():
    with pytest.raises(CommandError) as error:
        parse_command("")
    message = str(error.value)
    assert message.startswith("%hook needs a sub-command: connect, ") and message.endswith("(see %hook -h)")
    assert all(re.search(rf"\b{name}\b", message) for name in commands.names())


def test_dispatch_calls_the_facade(capsys):
    calls, out = run_line("node create -n news --access-model open -f max_items 10", capsys)
    assert calls == [("create_node", None, "news", {"pubsub#max_items": "10", "pubsub#access_model": "open"})]
    assert out == "Created node news on me@example.org.\n"
    calls, out = run_line("delete -n news -t python_code", capsys)
    assert calls == [
        ("delete_hooks", (None, "news", "python_code", None), {"hook_id": None, "events": None, "every": False})
    ]
    assert out == "2 hook(s) have been deleted\n"
    calls, _out = run_line("delete -n 'sensors/*'", capsys)
    assert calls == [("delete_hooks", (None, "sensors/*", None, None), {"hook_id": None, "events": None, "every": False})]
    calls, _out = run_line("delete --all -t python_file", capsys)
    assert calls == [("delete_hooks", (None, None, "python_file", None), {"hook_id": None, "events": None, "every": True})]
    calls, out = run_line("pause ab12", capsys)
    assert calls == [("set_paused", "ab12", True)] and out == "Paused hook ab12.\n"
    calls, out = run_line("pause ab12 cd34", capsys)
    assert calls == [("set_paused", "ab12", True), ("set_paused", "cd34", True)]
    assert out == "Paused 2 hooks: ab12, cd34.\n"
    _calls, out = run_line("nodes", capsys)
    assert out == "news  (News)\nblog\n"
    _calls, out = run_line("list", capsys)
    assert out == "No hook found.\n"


@pytest.mark.parametrize(
    "line, message",
    [
        ("node", "give an action: %hook node create -n NODE"),
        ("delete", "give the node of the hooks to delete (-n NODE, or a pattern: -n 'news/*'), --id ID, or --all"),
        ("replay h1 --item i1 --last 2", "give --item or --last, not both"),
        ("node create", "the following arguments are required: -n/--node"),
        ("publish -n news", "give the item's payload"),
        ("status", None),
    ],
)
def test_handler_errors_are_command_errors(line, message):
    if message is None:
        run_line(line)
        return
    with pytest.raises(CommandError, match=re.escape(message)):
        run_line(line)


def test_the_reference_documents_every_sub_command():
    """The docs' reference of %hook is generated from the parser (docs/_ext/hookref.py):
    a section per sub-command of the registry, nested ones included, each with its help
    (tests/test_docs.py checks every option too)."""
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).parent.parent / "docs" / "_ext"))
    import hookref

    sections = hookref.render_commands(hookref.commands_of(commands.parser(), ("%hook",)))
    titles = [s.children[0].astext() for top in sections for s in top.findall(lambda n: n.tagname == "section")]
    for name in commands.names():
        assert f"%hook {name}" in titles, f"the reference lacks %hook {name}"
        for child in commands.COMMANDS[name].children:
            assert f"%hook {name} {child.name}" in titles
    page = (pathlib.Path(__file__).parent.parent / "docs" / "reference" / "magic.md").read_text()
    assert "```{argparse-commands} pubsub_hook_magic.commands:parser" in page


def test_cli_shares_the_registry_flags():
    from pubsub_hook_magic.cli import build_parser

    cli = build_parser()
    args = cli.parse_args(["create", "--jid", "a@b", "-n", "news", "--retry", "2", "-t", "python_code", "pass"])
    assert (args.node, args.retry, args.type, args.arg) == ("news", 2, "python_code", ["pass"])
    assert commands.create_options(args)["retry"] == 2
    args = cli.parse_args(["delete", "--id", "h1"])
    assert (args.id, args.node) == ("h1", "")


@pytest.fixture
def shell_with_fake_session():
    from IPython.core.interactiveshell import InteractiveShell

    from pubsub_hook_magic.accounts import Accounts
    from pubsub_hook_magic.loopthread import LoopThread

    InteractiveShell.clear_instance()
    ip = InteractiveShell.instance(history_length=0)
    ip.extension_manager.load_extension("pubsub_hook_magic")
    magics = ip._pubsub_hook_magics  # noqa: SLF001 - where the extension keeps them
    magics.client.adopt(LoopThread(), FakeManager(), Accounts())  # the first %hook's session
    yield ip, magics
    ip.extension_manager.unload_extension("pubsub_hook_magic")
    InteractiveShell.clear_instance()


def test_the_magic_turns_errors_into_usage_errors(shell_with_fake_session, capsys):
    from IPython.core.error import UsageError

    ip, magics = shell_with_fake_session
    with pytest.raises(UsageError, match=re.escape("give an action: %hook node create -n NODE")):
        ip.run_line_magic("hook", "node")
    with pytest.raises(UsageError, match="invalid choice"):
        ip.run_line_magic("hook", "list -O yaml")
    ip.run_line_magic("hook", "node create -n news")
    assert capsys.readouterr().out == "Created node news on me@example.org.\n"

    async def never(*args, **kwargs):
        await asyncio.sleep(60)

    magics.manager.create_node = never
    magics.timeout = 0.1
    with pytest.raises(UsageError, match=re.escape("did not answer within 0.1 s; check %hook status")):
        ip.run_line_magic("hook", "node create -n news")


# ---------------------------------------------------------------------- typos (issue 24)


@pytest.mark.parametrize(
    "line, message",
    [
        # a misspelled flag before the code is refused, never compiled as code
        (
            "create -n news --persistant -t python_code pass",
            "%hook create: unrecognized arguments: --persistant: did you mean --persistent? "
            "(code that starts with - goes after --; see %hook create -h)",
        ),
        (
            "create -n news --retyr 3 -t python_code pass",
            "%hook create: unrecognized arguments: --retyr: did you mean --retry? "
            "(code that starts with - goes after --; see %hook create -h)",
        ),
        (  # without -t (argparse reads the whole line)
            "create -n news --retyr 3 mymodule",
            "%hook create: unrecognized arguments: --retyr: did you mean --retry? "
            "(code that starts with - goes after --; see %hook create -h)",
        ),
        (
            "create -n x -t python_file hook.py --persistant",
            "%hook create: unrecognized arguments: --persistant: did you mean --persistent? (see %hook create -h)",
        ),
        (
            "create -n news -t python_code -x",
            "%hook create: unrecognized arguments: -x (code that starts with - goes after --; see %hook create -h)",
        ),
        # ... nor taken for the payload
        (
            "publish -n news --idd x <x xmlns='urn:x'/>",
            "%hook publish: unrecognized arguments: --idd: did you mean --id? (see %hook publish -h)",
        ),
        (
            "test ab12cd --item-idd i1 <x xmlns='urn:x'/>",
            "%hook test: unrecognized arguments: --item-idd: did you mean --item-id? (see %hook test -h)",
        ),
        # each sub-command's errors point to its own -h
        (
            "list -o json",
            "%hook list: unrecognized arguments: -o json: did you mean -O? (see %hook list -h)",
        ),
        ("status --bogus", "%hook status: unrecognized arguments: --bogus (see %hook status -h)"),
        (
            "node create -n n --acess-model open",
            "%hook node create: unrecognized arguments: --acess-model open: did you mean --access-model? "
            "(see %hook node create -h)",
        ),
        ("list -O", "%hook list: argument -O/--output: expected one argument (see %hook list -h)"),
        (
            "create -n news --re 3 -t python_code pass",
            "%hook create: ambiguous option: --re could match --retry, --retry-delay (see %hook create -h)",
        ),
        # unknown sub-commands
        ("lst", "%hook: unknown sub-command 'lst': did you mean list? (see %hook -h)"),
        ("node crate -n x", "%hook node: unknown sub-command 'crate': did you mean create? (see %hook node -h)"),
    ],
)
def test_typos_are_refused_with_the_closest_flag_and_the_sub_commands_help(line, message):
    with pytest.raises(CommandError) as caught:
        parse_command(line)
    assert str(caught.value) == message


def test_what_argparse_accepts_before_code_stays_accepted():
    # a unique prefix, -xVALUE, flags together, --opt=value: options, not code
    args = parse_command("create -nnews -Pt python_code pass x")
    assert (args.node, args.persistent, args.type, args.arg) == ("news", True, "python_code", "pass x")
    args = parse_command("create -n news --pers --type=python_code pass")
    assert (args.persistent, args.type, args.arg) == (True, "python_code", "pass")
    # a negative number is code (as argparse reads it), and anything after --
    assert parse_command("create -n n -t python_code -1 if x else 2").arg == "-1 if x else 2"
    assert parse_command("create -n n -t python_code -- -x if y else z").arg == "-x if y else z"


def test_publish_and_test_take_their_payload_after_dashes():
    args = parse_command("publish -n news -i i1 -- <x xmlns='urn:x'/>")
    assert (args.id, args.payload) == ("i1", "<x xmlns='urn:x'/>")
    args = parse_command("test ab12cd -- <x xmlns='urn:x'/>")
    assert (args.id, args.payload) == ("ab12cd", "<x xmlns='urn:x'/>")


def test_the_full_help_has_nested_sub_commands_and_wrapped_descriptions():
    text = commands.full_help()
    assert "usage: %hook node create" in text and "--access-model" in text
    assert max(len(line) for line in text.splitlines()) <= 88
    start = text.index("usage: %hook create")
    create_help = text[start : text.index("usage: %hook list")]
    assert "Create a hook: every item published to NODE of SERVICE calls it as hook(host, client,\nitem)." in create_help
    # the epilog keeps its layout
    assert "\n  python_code  the rest of the line (or the cell) is code, run with host,\n" in create_help
