"""Calling a hook's code once: sync or async, under its time limit, and what a
failure looks like in a trigger (the traceback starts in the hook's code)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import os
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from .watchdog import HookTimeout, Watchdog

__all__ = ["call_hook", "call_on_loop", "cancelling", "describe_failure", "start_hook"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


async def call_hook(
    func: Callable[..., Any], host: Any, client: Any, item: Any, watchdog: Watchdog, limit: float | None
) -> None:
    """``func(host, client, item)``, awaited if it returns an awaitable; past ``limit``
    seconds it is stopped with :class:`HookTimeout`. Whatever it raises propagates."""
    pending = start_hook(func, host, client, item, watchdog, limit)
    if pending is not None:
        await pending


def start_hook(
    func: Callable[..., Any], host: Any, client: Any, item: Any, watchdog: Watchdog, limit: float | None
) -> Coroutine[Any, Any, None] | None:
    """The synchronous part of :func:`call_hook`: ``func(host, client, item)`` under
    its time limit; returns what is left to await (the hook returned an awaitable), or
    None when it is done (a plain function: no coroutine made per item)."""
    start = time.perf_counter()
    with watchdog.guard(limit):
        result = func(host, client, item)
    if result is None or not inspect.isawaitable(result):
        return None
    return _await_hook(result, watchdog, limit and limit - (time.perf_counter() - start))


async def _await_hook(result: Awaitable[Any], watchdog: Watchdog, limit: float | None) -> None:
    guard = watchdog.guard_await(limit)
    try:
        with guard:
            await result
    except asyncio.CancelledError:
        if not guard.fired:
            raise
        asyncio.current_task().uncancel()  # type: ignore[union-attr]
        raise HookTimeout() from None


def describe_failure(exc: BaseException) -> tuple[str, str]:
    """``("ValueError: message", traceback)``, the traceback without our own frames."""
    error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        tb = tb.tb_next
    return error, "".join(traceback.format_exception(type(exc), exc, tb))


def cancelling() -> bool:
    """Whether the running task is being cancelled (the runner stops)."""
    task = asyncio.current_task()
    return bool(task is not None and task.cancelling())


def call_on_loop(
    loop: asyncio.AbstractEventLoop | None, func: Callable[..., Any], *args: Any
) -> concurrent.futures.Future[Any]:
    """Run ``func(*args)`` on ``loop`` (another thread's: the kernel's) and return a
    future of its result; without a loop (or a closed one) it runs at once, here."""
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def call() -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(func(*args))
            except BaseException as exc:
                future.set_exception(exc)

    if loop is None or loop.is_closed():
        call()
    else:
        loop.call_soon_threadsafe(call)
    return future
