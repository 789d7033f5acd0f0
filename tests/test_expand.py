"""Variables in ``%hook`` lines: ``{expr}`` and ``$name`` in the options, their values
and the plain words, never in code, a cell or an XML payload.

The parsers with a plain expander (IPython's ``DollarFormatter`` over a dict, as the
magic builds it), and the magic itself in a fresh ``InteractiveShell`` for the
caller's scope (a line in a function body, the cell form).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.text import DollarFormatter

from pubsub_hook_magic.commands import CommandError, complete, parse_command
from pubsub_hook_magic.commands.parsing import expand_word


class Expander:
    """Expands with ``names``; records every text it is asked to expand."""

    def __init__(self, **names: Any):
        self.names = names
        self.asked: list[str] = []

    def __call__(self, text: str) -> str:
        self.asked.append(text)
        return DollarFormatter().vformat(text, args=[], kwargs=self.names)


def calls() -> tuple[list[str], Callable[[], str]]:
    """A function for ``{hit()}`` whose calls are counted: evaluating it is a side effect."""
    made: list[str] = []

    def hit() -> str:
        made.append("hit")
        return "HIT"

    return made, hit


# ---------------------------------------------------------------------- the options


def test_options_and_their_values_are_expanded():
    expand = Expander(node="news", i=3, svc="pubsub.example.org")
    args = parse_command("publish -s $svc -n {node} -i n{i} <x xmlns='urn:x'/>", expand=expand)
    assert (args.service, args.node, args.id) == ("pubsub.example.org", "news", "n3")
    args = parse_command("publish --node={node} --id=n{i+1} <x/>", expand=expand)  # inline values
    assert (args.node, args.id) == ("news", "n4")


def test_an_expression_keeps_its_spaces_and_quotes():
    expand = Expander(i=1, cfg={"node": "news", "a b": "spaced"})
    args = parse_command("publish -n {cfg['node']} -i n{i + 1} <x/>", expand=expand)
    assert (args.node, args.id, args.payload) == ("news", "n2", "<x/>")
    assert parse_command('publish -n {cfg["a b"]} <x/>', expand=expand).node == "spaced"
    # without an expander the braces' text is one word, as typed
    assert parse_command("publish -n {cfg['node']} -i n{i + 1} <x/>").id == "n{i + 1}"


def test_a_loop_publishes_one_id_per_turn():
    ids = [parse_command("publish -n news -i n{i} <x/>", expand=Expander(i=i)).id for i in range(3)]
    assert ids == ["n0", "n1", "n2"]


def test_plain_words_of_other_sub_commands_are_expanded():
    expand = Expander(node="news", hid="ab12cd", item="i7", svc="pubsub.example.org", jid="bob@example.org")
    args = parse_command("retract -n {node} $item", expand=expand)
    assert (args.node, args.item) == ("news", "i7")
    assert parse_command("delete -n {node} --id $hid", expand=expand).id == "ab12cd"
    assert parse_command("nodes {svc}", expand=expand).service == "pubsub.example.org"
    assert parse_command("connect $jid --password-env BOB_PW", expand=expand).jid == "bob@example.org"
    assert parse_command("pause {hid}", expand=expand).id == ["ab12cd"]
    args = parse_command("replay $hid --item {item}", expand=expand)
    assert (args.id, args.item) == ("ab12cd", "i7")
    args = parse_command("node create -n {node} -f max_items {5 * 2} -f title $node", expand=expand)
    assert (args.node, args.field) == ("news", [["max_items", "10"], ["title", "news"]])
    assert parse_command("list -p {jid}", expand=expand).profile == "bob@example.org"


def test_module_names_and_file_paths_are_expanded_when_the_type_is_given():
    expand = Expander(env="dev", here="/tmp/hooks", node="news", kind="python_file")
    args = parse_command("create -n {node} -t python hooks_{env}.blog", expand=expand)
    assert (args.node, args.type, args.arg) == ("news", "python", "hooks_dev.blog")
    args = parse_command("create -n {node} -t python_file {here}/blog.py", expand=expand)
    assert args.arg == "/tmp/hooks/blog.py"
    # options after the argument, as argparse allows, -t among them
    args = parse_command("create {here}/blog.py -n {node} -t $kind --persistent", expand=expand)
    assert (args.node, args.type, args.arg, args.persistent) == ("news", "python_file", "/tmp/hooks/blog.py", True)


def test_expansion_failures_leave_the_word_as_typed():
    expand = Expander(node="news")
    assert parse_command("publish -n {missing} <x/>", expand=expand).node == "{missing}"
    assert parse_command("publish -n {1/0} <x/>", expand=expand).node == "{1/0}"
    assert parse_command("publish -n $missing <x/>", expand=expand).node == "$missing"
    assert parse_command("publish -n a} <x/>", expand=expand).node == "a}"  # a lone brace
    # one word failing does not stop the others
    args = parse_command("publish -n {node} -i {missing} <x/>", expand=expand)
    assert (args.node, args.id) == ("news", "{missing}")


def test_an_xpath_with_a_namespace_in_braces_is_kept():
    args = parse_command(
        "create -n {node} --where '{urn:x}author' --ns a=urn:a -t python_code pass", expand=Expander(node="news")
    )
    assert (args.node, args.where, args.ns) == ("news", "{urn:x}author", ["a=urn:a"])
    # even with a name urn defined ({urn:x} is no expression: urn:x does not evaluate)
    args = parse_command("create -n n --where {urn:x}author -t python_code pass", expand=Expander(urn="U"))
    assert args.where == "{urn:x}author"
    args = parse_command("create -n n --where \".[@type='note']\" -t python_code pass", expand=Expander())
    assert args.where == ".[@type='note']"


def test_dollar_dollar_and_double_braces_give_the_literal_characters():
    expand = Expander(x="X")
    args = parse_command("publish -n a$$b -i '{{x}}' <x/>", expand=expand)
    assert (args.node, args.id) == ("a$b", "{x}")
    assert parse_command("publish -n $$x <x/>", expand=expand).node == "$x"
    assert parse_command("publish -n '{{$x}}' <x/>", expand=expand).node == "{X}"


def test_without_an_expander_nothing_is_expanded():
    # pubsub-hook and parse_command's default: the words as typed, escapes included
    args = parse_command("publish -n {node} -i n{i} <x/>")
    assert (args.node, args.id) == ("{node}", "n{i}")
    assert parse_command("publish -n a$$b <x/>").node == "a$$b"
    assert expand_word("n{i}", None) == "n{i}"


def test_words_without_dollar_or_braces_are_not_handed_to_the_expander():
    expand = Expander(node="news")
    parse_command("publish -s pubsub.example.org -n {node} -i plain <x/>", expand=expand)
    assert expand.asked == ["{node}"]


def test_each_word_is_evaluated_once_per_line():
    made, hit = calls()
    # create of a module hook reads its options twice (before and after the argument)
    args = parse_command("create -n {hit()} -t python mod", expand=Expander(hit=hit))
    assert args.node == "HIT" and made == ["hit"]


def test_error_messages_show_the_expanded_value():
    with pytest.raises(CommandError, match="invalid choice: 'xml'"):
        parse_command("list -O {fmt}", expand=Expander(fmt="xml"))
    with pytest.raises(CommandError, match="invalid choice: 'ruby'"):
        parse_command("create -n n -t $kind mod", expand=Expander(kind="ruby"))


# ---------------------------------------------------------------------- never the code


def test_python_code_is_taken_as_typed():
    made, hit = calls()
    expand = Expander(node="news", item="EXPANDED", x="X", hit=hit)
    line = """create -n {node} -t python_code print(f"{item['id']}", {x}, $x, {hit()}) # $$ {{ }}"""
    args = parse_command(line, expand=expand)
    assert args.node == "news"
    assert args.arg == """print(f"{item['id']}", {x}, $x, {hit()}) # $$ {{ }}"""
    assert made == []
    assert not any("print" in text or "hit" in text for text in expand.asked), expand.asked


