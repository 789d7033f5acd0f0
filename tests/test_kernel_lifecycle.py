"""Persistence, deletion rules, subscriptions and extension load/unload, in real kernels."""

from __future__ import annotations

import json
import stat
import time

import pytest

from .conftest import PASSWORDS, connect_line
from .support import Publisher, stored_hooks

pytestmark = pytest.mark.kernel


def hooks_json(kernel):
    return json.loads(kernel.run("%hook list -O json").stdout)


def store_records(data_dir):
    [records] = stored_hooks(data_dir).values()  # one account's store
    return records


def test_persistent_hook_comes_back_in_a_fresh_kernel(kernel_factory, server, publisher, node, data_dir, tmp_path):
    hook_file = tmp_path / "persist_hook.py"
    hook_file.write_text(
        "def hook(host, client, item):\n"
        "    host.shell.user_ns.setdefault('got', []).append(item['id'])\n"
    )
    first = kernel_factory()
    first.run(connect_line(server))
    out = first.run(f"%hook create -s pubsub.localhost -n {node} -t python_file -P {hook_file}").stdout
    assert "persistent" in out
    first.run(f"%hook create -s pubsub.localhost -n {node} -t python_code pass")  # temporary
    publisher.publish(node, item_id="before")
    first.wait_for("globals().get('got')", lambda v: v == ["before"])
    [record] = store_records(data_dir)
    assert (record["type"], record["arg"]) == ("python_file", str(hook_file))
    for path in [data_dir, *data_dir.iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) in (0o600, 0o700), path
    assert PASSWORDS["alice"] not in "".join(p.read_text() for p in data_dir.glob("*.json"))
    first.close()

    second = kernel_factory()
    out = second.run(connect_line(server)).stdout
    assert "1 persistent hook(s) installed" in out
    [hook] = hooks_json(second)
    assert hook["persistent"] and hook["id"] == record["id"] and hook["triggers"] == 0
    publisher.publish(node, item_id="after")
    assert second.wait_for("globals().get('got')", lambda v: v is not None) == ["after"]


def test_delete_all_deletes_every_matching_hook(connected, node):
    for code in ("a = 1", "a = 2", "a = 3"):
        connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code {code}")
    connected.run("%hook create -s pubsub.localhost -n other_node_not_touched -t python_code pass", allow_error=True)
    assert connected.run(f"%hook delete -s pubsub.localhost -n {node}").stdout.strip() == "3 hook(s) have been deleted"
    assert hooks_json(connected) == []
    assert connected.run(f"%hook delete -s pubsub.localhost -n {node}").stdout.strip() == "0 hook(s) have been deleted"


def test_delete_narrows_by_type_and_arg_and_persistent_store(connected, node, data_dir, tmp_path):
    (tmp_path / "rel_hook.py").write_text("def hook(host, client, item):\n    pass\n")
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_file -P rel_hook.py")  # cwd is tmp_path
    connected.run(f'%hook create -s pubsub.localhost -n {node} -t python_code seen.append(item["id"])')
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code pass")
    out = connected.run(f"%hook delete -s pubsub.localhost -n {node} -t python_file -a ./rel_hook.py").stdout
    assert out.strip() == "1 hook(s) have been deleted"
    assert store_records(data_dir) == []
    out = connected.run(f"""%hook delete -s pubsub.localhost -n {node} -t python_code -a 'seen.append(item["id"])'""").stdout
    assert out.strip() == "1 hook(s) have been deleted"
    assert [h["arg"] for h in hooks_json(connected)] == ["pass"]


def test_temporary_hooks_keep_listening_when_the_last_persistent_one_goes(connected, publisher, node):
    connected.run("seen = []")
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code -P pass")
    connected.run(f'%hook create -s pubsub.localhost -n {node} -t python_code seen.append(item["id"])')
    connected.run(f"%hook delete -s pubsub.localhost -n {node} -t python_code -a pass")
    assert "alice@localhost" in publisher.subscribers(node)
    publisher.publish(node, item_id="still-heard")
    assert connected.wait_for("seen", lambda v: v == ["still-heard"])


def test_subscription_made_by_the_extension_is_removed_with_the_last_hook(connected, publisher, node):
    assert "alice@localhost" not in publisher.subscribers(node)
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code pass")
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code x = 1")
    assert "alice@localhost" in publisher.subscribers(node)
    connected.run(f"%hook delete -s pubsub.localhost -n {node} -a pass")
    assert "alice@localhost" in publisher.subscribers(node)
    connected.run(f"%hook delete -s pubsub.localhost -n {node}")
    assert "alice@localhost" not in publisher.subscribers(node)


