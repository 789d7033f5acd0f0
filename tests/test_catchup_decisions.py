"""Catch-up's decisions (catchup.py): where a hook resumes (more cases than
test_catchup.py), what _queue_missed queues, how far _fetch reads, and the order of
missed, parked and held items. Real runners and a real loop; a fake session that
only lists a node's items."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET

from slixmpp.plugins.xep_0060.stanza.pubsub_event import EventItem

from pubsub_hook_magic import events
from pubsub_hook_magic.background import TaskSet
from pubsub_hook_magic.catchup import FIRST_FETCH, WIDEN, CatchUp, resume_index
from pubsub_hook_magic.dedupe import ItemRef, payload_digest
from pubsub_hook_magic.events import retraction
from pubsub_hook_magic.hooks import Hook, HookType, load_hook
from pubsub_hook_magic.live import LivePath
from pubsub_hook_magic.positions import PositionKeeper
from pubsub_hook_magic.registry import HookIndex
from pubsub_hook_magic.runner import HookRunner
from pubsub_hook_magic.states import HookState, Outcome, TriggerKind
from pubsub_hook_magic.subscriptions import Subscriptions

S, N = "pubsub.example", "n"
KEY = (S, N)
CODE = "seen.append((type(item).__name__, item['id']))"


def item(item_id: str, payload: str | None = None) -> EventItem:
    stanza = EventItem()
    stanza["id"] = item_id
    stanza["payload"] = ET.fromstring(payload or f"<x xmlns='urn:t' v='{item_id}'/>")
    return stanza


def keyed(*stanzas) -> list[tuple[EventItem, ItemRef]]:
    return [(s, ItemRef.of(s)) for s in stanzas]


def stored(stanza) -> ItemRef:
    """A position as read back from the store: an id and a digest, no fingerprint."""
    return ItemRef(stanza["id"], digest=payload_digest(stanza))


# --------------------------------------------------------------------------- resume_index


def test_a_stored_position_matches_a_retrieved_item_by_digest():
    a, b, c = item("a"), item("b"), item("c")
    assert resume_index(keyed(a, b, c), [stored(a), stored(b)], complete=False) == 2


def test_the_last_item_republished_with_another_payload_runs_again():
    a, b = item("a"), item("b")
    b_new = item("b", "<x xmlns='urn:t' v='new'/>")
    assert resume_index(keyed(a, b_new, item("c")), [stored(a), stored(b)], complete=False) == 1


def test_an_older_item_republished_does_not_matter_when_a_newer_one_is_there():
    a, b, c = item("a"), item("b"), item("c")
    a_new = item("a", "<x xmlns='urn:t' v='new'/>")
    assert resume_index(keyed(a_new, b, c, item("d")), [stored(a), stored(b), stored(c)], complete=False) == 3


def test_last_item_retracted_and_an_older_one_republished_resumes_at_the_older():
    a, b, c = item("a"), item("b"), item("c")
    b_new = item("b", "<x xmlns='urn:t' v='new'/>")
    # c retracted, b published again with a new payload, d published
    assert resume_index(keyed(a, b_new, item("d")), [stored(a), stored(b), stored(c)], complete=True) == 1


def test_an_incomplete_window_without_the_remembered_items_asks_for_more():
    a = item("a")
    window = keyed(item("y"), item("z"))
    assert resume_index(window, [stored(a)], complete=False) is None
    assert resume_index(window, [stored(a)], complete=True) is None, "the whole node without it: a gap"


def test_from_the_start_an_empty_node_resumes_at_zero_only_when_complete():
    start = [ItemRef("", digest="")]
    assert resume_index([], start, complete=True) == 0
    assert resume_index([], start, complete=False) is None
    assert resume_index([], [], complete=True) == 0


def test_a_remembered_item_at_the_oldest_edge_of_the_window_resumes_after_it():
    a = item("a")
    assert resume_index(keyed(a, item("b"), item("c")), [stored(a)], complete=False) == 1


def test_an_empty_node_is_a_gap_for_a_hook_with_a_position():
    assert resume_index([], [stored(item("a"))], complete=True) is None


# --------------------------------------------------------------------------- the objects


class FakeSession:
    """A connected session whose node holds ``items`` (oldest first)."""

    connected = True

    def __init__(self, items=()):
        self.items = list(items)
        self.asked: list[int | None] = []

    async def last_items(self, service, node, count):
        self.asked.append(count)
        return list(self.items if count is None else self.items[-count:])

    async def node_item_ids(self, service, node):
        return {i["id"] for i in self.items}


class World:
    def __init__(self, session=None):
        self.session = session
        self.index: HookIndex[HookRunner] = HookIndex()
        self.changes = 0
        self.live = LivePath(self.index, self._changed)
        self.tasks = TaskSet()
        subscriptions = Subscriptions(lambda: session, lambda: None, lambda key: False)
        self.catchup = CatchUp(
            self.index, self.live, PositionKeeper(), subscriptions, lambda: self.session, self.tasks, self._changed
        )
        self.seen: list[tuple[str, str]] = []

    def _changed(self) -> None:
        self.changes += 1

    def add(self, hook_id: str = "h1", *, start: bool = False, queue_size: int = 1000, **kwargs) -> HookRunner:
        hook = Hook(service=S, node=N, type=HookType.PYTHON_CODE, arg=CODE, id=hook_id, **kwargs)
        events.prepare(hook)
        hook.func = load_hook(hook, {"seen": self.seen})
        runner = HookRunner(hook, lambda: (None, None), queue_size=queue_size, held_nodes=self.live.held)
        self.index.add(runner)
        if start:
            runner.start()
        return runner

    async def settle(self, count: int) -> None:
        deadline = time.monotonic() + 5
        while len(self.seen) < count:
            assert time.monotonic() < deadline, f"expected {count} runs, got {self.seen}"
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.tasks.cancel_all()
        for runner in self.index.ordered():
            await runner.stop()


def run(scenario, session=None):
    async def main():
        world = World(session)
        try:
            return await scenario(world)
        finally:
            await world.stop()

    return asyncio.run(main())


def queued_ids(runner: HookRunner) -> list[str]:
    return [r.id for r in list(runner.submitted)]


# --------------------------------------------------------------------------- _queue_missed


def test_queue_missed_queues_from_start_as_catch_up():
    async def scenario(world: World):
        runner = world.add()
        a, b, c, d = (item(i) for i in "abcd")
        runner.set_position([stored(a), stored(b)])
        world.catchup._queue_missed(runner, keyed(a, b, c, d), 2)
        assert runner.pending == 2 and runner.catch_up_left == 2, "queued as catch-up items"
        assert queued_ids(runner) == ["a", "b", "c", "d"]
        assert runner.gaps == 0 and not runner.triggers
        assert runner.state is HookState.CATCHING_UP

    run(scenario)


def test_queue_missed_skips_the_items_it_remembers():
    async def scenario(world: World):
        runner = world.add()
        a, b, c = (item(i) for i in "abc")
        runner.set_position([stored(b)])
        world.catchup._queue_missed(runner, keyed(a, b, c), 0)
        assert queued_ids(runner)[1:] == ["a", "c"], "b ran already: not queued again"
        assert runner.pending == 2

    run(scenario)


def test_queue_missed_runs_a_remembered_id_with_another_payload():
    async def scenario(world: World):
        runner = world.add()
        b = item("b")
        runner.set_position([stored(b)])
        world.catchup._queue_missed(runner, keyed(item("b", "<x xmlns='urn:t' v='new'/>")), 0)
        assert runner.pending == 1

    run(scenario)


def test_queue_missed_without_start_reports_a_gap_and_queues_all_but_the_remembered():
    async def scenario(world: World):
        runner = world.add()
        old, newest = item("old"), item("newest")
        x, y = item("x"), item("y")
        runner.set_position([stored(old), stored(newest)])
        world.catchup._queue_missed(runner, keyed(x, y), None)
        assert runner.gaps == 1
        gap = runner.triggers[-1]
        assert gap.outcome is Outcome.GAP and gap.kind is TriggerKind.CATCH_UP
        assert "'newest'" in gap.error and "2 item(s)" in gap.error, gap.error
        assert runner.pending == 2 and queued_ids(runner)[-2:] == ["x", "y"]

    run(scenario)


def test_a_gap_from_the_start_names_no_item():
    async def scenario(world: World):
        runner = world.add()
        runner.set_position(ItemRef("", digest=""))
        world.catchup._queue_missed(runner, [], None)
        assert runner.gaps == 1 and "item ''" in runner.triggers[-1].error

    run(scenario)


def test_queue_missed_offers_to_a_filtered_hook():
    async def scenario(world: World):
        runner = world.add(where=".[@v='b']")
        a = item("a")
        runner.set_position([stored(a)])
        world.catchup._queue_missed(runner, keyed(a, item("b"), item("c")), 1)
        assert runner.pending == 1 and runner.filtered == 1 and runner.catch_up_left == 1

    run(scenario)


# --------------------------------------------------------------------------- _fetch


def test_fetch_widens_until_every_hook_finds_its_position():
    node = [item(f"i{n}") for n in range(30)]
    session = FakeSession(node)

    async def scenario(world: World):
        near, far = world.add("near"), world.add("far")
        near.set_position([stored(node[-2])])
        far.set_position([stored(node[12])])
        got, starts = await world.catchup._fetch(session, S, N, [near, far])
        assert session.asked == [FIRST_FETCH, FIRST_FETCH * WIDEN, FIRST_FETCH * WIDEN**2]
        assert [ref.id for _i, ref in got][starts[near]:] == ["i29"]
        assert [ref.id for _i, ref in got][starts[far]:] == [f"i{n}" for n in range(13, 30)]

    run(scenario, session)


def test_fetch_stops_when_the_node_has_fewer_items_and_a_hook_is_left_without_start():
    node = [item(f"i{n}") for n in range(4)]
    session = FakeSession(node)

    async def scenario(world: World):
        lost = world.add("lost")
        lost.set_position([stored(item("gone"))])
        got, starts = await world.catchup._fetch(session, S, N, [lost])
        assert session.asked == [2, 6], "6 asked, 4 returned: the whole node"
        assert len(got) == 4 and lost not in starts, "a gap"

    run(scenario, session)


def test_fetch_reads_the_whole_node_for_a_hook_from_the_start():
    session = FakeSession([item("a"), item("b")])

    async def scenario(world: World):
        fresh = world.add()
        fresh.set_position(ItemRef("", digest=""))
        got, starts = await world.catchup._fetch(session, S, N, [fresh])
        assert session.asked == [None] and starts[fresh] == 0 and len(got) == 2

    run(scenario, session)


# --------------------------------------------------------------------------- order


def test_catch_up_runs_the_missed_items_then_the_held_live_ones():
    a, b, c = item("a"), item("b"), item("c")
    session = FakeSession([a, b, c])

    async def scenario(world: World):
        runner = world.add(start=True)
        runner.set_position([stored(a)])
        world.live.hold([KEY])
        world.live.on_item(S, N, item("d"))  # live, while the node catches up
        world.live.on_item(S, N, c)  # a copy of a missed item
        await world.catchup.catch_up(S, N)
        await world.settle(3)
        assert [i for _t, i in world.seen] == ["b", "c", "d"]
        assert KEY not in world.live.held and world.live.node_position[KEY].id == "d"
        assert runner.state is HookState.ACTIVE

    run(scenario, session)


def test_a_restart_offers_the_parked_items_in_order_when_nothing_can_be_read():
    async def scenario(world: World):
        runner = world.add(start=True, events=("publish", "retract"))
        world.catchup.restart(runner)
        assert runner.mode.parking and runner.state is HookState.CATCHING_UP
        world.live.on_item(S, N, item("a"))
        world.live.on_event(S, N, "retract", retraction("z"))
        world.live.on_item(S, N, item("b"))
        assert runner.pending == 0
        await world.settle(3)
        assert world.seen == [("EventItem", "a"), ("EventRetract", "z"), ("EventItem", "b")]
        assert not runner.mode.parking and runner.state is HookState.ACTIVE

    run(scenario)  # (session None: nothing to fetch)


def test_a_restart_runs_the_missed_items_then_the_parked_ones_without_copies():
    a, b = item("a"), item("b")
    session = FakeSession([a, b])

    async def scenario(world: World):
        runner = world.add(start=True)
        runner.set_position([stored(a)])
        session.items.append(item("c"))  # published while away
        world.catchup.restart(runner)
        runner.offer(item("c"), ItemRef.of(item("c")), None, time.time())  # parked: a copy of c
        runner.offer(item("d"), ItemRef.of(item("d")), None, time.time())  # parked: new
        await world.settle(3)
        assert [i for _t, i in world.seen] == ["b", "c", "d"], "a parked copy of a fetched item does not run twice"

    run(scenario, session)


def test_a_restart_of_an_inactive_hook_queues_nothing_missed():
    a = item("a")
    session = FakeSession([a, item("b")])

    async def scenario(world: World):
        runner = world.add(start=True)
        runner.set_position([stored(a)])
        world.catchup.restart(runner)
        runner.mode.stand_by("other")
        deadline = time.monotonic() + 5
        while runner.mode.parking:  # the restart ends (its fetch done)
            assert time.monotonic() < deadline, "the restart never ended"
            await asyncio.sleep(0.005)
        assert world.seen == [] and runner.pending == 0

    run(scenario, session)


def test_a_lossless_hook_that_overflows_on_a_retraction_runs_each_event_once_after_draining():
    a, b = item("a"), item("b")
    session = FakeSession([a, b])

    async def scenario(world: World):
        runner = world.add(queue_size=2, persistent=True, events=("publish", "retract"))
        runner.on_drained = world.catchup.restart
        runner.set_position([stored(a)])
        runner.offer(b, ItemRef.of(b), None, time.time())  # live b, queued
        world.live.recent.seen(S, N, ItemRef.of(b))
        c = item("c")
        session.items.append(c)
        runner.offer(c, ItemRef.of(c), None, time.time())  # live c: the queue is full
        session.items.remove(b)
        runner.offer_event("retract", retraction("b"), "b", time.time())  # overflows
        assert runner.mode.overflowed
        runner.start()
        await world.settle(3)
        await asyncio.sleep(0.05)
        assert world.seen == [("EventItem", "b"), ("EventItem", "c"), ("EventRetract", "b")], (
            "after a lossless hook overflowed on a retraction, the restart once drained must "
            "run the retraction once and no publication twice; got " + repr(world.seen)
        )

    run(scenario, session)
