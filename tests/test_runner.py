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
        runner.paused = True
        feed(runner, ["a", "b"])
        runner.paused = False
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


def test_a_burst_larger_than_a_loop_turn_is_drained_without_drops():
    """Items arrive a socket read at a time (hundreds per loop turn): the worker must
    drain them in bulk, not one per turn, or a stall overflows its queue."""

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
