"""Nodes that do not deliver payloads (``pubsub#deliver_payloads = false``): each
notification ``<item id/>`` is completed by fetching the item before any hook runs
(payloads.PayloadCompleter), in the node's order, and then counts as the item itself:
a hook runs it once, with its payload, live or at a catch-up.

First the live path alone with a fake session (order, batching, a failed fetch), then
against the real Prosody."""

from __future__ import annotations

import asyncio
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from slixmpp.plugins.xep_0060.stanza.pubsub_event import EventItem

from pubsub_hook_magic import events
from pubsub_hook_magic.hooks import Hook, HookType, load_hook
from pubsub_hook_magic.live import LivePath
from pubsub_hook_magic.loopthread import LoopThread
from pubsub_hook_magic.manager import HookManager
from pubsub_hook_magic.registry import HookIndex
from pubsub_hook_magic.runner import HookRunner
from pubsub_hook_magic.states import Outcome

from .conftest import PASSWORDS

S, N, OTHER = "pubsub.example", "n", "other"
#: What each hook records: (node, item id, payload text or None).
CODE = "seen.append((hook_node, item['id'], item['payload'].text if item['payload'] is not None else None))"


def item(item_id: str, text: str | None = None) -> EventItem:
    """An event item; without ``text``, without payload (as such a node notifies)."""
    stanza = EventItem()
    stanza["id"] = item_id
    if text is not None:
        stanza["payload"] = ET.fromstring(f"<x xmlns='urn:t'>{text}</x>")
    return stanza


class FakeSession:
    """Answers ``items_by_id`` from ``stored`` once ``gate`` is set; counts requests."""

    connected = True

    def __init__(self) -> None:
        self.stored: dict[str, str] = {}
        self.gate = asyncio.Event()
        self.gate.set()
        self.requests: list[list[str]] = []

    async def items_by_id(self, service: str, node: str, ids: list[str]) -> list[Any]:
        self.requests.append(list(ids))
        await self.gate.wait()
        return [item(i, self.stored[i]) for i in ids if i in self.stored]


class Path:
    def __init__(self) -> None:
        self.index: HookIndex[HookRunner] = HookIndex()
        self.session = FakeSession()
        self.live = LivePath(self.index, lambda: None, session=lambda: self.session)  # type: ignore[arg-type,return-value]
        self.seen: list[tuple[str, str, str | None]] = []

    def add(self, node: str = N) -> HookRunner:
        hook = Hook(service=S, node=node, type=HookType.PYTHON_CODE, arg=CODE, id=f"h-{node}")
        events.prepare(hook)
        hook.func = load_hook(hook, {"seen": self.seen, "hook_node": node})
        runner = HookRunner(hook, lambda: (None, None), held_nodes=self.live.held)
        self.index.add(runner)
        runner.start()
        return runner

    async def settle(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.seen) < count:
            assert time.monotonic() < deadline, f"expected {count} runs, got {self.seen}"
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.02)  # (and nothing more)


def run(scenario):
    async def main():
        path = Path()
        try:
            return await scenario(path)
        finally:
            for runner in path.index.ordered():
                await runner.stop()
            path.live.reset()

    return asyncio.run(main())


def test_a_notification_without_payload_runs_its_hook_with_the_fetched_payload():
    async def scenario(path: Path):
        path.add()
        path.session.stored["a"] = "A"
        path.live.on_item(S, N, item("a"))
        await path.settle(1)
        assert path.seen == [(N, "a", "A")]
        assert path.session.requests == [["a"]]
        assert not path.live.payloads.waiting  # the node is back on the fast path

    run(scenario)


def test_items_with_payloads_pay_no_request():
    async def scenario(path: Path):
        path.add()
        for i in range(5):
            path.live.on_item(S, N, item(f"p{i}", f"P{i}"))
        await path.settle(5)
        assert path.session.requests == []
        assert not path.live.payloads.waiting

    run(scenario)


def test_a_later_item_waits_behind_one_being_fetched_and_other_nodes_are_not_delayed():
    async def scenario(path: Path):
        path.add()
        path.add(OTHER)
        path.session.stored["a"] = "A"
        path.session.gate.clear()  # the fetch of "a" takes its time
        path.live.on_item(S, N, item("a"))
        path.live.on_item(S, N, item("b", "B"))  # has its payload, comes after "a"
        path.live.on_item(S, OTHER, item("c", "C"))  # another node
        await path.settle(1)
        assert path.seen == [(OTHER, "c", "C")]
        path.session.gate.set()
        await path.settle(3)
        assert path.seen == [(OTHER, "c", "C"), (N, "a", "A"), (N, "b", "B")]

    run(scenario)


