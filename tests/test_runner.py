"""The runner on its own loop: order, errors, time limits, backpressure (no server)."""

import asyncio
import time

from pubsub_hook_magic.dedupe import ItemRef
from pubsub_hook_magic.hooks import Hook, HookType
from pubsub_hook_magic.runner import HookRunner


class Item(dict):
    pass


def make_runner(func, **kwargs):
    hook = Hook(service="s", node="n", type=HookType.PYTHON_CODE, arg="x", id="h1")
    hook.func = func
    return HookRunner(hook, lambda: ("host", "client"), **kwargs)


def feed(runner, ids):
    for i in ids:
        runner.submit(Item(id=i), ItemRef(i), None, time.time())


async def until(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


def test_a_sync_hook_stuck_in_a_loop_is_stopped_and_the_next_item_runs():
    seen = []

    def hook(host, client, item):
        if item["id"] == "stuck":
            while True:
                pass
        seen.append(item["id"])

    async def main():
        runner = make_runner(hook, time_limit=0.3)
        runner.start()
        feed(runner, ["a", "stuck", "b"])
        await until(lambda: runner.count == 3)
        await runner.stop()
        return runner

    runner = asyncio.run(main())
    assert seen == ["a", "b"]
    outcomes = [t.outcome for t in runner.triggers]
    assert outcomes == ["ok", "timeout", "ok"]
    assert "time limit (0.3 s)" in runner.triggers[1].error


def test_an_async_hook_that_never_returns_is_cancelled_at_its_limit():
    async def hook(host, client, item):
        if item["id"] == "hang":
            await asyncio.Event().wait()

    async def main():
        runner = make_runner(hook, time_limit=0.2)
        runner.start()
        feed(runner, ["hang", "next"])
        await until(lambda: runner.count == 2)
        await runner.stop()
        return runner

    runner = asyncio.run(main())
    assert [t.outcome for t in runner.triggers] == ["timeout", "ok"]


def test_the_hook_own_timeout_error_is_an_error_not_a_timeout():
    def hook(host, client, item):
        raise TimeoutError("mine")

    async def main():
        runner = make_runner(hook, time_limit=5)
        runner.start()
        feed(runner, ["x"])
        await until(lambda: runner.count == 1)
        await runner.stop()
        return runner

    [trigger] = asyncio.run(main()).triggers
    assert (trigger.outcome, trigger.error) == ("error", "TimeoutError: mine")


def test_error_history_is_bounded_and_counts_are_kept():
    def hook(host, client, item):
        raise ValueError(item["id"])

    async def main():
        runner = make_runner(hook, history=5)
        runner.start()
        feed(runner, [str(i) for i in range(100)])
        await until(lambda: runner.count == 100)
        await runner.stop()
        return runner

    runner = asyncio.run(main())
    assert runner.errors == 100 and len(runner.triggers) == 5
    assert runner.triggers[-1].error == "ValueError: 99"


def test_a_slow_hook_drops_what_overflows_its_queue_and_counts_it():
    async def hook(host, client, item):
        await asyncio.sleep(0.01)

    async def main():
        runner = make_runner(hook, queue_size=10)
        runner.start()
        feed(runner, [str(i) for i in range(50)])
        await until(lambda: runner.count + runner.dropped == 50)
        await runner.stop()
        return runner

    runner = asyncio.run(main())
    assert runner.dropped >= 39 and runner.count + runner.dropped == 50
    assert any(t.outcome == "dropped" for t in runner.triggers)


def test_paused_hook_skips_and_counts():
    seen = []

    async def main():
        runner = make_runner(lambda h, c, i: seen.append(i["id"]))
        runner.start()
        runner.mode.set_paused(True)
        feed(runner, ["a", "b"])
        runner.mode.set_paused(False)
        feed(runner, ["c"])
        await until(lambda: runner.count == 1)
        await runner.stop()
        return runner

    runner = asyncio.run(main())
    assert seen == ["c"] and runner.skipped == 2


def test_a_backlog_of_one_hook_does_not_starve_another():
    done = {}

    def slow(host, client, item):
        time.sleep(0.01)
        done.setdefault("slow", []).append(time.monotonic())

    def fast(host, client, item):
        done.setdefault("fast", []).append(time.monotonic())

    async def main():
        a, b = make_runner(slow), make_runner(fast)
        a.start()
        b.start()
        feed(a, [str(i) for i in range(30)])
        feed(b, [str(i) for i in range(30)])
        await until(lambda: a.count == 30 and b.count == 30)
        await a.stop()
        await b.stop()

    asyncio.run(main())
    assert done["fast"][9] < done["slow"][-1] - 0.1  # interleaved, not after the backlog


def test_a_burst_larger_than_a_loop_turn_is_drained_without_drops(monkeypatch):
    """Items arrive a socket read at a time (hundreds per loop turn): the worker must
    drain them in bulk, not one per turn, or a stall overflows its queue. (A turn of
    work is made long here, so that a busy machine cannot make the test flaky; one item
    per turn would still overflow.)"""
    import pubsub_hook_magic.runner as runner_module

    monkeypatch.setattr(runner_module, "_TURN", 1.0)

    async def main():
        runner = make_runner(lambda h, c, i: None, queue_size=1000)
        runner.start()
        loop = asyncio.get_running_loop()
        for burst in range(6):  # 6 turns of 500 items: 3000 in all
            feed(runner, [f"{burst}-{i}" for i in range(500)])
            await asyncio.sleep(0)
        await until(lambda: runner.count + runner.dropped == 3000)
        await runner.stop()
        return runner

    runner = asyncio.run(main())
    assert runner.dropped == 0 and runner.count == 3000


# ---------------------------------------------------------------- retries and dead letters


def retrying_runner(func, retry, delay=0.05, **kwargs):
    runner = make_runner(func, **kwargs)
    runner.hook.retry, runner.hook.retry_delay = retry, delay
    return runner


def run_until(runner, ids, runs):
    """Feed ``ids`` to ``runner`` on a new loop until it made ``runs`` runs; stop it."""

    async def main():
        runner.start()
        feed(runner, ids)
        await until(lambda: runner.count == runs)
        await runner.stop()

    asyncio.run(main())
    return runner


def test_a_failed_run_is_retried_with_backoff_and_later_items_wait_behind_it():
    seen, fails, states = [], {"b": 2}, []

    def hook(host, client, item):
        if fails.get(item["id"], 0):
            fails[item["id"]] -= 1
            raise ConnectionError(f"down for {item['id']}")
        seen.append((item["id"], time.monotonic()))

    async def main():
        runner = retrying_runner(hook, retry=3, delay=0.05)
        runner.add_listener(lambda r, t: states.append((r.state, r.summary(recent=False)["attempt"])))
        runner.start()
        started = time.monotonic()
        feed(runner, ["a", "b", "c"])
        await until(lambda: len(seen) == 3)
        await runner.stop()
        return runner, started

    runner, started = asyncio.run(main())
    assert [i for i, _ in seen] == ["a", "b", "c"]  # in order: c waited for b's retries
    assert seen[1][1] - started >= 0.05 + 0.1  # waited 0.05 s, then 0.1 s
    assert [(t.item_id, t.outcome, t.attempt) for t in runner.triggers] == [
        ("a", "ok", 1), ("b", "error", 1), ("b", "error", 2), ("b", "ok", 3), ("c", "ok", 1)
    ]
    assert runner.triggers[1].as_dict()["attempt"] == 1
    # after each failed attempt the hook is retrying, with the next attempt's number
    assert states == [("active", None), ("retrying", 2), ("retrying", 3), ("active", None), ("active", None)]
    assert (runner.count, runner.errors, len(runner.dead_letters)) == (5, 2, 0)
    assert [r.id for r in runner.ran] == ["a", "b", "c"]  # each item's position once


def test_an_item_that_still_fails_goes_to_the_dead_letters_and_the_next_runs():
    def hook(host, client, item):
        if item["id"] != "ok":
            raise ValueError(f"refusing {item['id']}")

    runner = run_until(retrying_runner(hook, retry=2, delay=0.01), ["bad", "ok"], runs=4)
    [dead] = runner.dead_letters.letters()
    assert (dead.item_id, dead.attempts, dead.error) == ("bad", 3, "ValueError: refusing bad")
    assert "raise ValueError" in dead.traceback
    assert dead.first_failed < dead.last_failed
    summary = runner.summary()
    assert (summary["failed"], summary["attempt"], summary["state"]) == (1, None, "active")
    assert [t.outcome for t in runner.triggers] == ["error", "error", "error", "ok"]


def test_without_retries_every_failed_or_timed_out_item_is_a_dead_letter():
    def hook(host, client, item):
        if item["id"] == "slow":
            while True:
                pass
        if item["id"] == "bad":
            raise KeyError("x")

    runner = run_until(make_runner(hook, time_limit=0.2), ["bad", "slow", "fine"], runs=3)
    assert [(d.item_id, d.attempts, d.outcome) for d in runner.dead_letters.letters()] == [
        ("bad", 1, "error"),
        ("slow", 1, "timeout"),
    ]
    assert "time limit" in runner.dead_letters.letters("slow")[0].error


def test_a_stop_during_the_backoff_cancels_cleanly():
    async def main():
        runner = retrying_runner(lambda h, c, i: 1 / 0, retry=5, delay=30)
        runner.start()
        feed(runner, ["x", "y"])
        await until(lambda: runner.state == "retrying")
        assert runner.summary()["attempt"] == 2 and not runner.ran
        began = time.monotonic()
        await runner.stop()
        return runner, time.monotonic() - began

    runner, took = asyncio.run(main())
    assert took < 1
    assert runner.state == "active" and runner.retry_attempt is None
    assert runner.count == 1 and len(runner.dead_letters) == 0  # not run again, not lost: its position never moved
    assert not runner.ran


def test_a_retried_catch_up_item_stays_catching_up_until_it_is_done():
    from pubsub_hook_magic.states import TriggerKind

    calls = []

    def hook(host, client, item):
        calls.append(item["id"])
        if len(calls) == 1:
            raise OSError("first try fails")

    async def main():
        runner = retrying_runner(hook, retry=1, delay=0.1)
        runner.start()
        runner.submit(Item(id="m"), ItemRef("m"), None, time.time(), TriggerKind.CATCH_UP)
        await until(lambda: runner.state == "retrying")
        assert runner.catch_up_left == 1
        await until(lambda: runner.count == 2)
        await runner.stop()
        return runner

    runner = asyncio.run(main())
    assert calls == ["m", "m"] and runner.catch_up_left == 0
    assert [t.kind for t in runner.triggers] == ["catch-up", "catch-up"]


def test_retry_settings_are_stored_old_records_get_the_defaults_and_bad_ones_refused():
    import pytest

    from pubsub_hook_magic.hooks import HookError

    hook = Hook(service="s", node="n", type=HookType.PYTHON, arg="m", id="h1", retry=2, retry_delay=0.5)
    record = hook.to_record()
    assert (record["retry"], record["retry_delay"]) == (2, 0.5)
    back = Hook.from_record(record)
    assert (back.retry, back.retry_delay) == (2, 0.5)
    del record["retry"], record["retry_delay"]  # written before retries existed
    old = Hook.from_record(record)
    assert (old.retry, old.retry_delay) == (0, 1.0)
    for retry, delay in ((-1, 1.0), ("3", 1.0), (1.5, 1.0), (1, -0.1), (1, float("nan")), (1, "1")):
        with pytest.raises(HookError, match="--retry"):
            Hook(service="s", node="n", type=HookType.PYTHON, arg="m", retry=retry, retry_delay=delay)


def test_backoff_doubles_from_the_delay_and_is_capped():
    from pubsub_hook_magic.background import Backoff, backoff
    from pubsub_hook_magic.hooks import MAX_RETRY_DELAY

    assert [backoff(1.0, n, MAX_RETRY_DELAY) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff(1.0, 20, MAX_RETRY_DELAY) == 300.0 and backoff(1.0, 10_000, MAX_RETRY_DELAY) == 300.0
    assert backoff(0.0, 3, MAX_RETRY_DELAY) == 0.0
    delays = Backoff(0.5, 30.0, jitter=0.2)
    waits = [delays.next_delay() for _ in range(8)]
    assert all(0.5 * 2**i <= w <= 0.5 * 2**i * 1.2 for i, w in enumerate(waits[:6]))
    assert 30.0 <= waits[-1] <= 36.0
    delays.reset()
    assert delays.delay == 0.5
