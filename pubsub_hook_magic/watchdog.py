"""Stopping a hook run that goes past its time limit.

Synchronous hooks run on the session's loop thread (they may use ``client``), so one
stuck in a loop would stop every other hook. A :class:`Watchdog` thread looks at the
guarded runs a few times a second:

- a synchronous call past its deadline gets :class:`HookTimeout` raised inside the
  loop thread (CPython's ``PyThreadState_SetAsyncExc``), which stops Python code at its
  next bytecode. A call blocked inside C (``time.sleep(3600)``, a socket read) is
  stopped only when that call returns: such hooks should be ``async``;
- an awaited coroutine past its deadline has its task cancelled, from the loop.

The hot path costs a lock and a set operation per run: no timer and no thread wake-up
per item. With no run for a whole poll the thread sleeps until the next one (an idle
kernel is not woken 20 times a second). An exception is only ever delivered while the guarded call runs: a guard
that ends first withdraws it, under the same lock the watchdog fires with.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["HookTimeout", "Watchdog"]


class HookTimeout(BaseException):
    """Raised inside a hook that ran past its time limit (a BaseException, so that a
    hook's ``except Exception`` does not swallow it)."""


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None
    )


class _Guard:
    """A synchronous call on this thread, interrupted past its deadline."""

    __slots__ = ("deadline", "fired", "thread_id", "watchdog")

    def __init__(self, watchdog: Watchdog, limit: float):
        self.watchdog = watchdog
        self.thread_id = threading.get_ident()
        self.deadline = time.monotonic() + limit
        self.fired = False

    def __enter__(self) -> _Guard:
        self.watchdog.add(self)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.watchdog.remove(self, withdraw=exc_type is not HookTimeout)

    def fire(self) -> None:
        _set_async_exc(self.thread_id, HookTimeout)

    def withdraw(self) -> None:
        """The call ended before the exception was delivered: take it back."""
        _set_async_exc(self.thread_id, None)


class _TaskGuard(_Guard):
    """An await in the current task, cancelled past its deadline."""

    __slots__ = ("loop", "task")

    def __init__(self, watchdog: Watchdog, limit: float):
        super().__init__(watchdog, limit)
        self.task = asyncio.current_task()
        self.loop = asyncio.get_running_loop()

    def fire(self) -> None:
        self.loop.call_soon_threadsafe(self._cancel)

    def withdraw(self) -> None:
        """Nothing to take back: :meth:`_cancel` cancels only a task still guarded."""

    def _cancel(self) -> None:
        if self.task is not None:
            self.watchdog.call_if_guarded(self, self.task.cancel)


class Watchdog:
    """One thread that stops guarded runs past their deadline."""

    def __init__(self, poll: float = 0.05):
        self.poll = poll
        self._lock = threading.Lock()
        self._guards: set[_Guard] = set()
        self._thread: threading.Thread | None = None
        self._added = False  # a guard was added since the last poll
        self._asleep = False  # the thread waits for _wake: no guard for a whole poll
        self._wake = threading.Event()
        self.fired = 0

    def guard(self, limit: float | None) -> _Guard | _NoGuard:
        """``with watchdog.guard(limit): call()``; no guard when ``limit`` is None."""
        if not limit or limit <= 0:
            return _NO_GUARD
        return _Guard(self, limit)

    def guard_await(self, limit: float | None) -> _TaskGuard | _NoGuard:
        """``with watchdog.guard_await(limit): await coro``; the task is cancelled past
        the limit (``guard.fired`` then tells a timeout from another cancellation)."""
        if not limit:
            return _NO_GUARD
        return _TaskGuard(self, max(limit, 0.0))

    def add(self, guard: _Guard) -> None:
        """A guarded run starts (its ``__enter__``)."""
        with self._lock:
            self._guards.add(guard)
            self._added = True
            if self._asleep:
                self._asleep = False
                self._wake.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._main, name="pubsub-hook-watchdog", daemon=True)
                self._thread.start()

    def remove(self, guard: _Guard, withdraw: bool) -> None:
        """A guarded run ended (its ``__exit__``); an exception fired at it but not
        delivered is withdrawn under the lock the watchdog fires with."""
        with self._lock:
            self._guards.discard(guard)
            if withdraw and guard.fired:
                guard.withdraw()

    def call_if_guarded(self, guard: _Guard, action: Callable[[], object]) -> None:
        """``action()`` if ``guard``'s run has not ended (under the lock)."""
        with self._lock:
            if guard in self._guards:
                action()

    def _main(self) -> None:
        while True:
            time.sleep(self.poll)
            now = time.monotonic()
            with self._lock:
                for guard in self._guards:
                    if not guard.fired and now >= guard.deadline:
                        guard.fired = True
                        self.fired += 1
                        guard.fire()
                idle = not self._guards and not self._added
                self._added = False
                if idle:
                    self._asleep = True
                    self._wake.clear()
            if idle:
                self._wake.wait()

    @property
    def asleep(self) -> bool:
        """Whether the thread waits for the next guarded run (nothing to watch)."""
        return self._asleep


class _NoGuard:
    fired = False

    def __enter__(self) -> _NoGuard:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


_NO_GUARD = _NoGuard()
