"""Nodes that keep no items (``pubsub#persist_items = false``): Prosody 0.12 refuses
every read of their items (``feature-not-implemented``), so there is no catch-up. The
node is live-only (nodeinfo.LiveOnly): its hooks are ``active`` and run live items at
once, what was missed is one ``gap`` per hook and catch-up that says why, the log says
it once per session (no loop of retries), and ``create``, ``list`` and ``status`` show it."""

from __future__ import annotations

import logging
import time

import pytest

from pubsub_hook_magic.formatting import hooks_text, status_text
from pubsub_hook_magic.loopthread import LoopThread
from pubsub_hook_magic.manager import HookManager
from pubsub_hook_magic.nodeinfo import create_notes, is_off
from pubsub_hook_magic.testing.proxy import TcpProxy

from .conftest import PASSWORDS
from .test_payloads import SERVICE, Xmpp, create_configured, wait_until, xmpp  # noqa: F401 (a fixture)

HOOK = "ran.append(item['id'])"


def test_what_create_says_from_a_configuration_form():
    assert is_off(False) and is_off("0") and is_off("false") and not is_off(True) and not is_off("1")
    assert create_notes(SERVICE, "n", {}, {}) == []
    notes = create_notes(SERVICE, "n", {"pubsub#persist_items": False}, {(SERVICE, "n"): "why"})
    assert len(notes) == 1 and "keeps no items" in notes[0] and "live items only" in notes[0]
    # a service that keeps the last item of such a node (ejabberd): another note
    (note,) = create_notes(SERVICE, "n", {"pubsub#persist_items": "0"}, {})
    assert "only its last one" in note


def node_warnings(records: list[logging.LogRecord], node: str) -> list[str]:
    return [r.getMessage() for r in records if r.levelno >= logging.WARNING and node in r.getMessage()]


@pytest.mark.timeout(90)
def test_a_node_that_keeps_no_items_runs_live_items_and_reports_what_was_missed_once(
    server, publisher, tmp_path, caplog
):
    node = f"nopersist{time.monotonic_ns()}"
    create_configured(publisher, node, persist_items="0")
    data_dir = str(tmp_path / "store")
    ran: list[str] = []
    thread = LoopThread()
    proxy = TcpProxy(server.host, server.port)
    manager = HookManager({"ran": ran}, data_dir=data_dir)
    caplog.set_level(logging.INFO, logger="pubsub_hook_magic")
    try:
        thread.run(manager.connect("alice@localhost", PASSWORDS["alice"], host=server.host, port=server.port,
                                   tls=False), 30)
        hook = thread.run(manager.create_hook(SERVICE, node, "python_code", HOOK, persistent=True), 30)
        # create says so (found by the read of the node's newest item: alice is no owner)
        assert [n for n in hook.notes if "keeps no items" in n] == [
            f"node {node!r} keeps no items (pubsub#persist_items is off): this hook runs live items only; "
            "what is published while disconnected is lost (a gap is recorded at each reconnection)"
        ]
        publisher.publish(node, item_id="live1")
        wait_until(lambda: ran == ["live1"], what="a live item")
        thread.run(manager.disconnect(), 30)

        publisher.publish(node, item_id="missed1")  # while away: lost, the node keeps nothing
        caplog.clear()
        manager = HookManager({"ran": ran}, data_dir=data_dir)
        assert thread.run(manager.connect("alice@localhost", PASSWORDS["alice"], host="127.0.0.1", port=proxy.port,
                                          tls=False), 30) == []
        # released at once: active, and its live items run (never held behind a catch-up)
        wait_until(lambda: manager.list_hooks()[0]["state"] == "active", 5, "active")
        publisher.publish(node, item_id="live2")
        wait_until(lambda: ran == ["live1", "live2"], 5, "the live item after the connect")
        (summary,) = manager.list_hooks()
        assert summary["gaps"] == 1
        gap = next(t for t in summary["recent"] if t["outcome"] == "gap")
        assert "keeps no items" in gap["error"] and "live items only" in gap["error"]
        assert summary["live_only"] == (
            f"catch-up impossible: node {node!r} keeps no items (pubsub#persist_items is off), so what is "
            "published while disconnected is lost"
        )
        assert f"hook {summary['id']} runs live items only: catch-up impossible" in hooks_text([summary])
        assert f"node {node} on {SERVICE}: live items only: catch-up impossible" in status_text(manager.status())
        time.sleep(2.5)  # a retry loop (1 s, 2 s...) would warn again meanwhile
        assert len(node_warnings(caplog.records, node)) == 1, node_warnings(caplog.records, node)

        # A reconnection: one more gap (items may have been missed again), no new warning.
        proxy.cut()
        wait_until(lambda: manager.session.reconnects >= 1 and manager.session.connected, 20, "reconnected")
        wait_until(lambda: manager.list_hooks()[0]["gaps"] == 2, 10, "the gap of the reconnection")
        wait_until(lambda: manager.list_hooks()[0]["state"] == "active", 5, "active again")
        time.sleep(0.5)  # the restored session has announced what it listens to
        publisher.publish(node, item_id="live3")
        wait_until(lambda: ran == ["live1", "live2", "live3"], 5, "the live item after the reconnection")
        assert len(node_warnings(caplog.records, node)) == 1, node_warnings(caplog.records, node)
        assert "missed1" not in ran
    finally:
        thread.run(manager.disconnect(), 30)
        thread.stop()
        proxy.close()


