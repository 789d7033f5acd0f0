"""The live event path (live.LivePath) over a HookIndex of real runners: ignored
nodes, duplicates, held nodes released in order, node positions. No server."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET

from slixmpp.plugins.xep_0060.stanza.pubsub_event import EventItem, EventPurge

from pubsub_hook_magic import events
from pubsub_hook_magic.dedupe import ItemRef
from pubsub_hook_magic.events import retraction
from pubsub_hook_magic.hooks import Hook, HookType, load_hook
from pubsub_hook_magic.live import HeldEvent, HeldItem, LivePath
from pubsub_hook_magic.registry import HookIndex
from pubsub_hook_magic.runner import HookRunner
from pubsub_hook_magic.states import HookState

S, N = "pubsub.example", "n"
KEY = (S, N)
#: What each hook's code records: ("item", id) for a publication, (kind, id) for an event.
CODE = "seen.append((hid, type(item).__name__, item['id'] if 'id' in item.interfaces else None))"


def item(item_id: str, payload: str = "<x xmlns='urn:t'/>") -> EventItem:
    stanza = EventItem()
    stanza["id"] = item_id
    stanza["payload"] = ET.fromstring(payload)
    return stanza


class Path:
    """A LivePath, its index and the runners' records."""

    def __init__(self) -> None:
        self.index: HookIndex[HookRunner] = HookIndex()
        self.changes = 0
        self.live = LivePath(self.index, self._changed)
        self.seen: list[tuple[str, str, str | None]] = []

    def _changed(self) -> None:
        self.changes += 1

    def add(self, hook_id: str, node: str = N, **kwargs) -> HookRunner:
        hook = Hook(service=S, node=node, type=HookType.PYTHON_CODE, arg=CODE, id=hook_id, **kwargs)
        events.prepare(hook)
        hook.func = load_hook(hook, {"seen": self.seen, "hid": hook_id})
        runner = HookRunner(hook, lambda: (None, None), held_nodes=self.live.held)
        self.index.add(runner)
        runner.start()
        return runner

    async def settle(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.seen) < count:
            assert time.monotonic() < deadline, f"expected {count} runs, got {self.seen}"
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.01)  # (and nothing more)

    async def stop(self) -> None:
        for runner in self.index.ordered():
            await runner.stop()


def run(scenario):
    async def main():
        path = Path()
        try:
            return await scenario(path)
        finally:
            await path.stop()

    return asyncio.run(main())


def test_items_of_unhooked_nodes_are_ignored():
    async def scenario(path: Path):
        runner = path.add("h1")
        path.live.on_item(S, "other", item("a"))
        path.live.on_item("other.example", N, item("a"))
        path.live.on_event(S, "other", "retract", retraction("a"))
        await asyncio.sleep(0.02)
        assert runner.pending == 0 and path.seen == []
        assert path.live.node_position == {}, "an unhooked node has no position"
        # (and an item ignored then is not a duplicate later)
        path.add("h2", node="other")
        path.live.on_item(S, "other", item("a"))
        await path.settle(1)
        assert path.seen == [("h2", "EventItem", "a")]

    run(scenario)


def test_each_hook_of_the_node_gets_each_item_once():
    async def scenario(path: Path):
        path.add("h1")
        path.add("h2", where=".")  # (offered, not submitted)
        path.add("h3", node="other")
        path.live.on_item(S, N, item("a"))
        await path.settle(2)
        assert sorted(path.seen) == [("h1", "EventItem", "a"), ("h2", "EventItem", "a")]

    run(scenario)


def test_copies_are_dropped_and_republications_run():
    async def scenario(path: Path):
        path.add("h1")
        path.live.on_item(S, N, item("a"))
        path.live.on_item(S, N, item("a"))  # a copy (bare and full JID)
        path.live.on_item(S, N, item("a", "<x xmlns='urn:t' v='2'/>"))  # same id, new payload
        path.live.on_item(S, N, item("b"))
        path.live.on_item(S, N, item("a", "<x xmlns='urn:t' v='2'/>"))  # a copy of the new one
        await path.settle(3)
        assert [i for _h, _t, i in path.seen] == ["a", "a", "b"]

    run(scenario)


def test_copies_of_retractions_and_purges_are_dropped():
    async def scenario(path: Path):
        path.add("h1", events=("publish", "retract", "purge"))
        path.live.on_event(S, N, "retract", retraction("a"))
        path.live.on_event(S, N, "retract", retraction("a"))
        path.live.on_event(S, N, "purge", EventPurge())
        path.live.on_event(S, N, "purge", EventPurge())  # (within the 2 s window)
        await path.settle(2)
        kinds = [t for _h, t, _i in path.seen]
        assert kinds == ["EventRetract", "EventPurge"], path.seen

    run(scenario)


def test_a_retraction_without_id_is_ignored():
    async def scenario(path: Path):
        runner = path.add("h1", events=("publish", "retract"))
        path.live.on_event(S, N, "retract", retraction(""))
        await asyncio.sleep(0.02)
        assert runner.pending == 0 and path.seen == []

    run(scenario)


