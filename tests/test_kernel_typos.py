"""Typos and completion hints in a real kernel (issue 24): a misspelled flag is refused,
never taken for code, and installs nothing; an unknown sub-command gets "did you mean";
completion hints are short and tell hooks apart."""

from __future__ import annotations

import json

import pytest

from .test_kernel_newcomer import complete

pytestmark = pytest.mark.kernel


def test_a_misspelled_flag_is_a_usage_error_naming_the_flag_meant(connected, node):
    result = connected.run(f"%hook create -s pubsub.localhost -n {node} --persistant -t python_code pass", allow_error=True)
    assert result.status == "error" and result.error[0] == "UsageError", result
    text = result.stderr + str(result.error)
    assert "unrecognized arguments: --persistant" in text, text
    assert "did you mean --persistent?" in text and "see %hook create -h" in text, text
    assert "compile" not in text and "SyntaxError" not in text, text
    assert json.loads(connected.run("%hook list -O json").stdout) == []  # nothing installed

    result = connected.run(f"%hook publish -s pubsub.localhost -n {node} --idd x <x xmlns='urn:x'/>", allow_error=True)
    text = result.stderr + str(result.error)
    assert "unrecognized arguments: --idd: did you mean --id?" in text and "see %hook publish -h" in text, text
    assert "XML" not in text, text

    result = connected.run("%hook list -o json", allow_error=True)
    text = result.stderr + str(result.error)
    assert "did you mean -O?" in text and "(see %hook list -h)" in text, text


def test_an_unknown_sub_command_says_did_you_mean(kernel):
    result = kernel.run("%hook lst", allow_error=True)
    assert result.status == "error", result
    text = result.stderr + str(result.error)
    assert "unknown sub-command 'lst': did you mean list? (see %hook -h)" in text, text
    result = kernel.run("%hook node crate -n x", allow_error=True)
    text = result.stderr + str(result.error)
    assert "did you mean create? (see %hook node -h)" in text, text


def test_completion_hints_are_short_unbreakable_and_distinct_per_hook(connected, node, publisher):
    other = node + "b"
    publisher.create_node(other)
    for name in (node, other):
        connected.run(f"%hook create -s pubsub.localhost -n {name} -t python_code pass")
    ids = {h["node"]: h["id"] for h in json.loads(connected.run("%hook list -O json").stdout)}

    reply = complete(connected, "%hook pause ")
    hints = {m["text"]: m["type"] for m in reply["metadata"]["_jupyter_types_experimental"]}
    assert set(hints) == set(ids.values()), hints
    assert hints[ids[node]] != hints[ids[other]], hints
    assert node in hints[ids[node]] and other in hints[ids[other]], hints

    lines = ["%hook ", "%hook create -", "%hook create -t ", "%hook pause ", "%hook list -p ", "%hook create -s "]
    for line in lines:
        for meta in complete(connected, line)["metadata"]["_jupyter_types_experimental"]:
            hint = meta["type"]
            assert len(hint) <= 20 and " " not in hint and "-" not in hint, (line, meta)