def test_the_ids_waiting_on_a_node_are_fetched_together():
    async def scenario(path: Path):
        path.add()
        ids = [f"i{n}" for n in range(40)]
        path.session.stored.update({i: i.upper() for i in ids})
        path.session.gate.clear()
        for i in ids:
            path.live.on_item(S, N, item(i))
        await asyncio.sleep(0.01)
        path.session.gate.set()
        await path.settle(len(ids))
        assert [s[1] for s in path.seen] == ids and all(s[2] == s[1].upper() for s in path.seen)
        # (all 40 came before the first request went out: 32 at most in one)
        assert [len(r) for r in path.session.requests] == [32, 8]

    run(scenario)


def test_an_item_gone_before_its_fetch_runs_no_hook_and_says_so(caplog):
    async def scenario(path: Path):
        runner = path.add()
        path.session.stored["b"] = "B"
        with caplog.at_level(logging.WARNING, logger="pubsub_hook_magic.payloads"):
            path.live.on_item(S, N, item("a"))  # retracted before it is fetched: not stored
            path.live.on_item(S, N, item("b"))
            await path.settle(1)
        assert path.seen == [(N, "b", "B")]  # never ("a", None)
        (gap,) = [t for t in runner.triggers if t.outcome is Outcome.GAP]
        assert gap.item_id == "a"
        assert "without its payload" in (gap.error or "") and "no longer holds it" in (gap.error or "")
        assert runner.gaps == 1
        assert [r.levelno for r in caplog.records if "'a'" in r.getMessage()] == [logging.WARNING]

    run(scenario)


def test_a_held_notification_without_payload_is_completed_when_released():
    async def scenario(path: Path):
        path.add()
        path.session.stored.update({"a": "A"})
        path.live.hold([(S, N)])
        path.live.on_item(S, N, item("a"))
        path.live.on_item(S, N, item("b", "B"))
        path.live.release((S, N))
        await path.settle(2)
        assert path.seen == [(N, "a", "A"), (N, "b", "B")]

    run(scenario)


# ---------------------------------------------------------------------- the real servers

SERVICE = "pubsub.localhost"


@dataclass
class Xmpp:
    """A real server for these tests (the shared ``debian_server``: TLS, Debian's
    limits): how to connect, and its node owner (admin)."""

    name: str
    host: str
    port: int
    owner: Any
    #: HookManager.connect's TLS options.
    tls: dict[str, Any]


@pytest.fixture(scope="module")
def xmpp(debian_server) -> Iterator[Xmpp]:
    from .support import NodeOwner

    srv = debian_server
    owner = NodeOwner("admin@localhost/owner", PASSWORDS["admin"], srv.host, srv.port, ca_file=srv.ca_path)
    try:
        yield Xmpp(srv.kind, srv.host, srv.port, owner, {"tls": True, "ca_file": str(srv.ca_path)})
    finally:
        owner.close()


def create_configured(owner, node: str, **fields: str) -> None:
    """Create ``node`` on pubsub.localhost with these ``pubsub#`` configuration fields
    (``owner``: a connected Publisher)."""
    form = owner.client.plugin["xep_0004"].make_form("submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#node_config")
    for name, value in fields.items():
        form.add_field(var=f"pubsub#{name}", value=value)
    owner.run(owner.client.plugin["xep_0060"].create_node(SERVICE, node, config=form, timeout=15))


def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not met within {timeout} s"
        time.sleep(0.02)


HOOK = "ran.append((item['id'], item['payload'].text if item['payload'] is not None else None))"


