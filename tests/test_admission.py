"""A hook's mode (admission.HookMode) and what its runner admits (HookRunner.offer,
offer_event, submit), with real stanzas and a real loop; no server, no kernel."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET

import pytest
from slixmpp.plugins.xep_0060.stanza.pubsub_event import EventItem

from pubsub_hook_magic import events
from pubsub_hook_magic.admission import HookMode, Parked, ParkedEvent
from pubsub_hook_magic.dedupe import ItemRef
from pubsub_hook_magic.events import retraction
from pubsub_hook_magic.hooks import Hook, HookType, load_hook
from pubsub_hook_magic.runner import HookRunner
from pubsub_hook_magic.states import HookState, Outcome, TriggerKind

KEY = ("pubsub.example", "n")


def item(item_id: str, payload: str = "<x xmlns='urn:t'/>") -> EventItem:
    stanza = EventItem()
    stanza["id"] = item_id
    stanza["payload"] = ET.fromstring(payload)
    return stanza


def make_hook(code: str = "pass", **kwargs) -> Hook:
    kwargs.setdefault("id", "h1")
    hook = Hook(service=KEY[0], node=KEY[1], type=HookType.PYTHON_CODE, arg=code, **kwargs)
    events.prepare(hook)
    hook.func = load_hook(hook, {})
    return hook


def make_runner(code: str = "pass", *, queue_size: int = 1000, held_nodes=(), **kwargs) -> HookRunner:
    return HookRunner(make_hook(code, **kwargs), lambda: (None, None), queue_size=queue_size, held_nodes=held_nodes)


def offer(runner: HookRunner, stanza, kind: TriggerKind = TriggerKind.LIVE) -> ItemRef:
    ref = ItemRef.of(stanza)
    runner.offer(stanza, ref, None, time.time(), kind)
    return ref


def submit(runner: HookRunner, stanza) -> ItemRef:
    ref = ItemRef.of(stanza)
    runner.submit(stanza, ref, None, time.time())
    return ref


async def until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.005)


# --------------------------------------------------------------------------- HookMode


def test_a_new_mode_is_open_and_active():
    mode = HookMode(KEY)
    assert not mode.closed and not mode.inactive and not mode.parking and not mode.held
    assert not mode.paused and mode.owner is None and mode.waiting_for == ()


def test_park_keep_unpark_returns_the_kept_entries_in_order():
    mode = HookMode(KEY)
    mode.park()
    assert mode.parking and mode.closed, "parking must close the hook's hot path"
    first = Parked("i1", None, "pub", 1.0)
    second = ParkedEvent("el", "i1", 2.0, "retract")
    third = Parked("i2", None, None, 3.0)
    for entry in (first, second, third):
        mode.keep(entry)
    assert mode.unpark() == [first, second, third]
    assert not mode.parking and not mode.closed
    assert mode.unpark() == [], "a second unpark returns nothing"


def test_keep_without_parking_keeps_nothing():
    mode = HookMode(KEY)
    mode.stand_by("other")
    mode.keep(Parked("i", None, None, 1.0))
    mode.park()
    assert mode.unpark() == [], "an entry kept while only inactive must not come back at unpark"


def test_a_fresh_park_forgets_what_an_earlier_one_kept():
    mode = HookMode(KEY)
    mode.park()
    mode.keep(Parked("old", None, None, 1.0))
    mode.park()
    assert mode.unpark() == []


def test_unpark_of_an_inactive_hook_leaves_it_closed():
    mode = HookMode(KEY)
    mode.park()
    mode.wait_for(("x",))
    mode.unpark()
    assert mode.closed and mode.inactive
    mode.wait_for(())
    assert not mode.closed


def test_standby_makes_it_inactive_and_run_here_reopens():
    mode = HookMode(KEY)
    mode.stand_by("kernel, pid 1")
    assert mode.standby and mode.inactive and mode.closed and mode.owner == "kernel, pid 1"
    mode.run_here()
    assert not mode.standby and not mode.inactive and not mode.closed
    assert mode.owner == "kernel, pid 1", "run_here() without an owner keeps the known one"
    mode.run_here("kernel, pid 2")
    assert mode.owner == "kernel, pid 2"


def test_waiting_for_names_makes_it_inactive():
    mode = HookMode(KEY)
    assert mode.wait_for(("df", "x")) is True
    assert mode.waiting_for == ("df", "x") and mode.inactive and mode.closed
    assert mode.wait_for(["df", "x"]) is False, "the same names (any sequence) are no change"
    assert mode.wait_for(("df",)) is True and mode.closed
    assert mode.wait_for(()) is True
    assert not mode.inactive and not mode.closed


def test_overflow_until_drained():
    mode = HookMode(KEY)
    assert mode.drained() is False, "drained() of a hook that did not overflow"
    mode.overflow()
    assert mode.overflowed and mode.inactive and mode.closed
    assert mode.drained() is True
    assert not mode.overflowed and not mode.inactive and not mode.closed
    assert mode.drained() is False


def test_inactive_is_any_of_standby_waiting_overflowed():
    mode = HookMode(KEY)
    mode.stand_by(None)
    mode.wait_for(("a",))
    mode.overflow()
    mode.run_here()
    assert mode.inactive and mode.closed, "still waiting and overflowed"
    mode.wait_for(())
    assert mode.inactive and mode.closed, "still overflowed"
    mode.drained()
    assert not mode.inactive and not mode.closed


def test_pause_and_owner_report_changes_and_do_not_close():
    mode = HookMode(KEY)
    assert mode.set_paused(True) is True and mode.paused
    assert mode.set_paused(True) is False
    assert not mode.closed, "a paused hook still takes items (it records them as skipped)"
    assert mode.set_paused(False) is True and not mode.paused
    assert mode.set_owner("a") is True and mode.owner == "a"
    assert mode.set_owner("a") is False
    assert mode.set_owner(None) is True and mode.owner is None
    assert not mode.standby and not mode.closed, "set_owner does not change who runs it"


def test_held_is_read_from_the_held_nodes_container():
    held: dict[tuple[str, str], list] = {}
    mode = HookMode(KEY, held)
    assert not mode.held
    held[KEY] = []
    assert mode.held
    held[("pubsub.example", "other")] = []
    del held[KEY]
    assert not mode.held
    assert not mode.closed, "held items wait in the live path, not in the hook"


def test_position_unread_flag():
    mode = HookMode(KEY)
    assert not mode.position_unread
    mode.read_position_later()
    assert mode.position_unread
    mode.position_read()
    assert not mode.position_unread


# --------------------------------------------------------------------------- the runner's state


def test_state_is_derived_from_the_mode():
    held: dict = {}
    runner = make_runner(held_nodes=held)
    assert runner.state is HookState.ACTIVE
    runner.mode.park()
    assert runner.state is HookState.CATCHING_UP
    runner.mode.unpark()
    held[KEY] = []
    assert runner.state is HookState.CATCHING_UP and runner.held
    held.clear()
    runner.mode.set_paused(True)
    assert runner.state is HookState.PAUSED
    runner.mode.wait_for(("x",))
    assert runner.state is HookState.WAITING
    runner.mode.stand_by("other")
    assert runner.state is HookState.STANDBY and runner.owner == "other"
    runner.hook.func = None
    assert runner.state is HookState.BROKEN


# --------------------------------------------------------------------------- admission


def test_a_paused_hook_records_what_it_skips_and_moves_its_position():
    runner = make_runner()
    runner.mode.set_paused(True)
    ref_a = submit(runner, item("a"))
    ref_b = offer(runner, item("b"))
    assert runner.pending == 0, "a paused hook queues nothing"
    assert runner.skipped == 2 and runner.count == 0
    assert [(t.item_id, t.outcome) for t in runner.triggers] == [("a", Outcome.SKIPPED), ("b", Outcome.SKIPPED)]
    assert list(runner.ran) == [ref_a, ref_b], "a skipped item is done: catch-up must not run it again"


def test_a_paused_hook_records_skipped_retractions():
    runner = make_runner(events=("publish", "retract"))
    runner.mode.set_paused(True)
    runner.offer_event("retract", retraction("a"), "a", time.time())
    assert runner.skipped == 1 and runner.triggers[-1].item_id == "a"
    assert runner.triggers[-1].outcome is Outcome.SKIPPED


def test_a_standby_hook_takes_nothing():
    changes = []
    runner = make_runner(events=("publish", "retract"), persistent=True)
    runner.on_present_change = lambda _r, change: changes.append(change)
    runner.mode.stand_by("other process")
    submit(runner, item("a"))
    offer(runner, item("b"))
    runner.offer_event("retract", retraction("b"), "b", time.time())
    runner.offer_event("purge", None, "n", time.time())
    assert runner.pending == 0 and not runner.triggers and runner.skipped == runner.dropped == 0
    assert not runner.submitted and not runner.ran, "the position of a standby hook belongs to its owner"
    assert runner.present == {} and changes == []
    runner.mode.park()
    assert runner.mode.unpark() == [], "a standby hook parks nothing"


@pytest.mark.parametrize("inactive", ["wait", "overflow"])
def test_other_inactive_hooks_take_nothing(inactive):
    runner = make_runner()
    if inactive == "wait":
        runner.mode.wait_for(("df",))
    else:
        runner.mode.overflow()
    submit(runner, item("a"))
    offer(runner, item("b"))
    assert runner.pending == 0 and not runner.triggers and not runner.submitted


def test_a_parked_hook_keeps_publications_and_events_in_order():
    runner = make_runner(events=("publish", "retract", "purge"))
    runner.mode.park()
    a, b = item("a"), item("b")
    ref_a = submit(runner, a)
    runner.offer_event("retract", retraction("a"), "a", 2.0)
    ref_b = offer(runner, b)
    runner.offer_event("purge", None, "n", 4.0)
    assert runner.pending == 0 and not runner.triggers and not runner.submitted
    assert runner.present == {}, "a parked hook's present ids change when its items are offered again"
    parked = runner.mode.unpark()
    assert [type(e) for e in parked] == [Parked, ParkedEvent, Parked, ParkedEvent]
    assert parked[0].item is a and parked[0].ref is ref_a
    assert parked[1].kind == "retract" and parked[1].event_id == "a" and parked[1].received == 2.0
    assert parked[2].item is b and parked[2].ref is ref_b
    assert parked[3].kind == "purge" and parked[3].event_id == "n"


def test_items_offered_after_unpark_are_queued():
    runner = make_runner()
    runner.mode.park()
    submit(runner, item("a"))
    runner.mode.unpark()
    ref = submit(runner, item("b"))
    assert runner.pending == 1 and list(runner.submitted) == [ref]


def test_a_temporary_hook_with_a_full_queue_drops_with_a_trigger():
    runner = make_runner(queue_size=2)
    refs = [submit(runner, item(i)) for i in "abc"]
    assert runner.pending == 2 and runner.dropped == 1
    dropped = runner.triggers[-1]
    assert dropped.item_id == "c" and dropped.outcome is Outcome.DROPPED
    assert dropped.error == "queue full (2 items waiting)"
    assert not runner.mode.overflowed and not runner.mode.closed
    assert list(runner.submitted) == refs


def test_a_lossless_hook_overflows_takes_nothing_then_restarts_once_drained():
    ran: list[str] = []
    drained: list[HookRunner] = []

    async def main() -> HookRunner:
        runner = make_runner("ran.append(item['id'])", queue_size=2, persistent=True)
        runner.hook.func = load_hook(runner.hook, {"ran": ran})
        runner.on_drained = drained.append
        assert runner.lossless
        refs = [submit(runner, item(i)) for i in "abc"]
        assert runner.pending == 2
        assert runner.mode.overflowed and runner.state is HookState.CATCHING_UP
        assert runner.dropped == 0 and not runner.triggers, "a lossless hook never drops"
        assert list(runner.submitted) == refs[:2], "the overflowing item is not a position"
        submit(runner, item("d"))
        offer(runner, item("e"))
        assert runner.pending == 2 and list(runner.submitted) == refs[:2], "overflowed: takes nothing"
        runner.start()
        await until(lambda: drained)
        await asyncio.sleep(0.02)
        await runner.stop()
        return runner

    runner = asyncio.run(main())
    assert ran == ["a", "b"]
    assert drained == [runner], "on_drained is called once, with the runner"
    assert not runner.mode.overflowed and not runner.mode.closed


def test_a_non_lossless_persistent_hook_drops():
    runner = make_runner(queue_size=1, persistent=True, catch_up=False)
    assert not runner.lossless
    submit(runner, item("a"))
    submit(runner, item("b"))
    assert runner.dropped == 1 and not runner.mode.overflowed


def test_offer_with_a_where_filter_counts_filtered_and_moves_submitted():
    runner = make_runner(where=".[@kind='note']")
    assert not runner.plain, "a filtered hook is offered its items"
    note = offer(runner, item("a", "<x xmlns='urn:t' kind='note'/>"))
    other = offer(runner, item("b", "<x xmlns='urn:t' kind='todo'/>"))
    offer(runner, item("c", "<x xmlns='urn:t' kind='todo'/>"))
    assert runner.filtered == 2 and runner.pending == 1
    assert [r.id for r in runner.submitted] == ["a", "b", "c"], "a filtered-out item still moves the position"
    assert list(runner.submitted)[:2] == [note, other]


def test_a_hook_for_retractions_only_tracks_publications_without_running_them():
    changes = []
    runner = make_runner(events=("retract",))
    runner.on_present_change = lambda _r, change: changes.append(change)
    offer(runner, item("a"))
    assert runner.pending == 0 and runner.filtered == 0, "an unwanted publication is not 'filtered'"
    assert runner.present == {"a": None} and changes == ["+a"]
    runner.offer_event("retract", retraction("a"), "a", time.time())
    assert runner.pending == 1 and runner.present == {} and changes == ["+a", "-a"]


def test_retractions_update_present_and_report_each_change():
    changes: list[tuple[HookRunner, str]] = []
    runner = make_runner(events=("publish", "retract", "purge"))
    runner.on_present_change = lambda r, change: changes.append((r, change))
    offer(runner, item("a"))
    offer(runner, item("b"))
    assert list(runner.present) == ["a", "b"]
    runner.offer_event("retract", retraction("a"), "a", time.time())
    assert list(runner.present) == ["b"]
    runner.offer_event("retract", retraction("zz"), "zz", time.time())
    assert [c for _r, c in changes] == ["+a", "+b", "-a"], "retracting an unknown id changes nothing"
    runner.offer_event("purge", None, "n", time.time())
    assert runner.present == {} and changes[-1] == (runner, "*")
    assert runner.pending == 2 + 2 + 1, "2 publications, 2 retractions, 1 purge queued"


def test_a_hook_without_retractions_keeps_no_present_ids():
    runner = make_runner(events=("publish", "purge"))
    assert runner.present is None
    offer(runner, item("a"))
    runner.offer_event("purge", None, "n", time.time())
    assert runner.present is None and runner.pending == 2


def test_an_event_the_hook_does_not_run_for_is_not_queued():
    runner = make_runner(events=("publish", "retract"))
    runner.offer_event("delete", None, "n", time.time())
    assert runner.pending == 0 and not runner.triggers


def test_catch_up_items_are_counted_until_run():
    async def main() -> tuple[int, HookRunner]:
        runner = make_runner()
        runner.submit(item("a"), ItemRef.of(item("a")), None, time.time(), TriggerKind.CATCH_UP)
        left = runner.catch_up_left
        runner.start()
        await until(lambda: runner.count == 1)
        await runner.stop()
        return left, runner

    left, runner = asyncio.run(main())
    assert left == 1 and runner.catch_up_left == 0
    assert runner.state is HookState.ACTIVE


def test_an_event_overflowing_a_lossless_hook_keeps_its_last_position():
    runner = make_runner(queue_size=1, persistent=True, events=("publish", "retract"))
    ref_a = submit(runner, item("a"))
    runner.offer_event("retract", retraction("b"), "b", time.time())  # the queue is full
    assert runner.mode.overflowed
    assert list(runner.submitted) == [ref_a], (
        "an event (no ref) overflowing a lossless hook must not take the last queued item's "
        "position: catch-up after the drain would run that item again"
    )


def test_an_event_overflowing_a_lossless_hook_with_no_position_does_not_raise():
    runner = make_runner(queue_size=1, persistent=True, events=("publish", "retract"))
    runner.offer_event("retract", retraction("x"), "x", time.time())
    runner.offer_event("retract", retraction("y"), "y", time.time())  # the queue is full: no error
    assert runner.mode.overflowed
