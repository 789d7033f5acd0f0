"""A persistent hook never drops an item: when its queue is full, the items stay on the
node and are fetched once the queue has drained (temporary hooks count drops)."""

from __future__ import annotations

import time

import pytest

from pubsub_hook_magic.loopthread import LoopThread
from pubsub_hook_magic.manager import HookManager

from .conftest import PASSWORDS


@pytest.mark.timeout(90)
def test_a_full_queue_loses_nothing_for_a_persistent_hook(server, publisher, tmp_path):
    node = f"flood{time.monotonic_ns()}"
    publisher.create_node(node, max_items=500)
    thread = LoopThread()
    manager = HookManager({"ran": [], "temp": [], "time": time}, data_dir=str(tmp_path), queue_size=5)
    try:
        thread.run(manager.connect("alice@localhost", PASSWORDS["alice"], host=server.host, port=server.port, tls=False), 30)
        slow = "time.sleep(0.005); ran.append(item['id'])"
        thread.run(manager.create_hook("pubsub.localhost", node, "python_code", slow, persistent=True), 30)
        thread.run(manager.create_hook("pubsub.localhost", node, "python_code", slow.replace("ran", "temp")), 30)
        ids = publisher.publish_many(node, 150)
        deadline = time.monotonic() + 60
        while len(manager.namespace["ran"]) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)

        async def summaries():
            return {s["persistent"]: s for s in manager.list_hooks()}

        by_lifetime = thread.run(summaries(), 10)
        assert manager.namespace["ran"] == ids  # all, once each, in order
        assert by_lifetime[True]["dropped"] == 0
        temporary = by_lifetime[False]
        assert temporary["dropped"] > 0  # the temporary hook's queue overflowed too...
        assert len(manager.namespace["temp"]) + temporary["dropped"] == len(ids)  # ...and said so
    finally:
        thread.run(manager.disconnect(), 30)
        thread.stop()
