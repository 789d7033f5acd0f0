"""The product end to end: %hook in a real kernel, against a real Prosody."""

from __future__ import annotations

import json
import time

import pytest


pytestmark = pytest.mark.kernel


def hooks_json(kernel):
    return json.loads(kernel.run("%hook list -O json").stdout)


def test_python_code_hook_fires_for_each_published_item(connected, publisher, node):
    connected.run("seen = []")
    out = connected.run(f'%hook create -s pubsub.localhost -n {node} -t python_code seen.append(item["id"])').stdout
    assert "python_code" in out and node in out and "temporary" in out
    ids = [publisher.publish(node, f"hello {i}", item_id=f"it{i}") for i in range(3)]
    assert connected.wait_for("seen", lambda v: len(v) >= 3) == ids
    time.sleep(0.3)
    assert connected.eval("seen") == ids  # each exactly once
    [summary] = hooks_json(connected)
    assert summary["triggers"] == 3 and summary["errors"] == 0
    assert summary["last_trigger"]["item_id"] == "it2"
    assert summary["last_trigger"]["publisher"] in (None, "admin@localhost", "admin@localhost/publisher")


def test_every_hook_type_fires(connected, publisher, node, tmp_path):
    (tmp_path / "filehook.py").write_text(
        "got = []\ndef hook(host, client, item):\n    got.append(item['id'])\n    host.shell.user_ns['from_file'] = list(got)\n"
    )
    (tmp_path / "modhook.py").write_text(
        "import asyncio\nasync def hook(host, client, item):\n    await asyncio.sleep(0.01)\n"
        "    host.shell.user_ns.setdefault('from_module', []).append(item['id'])\n"
    )
    connected.run(f"import sys; sys.path.insert(0, {str(tmp_path)!r})")
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_file {tmp_path}/filehook.py")
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python modhook")
    connected.run(
        f"%%hook create -s pubsub.localhost -n {node}\n"
        "import asyncio\n"
        "await asyncio.sleep(0.01)\n"
        "from_cell = globals().get('from_cell', []) + [item['id']]\n"
    )
    publisher.publish(node, item_id="a")
    publisher.publish(node, item_id="b")
    for name in ("from_file", "from_module", "from_cell"):
        assert connected.wait_for(f"globals().get({name!r})", lambda v: v == ["a", "b"]) == ["a", "b"]
    hooks = hooks_json(connected)
    assert sorted(h["type"] for h in hooks) == ["python", "python_code", "python_file"]
    assert all(h["triggers"] == 2 and h["errors"] == 0 for h in hooks), hooks


def test_a_raising_hook_records_the_error_and_keeps_running(connected, publisher, node):
    connected.run("done = []")
    connected.run(
        f"%%hook create -s pubsub.localhost -n {node}\n"
        "if item['id'] == 'bad':\n"
        "    raise ValueError('boom on ' + item['id'])\n"
        "done.append(item['id'])\n"
    )
    for item_id in ("ok1", "bad", "ok2"):
        publisher.publish(node, item_id=item_id)
    assert connected.wait_for("done", lambda v: len(v) == 2) == ["ok1", "ok2"]
    [summary] = hooks_json(connected)
    assert (summary["triggers"], summary["errors"]) == (3, 1)
    [failed] = [t for t in summary["recent"] if t["outcome"] == "error"]
    assert failed["item_id"] == "bad"
    assert failed["error"] == "ValueError: boom on bad"
    assert "raise ValueError" in failed["traceback"]
    assert "last failed on item bad" in connected.run("%hook list -O text").stdout


def test_a_slow_sync_hook_never_blocks_the_kernel(connected, publisher, node):
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code import time; time.sleep(2)")
    publisher.publish(node)
    time.sleep(0.3)  # the hook is now sleeping on the session thread
    start = time.monotonic()
    assert connected.eval("1 + 1") == 2
    assert time.monotonic() - start < 1.0


def test_forged_events_fire_nothing(connected, publisher, node, server):
    connected.run("seen = []")
    connected.run(f'%hook create -s pubsub.localhost -n {node} -t python_code seen.append(item["id"])')
    # admin (not the service) sends alice a message shaped like an event of the node.
    publisher.send_raw(
        f"<message to='alice@localhost' type='headline'>"
        f"<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='{node}'>"
        f"<item id='forged'><entry xmlns='urn:test'>evil</entry></item></items></event></message>"
    )
    publisher.send_raw(  # a spoofed from: the server rewrites or refuses it
        f"<message from='pubsub.localhost' to='alice@localhost' type='headline'>"
        f"<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='{node}'>"
        f"<item id='spoofed'><entry xmlns='urn:test'>evil</entry></item></items></event></message>"
    )
    publisher.publish(node, item_id="real")
    assert connected.wait_for("seen", lambda v: "real" in v) == ["real"]
    time.sleep(0.3)
    assert connected.eval("seen") == ["real"]


def test_several_items_in_one_event_each_fire_once(connected, publisher, node):
    connected.run("seen = []")
    connected.run(f'%hook create -s pubsub.localhost -n {node} -t python_code seen.append(item["id"])')
    # The service itself would batch; we check the same path with a hand-made event
    # from the real service by publishing quickly, then compare counts and order.
    ids = publisher.publish_many(node, 50)
    assert connected.wait_for("seen", lambda v: len(v) >= 50, timeout=30) and sorted(connected.eval("seen")) == sorted(ids)


