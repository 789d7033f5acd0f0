"""A node that delivered on this stream is not asked for its subscription (issue 20):
ejabberd pushes each subscribed node's last item on initial presence, and such an item
proves the subscription. What counts as proof (an item of this stream, held before the
node's check would go out), with a fake session; then on Prosody and ejabberd as Debian
ships them, with a predecessor published again under its id while away."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from slixmpp.plugins.xep_0060.stanza.pubsub_event import EventItem

from pubsub_hook_magic.background import TaskSet
from pubsub_hook_magic.catchup import CatchUp
from pubsub_hook_magic.live import LivePath
from pubsub_hook_magic.positions import PositionKeeper
from pubsub_hook_magic.registry import HookIndex
from pubsub_hook_magic.runner import HookRunner
from pubsub_hook_magic.xmpp_session import XmppSession
from pubsub_hook_magic.subscriptions import SubscriptionRemoved, Subscriptions

from .conftest import PASSWORDS
from .support import NodeOwner
from .test_nodewatch import SERVICE, Host, wait_until

S = "pubsub.example"
A, B = (S, "a"), (S, "b")


def item(item_id: str) -> EventItem:
    stanza = EventItem()
    stanza["id"] = item_id
    stanza["payload"] = ET.fromstring(f"<x xmlns='urn:t'>{item_id}</x>")
    return stanza


class FakeSession:
    """Answers subscription checks (``states``: node -> state, "subscribed" by
    default) and records them; ``pushed`` nodes' items arrive, as ejabberd sends them,
    before the answer to our presence."""

    connected = True

    def __init__(self, live: LivePath, pushed: tuple[str, ...] = (), states: dict[str, str | None] | None = None):
        self.live = live
        self.pushed = pushed
        self.states = states or {}
        self.asked: list[str] = []
        self.waited = 0
        #: called while a check is on its way (an item arriving after it went out)
        self.during_check: Any = None

    async def presence_answered(self, timeout: float) -> bool:
        self.waited += 1
        for node in self.pushed:
            self.live.on_item(S, node, item(f"last-of-{node}"))
        return True

    async def subscription_state(self, service: str, node: str) -> str | None:
        self.asked.append(node)
        if self.during_check is not None:
            self.during_check(node)
        await asyncio.sleep(0)
        return self.states.get(node, "subscribed")


class World:
    def __init__(self, **fake: Any):
        self.index: HookIndex[HookRunner] = HookIndex()
        self.live = LivePath(self.index, lambda: None)
        self.session = FakeSession(self.live, **fake)
        self.subscriptions = Subscriptions(lambda: self.session, lambda: None)  # type: ignore[arg-type,return-value]
        self.problems: list[tuple[tuple[str, str], Exception]] = []
        self.catchup = CatchUp(
            self.index, self.live, PositionKeeper(), self.subscriptions, lambda: self.session,  # type: ignore[arg-type,return-value]
            TaskSet(), lambda: None, lambda key, exc: bool(self.problems.append((key, exc))),
        )


def run(scenario: Any) -> Any:
    return asyncio.run(scenario())


def test_a_node_whose_item_came_before_the_checks_is_not_asked():
    async def scenario() -> None:
        world = World(pushed=("a",))
        assert await world.catchup.resume([A, B]) == {}
        assert world.session.asked == ["b"] and world.session.waited == 1
        while world.live.held:  # (each node catches up, then is released)
            await asyncio.sleep(0.005)
        assert not world.live.delivering  # (a proof lasts while its node is held)

    run(scenario)


def test_an_item_that_comes_after_the_check_went_out_leaves_the_answer_to_decide():
    async def scenario() -> None:
        world = World(states={"a": None})
        world.subscriptions.ours = {A}  # ours, and the service lists none: removed
        world.session.during_check = lambda node: world.live.on_item(S, node, item("late"))
        await world.catchup.resume([A])
        assert world.session.asked == ["a"]
        assert [(key, type(exc)) for key, exc in world.problems] == [(A, SubscriptionRemoved)]

    run(scenario)


def test_an_item_of_the_previous_stream_proves_nothing_after_a_reconnection():
    async def scenario() -> None:
        world = World()
        world.live.hold([A])
        world.live.on_item(S, "a", item("old-stream"))  # held (its node still catching up) when the stream dropped
        world.catchup.resume_in_background([A])  # the new stream's on_restored
        deadline = time.monotonic() + 5
        while not world.session.asked:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
        assert world.session.asked == ["a"]

    run(scenario)


def test_a_single_node_made_to_deliver_later_is_asked_without_waiting():
    async def scenario() -> None:
        world = World(pushed=("a",))
        assert await world.subscriptions.ensure([A]) == {}  # (a hook taken over, resumed: no presence to wait for)
        assert world.session.asked == ["a"] and world.session.waited == 0

    run(scenario)


# --------------------------------------------------------------------------- real servers

RECORD = "seen.append((item['id'], item['payload'].text if item['payload'] is not None else None))"


@pytest.fixture(scope="module")
def owner(debian_server) -> Iterator[NodeOwner]:
    owner = NodeOwner("admin@localhost", PASSWORDS["admin"], debian_server.host, debian_server.port,
                      ca_file=debian_server.ca_path)
    yield owner
    owner.close()


def test_a_reconnection_asks_only_the_nodes_that_pushed_nothing_and_runs_each_item_once(
    debian_server, owner, tmp_path, monkeypatch
):
    """ejabberd pushes the last item of ``pushes`` (its default) and not of ``quiet``
    (``send_last_published_item`` never): only ``quiet`` is asked. On ``pushes``, the
    item before the pushed one was published again under its id while away: it runs
    again, with its new payload. Prosody pushes nothing: both are asked."""
    asked: list[str] = []
    check = XmppSession.subscription_state

    async def counted(self: XmppSession, service: str, node: str) -> str | None:
        asked.append(node)
        return await check(self, service, node)

    monkeypatch.setattr(XmppSession, "subscription_state", counted)
    tag = debian_server.kind
    pushes, quiet = f"pushes-{tag}", f"quiet-{tag}"
    owner.create_node(pushes)
    owner.create_node(quiet, send_last_published_item="never")
    host = Host(debian_server, str(tmp_path / "store"), ca_file=debian_server.ca_path)
    try:
        for node in (pushes, quiet):
            host.run(host.manager.create_hook(SERVICE, node, "python_code", RECORD, persistent=True))
        owner.publish(pushes, "x1", item_id="x")
        owner.publish(pushes, "r1", item_id="r")
        owner.publish(quiet, "q1", item_id="q")
        wait_until(lambda: len(host.seen) == 3, what="the first items")
        host.run(host.manager.disconnect())
        owner.publish(pushes, "r2", item_id="r")  # the predecessor, again under its id
        owner.publish(pushes, "p1", item_id="p")  # then the one ejabberd pushes
        owner.publish(quiet, "m1", item_id="m")
        asked.clear()
        host.run(host.manager.connect("alice@localhost", PASSWORDS["alice"], host=debian_server.host,
                                      port=debian_server.port, ca_file=debian_server.ca_path))
        wait_until(lambda: len(host.seen) >= 6, 30, "the missed items")
        time.sleep(0.5)  # an item run twice would show now
        ran = {node: [] for node in ("x", "r", "p", "q", "m")}
        for item_id, text in host.seen:
            ran[item_id].append(text)
        assert ran == {"x": ["x1"], "r": ["r1", "r2"], "p": ["p1"], "q": ["q1"], "m": ["m1"]}, host.seen
        assert [i for i, _t in host.seen[3:] if i != "m"] == ["r", "p"], host.seen  # (in the node's order)
        assert sorted(asked) == ([quiet] if tag == "ejabberd" else sorted([pushes, quiet]))
    finally:
        host.close()
