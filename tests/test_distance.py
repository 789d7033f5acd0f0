"""The engine on an account at a distance (issue 11): persistent hooks catching up through
a proxy that adds 25 ms each way, against the real Prosody, while new items keep coming.

Nodes, items and the stored hooks are made over the direct (fast) path; only the connect
that installs the hooks again, and its catch-up, go through the proxy.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest

from pubsub_hook_magic.loopthread import LoopThread
from pubsub_hook_magic.manager import HookManager
from pubsub_hook_magic.testing.proxy import TcpProxy

SERVICE = "pubsub.localhost"
ACCOUNT = ("distant", "distant-secret")
NODES = 120
MISSED = ["m0", "m1", "m2"]
#: Each run of a hook blocks its loop this long: the catch-up of 120 x 3 items then
#: lasts at least 1.8 s, so that items published at its first run arrive while it goes on.
RUN_SECONDS = 0.005


def _gather(publisher, coros, timeout: float = 60) -> None:
    async def run() -> None:
        await asyncio.gather(*coros())

    publisher.run(run(), timeout)


def _publish_to_all(publisher, nodes: list[str], item_id: str) -> None:
    """One item with id ``item_id`` to every node, all at once (acknowledged on return)."""
    from slixmpp.xmlstream import ET

    xep = publisher.client.plugin["xep_0060"]
    _gather(publisher, lambda: (
        xep.publish(SERVICE, node, id=item_id, payload=ET.fromstring(f'<n xmlns="urn:test">{item_id}</n>'),
                    timeout=30)
        for node in nodes
    ))


@pytest.mark.timeout(240)  # about 20 s on the engine of issue 5 (2 round trips per hook, in turn)
def test_persistent_hooks_at_a_distance_run_the_missed_items_then_the_new_ones_in_order(
    server, publisher, tmp_path
):
    jid = f"{server.register(*ACCOUNT)}/far"
    prefix = f"far{uuid.uuid4().hex[:8]}"
    nodes = [f"{prefix}-{i}" for i in range(NODES)]
    xep = publisher.client.plugin["xep_0060"]
    _gather(publisher, lambda: (xep.create_node(SERVICE, node, timeout=30) for node in nodes))
    _publish_to_all(publisher, nodes, "old")  # there before the hooks: never runs

    ran: list[tuple[str, str]] = []
    started = threading.Event()
    namespace = {"ran": ran, "started": started, "time": time}
    data_dir = str(tmp_path / "store")
    thread = LoopThread(name="distance-test")
    proxy = TcpProxy(server.host, server.port, delay=0.025)
    manager = None
    try:
        # The hooks, stored, over the direct path.
        first = HookManager(namespace, data_dir=data_dir)
        thread.run(first.connect(jid, ACCOUNT[1], host=server.host, port=server.port, tls=False), 30)

        async def create_all() -> None:
            for node in nodes:
                code = f"ran.append(({node!r}, item['id'])); started.set(); time.sleep({RUN_SECONDS})"
                await first.create_hook(SERVICE, node, "python_code", code, persistent=True)

        thread.run(create_all(), 120)
        thread.run(first.disconnect(), 30)

        # Away: three items on every node.
        for item_id in MISSED:
            _publish_to_all(publisher, nodes, item_id)
        assert ran == []

        # Back, 50 ms of round trip away; one more item per node as soon as the catch-up runs.
        manager = HookManager(namespace, data_dir=data_dir)
        connecting = thread.submit(manager.connect(jid, ACCOUNT[1], host=proxy.host, port=proxy.port, tls=False))
        assert started.wait(150), "no missed item ran"
        _publish_to_all(publisher, nodes, "live")
        ran_when_published = len(ran)
        warnings = connecting.result(150)
        assert warnings == []

        total = NODES * (len(MISSED) + 1)
        deadline = time.monotonic() + 150
        while len(ran) < total and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # an item run twice would show now
    finally:
        if manager is not None:
            try:
                thread.run(manager.disconnect(), 30)
            except Exception:  # noqa: BLE001 - the assertions below say what went wrong
                pass
        thread.stop()
        proxy.close()

    # The catch-up was still going when the new items were published (and acknowledged).
    assert ran_when_published < NODES * len(MISSED)
    per_node: dict[str, list[str]] = {node: [] for node in nodes}
    for node, item_id in ran:
        per_node[node].append(item_id)
    wrong = {node: ids for node, ids in per_node.items() if ids != [*MISSED, "live"]}
    assert not wrong, f"{len(wrong)} of {NODES} nodes ran other than {[*MISSED, 'live']}: {dict(list(wrong.items())[:5])}"
    assert len(ran) == total