@pytest.mark.timeout(60)
def test_the_owner_is_told_at_create_from_the_node_configuration(xmpp: Xmpp, tmp_path):  # noqa: F811
    node = f"nopersistowner{time.monotonic_ns()}"
    create_configured(xmpp.owner, node, persist_items="0", deliver_payloads="0")
    thread = LoopThread()
    manager = HookManager({}, data_dir=str(tmp_path / "store"))
    try:
        thread.run(manager.connect("admin@localhost/owner2", PASSWORDS["admin"], host=xmpp.host, port=xmpp.port,
                                   **xmpp.tls), 30)
        hook = thread.run(manager.create_hook(SERVICE, node, "python_code", "pass"), 30)
        assert len(hook.notes) == 2, hook.notes
        assert "deliver_payloads" in hook.notes[1]
        if xmpp.name == "prosody":  # it refuses to read the node's items
            assert "keeps no items" in hook.notes[0]
        else:  # ejabberd keeps the node's last item and returns it
            assert "returns only its last one" in hook.notes[0]
    finally:
        thread.run(manager.disconnect(), 30)
        thread.stop()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("debian_server", ["ejabberd"], indirect=True)  # (Prosody keeps none: above)
def test_on_ejabberd_a_node_that_keeps_its_last_item_only_reports_a_gap_and_runs_that_item(
    xmpp: Xmpp, tmp_path  # noqa: F811 (the fixture)
):
    """ejabberd keeps the last item of a node with persist_items off: a catch-up is
    possible, of that one item; what was published before it while away is a gap."""
    assert xmpp.name == "ejabberd"
    node = f"lastonly{time.monotonic_ns()}"
    create_configured(xmpp.owner, node, persist_items="0")
    data_dir = str(tmp_path / "store")
    ran: list[str] = []
    thread = LoopThread()
    manager = HookManager({"ran": ran}, data_dir=data_dir)
    try:
        thread.run(manager.connect("alice@localhost", PASSWORDS["alice"], host=xmpp.host, port=xmpp.port,
                                   **xmpp.tls), 30)
        thread.run(manager.create_hook(SERVICE, node, "python_code", HOOK, persistent=True), 30)
        xmpp.owner.publish(node, item_id="live1")
        wait_until(lambda: ran == ["live1"], what="a live item")
        thread.run(manager.disconnect(), 30)
        xmpp.owner.publish(node, item_id="missed1")
        xmpp.owner.publish(node, item_id="missed2")
        manager = HookManager({"ran": ran}, data_dir=data_dir)
        thread.run(manager.connect("alice@localhost", PASSWORDS["alice"], host=xmpp.host, port=xmpp.port,
                                   **xmpp.tls), 30)
        wait_until(lambda: ran == ["live1", "missed2"], what="the item the node kept")
        wait_until(lambda: manager.list_hooks()[0]["state"] == "active", 5, "active")
        time.sleep(0.5)  # the pushed copy of missed2 runs nothing more
        assert ran == ["live1", "missed2"]
        (summary,) = manager.list_hooks()
        assert summary["gaps"] == 1 and summary["live_only"] is None
        gap = next(t for t in summary["recent"] if t["outcome"] == "gap")
        assert "it keeps 1 item(s)" in gap["error"]
    finally:
        thread.run(manager.disconnect(), 30)
        thread.stop()