def test_an_existing_subscription_is_reused_and_kept(connected, server, publisher, node):
    other = Publisher("alice@localhost/phone", PASSWORDS["alice"], server.host, server.port)
    try:
        other.subscribe(node)
        connected.run("seen = []")
        connected.run(f'%hook create -s pubsub.localhost -n {node} -t python_code seen.append(item["id"])')
        publisher.publish(node, item_id="x1")
        assert connected.wait_for("seen", lambda v: v == ["x1"])
        connected.run(f"%hook delete -s pubsub.localhost -n {node}")
        assert "alice@localhost" in publisher.subscribers(node)  # not ours to remove
    finally:
        other.close()


def test_disconnect_drops_temporary_hooks_and_keeps_persistent_ones(connected, server, node, data_dir):
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code -P pass")
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code x = 1")
    assert "Disconnected alice@localhost" in connected.run("%hook disconnect").stdout
    assert "Not connected" in connected.run("%hook status").stdout
    assert len(store_records(data_dir)) == 1
    connected.run(connect_line(server))
    assert [h["persistent"] for h in hooks_json(connected)] == [True]


def test_last_item_resent_on_subscribe_does_not_fire_a_new_hook(connected, publisher, server):
    node = f"lastitem{time.monotonic_ns()}"
    publisher.create_node(node)
    publisher.publish(node, item_id="old")
    connected.run("seen = []")
    connected.run(f'%hook create -s pubsub.localhost -n {node} -t python_code seen.append(item["id"])')
    # Make the server re-send: resend presence (PEP does it for +notify; services may).
    publisher.publish(node, item_id="new")
    assert connected.wait_for("seen", lambda v: "new" in v) == ["new"]


def test_own_pep_item_is_resent_on_interest_but_fires_only_new_items(connected):
    node = f"urn:example:pep{time.monotonic_ns()}"
    connected.run(f"%hook publish -n {node} -i old <n xmlns='urn:example'>old</n>")
    connected.run("seen = []")
    connected.run(f'%hook create -n {node} -t python_code seen.append(item["id"])')
    connected.run(f"%hook publish -n {node} -i new <n xmlns='urn:example'>new</n>")
    assert connected.wait_for("seen", lambda v: "new" in v) == ["new"]
    # The same id with a new payload is a new publication ("current"-style nodes).
    connected.run(f"%hook publish -n {node} -i new <n xmlns='urn:example'>newer</n>")
    assert connected.wait_for("seen", lambda v: len(v) == 2) == ["new", "new"]


def test_contact_pep_node_fires_once_per_item(connected, server):
    bob = Publisher("bob@localhost/pub", PASSWORDS["bob"], server.host, server.port)
    alice_phone = Publisher("alice@localhost/phone", PASSWORDS["alice"], server.host, server.port)
    try:
        # A mutual presence subscription, as PEP requires, made from alice's other
        # resource: the kernel's session learns it by roster push.
        alice_phone.subscribe_presence("bob@localhost")
        bob.approve_presence("alice@localhost")
        bob.subscribe_presence("alice@localhost")
        alice_phone.approve_presence("bob@localhost")
        time.sleep(0.5)
        node = f"urn:example:bob{time.monotonic_ns()}"
        connected.run("seen = []")
        connected.run(f'%hook create -s bob@localhost -n {node} -t python_code seen.append(item["id"])')
        time.sleep(0.5)  # bob's server asks the session's caps (+notify) after its presence
        bob.publish(node, item_id="b1", service=None)
        bob.publish(node, item_id="b2", service=None)
        assert connected.wait_for("seen", lambda v: len(v) >= 2) == ["b1", "b2"]
        time.sleep(0.5)
        assert connected.eval("seen") == ["b1", "b2"]  # Prosody delivers each twice
    finally:
        bob.close()
        alice_phone.close()


def test_unload_stops_everything_and_reload_leaves_one_session(connected, server, publisher, node):
    count_threads = "sum(t.name == 'pubsub-hook-session' and t.is_alive() for t in __import__('threading').enumerate())"
    assert connected.eval(count_threads) == 1
    connected.run("seen = []")
    connected.run(f'%hook create -s pubsub.localhost -n {node} -t python_code seen.append(item["id"])')
    connected.run("%reload_ext pubsub_hook_magic")
    assert connected.eval(count_threads) == 1
    assert "connected as alice@localhost" in connected.run("%hook status").stdout
    publisher.publish(node, item_id="after-reload")
    assert connected.wait_for("seen", lambda v: v == ["after-reload"])
    connected.run("%unload_ext pubsub_hook_magic")
    assert connected.eval(count_threads) == 0
    assert connected.usage_error("%hook status")  # the magic is gone
    connected.run("%load_ext pubsub_hook_magic")
    connected.run(connect_line(server))
    assert connected.eval(count_threads) == 1


def test_nodes_lists_a_service_nodes(connected, node):
    out = connected.run("%hook nodes pubsub.localhost").stdout.split()
    assert node in out
