"""When a node's owner changes things under the hooks (issue 20): the node deleted and
created again, our subscription removed. Real Prosody; the owner is the test's publisher
(admin@localhost, who creates the nodes)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from pubsub_hook_magic.hooks import HookError
from pubsub_hook_magic.loopthread import LoopThread
from pubsub_hook_magic.manager import HookManager
from pubsub_hook_magic.testing.proxy import TcpProxy

from .conftest import PASSWORDS
from .support import Publisher

SERVICE = "pubsub.localhost"
RECORD = "seen.append((item.name, item['id'] if item.name in ('item', 'retract') else item['node']))"


def wait_until(predicate, timeout: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not met in {timeout} s"
        time.sleep(0.05)


class Host:
    """A HookManager on its own loop thread, connected as alice (through a proxy, so
    that its link can be cut)."""

    def __init__(self, server: Any, data_dir: str, proxy: TcpProxy | None = None, ca_file: str | None = None):
        self.thread = LoopThread()
        self.manager = HookManager({"seen": []}, data_dir=data_dir)
        self.seen: list[Any] = self.manager.namespace["seen"]
        port = proxy.port if proxy is not None else server.port
        self.run(self.manager.connect(
            "alice@localhost", PASSWORDS["alice"], host=server.host, port=port, tls=ca_file is not None, ca_file=ca_file,
        ))

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return self.thread.run(coro, timeout)

    def call(self, func: Any, *args: Any) -> Any:
        async def call() -> Any:
            return func(*args)

        return self.run(call())

    def summary(self, hook_id: str) -> dict[str, Any]:
        return next(s for s in self.call(self.manager.list_hooks) if s["id"] == hook_id)

    def state(self, hook_id: str) -> str:
        return self.summary(hook_id)["state"]

    def close(self) -> None:
        try:
            self.run(self.manager.disconnect())
        finally:
            self.thread.stop()


@pytest.fixture
def host(server, tmp_path):
    host = Host(server, str(tmp_path / "store"))
    yield host
    host.close()


def modify_subscription(owner: Publisher, node: str, jid: str, state: str) -> None:
    owner.run(owner.client.plugin["xep_0060"].modify_subscriptions(SERVICE, node, [(jid, state)], timeout=15))


def items_run(host: Host) -> list[str]:
    return [i for kind, i in host.seen if kind == "item"]


def test_a_deleted_node_shows_on_its_hooks_once_and_they_resume_when_it_is_back(host, publisher, node, caplog):
    plain = host.run(host.manager.create_hook(SERVICE, node, "python_code", RECORD))
    on_delete = host.run(host.manager.create_hook(SERVICE, node, "python_code", RECORD, events="delete"))
    publisher.publish(node, item_id="before")
    wait_until(lambda: items_run(host) == ["before"], what="the first item")
    with caplog.at_level(logging.INFO, logger="pubsub_hook_magic"):
        publisher.delete_node(node)
        wait_until(lambda: host.state(plain.id) == "node deleted", what="node deleted")
        assert ("delete", node) in host.seen  # the -e delete hook still ran
        summary = host.summary(plain.id)
        assert "created again" in summary["node_problem"]
        status = host.call(host.manager.status)
        assert [(p["node"], p["state"]) for p in status["node_problems"]] == [(node, "node deleted")]
        assert host.state(on_delete.id) == "node deleted"
        # The owner creates it again and publishes at once (before we notice it is back).
        publisher.create_node(node)
        publisher.publish(node, item_id="after-1")
        wait_until(lambda: items_run(host) == ["before", "after-1"], 30, "the new node's first item")
        wait_until(lambda: host.state(plain.id) == "active", what="active again")
        publisher.publish(node, item_id="after-2")  # the next live item runs too
        wait_until(lambda: items_run(host) == ["before", "after-1", "after-2"], what="the next live item")
    time.sleep(0.5)
    assert items_run(host) == ["before", "after-1", "after-2"]  # each once
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and node in r.getMessage()]
    assert len(warnings) == 1 and "deleted" in warnings[0], warnings


def test_resume_looks_for_a_deleted_node_at_once(host, publisher, node):
    hook = host.run(host.manager.create_hook(SERVICE, node, "python_code", RECORD))
    publisher.delete_node(node)
    wait_until(lambda: host.state(hook.id) == "node deleted")
    publisher.create_node(node)
    host.run(host.manager.resume(hook.id))  # looks at once: back
    assert host.state(hook.id) in ("active", "catching up")
    publisher.publish(node, item_id="x")
    wait_until(lambda: items_run(host) == ["x"])


def test_resume_on_a_node_still_deleted_says_so_and_changes_nothing(host, publisher, node):
    hook = host.run(host.manager.create_hook(SERVICE, node, "python_code", RECORD))
    publisher.delete_node(node)
    wait_until(lambda: host.state(hook.id) == "node deleted")
    with pytest.raises(HookError, match="still does not exist"):
        host.run(host.manager.resume(hook.id))
    assert host.state(hook.id) == "node deleted"


def test_a_node_deleted_while_away_is_found_without_a_warning_loop(server, publisher, node, tmp_path, caplog):
    proxy = TcpProxy(server.host, server.port)
    host = Host(server, str(tmp_path / "store"), proxy)
    try:
        hook = host.run(host.manager.create_hook(SERVICE, node, "python_code", RECORD, persistent=True))
        with caplog.at_level(logging.INFO, logger="pubsub_hook_magic"):
            proxy.cut()  # the link drops; the owner deletes the node meanwhile
            publisher.delete_node(node)
            wait_until(lambda: host.manager.session.reconnects >= 1 and host.manager.connected, 30, "reconnected")
            wait_until(lambda: host.state(hook.id) == "node deleted", what="node deleted")
            time.sleep(3)  # (long enough for a retry loop to show itself)
        noisy = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and node in r.getMessage()]
        assert len(noisy) == 1, noisy
    finally:
        host.close()
        proxy.close()


def test_a_subscription_removed_by_the_owner_is_not_made_again_behind_its_back(server, publisher, node, tmp_path):
    """Prosody does not notify the removal: the reconnection's check finds it."""
    proxy = TcpProxy(server.host, server.port)
    host = Host(server, str(tmp_path / "store"), proxy)
    try:
        hook = host.run(host.manager.create_hook(SERVICE, node, "python_code", RECORD))
        assert "alice@localhost" in publisher.subscribers(node)
        modify_subscription(publisher, node, "alice@localhost", "none")
        assert "alice@localhost" not in publisher.subscribers(node)
        proxy.cut()
        wait_until(lambda: host.manager.session.reconnects >= 1 and host.manager.connected, 30, "reconnected")
        wait_until(lambda: host.state(hook.id) == "unsubscribed", what="unsubscribed")
        assert "%hook resume" in host.summary(hook.id)["node_problem"]
        assert "alice@localhost" not in publisher.subscribers(node)  # not made again
        publisher.publish(node, item_id="while-unsubscribed")
        done = host.run(host.manager.resume(hook.id))  # the user's word
        assert "subscribed again" in done[-1]
        assert "alice@localhost" in publisher.subscribers(node)
        wait_until(lambda: items_run(host) == ["while-unsubscribed"], what="caught up")
        assert host.state(hook.id) == "active"
        publisher.publish(node, item_id="live")
        wait_until(lambda: items_run(host) == ["while-unsubscribed", "live"], what="live again")
    finally:
        host.close()
        proxy.close()