def test_code_after_dashes_is_taken_as_typed():
    args = parse_command("create -n {node} -t python_code -- {x} -n {node}", expand=Expander(node="news", x="X"))
    assert (args.node, args.arg) == ("news", "{x} -n {node}")


def test_the_whole_line_look_for_t_expands_no_code():
    made, hit = calls()
    expand = Expander(hit=hit, kind="python_code")
    # -t after the code: the code is what follows the options, as typed
    args = parse_command("create -n n print({hit()}) -t python_code", expand=expand)
    assert args.type == "python_code" and args.arg.startswith("print({hit()})")
    # -t $kind after the code, expanding to python_code: refused, the code not evaluated
    with pytest.raises(CommandError, match="-t python_code goes before the code"):
        parse_command("create -n n print({hit()}) -t $kind", expand=expand)
    assert made == []
    assert not any("hit" in text for text in expand.asked), expand.asked


def test_without_t_the_argument_is_kept_as_typed():
    # It may be code meant for -t python_code (the error then says so): not evaluated.
    made, hit = calls()
    args = parse_command('create -n {node} print(f"{hit()}")', expand=Expander(node="news", hit=hit))
    assert (args.node, args.type, args.type_given) == ("news", "python", False)
    assert args.arg == "print(f{hit()})"  # (tokenized: a module name, not code)
    assert made == []