def test_node_position_follows_the_newest_item_with_an_id():
    async def scenario(path: Path):
        runner = path.add("h1")
        path.live.on_item(S, N, item("a"))
        assert path.live.node_position[KEY].id == "a"
        path.live.on_item(S, N, item(""))  # no id: no position
        assert path.live.node_position[KEY].id == "a"
        await path.settle(2)
        assert runner.triggers[-1].ref is None and runner.triggers[-1].item_id is None
        assert [r.id for r in runner.submitted] == ["a"], "an item without id is no position"

    run(scenario)


def test_a_held_node_keeps_its_items_and_releases_them_in_order():
    async def scenario(path: Path):
        runner = path.add("h1", events=("publish", "retract"))
        path.live.hold([KEY])
        assert runner.held and runner.state is HookState.CATCHING_UP
        path.live.on_item(S, N, item("a"))
        path.live.on_event(S, N, "retract", retraction("x"))
        path.live.on_item(S, N, item("b"))
        path.live.on_item(S, N, item("b"))  # a copy, held too: dropped at release
        held = path.live.held[KEY]
        assert [type(e) for e in held] == [HeldItem, HeldEvent, HeldItem, HeldItem]
        await asyncio.sleep(0.02)
        assert path.seen == [] and runner.pending == 0
        assert KEY not in path.live.node_position, "held items are not dispatched yet"
        changes = path.changes
        path.live.release(KEY)
        assert path.changes == changes + 1
        assert not runner.held and KEY not in path.live.held
        await path.settle(3)
        assert path.seen == [("h1", "EventItem", "a"), ("h1", "EventRetract", "x"), ("h1", "EventItem", "b")]
        assert path.live.node_position[KEY].id == "b"

    run(scenario)


def test_items_queued_while_held_run_after_what_catch_up_queues():
    async def scenario(path: Path):
        runner = path.add("h1")
        path.live.hold([KEY])
        path.live.on_item(S, N, item("live"))
        # what catch-up queues meanwhile goes straight to the runner
        missed = item("missed")
        runner.submit(missed, ItemRef.of(missed), None, time.time())
        path.live.release(KEY)
        await path.settle(2)
        assert [i for _h, _t, i in path.seen] == ["missed", "live"]

    run(scenario)


def test_only_the_held_node_waits():
    async def scenario(path: Path):
        path.add("h1")
        path.add("h2", node="other")
        path.live.hold([KEY])
        path.live.on_item(S, N, item("a"))
        path.live.on_item(S, "other", item("b"))
        await path.settle(1)
        assert path.seen == [("h2", "EventItem", "b")]

    run(scenario)


def test_releasing_a_node_not_held_does_nothing():
    async def scenario(path: Path):
        path.add("h1")
        path.live.release(KEY)
        assert path.changes == 0

    run(scenario)


def test_hold_twice_keeps_what_was_held():
    async def scenario(path: Path):
        path.add("h1")
        path.live.hold([KEY])
        path.live.on_item(S, N, item("a"))
        path.live.hold([KEY])
        path.live.release(KEY)
        await path.settle(1)
        assert path.seen == [("h1", "EventItem", "a")]

    run(scenario)


def test_reset_forgets_and_runners_still_see_later_holds():
    async def scenario(path: Path):
        runner = path.add("h1")
        path.live.on_item(S, N, item("a"))
        path.live.hold([KEY])
        path.live.reset()
        assert not runner.held and path.live.node_position == {}
        path.live.hold([KEY])
        assert runner.held, "runners read the live path's held nodes, also after a reset"
        path.live.release(KEY)
        path.live.on_item(S, N, item("a"))  # forgotten: not a copy any more
        await path.settle(2)
        assert [i for _h, _t, i in path.seen] == ["a", "a"]

    run(scenario)


def test_saw_and_forget():
    async def scenario(path: Path):
        path.add("h1")
        seen = item("a")
        path.live.saw(S, N, ItemRef.of(seen))
        assert path.live.node_position[KEY].id == "a"
        path.live.on_item(S, N, item("a"))  # read before: a copy the server re-sends
        await asyncio.sleep(0.02)
        assert path.seen == []
        path.live.forget(S, N)
        assert KEY not in path.live.node_position
        path.live.on_item(S, N, item("a"))
        await path.settle(1)

    run(scenario)


def test_an_overflowing_lossless_hook_does_not_keep_an_event_from_the_other_hooks():
    async def scenario(path: Path):
        first = HookRunner(
            Hook(service=S, node=N, type=HookType.PYTHON_CODE, arg="pass", id="p1", persistent=True,
                 events=("publish", "retract")),
            lambda: (None, None), queue_size=1, held_nodes=path.live.held,
        )
        events.prepare(first.hook)
        first.hook.func = load_hook(first.hook, {})
        path.index.add(first)  # (not started: its queue stays full)
        path.add("h2", events=("publish", "retract"))
        path.live.on_event(S, N, "retract", retraction("x"))  # fills p1's queue
        await path.settle(1)
        path.live.on_event(S, N, "retract", retraction("y"))  # p1 overflows (and raises nothing)
        await path.settle(2)
        assert [i for _h, _t, i in path.seen] == ["x", "y"], "the other hook of the node still gets the event"

    run(scenario)
