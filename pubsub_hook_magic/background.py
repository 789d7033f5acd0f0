"""Background work on the session's loop: one backoff policy, one set of tasks.

Everything the engine does on its own (catching a node up, following the store,
asking a peer, retrying a failed request) is a task of a :class:`TaskSet`, so that
it is kept alive until it ends, and cancelled with its owner. Whatever is tried
again waits :func:`backoff` between attempts.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine, Iterator
from typing import Any

__all__ = ["Backoff", "TaskSet", "backoff"]


def backoff(first: float, attempt: int, limit: float, jitter: float = 0.0) -> float:
    """Seconds to wait after the failed attempt number ``attempt`` (1: the first)
    before the next one: ``first``, then twice as long each time, at most ``limit``;
    with ``jitter`` (0.2: up to 20 % more), spread at random so that many waiters
    do not all come back at once."""
    delay = min(first * 2.0 ** min(attempt - 1, 64), limit)
    if jitter:
        delay *= random.uniform(1.0, 1.0 + jitter)
    return delay


class Backoff:
    """The delays of one retry loop: ``first``, then doubling up to ``limit``.

    ``await backoff.wait()`` sleeps the next delay; :attr:`delay` is the delay the
    next wait will take (for the log line that announces it); :meth:`reset` starts
    over after a success."""

    __slots__ = ("attempt", "first", "jitter", "limit")

    def __init__(self, first: float = 1.0, limit: float = 30.0, jitter: float = 0.0):
        self.first, self.limit, self.jitter = first, limit, jitter
        self.attempt = 0

    @property
    def delay(self) -> float:
        """The delay of the next wait (without jitter)."""
        return backoff(self.first, self.attempt + 1, self.limit)

    def next_delay(self) -> float:
        """Count one more failure and return how long to wait before the next try."""
        self.attempt += 1
        return backoff(self.first, self.attempt, self.limit, self.jitter)

    async def wait(self) -> None:
        await asyncio.sleep(self.next_delay())

    def reset(self) -> None:
        self.attempt = 0


class TaskSet:
    """Tasks started on the running loop and kept until they end; :meth:`cancel_all`
    stops them (when their owner stops)."""

    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` in a task of this set (call on the loop)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(list(self._tasks))
