"""Variables in ``%hook`` lines, in a real kernel against the private Prosody: a loop
publishes one id per turn, ``{node}`` expands in options while the hook's code is
kept as typed, and a line in a function body uses the function's locals."""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.kernel


def hooks_json(kernel):
    return json.loads(kernel.run("%hook list -O json").stdout)


def test_a_loop_publishes_n0_n1_n2_and_the_code_is_kept_as_typed(connected):
    name = f"urn:example:expand{time.monotonic_ns()}"
    # Decoys: were the code or the XML expanded, these would show.
    connected.run(f"node = {name!r}\nitem = {{'id': 'EXPANDED'}}\nx = 'X'\ngot = []\ntexts = []\nsize = 10")
    out = connected.run("%hook node create -n {node} -f max_items $size").stdout
    assert f"Created node {name} on alice@localhost." in out, out

    code = """print(f"{item['id']}"); got.append(f"{item['id']}"); texts.append(item['payload'].text)"""
    out = connected.run(f"%hook create -n {{node}} -t python_code {code}").stdout
    assert name in out and "python_code" in out, out
    [hook] = hooks_json(connected)
    assert (hook["node"], hook["arg"]) == (name, code)  # the node expanded, the code as typed

    connected.run('for i in range(3):\n    %hook publish -n {node} -i n{i} <x xmlns="urn:t">{x}</x>')
    assert connected.wait_for("got", lambda v: len(v) >= 3) == ["n0", "n1", "n2"]
    assert connected.eval("texts") == ["{x}"] * 3  # the payload as typed

    # The node's stored items, read back from the server: n0, n1, n2, not one n{i}.
    connected.run(f"hook_id = {hook['id']!r}")
    out = connected.run("%hook replay $hook_id --last 5").stdout
    assert [line.split()[3].rstrip(":") for line in out.splitlines() if line.startswith("replay of item")] == [
        "n0",
        "n1",
        "n2",
    ], out
    assert connected.wait_for("got", lambda v: len(v) == 6)[3:] == ["n0", "n1", "n2"]


def test_a_line_in_a_function_body_uses_its_locals_and_a_cell_keeps_its_body(connected):
    name = f"urn:example:expandf{time.monotonic_ns()}"
    connected.run(f"node = {name!r}\nitem_id = 'global'\ngot = []\ntexts = []")
    connected.run("%hook create -n {node} -t python_code got.append(item['id']); texts.append(item['payload'].text)")
    connected.run(
        "def publish_one(n):\n"
        "    item_id = f'local-{n}'\n"
        '    %hook publish -n {node} -i {item_id} <x xmlns="urn:t">{item_id}</x>\n'
        "publish_one(1)\n"
        "publish_one(2)\n"
    )
    assert connected.wait_for("got", lambda v: len(v) >= 2) == ["local-1", "local-2"]
    # The cell form: its line expanded, its body (the payload) as typed.
    connected.run('%%hook publish -n {node} -i $item_id\n<x xmlns="urn:t">{item_id} $item_id</x>\n')
    assert connected.wait_for("got", lambda v: len(v) >= 3)[2] == "global"
    assert connected.eval("texts") == ["{item_id}", "{item_id}", "{item_id} $item_id"]
