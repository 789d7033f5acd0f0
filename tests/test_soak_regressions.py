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
            with caplog.at_level(logging.WARNING, logger="pubsub_hook_magic.xmpp_session"):
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
    reconnection with a new resource they were gone, and the other machine's session no
    longer warned "items may run twice". (Fixed: a session keeps its resource.)"""
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
        assert again == first  # (the fix: the session keeps its resource across reconnections)
        time.sleep(1.0)  # the other side saw it go (unavailable) and come back
        wait_until(lambda: warned_about(again), 10, "the warning about the reconnected session")
    finally:
        for manager in managers:
            thread.run(manager.disconnect(), 30)
        thread.stop()
        proxy.close()


@pytest.mark.timeout(90)
def test_a_catch_up_that_fails_does_not_skip_the_missed_items(server, publisher, node, tmp_path):
    """Soak seed 7 (30 min): a proxy block ended, the session was restored, and 0.3 s
    later the next block cut it again. The catch-up of that short session failed (its
    request was never answered), which released the node's held live items into the
    hook: its resume position moved past the items it had missed, and the next
    reconnection's catch-up started after them. 181 items of a persistent PEP hook were
    never run. Here the catch-up request fails once, with a live item held meanwhile."""
    import asyncio
    import threading

    from pubsub_hook_magic.xmpp_session import RequestError

    proxy = TcpProxy(server.host, server.port)
    thread = LoopThread()
    manager = HookManager({"seen": []}, data_dir=str(tmp_path / "store"))
    fetching, fail_now = threading.Event(), threading.Event()
    try:
        thread.run(manager.connect("alice@localhost", PASSWORDS["alice"], host="127.0.0.1", port=proxy.port,
                                   tls=False), 30)
        thread.run(manager.create_hook("pubsub.localhost", node, "python_code", 'seen.append(item["id"])'), 30)
        publisher.publish(node, item_id="a1")
        wait_until(lambda: manager.namespace["seen"] == ["a1"], what="a1")

        proxy.block()
        wait_until(lambda: not manager.session.connected, 10, "lost")
        for n in range(1, 4):
            publisher.publish(node, item_id=f"m{n}")  # missed while away
        session = manager.session
        original = session.last_items

        async def fails_once(service, item_node, max_items=1):
            if item_node == node and not fetching.is_set():
                fetching.set()
                while not fail_now.is_set():
                    await asyncio.sleep(0.02)
                raise RequestError(f"reading items of {item_node!r} on {service}", "remote-server-timeout", "")
            return await original(service, item_node, max_items)

        session.last_items = fails_once
        proxy.unblock()
        wait_until(fetching.is_set, 20, "the catch-up after the reconnection")
        publisher.publish(node, item_id="live")  # arrives while the node catches up: held
        time.sleep(0.5)
        fail_now.set()  # the catch-up fails (as when its stream is cut before the answer)
        time.sleep(0.5)
        del session.last_items

        proxy.cut()  # another reconnection, another catch-up (if none was retried already)
        deadline = time.monotonic() + 20
        while len(manager.namespace["seen"]) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        assert manager.namespace["seen"] == ["a1", "m1", "m2", "m3", "live"]  # (the bug: ["a1", "live"])
    finally:
        fail_now.set()
        thread.run(manager.disconnect(), 30)
        thread.stop()
        proxy.close()


@pytest.mark.kernel
@pytest.mark.timeout(120)
def test_a_kernel_shutdown_does_not_fail_the_items_its_hooks_are_running(kernel_factory, server, publisher,
                                                                         tmp_path):
    """Soak seed 7 (30 min): at a graceful kernel restart, a python_code hook failed with
    "NameError: name 'os' is not defined": IPython empties the notebook's namespace at
    exit while the extension's thread still runs hooks. A persistent hook's item that
    fails so is dead-lettered and its position moves on: the next owner never runs it.
    Here a persistent python_code hook drains a backlog while its kernel shuts down; the
    next kernel runs the rest: each item must run once, and none fail."""
    import json

    from .conftest import connect_line

    node = f"shutdown{time.monotonic_ns()}"
    publisher.create_node(node, max_items=1000)
    out = tmp_path / "ran.txt"
    code = (
        "import asyncio, os\n"
        "await asyncio.sleep(0.005)\n"
        f"with open({str(out)!r}, 'a') as f:\n"
        "    f.write(f\"{os.getpid()} {item['id']}\\n\")\n"
    )
    first = kernel_factory()
    first.run(connect_line(server))
    first.run(f"%%hook create -s pubsub.localhost -n {node} -P\n{code}")
    (hook,) = json.loads(first.run("%hook list -O json").stdout)
    ids = publisher.publish_many(node, 400)
    ran = lambda: out.read_text().split("\n") if out.exists() else []
    wait_until(lambda: len(ran()) > 50, 30, "the backlog is being run")
    first.close()  # a graceful shutdown, in the middle of the backlog

    second = kernel_factory()
    second.run(connect_line(server))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len({line.split()[1] for line in ran() if line}) < len(ids):
        time.sleep(0.2)
    time.sleep(0.5)
    failed = json.loads(second.run(f"%hook failed {hook['id']} -O json").stdout)
    assert failed == [], [f"{f['item_id']}: {f['error']}" for f in failed][:5]
    items = [line.split()[1] for line in ran() if line]
    assert sorted(items) == sorted(ids)  # each once: none failed, none lost, none twice