@pytest.mark.timeout(90)
def test_a_node_without_payloads_runs_each_item_once_with_its_payload_live_and_at_catch_up(xmpp, tmp_path):
    """The bug: live runs got ``item["payload"] = None``, and a persistent hook ran the
    same item again at the next catch-up (the payload digests differed)."""
    node = f"nopayload{time.monotonic_ns()}"
    create_configured(xmpp.owner, node, deliver_payloads="0")
    data_dir = str(tmp_path / "store")
    ran: list[tuple[str, str | None]] = []
    temp: list[tuple[str, str | None]] = []
    thread = LoopThread()
    manager = HookManager({"ran": ran, "temp": temp}, data_dir=data_dir)
    try:
        thread.run(manager.connect("alice@localhost", PASSWORDS["alice"], host=xmpp.host, port=xmpp.port,
                                   **xmpp.tls), 30)
        thread.run(manager.create_hook(SERVICE, node, "python_code", HOOK, persistent=True), 30)
        thread.run(manager.create_hook(SERVICE, node, "python_code", HOOK.replace("ran", "temp")), 30)
        for n in range(3):
            xmpp.owner.publish(node, f"live{n}", item_id=f"l{n}")
        ids = xmpp.owner.publish_many(node, 20)  # a burst: completed in a few requests
        wanted = [(f"l{n}", f"live{n}") for n in range(3)] + [(i, i) for i in ids]
        wait_until(lambda: len(ran) >= len(wanted) and len(temp) >= len(wanted), what="the live items")
        assert ran == wanted and temp == wanted  # each once, with its payload, in order
        requests = manager.engine.live.payloads.requests
        assert requests < len(wanted)  # (the burst was batched)
        thread.run(manager.disconnect(), 30)

        xmpp.owner.publish(node, "missed", item_id="m0")  # while away
        manager = HookManager({"ran": ran, "temp": temp}, data_dir=data_dir)
        assert thread.run(manager.connect("alice@localhost", PASSWORDS["alice"], host=xmpp.host,
                                          port=xmpp.port, **xmpp.tls), 30) == []
        wait_until(lambda: len(ran) > len(wanted), what="the missed item")
        xmpp.owner.publish(node, "after", item_id="a0")
        wait_until(lambda: len(ran) > len(wanted) + 1, what="the live item after the catch-up")
        time.sleep(0.5)  # an item run twice would show now
        assert ran == [*wanted, ("m0", "missed"), ("a0", "after")]
        (summary,) = manager.list_hooks()
        assert summary["gaps"] == 0 and summary["state"] == "active"
    finally:
        thread.run(manager.disconnect(), 30)
        thread.stop()


@pytest.mark.timeout(60)
def test_an_item_retracted_before_its_payload_is_fetched_is_reported_not_run(xmpp, tmp_path, caplog):
    node = f"nopayloadgone{time.monotonic_ns()}"
    create_configured(xmpp.owner, node, deliver_payloads="0")
    ran: list[tuple[str, str | None]] = []
    thread = LoopThread()
    manager = HookManager({"ran": ran}, data_dir=str(tmp_path / "store"))
    try:
        thread.run(manager.connect("alice@localhost", PASSWORDS["alice"], host=xmpp.host, port=xmpp.port,
                                   **xmpp.tls), 30)
        thread.run(manager.create_hook(SERVICE, node, "python_code", HOOK), 30)
        session = manager.session
        original = session.items_by_id
        retracted = asyncio.Event()

        async def after_the_retraction(service, item_node, ids):
            if "gone" in ids:
                await retracted.wait()
            return await original(service, item_node, ids)

        session.items_by_id = after_the_retraction
        with caplog.at_level(logging.WARNING, logger="pubsub_hook_magic"):
            xmpp.owner.publish(node, "soon gone", item_id="gone")
            xmpp.owner.publish(node, "stays", item_id="stays")
            xmpp.owner.run(xmpp.owner.client.plugin["xep_0060"].retract(SERVICE, node, "gone", timeout=15))
            thread.call(retracted.set)
            wait_until(lambda: ran, what="the item after the retracted one")
            time.sleep(0.3)
        assert ran == [("stays", "stays")]
        (summary,) = manager.list_hooks()
        assert summary["gaps"] == 1
        gap = next(t for t in summary["recent"] if t["outcome"] == "gap")
        assert gap["item_id"] == "gone" and "no longer holds it" in gap["error"]
        assert len([r for r in caplog.records if "'gone'" in r.getMessage()]) == 1
    finally:
        thread.run(manager.disconnect(), 30)
        thread.stop()


@pytest.mark.timeout(60)
def test_create_says_that_payloads_are_fetched_per_item_where_the_config_is_readable(xmpp, tmp_path):
    node = f"nopayloadnote{time.monotonic_ns()}"
    create_configured(xmpp.owner, node, deliver_payloads="0")
    thread = LoopThread()
    owner = HookManager({}, data_dir=str(tmp_path / "owner"))
    other = HookManager({}, data_dir=str(tmp_path / "other"))
    try:
        thread.run(owner.connect("admin@localhost/notes", PASSWORDS["admin"], host=xmpp.host, port=xmpp.port,
                                 **xmpp.tls), 30)
        thread.run(other.connect("alice@localhost/notes", PASSWORDS["alice"], host=xmpp.host, port=xmpp.port,
                                 **xmpp.tls), 30)
        hook = thread.run(owner.create_hook(SERVICE, node, "python_code", "pass"), 30)
        assert [n for n in hook.notes if "deliver_payloads" in n] == [
            f"node {node!r} does not deliver payloads (pubsub#deliver_payloads is off): each item is fetched by "
            "id before the hook runs (one extra request per item, batched per node)"
        ]
        # Not the owner: the configuration cannot be read, nothing is said (the items still complete).
        assert thread.run(other.create_hook(SERVICE, node, "python_code", "pass"), 30).notes == []
    finally:
        thread.run(owner.disconnect(), 30)
        thread.run(other.disconnect(), 30)
        thread.stop()
