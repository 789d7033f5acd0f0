"""Hostile and odd input: nothing crashes the session, nothing fires that should not."""

from __future__ import annotations

import json
import time

import pytest

from .conftest import connect_line

pytestmark = pytest.mark.kernel

EVENT = "http://jabber.org/protocol/pubsub#event"


def event(node: str, items: str, to: str = "alice@localhost") -> str:
    return (
        f"<message to='{to}' type='headline'><event xmlns='{EVENT}'>"
        f"<items node='{node}'>{items}</items></event></message>"
    )


def summary(kernel):
    [s] = json.loads(kernel.run("%hook list -O json").stdout)
    return s


def test_odd_events_from_the_service_itself_never_crash_the_session(connected, publisher):
    """admin's PEP is the service here, so admin's stanzas are legitimately its events."""
    connected.run("seen = []")
    connected.run('%hook create -s admin@localhost -n weird -t python_code seen.append((item["id"], item["payload"] is None))')
    publisher.send_raw(event("weird", "<item><x xmlns='urn:x'>no id</x></item>"))  # no id: fires
    publisher.send_raw(event("weird", "<item id='empty'/>"))  # no payload: fetched; not on the node: a gap
    publisher.send_raw(event("weird", "<retract id='gone'/>"))  # a retraction: nothing
    publisher.send_raw(f"<message to='alice@localhost'><event xmlns='{EVENT}'><items/></event></message>")  # no node
    publisher.send_raw(f"<message to='alice@localhost'><event xmlns='{EVENT}'><purge node='weird'/></event></message>")
    publisher.send_raw(event("weird", "<item id='junk'><a xmlns='urn:x'><b><c/></b></a><second xmlns='urn:y'/></item>"))
    publisher.send_raw(event("weird", "<item id='last'><x xmlns='urn:x'/></item>"))
    # (a notification without payload is completed by a fetch: 'empty' is not on the node,
    # so it never runs with None, and its gap is recorded)
    assert connected.wait_for("seen", lambda v: len(v) >= 3) == [("", False), ("junk", False), ("last", False)]
    time.sleep(0.3)
    assert len(connected.eval("seen")) == 3
    [hook] = json.loads(connected.run("%hook list -O json").stdout)
    assert hook["gaps"] == 1
    assert "connected" in connected.run("%hook status").stdout


def test_a_huge_payload_and_a_burst_of_ten_thousand_items(connected, publisher):
    connected.run("sizes = []")
    connected.run('%hook create -s admin@localhost -n big -t python_code sizes.append(len(item["payload"].text or ""))')
    publisher.send_raw(event("big", f"<item id='huge'><x xmlns='urn:x'>{'a' * 1_000_000}</x></item>"))
    assert connected.wait_for("sizes", lambda v: len(v) >= 1) == [1_000_000]
    burst = "".join(f"<item id='b{i}'><x xmlns='urn:x'>{i}</x></item>" for i in range(10_000))
    publisher.send_raw(event("big", burst))
    deadline = time.monotonic() + 60
    while True:
        s = summary(connected)
        if s["triggers"] + s["dropped"] >= 10_001:
            break
        assert time.monotonic() < deadline, s
        time.sleep(0.2)
    # What did not fit the hook's queue is counted as dropped, never silently lost.
    assert s["triggers"] + s["dropped"] == 10_001 and s["errors"] == 0
    publisher.send_raw(event("big", "<item id='after'><x xmlns='urn:x'>ok</x></item>"))
    connected.wait_for("sizes[-1]", lambda v: v == 2)


def test_node_names_with_spaces_and_non_ascii(connected, publisher):
    node = f"nœud à espaces {time.monotonic_ns()}"
    publisher.create_node(node)
    connected.run("seen = []")
    out = connected.run(f"%hook create -s pubsub.localhost -n '{node}' -t python_code seen.append(item['id'])").stdout
    assert node in out
    publisher.publish(node, item_id="é1")
    assert connected.wait_for("seen", lambda v: v == ["é1"])
    assert connected.run(f'%hook delete -s pubsub.localhost -n "{node}"').stdout.strip() == "1 hook(s) have been deleted"


def test_a_damaged_store_is_set_aside_and_connect_says_so(kernel, server, data_dir):
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = data_dir / "hooks-alice@localhost.json"
    store.write_text('{"hooks": [{"id": "abc", "serv')
    store.chmod(0o600)
    out = kernel.run(connect_line(server)).stdout
    assert "damaged" in out and "moved to" in out
    [aside] = list(data_dir.glob("hooks-alice@localhost.json.damaged-*"))
    assert aside.read_text() == '{"hooks": [{"id": "abc", "serv'
    assert not store.exists()


def test_a_store_writable_by_others_is_refused(kernel, server, data_dir):
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = data_dir / "hooks-alice@localhost.json"
    store.write_text('{"hooks": []}')
    store.chmod(0o666)
    message = kernel.usage_error(connect_line(server))
    assert "writable by other users" in message and "chmod 600" in message
