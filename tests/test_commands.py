"""Parsing of %hook lines: Libervia's flags, verbatim python_code, clear errors."""

import pytest

from pubsub_hook_magic.commands import CommandError, HelpShown, parse_command, tokenize


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
    assert (args.arg, args.node, args.type, args.persistent) == ("~/hook.py", "urn:xmpp:microblog:0", "python_file", True)
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
        ("frobnicate", "invalid choice"),
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
