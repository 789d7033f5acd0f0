"""Positions (positions.PositionKeeper) over a real store.PositionStore in tmp_path:
journaled at each run, read back by a new keeper, not moved by a retried attempt."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

from slixmpp.plugins.xep_0060.stanza.pubsub_event import EventItem

from pubsub_hook_magic import events
from pubsub_hook_magic.dedupe import ItemRef
from pubsub_hook_magic.hooks import Hook, HookType
from pubsub_hook_magic.positions import PositionKeeper
from pubsub_hook_magic.runner import HookRunner
from pubsub_hook_magic.states import Outcome, TriggerKind
from pubsub_hook_magic.store import PositionStore
from pubsub_hook_magic.trigger import Trigger

ACCOUNT = "alice@example.org"


def item(item_id: str, payload: str = "<x xmlns='urn:t'/>") -> EventItem:
    stanza = EventItem()
    stanza["id"] = item_id
    stanza["payload"] = ET.fromstring(payload)
    return stanza


def make_runner(hook_id: str = "p1", **kwargs) -> HookRunner:
    kwargs.setdefault("persistent", True)
    hook = Hook(service="pubsub.example", node="n", type=HookType.PYTHON_CODE, arg="pass", id=hook_id, **kwargs)
    events.prepare(hook)
    return HookRunner(hook, lambda: (None, None))


def keeper(tmp_path) -> PositionKeeper:
    positions = PositionKeeper()
    positions.store = PositionStore(ACCOUNT, tmp_path)
    return positions


def ran(runner: HookRunner, positions: PositionKeeper, stanza, *, retried: bool = False) -> Trigger:
    """What the runner does when a run ends (``_finish``) and its listener is told."""
    ref = ItemRef.of(stanza)
    trigger = Trigger(ref.id, None, time.time(), payload=stanza, ref=ref, kind=TriggerKind.LIVE)
    trigger.outcome = Outcome.ERROR if retried else Outcome.OK
    trigger.retried = retried
    if not retried:
        runner.ran.append(ref)
    positions.moved(runner, trigger)
    return trigger


def test_moved_journals_and_a_new_keeper_reads_the_position_back(tmp_path):
    positions = keeper(tmp_path)
    runner = make_runner()
    for i in ("a", "b", "c"):
        ran(runner, positions, item(i, f"<x xmlns='urn:t' v='{i}'/>"))
    expected = [(r.id, r.digest) for r in runner.ran]
    # no flush, no close: a killed process leaves the journal as written
    later = keeper(tmp_path)
    again = make_runner()
    again.mode.read_position_later()
    later.load(again)
    assert [(r.id, r.digest) for r in again.ran] == expected
    assert [(r.id, r.digest) for r in again.submitted] == expected, "catch-up resumes from the stored items"
    assert not again.mode.position_unread
    positions.flush()


def test_a_read_back_position_matches_the_item_on_the_node(tmp_path):
    positions = keeper(tmp_path)
    runner = make_runner()
    ran(runner, positions, item("a", "<x xmlns='urn:t'>1</x>"))
    positions.close()
    later = keeper(tmp_path)
    again = make_runner()
    later.load(again)
    stored = again.position
    assert stored is not None and stored.id == "a"
    assert stored.same_payload(ItemRef.of(item("a", "<x xmlns='urn:t'>1</x>")))
    assert not stored.same_payload(ItemRef.of(item("a", "<x xmlns='urn:t'>2</x>")))


def test_a_retried_attempt_does_not_move_the_position(tmp_path):
    positions = keeper(tmp_path)
    runner = make_runner()
    ran(runner, positions, item("a"))
    ran(runner, positions, item("b"), retried=True)
    later = keeper(tmp_path)
    again = make_runner()
    later.load(again)
    assert [r.id for r in again.ran] == ["a"], "an attempt that will be retried has not moved the position"
    positions.flush()


def test_a_run_through_the_runner_moves_the_position(tmp_path):
    import asyncio

    async def main():
        positions = keeper(tmp_path)
        runner = make_runner()
        runner.hook.func = lambda host, client, it: None
        runner.add_listener(positions.moved)
        for i in ("a", "b"):
            stanza = item(i)
            runner.submit(stanza, ItemRef.of(stanza), None, time.time())
        runner.start()
        for _ in range(500):
            if runner.count == 2:
                break
            await asyncio.sleep(0.005)
        await runner.stop()
        positions.flush()

    asyncio.run(main())
    again = make_runner()
    keeper(tmp_path).load(again)
    assert [r.id for r in again.ran] == ["a", "b"]


def test_save_now_stores_a_starting_position(tmp_path):
    positions = keeper(tmp_path)
    runner = make_runner()
    runner.set_position(ItemRef("", digest=""))  # from the node's start
    positions.save_now(runner)
    again = make_runner()
    keeper(tmp_path).load(again)
    assert [(r.id, r.digest) for r in again.ran] == [("", "")]


def test_nothing_stored_and_disconnected_keep_no_position(tmp_path):
    runner = make_runner()
    keeper(tmp_path).load(runner)
    assert runner.position is None
    disconnected = PositionKeeper()
    runner.mode.read_position_later()
    disconnected.load(runner)
    assert runner.position is None and not runner.mode.position_unread
    disconnected.moved(runner, Trigger("a", None, 0.0))  # no store: nothing, no error


def test_present_ids_are_journaled_and_read_back(tmp_path):
    positions = keeper(tmp_path)
    runner = make_runner(events=("publish", "retract"))
    runner.on_present_change = positions.present_changed
    for i in ("a", "b", "c"):
        stanza = item(i)
        runner.offer(stanza, ItemRef.of(stanza), None, time.time())
    runner.offer_event("retract", None, "b", time.time())
    again = make_runner(events=("publish", "retract"))
    keeper(tmp_path).load(again)
    assert list(again.present) == ["a", "c"]
    positions.flush()


def test_drop_removes_the_position(tmp_path):
    positions = keeper(tmp_path)
    runner = make_runner()
    ran(runner, positions, item("a"))
    positions.drop(runner.hook.id)
    again = make_runner()
    keeper(tmp_path).load(again)
    assert again.position is None


def test_positions_of_two_hooks_are_apart(tmp_path):
    positions = keeper(tmp_path)
    one, two = make_runner("p1"), make_runner("p/2")
    ran(one, positions, item("a"))
    ran(two, positions, item("b"))
    positions.close()
    assert positions.store is None
    for hook_id, expected in (("p1", "a"), ("p/2", "b")):
        again = make_runner(hook_id)
        keeper(tmp_path).load(again)
        assert again.position.id == expected


def test_a_failed_attempt_retried_by_the_runner_journals_the_item_once(tmp_path):
    import asyncio

    attempts = []

    def flaky(host, client, it):
        attempts.append(it["id"])
        if len(attempts) == 1:
            raise ValueError("first attempt fails")

    async def main():
        positions = keeper(tmp_path)
        runner = make_runner(retry=2, retry_delay=0.0)
        runner.hook.func = flaky
        runner.add_listener(positions.moved)
        stanza = item("a")
        runner.submit(stanza, ItemRef.of(stanza), None, time.time())
        runner.start()
        for _ in range(500):
            if runner.count == 2:
                break
            await asyncio.sleep(0.005)
        await runner.stop()
        positions.flush()
        return positions

    asyncio.run(main())
    assert attempts == ["a", "a"]
    journal = PositionStore(ACCOUNT, tmp_path)._journal_path("p1")
    lines = journal.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and lines[0].startswith('["a"'), f"one journal line for the item, got {lines}"


def test_journals_hold_a_bounded_number_of_descriptors(tmp_path, monkeypatch):
    """Issue 25: thousands of hooks do not hold a descriptor each; a journal closed to
    make room is opened again at its next line, and every line is kept."""
    import os

    from pubsub_hook_magic.store import PositionStore

    monkeypatch.setattr(PositionStore, "OPEN", 4)
    store = PositionStore("alice@localhost", tmp_path)
    fds = len(os.listdir("/proc/self/fd"))
    for round_ in range(3):
        for i in range(20):
            store.append(f"h{i}", (f"item-{round_}", "d"), lambda: [])
    assert store.open_journals() == 4
    assert len(os.listdir("/proc/self/fd")) <= fds + 4
    for i in range(20):
        assert store.load(f"h{i}") == [("item-0", "d"), ("item-1", "d"), ("item-2", "d")]
    store.close()
    assert store.open_journals() == 0


def test_out_of_descriptors_is_a_store_error_that_says_what_to_do(tmp_path):
    import os
    import resource

    import pytest

    from pubsub_hook_magic.store import PositionStore, StoreError

    store = PositionStore("alice@localhost", tmp_path)
    store.append("h0", ("i", "d"), lambda: [])
    store.close()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        try:
            while True:
                held.append(os.open("/dev/null", os.O_RDONLY))
        except OSError:
            pass
        with pytest.raises(StoreError, match=r"too many open files.*ulimit -n"):
            store.append("h1", ("i", "d"), lambda: [])
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
