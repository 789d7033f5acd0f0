"""What a newcomer meets in a real kernel (issue 13): completion that helps, nothing
printed from the background into cells, a broken edit that says so, and no dead ends
for a first hook on a service (creating a node, a refused publish)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from .conftest import PASSWORDS

pytestmark = pytest.mark.kernel

SUB_COMMANDS = {
    "connect", "disconnect", "create", "delete", "list", "pause", "resume", "replay", "test",
    "failed", "retry", "publish", "retract", "nodes", "node", "log", "status",
}


def complete(kernel, code: str, cursor: int | None = None) -> dict:
    """A real complete_request, as JupyterLab sends it on Tab."""
    msg_id = kernel.kc.complete(code, len(code) if cursor is None else cursor)
    while True:
        reply = kernel.kc.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"]


def wait_errors(kernel, hook_id: str, errors: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        hooks = json.loads(kernel.run("%hook list -O json").stdout)
        if next(h["errors"] for h in hooks if h["id"] == hook_id) >= errors:
            return
        assert time.monotonic() < deadline, hooks
        time.sleep(0.1)


def test_completion_after_hook_offers_our_typed_candidates_and_no_python(connected, node):
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code pass")
    [hook_id] = [h["id"] for h in json.loads(connected.run("%hook list -O json").stdout)]

    reply = complete(connected, "%hook ")
    matches = reply["matches"]
    types = {m["text"]: m["type"] for m in reply["metadata"]["_jupyter_types_experimental"]}
    assert matches and matches[0] in SUB_COMMANDS, matches
    assert set(matches) == SUB_COMMANDS, matches  # ours only: no keywords, no names
    assert not {"and", "if", "in", "import", "print"} & set(matches)
    assert set(types.values()) == {"command"}, types

    reply = complete(connected, "%hook pause ")
    [meta] = reply["metadata"]["_jupyter_types_experimental"]
    assert meta["text"] == hook_id and meta["type"] == f"python_code\u00a0·\u00a0{node}"

    reply = complete(connected, "%hook create -")
    types = {m["text"]: m["type"] for m in reply["metadata"]["_jupyter_types_experimental"]}
    assert "--node" in types and set(types.values()) == {"option"}, types
    assert reply["cursor_start"] == len("%hook create ")

    reply = complete(connected, "%hook create -s pubsub.localhost -n ")
    assert reply["matches"] == [node]
    reply = complete(connected, "%hook node create --access-model w")
    assert reply["matches"] == ["whitelist"]

    # Python is still Python, in a cell that also holds a %hook line.
    reply = complete(connected, "%hook list\nimport o")
    assert "os" in reply["matches"]


def test_a_replay_after_a_broken_edit_says_it_ran_the_previous_version(connected, node, tmp_path):
    path = tmp_path / "broken_edit.py"
    path.write_text("def hook(host, client, item):\n    host.shell.user_ns['ran'].append(1)\n")
    connected.run("ran = []")
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_file {path}")
    [hook_id] = [h["id"] for h in json.loads(connected.run("%hook list -O json").stdout)]
    connected.run(f"%hook test {hook_id} <x xmlns='urn:x'/>")
    time.sleep(0.01)
    path.write_text("def hook(host, client, item):\n    return (\n")
    edited = time.strftime("%H:%M", time.localtime(path.stat().st_mtime))

    result = connected.run(f"%hook test {hook_id} --item-id t1 <x xmlns='urn:x'/>")
    assert "test of item" in result.stdout and ": ok" in result.stdout, result.stdout
    # The warning comes first, before the "ok" it qualifies.
    first, *_ = result.stdout.splitlines()
    assert first.startswith("Warning:") and "ran the previous version" in first, result.stdout
    assert f"the edit at {edited} does not load: {path}, line 2: SyntaxError" in first, result.stdout
    assert result.stdout.index("Warning:") < result.stdout.index("test of item"), result.stdout
    replay = connected.run(f"%hook replay {hook_id} --item t1").stdout
    assert replay.startswith("Warning:") and "ran the previous version" in replay, replay
    assert replay.count("Warning:") == 1 and "replay of item" in replay, replay
    assert result.stderr == ""
    assert connected.eval("ran") == [1, 1, 1]

    text = connected.run("%hook list -O text").stdout
    assert f"hook {hook_id} runs the previous version: the edit at {edited} does not load" in text, text

    path.write_text("def hook(host, client, item):\n    host.shell.user_ns['ran'].append(2)\n")
    result = connected.run(f"%hook test {hook_id} <x xmlns='urn:x'/>")
    assert "previous version" not in result.stdout and connected.eval("ran") == [1, 1, 1, 2]


def test_background_records_never_land_in_cells_but_reach_logging_and_hook_log(connected, publisher, node):
    connected.run(
        f"%hook create -s pubsub.localhost -n {node} -t python_code "
        "if item['id'].startswith('bad'): raise ValueError('refused ' + item['id'])"
    )
    [hook_id] = [h["id"] for h in json.loads(connected.run("%hook list -O json").stdout)]
    connected.run("%hook list")
    for item_id in ("a", "bad1", "b"):
        publisher.publish(node, item_id=item_id)
    wait_errors(connected, hook_id, 1)
    # A replay of the node's stored items reads items from the node (slixmpp's
    # retrieved items), and a hook that reads item["publisher"] on them.
    connected.run(
        f"%hook create -s pubsub.localhost -n {node} -t python_code "
        "publishers.append(item['publisher'])"
    )
    connected.run("publishers = []")
    hooks = json.loads(connected.run("%hook list -O json").stdout)
    reader = next(h["id"] for h in hooks if h["id"] != hook_id)
    replay = connected.run(f"%hook replay {hook_id} --last 3")
    assert replay.stdout.count("replay of item") == 3 and "ValueError: refused bad1" in replay.stdout
    connected.run(f"%hook replay {reader} --last 3")
    assert len(connected.eval("publishers")) == 3  # read without a warning on the root logger
    # Whatever the background logged meanwhile went nowhere near stderr…
    connected.drain_iopub(0.5)
    streams = [m for m in connected.iopub if m["msg_type"] == "stream" and m["content"]["name"] == "stderr"]
    assert streams == [], [m["content"]["text"] for m in streams]
    # …and is in %hook log, escaped.
    log = connected.run("%hook log").stdout
    assert f"WARNING pubsub_hook_magic.runner: hook {hook_id} failed on item bad1" in log, log
    assert "Unknown stanza interface" not in log

    # A user who configures logging receives the records, as usual.
    connected.run(
        "import logging, io\n_buf = io.StringIO()\n"
        "logging.basicConfig(stream=_buf, format='%(name)s %(message)s', force=True)"
    )
    publisher.publish(node, item_id="bad2")
    got = connected.wait_for("_buf.getvalue()", lambda v: "failed on item bad2" in v)
    assert f"pubsub_hook_magic.runner hook {hook_id} failed on item bad2" in got


def test_a_node_is_created_from_the_notebook_and_refusals_say_what_to_do(connected):
    name = f"fresh{time.monotonic_ns()}"
    # The node does not exist yet: the error names the command that creates it.
    error = connected.usage_error(f"%hook create -s pubsub.localhost -n {name} -t python_code pass")
    assert f"%hook node create -s pubsub.localhost -n {name}" in error, error
    # This service leaves node creation to its admins: the refusal says so.
    error = connected.usage_error(f"%hook node create -s pubsub.localhost -n {name} --access-model open")
    assert "forbidden" in error and "ask an admin" in error and "your own PEP" in error, error
    # On your own PEP, with an access model (Libervia's -f works too).
    out = connected.run(f"%hook node create -n {name} --access-model presence -f max_items 10").stdout
    assert f"Created node {name} on alice@localhost." in out, out
    connected.run("got = []")
    connected.run(f"%hook create -n {name} -t python_code got.append(item['id'])")
    connected.run(f"%hook publish -n {name} -i one <x xmlns='urn:x'/>")
    assert connected.wait_for("got", lambda v: v == ["one"]) == ["one"]
    error = connected.usage_error(f"%hook node create -n {name}")
    assert "conflict" in error and "already exists" in error, error


def test_a_refused_publish_says_what_the_server_said_and_what_fixes_it(connected, node):
    # admin@localhost owns the node: alice is no publisher.
    error = connected.usage_error(f"%hook publish -s pubsub.localhost -n {node} <x xmlns='urn:x'/>")
    assert "forbidden" in error and "publisher" in error and "%hook node create" in error, error


def test_the_default_type_is_named_when_a_module_does_not_import(connected, node):
    error = connected.usage_error(f"%hook create -s pubsub.localhost -n {node} pass")
    assert "cannot import 'pass'" in error and "defaulted to python" in error and "-t python_code" in error, error


def test_pubsub_hook_list_finds_the_one_account_of_the_store(connected, node, data_dir):
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code -P pass")
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMPP_")}
    env["PUBSUB_HOOK_DATA_DIR"] = str(data_dir)
    result = subprocess.run(
        [sys.executable, "-m", "pubsub_hook_magic.cli", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert node in result.stdout and "python_code" in result.stdout
    assert PASSWORDS["alice"] not in result.stdout + result.stderr


def test_the_failed_button_runs_the_failed_items_again(connected, publisher, node):
    from .test_kernel_table import click, settle

    connected.run("refuse = True")
    connected.run(
        f"%hook create -s pubsub.localhost -n {node} -t python_code "
        "if refuse: raise ValueError('not yet')"
    )
    [hook_id] = [h["id"] for h in json.loads(connected.run("%hook list -O json").stdout)]
    connected.run("%hook list")
    publisher.publish(node, item_id="late")
    wait_errors(connected, hook_id, 1)
    w = settle(connected)
    [failed] = w.with_class("phm-failed")
    assert w.models[failed]["description"] == "1" and not w.models[failed]["disabled"]
    connected.run("refuse = False")  # the fix
    click(connected, failed)
    w = settle(connected)
    assert w.models[failed]["description"] == "0" and w.models[failed]["disabled"]
    [message] = w.with_class("phm-message")
    assert f"1 failed item(s) of hook {hook_id} ran again: 1 succeeded (removed)" in w.value(message)