def test_hook_code_can_listen_to_the_clients_pubsub_events(connected, publisher, node):
    """The session handles item events itself and raises slixmpp's ``pubsub_publish``
    only when someone listens: hook code that does still gets every event."""
    connected.run("events = []")
    connected.run(
        f"%%hook create -s pubsub.localhost -n {node}\n"
        "if not events:\n"
        "    client.add_event_handler('pubsub_publish', lambda msg: events.append(msg['pubsub_event']['items']['item']['id']))\n"
        "    events.append('listening')\n"
    )
    publisher.publish(node, item_id="e0")  # the hook starts listening as it runs this one
    connected.wait_for("events", lambda v: v == ["listening"])
    ids = [publisher.publish(node, item_id=f"e{i}") for i in range(1, 3)]
    assert connected.wait_for("events", lambda v: len(v) >= 3) == ["listening", *ids]


def test_items_reach_each_hook_in_order_one_at_a_time(connected, publisher, node):
    connected.run("order = []; running = [0]; overlap = [0]")
    connected.run(
        f"%%hook create -s pubsub.localhost -n {node}\n"
        "import asyncio\n"
        "running[0] += 1\n"
        "overlap[0] = max(overlap[0], running[0])\n"
        "await asyncio.sleep(0.02)\n"
        "order.append(item['id'])\n"
        "running[0] -= 1\n"
    )
    ids = [publisher.publish(node, item_id=f"o{i}") for i in range(10)]
    assert connected.wait_for("order", lambda v: len(v) == 10) == ids
    assert connected.eval("overlap[0]") == 1


def test_host_runs_functions_on_the_kernel_loop(connected, publisher, node):
    connected.run("import threading; where = []")
    connected.run(
        f"%%hook create -s pubsub.localhost -n {node}\n"
        "where.append(threading.current_thread().name)\n"
        "where.append(await host.run_in_kernel(lambda: threading.current_thread().name))\n"
        "where.append(host.shell is get_ipython())\n"
    )
    publisher.publish(node)
    assert connected.wait_for("where", lambda v: len(v) == 3) == ["pubsub-hook-session", "MainThread", True]


def test_hook_code_keeps_dollar_and_braces(connected, publisher, node):
    connected.run("got = []; x = 'notebook x'")
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code got.append('$x {{x}}')")
    publisher.publish(node)
    assert connected.wait_for("got", lambda v: len(v) == 1) == ["$x {x}"]


def test_replay_and_test_run_a_hook_again(connected, publisher, node):
    connected.run("got = []")
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code got.append(item['id'])")
    [hook_id] = [h["id"] for h in json.loads(connected.run("%hook list -O json").stdout)]
    assert "no item to replay yet" in connected.usage_error(f"%hook replay {hook_id}")
    for i in range(3):
        publisher.publish(node, item_id=f"r{i}")
    connected.wait_for("got", lambda v: len(v) == 3)
    assert "replay of item r2: ok" in connected.run(f"%hook replay {hook_id}").stdout
    assert "replay of item r0: ok" in connected.run(f"%hook replay {hook_id} --item r0").stdout
    out = connected.run(f"%hook replay {hook_id} --last 2").stdout
    assert "item r1: ok" in out and "item r2: ok" in out
    out = connected.run(f"%%hook test {hook_id} --item-id t1\n<x xmlns='urn:x'>local</x>").stdout
    assert "test of item t1: ok" in out
    assert connected.eval("got") == ["r0", "r1", "r2", "r2", "r0", "r1", "r2", "t1"]
    kinds = [t["kind"] for t in json.loads(connected.run("%hook list -O json").stdout)[0]["recent"]]
    assert kinds == ["live"] * 3 + ["replay"] * 4 + ["test"]


def test_a_test_run_shows_the_hook_traceback(connected, node):
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code 1 / int(item['payload'].text)")
    [hook_id] = [h["id"] for h in json.loads(connected.run("%hook list -O json").stdout)]
    out = connected.run(f"%hook test {hook_id} <n xmlns='urn:x'>0</n>").stdout
    assert "error" in out and "ZeroDivisionError" in out and "1 / int(item['payload'].text)" in out


def test_an_edited_hook_file_is_reloaded_and_a_broken_edit_keeps_the_old_code(connected, publisher, node, tmp_path):
    path = tmp_path / "edit_hook.py"
    path.write_text("def hook(host, client, item):\n    host.shell.user_ns['v'].append(1)\n")
    connected.run("v = []")
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_file {path}")
    publisher.publish(node)
    connected.wait_for("v", lambda v: v == [1])
    time.sleep(0.01)
    path.write_text("def hook(host, client, item):\n    host.shell.user_ns['v'].append(2)\n")
    publisher.publish(node)
    connected.wait_for("v", lambda v: v == [1, 2])
    path.write_text("def hook(host, client, item):\n    return (\n")
    publisher.publish(node)
    connected.wait_for("v", lambda v: v == [1, 2, 2])
    [summary] = json.loads(connected.run("%hook list -O json").stdout)
    assert "SyntaxError" in summary["reload_error"] and "does not load" in summary["reload_error"]
    assert summary["reloads"] == 1
