"""Bugs the soak (``python -m benchmarks.soak``, issue 15) found, each reduced to the
smallest test that shows it, with the engine alone (no kernel)."""

from __future__ import annotations

import logging
import time

import pytest

from pubsub_hook_magic.loopthread import LoopThread
from pubsub_hook_magic.manager import HookManager
from pubsub_hook_magic.testing.proxy import TcpProxy
from pubsub_hook_magic.testing.server import TestServer

from .conftest import PASSWORDS
from .support import Publisher


def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not met within {timeout} s"
        time.sleep(0.05)


@pytest.mark.timeout(60)
def test_an_own_pep_hook_gets_live_items_after_a_reconnection(server, tmp_path):
    """Soak seed 15: after any reconnection (a TCP cut, a server restart), the hooks on
    the account's own PEP nodes ran no live item any more, in the kernel and in
    ``pubsub-hook run`` alike, until the next reconnection's catch-up.

    The presence sent at ``session_start`` of the new stream carries no entity caps
    (slixmpp keys its caps by full JID, and the resource is new), and the ``+notify``
    interests, unchanged, are not announced again: the server no longer knows this
    session wants the node's notifications."""
    node = f"soakpep{time.monotonic_ns()}"
    owner = Publisher("alice@localhost/owner", PASSWORDS["alice"], server.host, server.port)
    proxy = TcpProxy(server.host, server.port)
    thread = LoopThread()
    manager = HookManager({"seen": []}, data_dir=str(tmp_path / "store"))
    try:
        owner.create_node(node, service="alice@localhost")
        thread.run(manager.connect("alice@localhost", PASSWORDS["alice"], host="127.0.0.1", port=proxy.port,
                                   tls=False), 30)
        thread.run(manager.create_hook(None, node, "python_code", 'seen.append(item["id"])'), 30)
        owner.publish(node, item_id="before", service=None)
        wait_until(lambda: manager.namespace["seen"] == ["before"], what="the item before the cut")

        proxy.cut()
        wait_until(lambda: manager.session.reconnects >= 1 and manager.session.connected, 20, "reconnected")
        time.sleep(0.5)  # the restored session has announced what it listens to
        owner.publish(node, item_id="after", service=None)
        wait_until(lambda: "after" in manager.namespace["seen"], 5, "the live item after the reconnection")
        assert manager.namespace["seen"] == ["before", "after"]
    finally:
        thread.run(manager.disconnect(), 30)
        thread.stop()
        owner.close()
        proxy.close()


@pytest.mark.timeout(60)
def test_a_lost_session_says_why_this_time_not_why_last_time(tmp_path, caplog):
    """Soak seed 15: Prosody SIGKILLed was logged as "session of alice@localhost lost
    (stream error: system-shutdown)": the stream error of an earlier, graceful restart
    (or "Connect call failed", a failed attempt of the last reconnection).
    ``XmppSession._last_failure`` is never cleared when a session is restored, and it is
    the reason given whenever slixmpp gives none (through the proxy, the graceful
    restart itself reads "End of stream", the stream error being handled after)."""
    with TestServer(storage="memory") as srv:
        srv.register("alice", PASSWORDS["alice"])
        proxy = TcpProxy(srv.host, srv.port)  # as in the soak (the stanzas come in one read)
        thread = LoopThread()
        manager = HookManager({}, data_dir=str(tmp_path / "store"))
        try:
            thread.run(manager.connect("alice@localhost", PASSWORDS["alice"], host="127.0.0.1", port=proxy.port,
                                       tls=False), 30)
            with caplog.at_level(logging.WARNING, logger="pubsub_hook_magic.session"):
                srv.stop()  # graceful: the server sends <system-shutdown/>
                wait_until(lambda: not manager.session.connected, 10, "lost")
                time.sleep(1.5)  # a reconnection attempt fails meanwhile ("Connect call failed")
                srv.start()
                wait_until(lambda: manager.session.reconnects >= 1 and manager.session.connected, 20, "restored")
                caplog.clear()
                time.sleep(1.0)  # nothing in flight: the kill closes the connection (FIN), no reason given
                srv.kill()  # no stream error this time: the connection just closes
                wait_until(lambda: any("lost" in r.getMessage() for r in caplog.records), 10, "lost again")
            (lost,) = [r.getMessage() for r in caplog.records if "lost" in r.getMessage()]
            assert "system-shutdown" not in lost and "Connect call failed" not in lost, lost
        finally:
            thread.run(manager.disconnect(), 30)
            thread.stop()
            proxy.close()


@pytest.mark.timeout(60)
def test_another_machine_is_still_reported_after_it_reconnects(server, tmp_path):
    """Found with the PEP bug above (same cause): a session advertises that it runs
    persistent hooks with disco features, which slixmpp keeps per full JID; after a
    reconnection (a new resource) they are gone, and the other machine's session no
    longer warns "items may run twice"."""
    thread = LoopThread()
    proxy = TcpProxy(server.host, server.port)
    laptop = HookManager({}, data_dir=str(tmp_path / "laptop"))
    remote = HookManager({}, data_dir=str(tmp_path / "server"), role="pubsub-hook run")
    managers = []

    async def warnings(manager):
        return manager.status()["warnings"]

    def warned_about(full_jid: str) -> bool:
        return f"{full_jid} also runs persistent hooks: items may run twice" in thread.run(warnings(laptop), 5)

    try:
        thread.run(laptop.connect("alice@localhost", PASSWORDS["alice"], host=server.host, port=server.port,
                                  tls=False), 30)
        managers.append(laptop)
        thread.run(remote.connect("alice@localhost", PASSWORDS["alice"], host="127.0.0.1", port=proxy.port,
                                  tls=False), 30)
        managers.append(remote)
        first = remote.client.boundjid.full
        wait_until(lambda: warned_about(first), 10, "the first warning")

        proxy.cut()
        wait_until(lambda: remote.session.reconnects >= 1 and remote.session.connected, 20, "reconnected")
        again = remote.client.boundjid.full
        assert again != first  # (a new resource: the server chose it)
        wait_until(lambda: warned_about(again), 10, "the warning about the reconnected session")
    finally:
        for manager in managers:
            thread.run(manager.disconnect(), 30)
        thread.stop()
        proxy.close()