@pytest.mark.kernel
def test_a_notebook_user_sees_a_deleted_node_in_list_status_and_resume(connected, publisher, node):
    def listed() -> list[dict[str, Any]]:
        return json.loads(connected.run("%hook list -O json").stdout)

    connected.run(f"%hook create -s {SERVICE} -n {node} -t python_code pass")
    publisher.delete_node(node)
    wait_until(lambda: [s["state"] for s in listed()] == ["node deleted"], what="node deleted")
    [hook] = listed()
    text = connected.run("%hook list -O text").stdout
    assert f"hook {hook['id']} is node deleted: deleted by its owner" in text
    status = connected.run("%hook status").stdout
    assert f"node {node} on {SERVICE}: node deleted" in status
    message = connected.usage_error(f"%hook resume {hook['id']}")
    assert "still does not exist" in message


def test_a_node_deleted_and_created_again_while_away_delivers_again(server, publisher, node, tmp_path):
    """Prosody 0.12 lists the old node's subscription as the new node's (which has no
    subscriber): the gap found at catch-up makes the subscription again."""
    host = Host(server, str(tmp_path / "store"))
    try:
        hook = host.run(host.manager.create_hook(SERVICE, node, "python_code", RECORD, persistent=True))
        publisher.publish(node, item_id="old")
        wait_until(lambda: items_run(host) == ["old"])
        host.run(host.manager.disconnect())
        publisher.delete_node(node)
        publisher.create_node(node)
        publisher.publish(node, item_id="new-1")
        host.run(host.manager.connect("alice@localhost", PASSWORDS["alice"], host=server.host, port=server.port,
                                      tls=False))
        wait_until(lambda: items_run(host) == ["old", "new-1"], what="the new node's item, caught up")
        wait_until(lambda: host.state(hook.id) == "active")
        publisher.publish(node, item_id="new-2")
        wait_until(lambda: items_run(host) == ["old", "new-1", "new-2"], what="live again")
    finally:
        host.close()


def test_the_audit_finds_a_subscription_removed_during_the_session(host, publisher, node):
    """Prosody does not notify, and a resumed stream checks nothing: the periodic check of
    our subscriptions (NodeWatch.audit) finds the removal."""
    hook = host.run(host.manager.create_hook(SERVICE, node, "python_code", RECORD))
    host.run(host.manager.engine.nodewatch.audit())
    assert host.state(hook.id) == "active"  # nothing removed: nothing said
    modify_subscription(publisher, node, "alice@localhost", "none")
    host.run(host.manager.engine.nodewatch.audit())
    assert host.state(hook.id) == "unsubscribed"
    assert "found missing" in host.summary(hook.id)["node_problem"]
    host.run(host.manager.resume(hook.id))
    assert host.state(hook.id) in ("active", "catching up")
    publisher.publish(node, item_id="back")
    wait_until(lambda: items_run(host) == ["back"])


def test_the_audit_asks_node_by_node_where_the_service_does_not_answer_for_all(host, publisher, node):
    """Prosody 0.12 never answers the service-wide list once a node we were subscribed
    to is deleted (here another node of ours): the audit asks per node instead."""
    other = f"{node}-gone"
    publisher.create_node(other)
    kept = host.run(host.manager.create_hook(SERVICE, node, "python_code", RECORD))
    host.run(host.manager.create_hook(SERVICE, other, "python_code", RECORD))
    publisher.delete_node(other)
    wait_until(lambda: any(s["state"] == "node deleted" for s in host.call(host.manager.list_hooks)))
    modify_subscription(publisher, node, "alice@localhost", "none")
    host.run(host.manager.engine.nodewatch.audit(), 60)
    assert host.state(kept.id) == "unsubscribed"