def test_a_create_cell_is_taken_as_typed():
    made, hit = calls()
    cell = 'print(f"{item}", {x}, $x)\n{hit()}\n'
    args = parse_command("create -n {node} -s $svc", cell, expand=Expander(node="news", svc="s", x="X", hit=hit))
    assert (args.node, args.service, args.type, args.arg) == ("news", "s", "python_code", cell)
    assert made == []


def test_publish_and_test_payloads_are_taken_as_typed():
    expand = Expander(node="news", i=1, hid="ab12cd")
    args = parse_command("publish -n {node} -i n{i} <x a='{i}' b=\"$node\">{i} {{i}}</x>", expand=expand)
    assert (args.node, args.id) == ("news", "n1")
    assert args.payload == "<x a='{i}' b=\"$node\">{i} {{i}}</x>"
    args = parse_command("test {hid} --item-id t{i} <x>{i}</x>", expand=expand)
    assert (args.id, args.item_id, args.payload) == ("ab12cd", "t1", "<x>{i}</x>")
    args = parse_command("publish -n {node} -i c{i}", "<x>{i} $node</x>\n", expand=expand)  # %%hook publish
    assert (args.node, args.id, args.payload) == ("news", "c1", "<x>{i} $node</x>")
    assert not any("<" in text for text in expand.asked), expand.asked


def test_completion_reads_the_line_as_typed():
    hooks = [("ab12cd", "pubsub.example.org", "news", "python_code", "print(item)")]
    assert "--id" in complete("%hook publish -n {node} -", hooks)
    assert complete("%hook delete -s {svc} -n n", hooks) == ["news"]
    assert complete("%hook create -n {node} -t python_code print(f'{x}", hooks) == []  # code: not ours


# ---------------------------------------------------------------------- the magic


@pytest.fixture
def shell():
    InteractiveShell.clear_instance()
    ip = InteractiveShell.instance(history_length=0, hist_file=":memory:")
    ip.extension_manager.load_extension("pubsub_hook_magic")
    yield ip
    ip.extension_manager.unload_extension("pubsub_hook_magic")
    InteractiveShell.clear_instance()


def usage_error(shell: InteractiveShell, cell: str) -> str:
    """Run ``cell``; the message of the UsageError it ends with."""
    result = shell.run_cell(cell)
    error = result.error_in_exec
    assert isinstance(error, UsageError), result
    return str(error)


def test_the_magic_expands_names_of_the_notebook(shell):
    shell.run_cell("fmt = 'xml'")
    assert "invalid choice: 'xml'" in usage_error(shell, "%hook list -O {fmt}")
    assert "invalid choice: 'xml'" in usage_error(shell, "%hook list -O $fmt")
    assert "invalid choice: '{nowhere}'" in usage_error(shell, "%hook list -O {nowhere}")


def test_a_line_in_a_function_body_uses_its_local_names_first(shell):
    shell.run_cell("fmt = 'global'")
    error = usage_error(shell, "def f():\n    fmt = 'local'\n    %hook list -O {fmt}\nf()")
    assert "invalid choice: 'local'" in error
    error = usage_error(shell, "def g():\n    %hook list -O {fmt}\ng()")  # not local: the notebook's
    assert "invalid choice: 'global'" in error


def test_the_cell_form_expands_its_line_not_its_cell(shell):
    shell.run_cell("fmt = 'xml'\nkind = 'ruby'")
    assert "invalid choice: 'xml'" in usage_error(shell, "%%hook list -O {fmt}\nbody {fmt}\n")
    assert "invalid choice: 'ruby'" in usage_error(shell, "%%hook create -n n -t $kind\nprint(f'{kind}')\n")
    error = usage_error(shell, "def f():\n    kind = 'local'\n    %hook create -n n -t {kind} mod\nf()")
    assert "invalid choice: 'local'" in error


def test_the_magic_evaluates_no_code(shell):
    # Each line is refused by the parser once the code (or XML) is found: no handler runs.
    shell.run_cell("made = []\ndef hit():\n    made.append(1)\n    return 'HIT'")
    usage_error(shell, "%hook create -n n --retry x -t python_code print({hit()}, $hit)")
    usage_error(shell, "%%hook create -n n -t python_file\n{hit()}\n")
    usage_error(shell, "%hook create -n n print({hit()}) -t {'python_' + 'code'}")
    usage_error(shell, "%%hook publish -n n <x>{hit()}</x>\n<y>{hit()}</y>\n")
    assert shell.user_ns["made"] == []


def test_the_help_mentions_expansion(shell):
    doc = shell.find_line_magic("hook").__doc__
    assert "{expr} and $name expand" in doc and "$$ and {{ }}" in doc
