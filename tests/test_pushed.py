"""Catch-up from the item the server pushed (pushed.resume_from_pushed): what it asks
and what it decides, with a fake session. (ejabberd pushes a node's last item on
presence; Prosody's service nodes push nothing, and then nothing is asked here.)"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from typing import Any

from slixmpp.plugins.xep_0060.stanza.pubsub_event import EventItem

from pubsub_hook_magic.dedupe import ItemRef
from pubsub_hook_magic.hooks import Hook, HookType
from pubsub_hook_magic.live import HeldEvent, HeldItem
from pubsub_hook_magic.pushed import resume_from_pushed
from pubsub_hook_magic.runner import HookRunner

S, N = "pubsub.example", "n"


def item(item_id: str, text: str) -> EventItem:
    stanza = EventItem()
    stanza["id"] = item_id
    stanza["payload"] = ET.fromstring(f"<x xmlns='urn:t'>{text}</x>")
    return stanza


class Node:
    """A fake session over one node's items (oldest first); records what is asked."""

    def __init__(self, *items: tuple[str, str], rsm: bool = True) -> None:
        self.items = [item(i, t) for i, t in items]
        self.rsm = rsm
        self.asked: list[str] = []

    async def newest_item_ids(self, service: str, node: str, count: int) -> list[str] | None:
        self.asked.append("ids")
        return [i["id"] for i in self.items[-count:]] if self.rsm else None

    async def items_by_id(self, service: str, node: str, ids: list[str]) -> list[Any]:
        self.asked.append("by id " + ",".join(ids))
        return [i for i in self.items if i["id"] in ids]


def runner_after(*ran: tuple[str, str]) -> HookRunner:
    hook = Hook(service=S, node=N, type=HookType.PYTHON_CODE, arg="pass", id=f"h{len(ran)}")
    runner = HookRunner(hook, lambda: (None, None))
    runner.set_position([ItemRef.of(item(i, t)) for i, t in ran])
    return runner


def pushed(item_id: str, text: str) -> list[HeldItem | HeldEvent]:
    stanza = item(item_id, text)
    return [HeldItem(stanza, ItemRef.of(stanza))]


def resume(session: Node, runners: list[HookRunner], held: list[HeldItem | HeldEvent] | None) -> Any:
    return asyncio.run(resume_from_pushed(session, S, N, runners, held))  # type: ignore[arg-type]


def test_nothing_missed_asks_nothing():
    session = Node(("a", "A"), ("b", "B"))
    runner = runner_after(("a", "A"), ("b", "B"))
    keyed, starts = resume(session, [runner], pushed("b", "B"))
    assert session.asked == [] and starts == {runner: 1} and [r.id for _i, r in keyed] == ["b"]


def test_one_item_missed_runs_from_the_pushed_copy_after_checking_the_one_before():
    session = Node(("a", "A"), ("b", "B"), ("c", "C"))
    runner = runner_after(("a", "A"), ("b", "B"))
    keyed, starts = resume(session, [runner], pushed("c", "C"))
    assert sorted(session.asked) == ["by id b", "ids"]
    assert [r.id for _i, r in keyed] == ["b", "c"] and starts == {runner: 1}  # c runs, b does not


def test_more_missed_or_a_changed_predecessor_is_left_to_the_ordinary_catch_up():
    more = Node(("b", "B"), ("x", "X"), ("c", "C"))
    assert resume(more, [runner_after(("b", "B"))], pushed("c", "C")) is None
    # b was published again with another payload while away: it runs again, then c
    changed = Node(("a", "A"), ("b", "B2"), ("c", "C"))
    _keyed, starts = resume(changed, [(r := runner_after(("b", "B")))], pushed("c", "C"))
    assert starts == {r: 0}  # b (new payload) and c both run
    # a service that lists every id (Prosody 0.12): not decided here
    assert resume(Node(("b", "B"), ("c", "C"), rsm=False), [runner_after(("b", "B"))], pushed("c", "C")) is None


def test_nothing_held_or_more_than_one_item_held_asks_nothing():
    session = Node(("b", "B"), ("c", "C"))
    runner = runner_after(("b", "B"))
    assert resume(session, [runner], None) is None
    assert resume(session, [runner], [*pushed("c", "C"), *pushed("d", "D")]) is None
    assert resume(session, [runner_after()], pushed("c", "C")) is None  # from the node's start
    assert session.asked == []
