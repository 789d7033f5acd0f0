"""The loop thread's doorway: coroutines with run(), plain functions with call()."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from pubsub_hook_magic.loopthread import LoopThread


@pytest.fixture
def loop_thread():
    lt = LoopThread(name="test-loop")
    yield lt
    lt.stop()


def test_call_runs_a_plain_function_on_the_loop_thread(loop_thread):
    def where(a, b):
        return threading.current_thread() is loop_thread.thread, a + b, asyncio.get_running_loop() is loop_thread.loop

    assert loop_thread.call(where, 1, 2) == (True, 3, True)


def test_call_raises_what_the_function_raises(loop_thread):
    def fail():
        raise KeyError("nope")

    with pytest.raises(KeyError, match="nope"):
        loop_thread.call(fail)
    assert loop_thread.call(lambda: "still alive") == "still alive"


def test_call_times_out_and_the_late_function_is_not_run(loop_thread):
    ran, started = [], threading.Event()

    async def busy():
        started.set()
        time.sleep(0.3)  # blocks the loop

    loop_thread.submit(busy())
    assert started.wait(5)
    with pytest.raises(TimeoutError, match=r"no answer within 0\.05 s"):
        loop_thread.call(ran.append, 1, timeout=0.05)
    loop_thread.call(lambda: None, timeout=5)
    assert ran == []


def test_call_and_run_are_refused_from_the_loop_itself(loop_thread):
    async def inside():
        with pytest.raises(RuntimeError, match="own loop"):
            loop_thread.call(lambda: None)
        sleeping = asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="own loop"):
            loop_thread.run(sleeping)
        await sleeping
        return True

    assert loop_thread.run(inside(), 5) is True


def test_run_waits_for_a_coroutine(loop_thread):
    async def add(a, b):
        await asyncio.sleep(0)
        return a + b

    assert loop_thread.run(add(2, 3), 5) == 5
