"""background.py: the one backoff policy and the one set of background tasks."""

from __future__ import annotations

import asyncio

import pytest

from pubsub_hook_magic.background import Backoff, TaskSet, backoff


def test_backoff_doubles_from_first_to_the_limit():
    delays = Backoff(1.0, 30.0)
    assert delays.delay == 1.0, "the first wait, before any failure"
    waits = [delays.next_delay() for _ in range(8)]
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert delays.attempt == 8 and delays.delay == 30.0


def test_delay_announces_the_next_wait_without_counting_it():
    delays = Backoff(0.5, 10.0)
    for _ in range(4):
        announced = delays.delay
        assert delays.delay == announced, "reading delay counts no failure"
        assert delays.next_delay() == announced


def test_reset_starts_over():
    delays = Backoff(2.0, 60.0)
    for _ in range(5):
        delays.next_delay()
    delays.reset()
    assert delays.attempt == 0 and delays.delay == 2.0 and delays.next_delay() == 2.0


@pytest.mark.parametrize("seed", range(5))
def test_jitter_adds_at_most_its_share_and_never_subtracts(seed):
    import random

    random.seed(seed)
    delays = Backoff(1.0, 8.0, jitter=0.25)
    for attempt in range(1, 40):
        base = min(2.0 ** (attempt - 1), 8.0)
        wait = delays.next_delay()
        assert base <= wait <= base * 1.25, (attempt, wait)
    assert delays.delay == 8.0, "the announced delay carries no jitter"


def test_jitter_spreads_the_waits():
    delays = [Backoff(1.0, 30.0, jitter=0.5) for _ in range(20)]
    assert len({d.next_delay() for d in delays}) > 1


def test_backoff_function_edges():
    assert backoff(1.0, 1, 30.0) == 1.0
    assert backoff(1.0, 10**6, 30.0) == 30.0, "a huge attempt number does not overflow"
    assert backoff(0.0, 5, 30.0) == 0.0
    assert backoff(50.0, 1, 30.0) == 30.0, "even the first wait is capped"


def test_wait_sleeps_the_next_delay(monkeypatch):
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    delays = Backoff(0.25, 1.0)

    async def main():
        for _ in range(4):
            await delays.wait()

    asyncio.run(main())
    assert slept == [0.25, 0.5, 1.0, 1.0]


def test_a_task_set_keeps_tasks_until_they_end():
    async def main():
        tasks = TaskSet()
        release = asyncio.Event()
        results = []

        async def work(n):
            await release.wait()
            results.append(n)
            return n

        started = [tasks.start(work(i), name=f"w{i}") for i in range(3)]
        assert len(tasks) == 3 and set(tasks) == set(started)
        assert started[0].get_name() == "w0"
        release.set()
        await asyncio.gather(*started)
        await asyncio.sleep(0)  # (done callbacks run on the next turn)
        assert len(tasks) == 0 and list(tasks) == []
        assert sorted(results) == [0, 1, 2]

    asyncio.run(main())


def test_a_failed_task_leaves_the_set_too():
    async def main():
        tasks = TaskSet()

        async def fail():
            raise RuntimeError("no")

        task = tasks.start(fail())
        with pytest.raises(RuntimeError):
            await task
        await asyncio.sleep(0)
        assert len(tasks) == 0

    asyncio.run(main())


def test_cancel_all_cancels_every_task():
    async def main():
        tasks = TaskSet()
        cancelled = []

        async def forever(n):
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.append(n)
                raise

        started = [tasks.start(forever(i)) for i in range(3)]
        await asyncio.sleep(0)
        tasks.cancel_all()
        assert len(tasks) == 0
        results = await asyncio.gather(*started, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        assert sorted(cancelled) == [0, 1, 2]
        # the set is usable again
        again = tasks.start(asyncio.sleep(0))
        assert len(tasks) == 1
        await again

    asyncio.run(main())


def test_iterating_while_tasks_end_is_safe():
    async def main():
        tasks = TaskSet()
        for _ in range(5):
            tasks.start(asyncio.sleep(0))
        for task in tasks:  # a copy: tasks ending meanwhile do not break the loop
            await task
        await asyncio.sleep(0)
        assert len(tasks) == 0

    asyncio.run(main())


def test_start_needs_a_running_loop():
    tasks = TaskSet()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        tasks.start(coro)
    coro.close()
