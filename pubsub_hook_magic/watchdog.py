"""Stopping a synchronous hook that runs past its time limit.

Synchronous hooks run on the session's loop thread (they may use ``client``), so one
stuck in a loop would stop every other hook. A :class:`Watchdog` thread watches each
guarded call; past its deadline it raises :class:`HookTimeout` inside the loop thread
(CPython's ``PyThreadState_SetAsyncExc``), which stops Python code at its next
bytecode. A call blocked inside C (``time.sleep(3600)``, a socket read) is stopped only
when that call returns: such hooks should be ``async``.

The exception is only ever delivered while the guarded call runs: a guard that ends
first withdraws it, under the same lock the watchdog fires with.
"""

from __future__ import annotations

import ctypes
import threading
import time
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
    __slots__ = ("watchdog", "thread_id", "deadline", "fired")

    def __init__(self, watchdog: Watchdog, limit: float):
        self.watchdog = watchdog
        self.thread_id = threading.get_ident()
        self.deadline = time.monotonic() + limit
        self.fired = False

    def __enter__(self) -> _Guard:
        self.watchdog._add(self)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.watchdog._remove(self, delivered=exc_type is HookTimeout)


class Watchdog:
    """One thread that interrupts guarded calls past their deadline."""

    def __init__(self, poll: float = 0.05):
        self.poll = poll
        self._lock = threading.Lock()
        self._guards: set[_Guard] = set()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.fired = 0

    def guard(self, limit: float | None) -> _Guard | _NoGuard:
        """``with watchdog.guard(limit): call()``; no guard when ``limit`` is None."""
        if not limit or limit <= 0:
            return _NO_GUARD
        return _Guard(self, limit)

    def _add(self, guard: _Guard) -> None:
        with self._lock:
            self._guards.add(guard)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._main, name="pubsub-hook-watchdog", daemon=True)
                self._thread.start()
        self._wake.set()

    def _remove(self, guard: _Guard, delivered: bool) -> None:
        with self._lock:
            self._guards.discard(guard)
            if guard.fired and not delivered:
                _set_async_exc(guard.thread_id, None)  # withdraw: the call already ended

    def _main(self) -> None:
        while True:
            self._wake.wait(self.poll if self._guards else None)
            self._wake.clear()
            now = time.monotonic()
            with self._lock:
                for guard in self._guards:
                    if not guard.fired and now >= guard.deadline:
                        guard.fired = True
                        self.fired += 1
                        _set_async_exc(guard.thread_id, HookTimeout)


class _NoGuard:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


_NO_GUARD = _NoGuard()
