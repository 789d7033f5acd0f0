"""An asyncio loop in a daemon thread, with a synchronous facade.

This is how the notebook talks to the XMPP session without touching the kernel's own
loop (the pattern of Dask's synchronous ``Client``): synchronous code submits a
coroutine with :meth:`LoopThread.run` (or a plain function with :meth:`LoopThread.call`)
and waits for its result with a timeout. Events keep flowing on the thread while a
notebook cell blocks, and a timeout or an interrupt in the caller cancels the coroutine
but leaves the loop alive.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable
from .execution import call_on_loop
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    """Owns one event loop running forever in a daemon thread."""

    def __init__(self, name: str = "pubsub-hook-session"):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self.loop.is_closed()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def in_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, coro: Awaitable[T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` (any awaitable) on the loop; returns a thread-safe future."""
        if not asyncio.iscoroutine(coro):
            coro = _awaited(coro)
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result.

        On a timeout (``TimeoutError``) or an interrupt (``KeyboardInterrupt``) in the
        caller, the coroutine is cancelled; the loop goes on.
        """
        if self.in_thread():
            raise RuntimeError("LoopThread.run() called from its own loop: await instead")
        return _wait(self.submit(coro), timeout)

    def call(self, func: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """Call the plain function ``func(*args)`` on the loop and wait for its result
        (to read what the loop owns, without a wrapper coroutine).

        Raises what ``func`` raises; ``TimeoutError`` if the loop does not get to it in
        ``timeout`` seconds (it is then not called). Refused from the loop's own thread.
        """
        if self.in_thread():
            raise RuntimeError("LoopThread.call() called from its own loop: call the function directly")
        return _wait(call_on_loop(self.loop, func, *args), timeout)

    def call_soon(self, func: Callable[..., Any], *args: Any) -> None:
        """Call ``func(*args)`` on the loop, from any thread."""
        self.loop.call_soon_threadsafe(func, *args)

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel what still runs on the loop, stop it and join the thread."""
        if not self.alive:
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        if not self.in_thread():
            with contextlib.suppress(TimeoutError, RuntimeError):
                self.run(cancel_all(), timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        if not self.in_thread():
            self._thread.join(timeout)


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _wait(future: concurrent.futures.Future[T], timeout: float | None) -> T:
    """The result of a call on the loop; on a timeout or an interrupt here, the call
    is cancelled (a coroutine stops; a function not yet called is not called)."""
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise TimeoutError(f"no answer within {timeout:g} s") from None
    except BaseException:
        future.cancel()
        raise
