"""The watchdog thread: stops runs past their limit, and sleeps when there is none."""

import time

import pytest

from pubsub_hook_magic.watchdog import HookTimeout, Watchdog


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_call_past_its_limit_is_stopped_and_one_within_it_is_not():
    watchdog = Watchdog(poll=0.01)
    with pytest.raises(HookTimeout):
        with watchdog.guard(0.05):
            spin(5)
    with watchdog.guard(1):
        spin(0.05)  # no exception: it ended in time
    spin(0.05)  # nor later: nothing is left pending for this thread
    assert watchdog.fired == 1


def test_the_thread_sleeps_without_runs_and_wakes_for_the_next_one():
    watchdog = Watchdog(poll=0.01)
    with watchdog.guard(10):
        pass
    wait_until(lambda: watchdog.asleep)
    with pytest.raises(HookTimeout):  # armed again by the next run
        with watchdog.guard(0.05):
            assert not watchdog.asleep
            spin(5)


def test_a_run_stuck_after_a_stream_of_short_runs_is_stopped():
    watchdog = Watchdog(poll=0.02)
    for _ in range(200):  # short runs back to back, as in a stream of items
        with watchdog.guard(10):
            spin(0.0005)
    started = time.monotonic()
    with pytest.raises(HookTimeout):
        with watchdog.guard(0.1):
            spin(5)
    assert time.monotonic() - started < 4  # stopped by the watchdog, not by the end of spin()
