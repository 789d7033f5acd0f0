"""Running a hook for each item: in order, one at a time, recording every run.

Each hook has a bounded queue and one worker task on the session's loop. A
synchronous hook runs inline on that loop (it may use ``client``); an ``async def``
hook, or ``python_code`` with top-level ``await``, is awaited. Whatever the hook raises
is recorded, with its traceback, on the trigger of that item; the next item still runs.

A failed run (an error, or the time limit) of a hook created with ``--retry N`` is
tried again up to N times, after ``retry_delay`` seconds, then twice as long each time
(at most 5 min), the hook's later items waiting behind it (state ``retrying``); each
attempt is a trigger. An item that still fails goes to the hook's dead letters
(:mod:`.deadletters`).
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import os
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from .deadletters import DeadLetter, DeadLetters
from .dedupe import ItemRef
from .hooks import MAX_RETRY_DELAY, Hook, HookError, source_path
from .states import HookState, Outcome, TriggerKind
from .watchdog import HookTimeout, Watchdog

__all__ = ["Trigger", "HookRunner", "needs_newer_summary"]

log = logging.getLogger(__name__)
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
#: Seconds a hook's worker runs items back to back before giving the loop a turn.
_TURN = 0.005
#: Seconds between two checks of a hook's file for edits while items keep coming (the
#: first item after a pause is always checked).
_SOURCE_CHECK = 1.0
#: How many of the last items run a hook remembers (and stores, if persistent):
#: catch-up resumes after the newest of them still on the node, so a retracted or
#: evicted last item is not a gap while an older one remains.
RECENT_POSITIONS = 16


@dataclass(slots=True)
class Trigger:
    """One run of a hook for one item (or one item it had to drop)."""

    item_id: str | None
    publisher: str | None
    received: float  # wall-clock time the item arrived
    started: float | None = None  # wall-clock time the hook started
    duration: float | None = None  # seconds
    outcome: Outcome = Outcome.PENDING
    error: str | None = None  # "ValueError: message"
    traceback: str | None = None
    payload: Any = None  # the item stanza (for display and replay; not in as_dict)
    ref: ItemRef | None = None  # the item as a position in its node (None: no id)
    kind: TriggerKind = TriggerKind.LIVE
    #: 1 for the first run of an item, 2 for its first retry (``--retry``)…
    attempt: int = 1
    #: This attempt failed and the item is tried again (after a delay).
    retried: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "publisher": self.publisher,
            "received": self.received,
            "started": self.started,
            "duration": self.duration,
            "outcome": self.outcome,
            "error": self.error,
            "traceback": self.traceback,
            "kind": self.kind,
            "attempt": self.attempt,
        }


class HookRunner:
    """Feeds one hook its items and keeps its statistics and recent triggers."""

    def __init__(
        self,
        hook: Hook,
        call_args: Callable[[], tuple[Any, Any]],
        *,
        history: int = 50,
        queue_size: int = 1000,
        time_limit: float | None = None,
        watchdog: Watchdog | None = None,
        loader: Callable[[Hook], Callable[..., Any]] | None = None,
        dead_letters: DeadLetters | None = None,
    ):
        self.hook = hook
        #: The items that still failed after the hook's retries.
        self.dead_letters = dead_letters if dead_letters is not None else DeadLetters()
        #: The attempt of the item being retried (None: not retrying), and when its
        #: first attempt failed.
        self.retry_attempt: int | None = None
        self._first_failed: float | None = None
        #: Reloads the hook's code when its file changes on disk (None: never).
        self.loader = loader
        self._source = source_path(hook) if loader is not None else None
        self._source_mtime = _mtime(self._source)
        self._source_checked: float | None = time.perf_counter()  # None: check at the next run
        #: A persistent hook's position is stored: its digest is taken as the item is
        #: queued, before any hook can change the item.
        self._digest_on_submit = hook.persistent and hook.catch_up
        #: Why the last edit of the hook's file could not be loaded (the previous
        #: version keeps running).
        self.reload_error: str | None = None
        self.reloads = 0
        self._run_lock = asyncio.Lock()
        #: Seconds one run may take; past it the run is stopped and recorded as "timeout".
        self.time_limit = time_limit
        self.watchdog = watchdog or Watchdog()
        #: perf_counter() when the current run started (None when idle).
        self.running_since: float | None = None
        self._call_args = call_args  # -> (host, client), read at each run
        self.triggers: collections.deque[Trigger] = collections.deque(maxlen=max(1, history))
        self.count = 0
        self.errors = 0
        self.dropped = 0
        self.skipped = 0
        self.gaps = 0
        #: The last items run (or skipped), oldest first: where catch-up resumes after a
        #: restart. A single reference with an empty id means "from the node's first item".
        self.ran: collections.deque[ItemRef] = collections.deque(maxlen=RECENT_POSITIONS)
        #: The same for the last items queued: where catch-up resumes after a reconnection.
        self.submitted: collections.deque[ItemRef] = collections.deque(maxlen=RECENT_POSITIONS)
        #: Items of a catch-up still queued; with ``held`` (the node's missed items are
        #: being fetched), the hook is "catching up".
        self.catch_up_left = 0
        self.held = False
        #: A persistent hook's stored position is still to be read (at its catch-up).
        self.position_unread = False
        #: Publications skipped by the hook's ``--where`` filter.
        self.filtered = 0
        #: Runs for publications only, unfiltered (the event path's fast lane).
        self.plain = tuple(hook.events) == ("publish",) and hook.filter is None
        #: For a hook that runs on retractions: the ids it saw published that should
        #: still be on the node (catch-up reports those gone as retractions).
        self.present: dict[str, None] | None = {} if "retract" in hook.events else None
        #: Its stored ``present`` ids are still to be read (at its catch-up).
        self.present_unread = False
        #: Takes no item: in standby (another process runs it), waiting for notebook
        #: names, or overflowed (its queue was full). See :meth:`submit`.
        self.inactive = False
        #: While the hook (re)starts from its position: its live items, kept until
        #: the missed ones are queued ((item, ref, publisher, received) each).
        #: (Events: (element, None, their id, received, "retract"/"purge"/"delete").)
        self.parked: list[tuple[Any, ItemRef | None, str | None, float, str | None]] | None = None
        #: Another process of the machine runs this persistent hook (``owner`` says who).
        self.standby = False
        self.owner: str | None = None
        #: Names the hook's code reads that the notebook does not define yet.
        self.waiting_for: tuple[str, ...] = ()
        #: Persistent hooks never drop: a full queue makes them fetch from the node later.
        self.lossless = hook.persistent and hook.catch_up
        self.overflowed = False
        #: Called (on the loop) when an overflowed hook's queue has drained.
        self.on_drained: Callable[[HookRunner], None] | None = None
        #: A paused hook does not run: the items it skips are recorded and counted.
        self.paused = False
        self.total_duration = 0.0
        self.last_duration: float | None = None
        self.last_error: Trigger | None = None
        self._queue: asyncio.Queue[tuple[Any, Trigger]] = asyncio.Queue(maxsize=queue_size)
        self._worker: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[HookRunner, Trigger], None]] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the worker on the running loop (call from the session loop)."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(
                self._work(), name=f"pubsub-hook-{self.hook.id}"
            )

    async def stop(self) -> None:
        """Stop the worker; an item being run is cancelled, queued ones are dropped."""
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            worker.cancel()
            try:
                await worker
            except asyncio.CancelledError:
                pass

    def add_listener(self, listener: Callable[[HookRunner, Trigger], None]) -> None:
        """Call ``listener(runner, trigger)`` after each run (on the session loop)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[HookRunner, Trigger], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # ------------------------------------------------------------------ the hot path

    def submit(
        self,
        item: Any,
        ref: ItemRef | None,
        publisher: str | None,
        received: float,
        kind: TriggerKind = TriggerKind.LIVE,
        event_id: str | None = None,
    ) -> None:
        """Queue ``item`` (``ref``: its id and payload, None if it has no id) for the
        hook; count it as dropped if the queue is full, and as skipped while the hook
        is paused. A persistent hook drops nothing: when its queue is full it stops
        taking items, and fetches them from the node once the queue has drained.
        An inactive hook (standby, waiting, overflowed) takes nothing; a restarting
        one parks its live items until its missed ones are queued."""
        if self.parked is not None:
            self.parked.append((item, ref, publisher, received, None))
            return
        if self.inactive:
            return
        if ref is not None and ref.id:
            trigger = Trigger(ref.id, publisher, received, payload=item, ref=ref, kind=kind)
            self.submitted.append(ref)
            if self._digest_on_submit:
                ref.digest  # noqa: B018 - computed once per item, shared by its hooks
        else:  # an item without id, or an event (retract, purge, delete: its id or node)
            trigger = Trigger(event_id, publisher, received, payload=item, kind=kind)
        if self.paused:
            self.skipped += 1
            trigger.outcome = Outcome.SKIPPED
            if trigger.ref is not None:
                self.ran.append(trigger.ref)
            self._record(trigger)
            return
        try:
            self._queue.put_nowait((item, trigger))
        except asyncio.QueueFull:
            if self.lossless:
                # Nothing is lost: the item stays on the node, and the hook resumes
                # from its last queued item when its queue has drained.
                self.submitted.pop()
                self.inactive = self.overflowed = True
                return
            self.dropped += 1
            trigger.outcome = Outcome.DROPPED
            trigger.error = f"queue full ({self._queue.maxsize} items waiting)"
            self._record(trigger)
        else:
            if kind is TriggerKind.CATCH_UP:
                self.catch_up_left += 1

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def _work(self) -> None:
        queue = self._queue
        lock = self._run_lock
        clock = time.perf_counter
        turn_ends = clock() + _TURN
        while True:
            if queue.empty():
                self._source_checked = None  # idle: the next item starts a burst
            item, trigger = await queue.get()
            async with lock:
                await self.run(item, trigger)
            while trigger.retried:  # the hook's later items wait behind it: order holds
                trigger = await self._retry(item, trigger)
            # Queue.get() does not yield while items wait: after a few milliseconds of
            # work, give the loop a turn, so a backlog of one hook never starves the
            # others, the stream or the writes, while a burst is still drained in bulk
            # (one turn per item would let a socket read of many items overflow the queue).
            if clock() >= turn_ends or queue.empty():
                if self.overflowed and queue.empty() and self.on_drained is not None:
                    self.overflowed = False
                    self.on_drained(self)
                await asyncio.sleep(0)
                turn_ends = clock() + _TURN

    async def _retry(self, item: Any, failed: Trigger) -> Trigger:
        """Wait (exponential backoff from the hook's ``retry_delay``), then run a
        failed item again; return the new attempt's trigger. A stop of the runner
        during the wait cancels it."""
        try:
            await asyncio.sleep(backoff(self.hook.retry_delay, failed.attempt))
        except asyncio.CancelledError:
            self.retry_attempt = None
            raise
        trigger = Trigger(
            failed.item_id,
            failed.publisher,
            failed.received,
            payload=item,
            ref=failed.ref,
            kind=failed.kind,
            attempt=failed.attempt + 1,
        )
        async with self._run_lock:
            return await self.run(item, trigger)

    async def run_now(
        self, item: Any, kind: str, item_id: str | None = None, publisher: str | None = None
    ) -> Trigger:
        """Run the hook on ``item`` now, between two queued items (replay, test)."""
        trigger = Trigger(
            item_id if item_id is not None else (item["id"] or None),
            publisher,
            time.time(),
            payload=item,
            kind=TriggerKind(kind),
        )
        self._source_checked = None  # the file may have been edited just before
        async with self._run_lock:
            return await self.run(item, trigger)

    def _check_source(self) -> None:
        """Reload the hook if its file changed; a broken edit keeps the old code."""
        mtime = _mtime(self._source)
        if mtime == self._source_mtime:
            return
        self._source_mtime = mtime
        if mtime is None:
            self.reload_error = f"{self._source} is gone; the loaded version keeps running"
            return
        try:
            self.hook.func = self.loader(self.hook)  # type: ignore[misc]
        except HookError as exc:
            edited = time.strftime("%H:%M", time.localtime(mtime / 1e9))
            # Shown as "runs the previous version: the edit at 12:01 does not load: …"
            self.reload_error = f"the edit at {edited} does not load: {exc}"
            log.warning("hook %s runs the previous version: %s", self.hook.id, self.reload_error)
        else:
            self.reload_error = None
            self.reloads += 1
            log.info("hook %s reloaded from %s", self.hook.id, self._source)

    async def run(self, item: Any, trigger: Trigger) -> Trigger:
        """Run the hook once for ``item``, recording the outcome on ``trigger``."""
        if self._source is not None:
            checked, now = self._source_checked, time.perf_counter()
            if checked is None or now - checked >= _SOURCE_CHECK:
                self._source_checked = now
                self._check_source()
        func = self.hook.func
        host, client = self._call_args()
        limit = self.time_limit
        trigger.started = time.time()
        self.running_since = start = time.perf_counter()
        try:
            if func is None:
                raise RuntimeError(self.hook.load_error or "the hook's code is not loaded")
            with self.watchdog.guard(limit):
                result = func(host, client, item)
            if inspect.isawaitable(result):
                guard = self.watchdog.guard_await(limit and limit - (time.perf_counter() - start))
                try:
                    with guard:
                        await result
                except asyncio.CancelledError:
                    if not guard.fired:
                        raise
                    asyncio.current_task().uncancel()  # type: ignore[union-attr]
                    raise HookTimeout() from None
        except HookTimeout as exc:
            self._fail(trigger, exc, outcome=Outcome.TIMEOUT)
            trigger.error = f"ran longer than its time limit ({limit:g} s): stopped"
        except asyncio.CancelledError:
            if _cancelling():
                raise  # the runner is stopping
            self._fail(trigger, asyncio.CancelledError("the hook was cancelled"))
        except BaseException as exc:  # noqa: BLE001 - a hook must never stop the session
            self._fail(trigger, exc)
        else:
            trigger.outcome = Outcome.OK
        finally:
            self.running_since = None
            if trigger.outcome is not Outcome.PENDING:  # (pending: stopped mid-run, not done)
                self._finish(trigger, time.perf_counter() - start)
        return trigger

    def _finish(self, trigger: Trigger, duration: float) -> None:
        """Account for a run that ended. An item is done (its position moves) once it
        ran, or failed its last attempt; a run interrupted because the runner stops
        (a kernel shutting down) is not, and runs again in the next owner."""
        retried = trigger.retried = self._settle_attempt(trigger)
        if trigger.kind is TriggerKind.CATCH_UP and not retried:
            self.catch_up_left -= 1
        if trigger.ref is not None and trigger.kind in (TriggerKind.LIVE, TriggerKind.CATCH_UP) and not retried:
            self.ran.append(trigger.ref)
        trigger.duration = duration
        self.count += 1
        self.total_duration += duration
        self.last_duration = duration
        self._record(trigger)

    @property
    def position(self) -> ItemRef | None:
        """The last item run (None: none yet, and no starting position)."""
        return self.ran[-1] if self.ran else None

    def set_position(self, positions: ItemRef | list[ItemRef] | None) -> None:
        """Where catch-up starts for this hook: a stored or initial position, or the
        last items run, oldest first."""
        if positions is None:
            positions = []
        elif isinstance(positions, ItemRef):
            positions = [positions]
        self.ran.clear()
        self.ran.extend(positions)
        self.submitted.clear()
        self.submitted.extend(positions)

    def report_gap(self, last_id: str, kept: int) -> None:
        """Record that items may have been missed: the node holds none of the last items
        the hook ran (``last_id`` the newest)."""
        self.gaps += 1
        trigger = Trigger(None, None, time.time(), outcome=Outcome.GAP, kind=TriggerKind.CATCH_UP)
        trigger.error = (
            f"the node no longer holds item {last_id!r}, the last one this hook ran, nor the "
            f"ones before it (it keeps {kept} item(s)): items published in between were lost"
        )
        self._record(trigger)

    def _settle_attempt(self, trigger: Trigger) -> bool:
        """After a run of a queued item: whether it is tried again (``--retry``); a
        failure without retries left goes to the dead letters (before the position
        moves past the item)."""
        if trigger.kind not in (TriggerKind.LIVE, TriggerKind.CATCH_UP):
            return False  # replay, test, retry: one-off runs
        failed = trigger.outcome in (Outcome.ERROR, Outcome.TIMEOUT)
        if not failed:
            self.retry_attempt = None
            return False
        now = time.time()
        if trigger.attempt == 1:
            self._first_failed = now
        if trigger.attempt <= self.hook.retry and not _cancelling():
            self.retry_attempt = trigger.attempt + 1
            return True
        self.retry_attempt = None
        try:
            self.dead_letters.add(DeadLetter.of(trigger, trigger.attempt, self._first_failed))
        except Exception:  # noqa: BLE001 - never stop the hook for its bookkeeping
            log.exception("hook %s: cannot keep the failed item %s", self.hook.id, trigger.item_id)
        return False

    def _fail(self, trigger: Trigger, exc: BaseException, outcome: Outcome = Outcome.ERROR) -> None:
        self.errors += 1
        self.last_error = trigger
        trigger.outcome = outcome
        trigger.error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        # Drop our own frames: the traceback starts in the hook's code.
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
            tb = tb.tb_next
        trigger.traceback = "".join(traceback.format_exception(type(exc), exc, tb))
        attempt = ""
        if self.hook.retry and trigger.kind in (TriggerKind.LIVE, TriggerKind.CATCH_UP):
            attempt = f" (attempt {trigger.attempt} of {self.hook.retry + 1})"
        log.warning("hook %s failed on item %s%s: %s", self.hook.id, trigger.item_id, attempt, trigger.error)

    def _record(self, trigger: Trigger) -> None:
        self.triggers.append(trigger)
        for listener in self._listeners:
            try:
                listener(self, trigger)
            except Exception:  # noqa: BLE001
                log.exception("trigger listener failed")

    # ------------------------------------------------------------------ reporting

    @property
    def last_trigger(self) -> Trigger | None:
        return self.triggers[-1] if self.triggers else None

    @property
    def state(self) -> HookState:
        if self.hook.func is None:
            return HookState.BROKEN
        if self.standby:
            return HookState.STANDBY
        if self.waiting_for:
            return HookState.WAITING
        if self.paused:
            return HookState.PAUSED
        if self.retry_attempt is not None:
            return HookState.RETRYING
        if self.held or self.catch_up_left > 0 or self.parked is not None or self.overflowed:
            return HookState.CATCHING_UP
        return HookState.ACTIVE

    @property
    def mean_duration(self) -> float | None:
        return self.total_duration / self.count if self.count else None

    def summary(self, recent: bool = True) -> dict[str, Any]:
        """The hook and its statistics, JSON-ready (``%hook list -O json``); without
        the recent triggers when ``recent`` is false (the table's cheap refresh)."""
        hook = self.hook
        last = self.last_trigger
        return {
            "id": hook.id,
            "service": hook.service,
            "node": hook.node,
            "type": hook.type.value,
            "arg": hook.arg,
            "persistent": hook.persistent,
            "created": hook.created,
            "state": self.state.value,
            "owner": self.owner,
            "waiting_for": list(self.waiting_for),
            "events": list(hook.events),
            "where": hook.where,
            "filtered": self.filtered,
            "load_error": hook.load_error,
            "triggers": self.count,
            "errors": self.errors,
            "dropped": self.dropped,
            "skipped": self.skipped,
            "gaps": self.gaps,
            "retry": hook.retry,
            "retry_delay": hook.retry_delay,
            "attempt": self.retry_attempt,  # of the item being retried (None: not retrying)
            "failed": len(self.dead_letters),  # dead letters: %hook failed ID
            "failed_dropped": self.dead_letters.dropped,
            "reloads": self.reloads,
            "reload_error": self.reload_error,
            "catch_up": hook.catch_up,
            "paused": self.paused,
            "pending": self.pending,
            "running_for": (
                time.perf_counter() - self.running_since if self.running_since is not None else None
            ),
            "last_trigger": last.as_dict() if last else None,
            "last_error": self.last_error.as_dict() if self.last_error else None,
            "last_duration": self.last_duration,
            "mean_duration": self.mean_duration,
            "recent": [t.as_dict() for t in self.triggers] if recent else [],
        }


def backoff(first: float, attempt: int) -> float:
    """Seconds to wait after the failed attempt number ``attempt`` (1: the first run)
    before the next: ``first``, then twice as long each time, at most 5 min."""
    return min(first * 2.0 ** min(attempt - 1, 64), MAX_RETRY_DELAY)


def _cancelling() -> bool:
    task = asyncio.current_task()
    return bool(task is not None and task.cancelling())


def _mtime(path: str | None) -> int | None:
    if path is None:
        return None
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def needs_newer_summary(record: dict[str, Any]) -> dict[str, Any]:
    """A stored hook this version cannot run, as ``list_hooks`` shows it."""
    return {
        "id": str(record.get("id", "?")), "service": str(record.get("service", "")),
        "node": str(record.get("node", "")), "type": str(record.get("type", "")),
        "arg": str(record.get("arg", "")), "persistent": True,
        "created": record.get("created"), "state": HookState.NEEDS_NEWER.value,
        "load_error": "written by a newer pubsub_hook_magic: upgrade it to run this hook here",
        "triggers": 0, "errors": 0, "dropped": 0, "skipped": 0, "gaps": 0, "reloads": 0,
        "reload_error": None, "catch_up": bool(record.get("catch_up", True)), "paused": False,
        "pending": 0, "running_for": None, "last_trigger": None, "last_error": None,
        "last_duration": None, "mean_duration": None, "recent": [], "owner": None,
        "waiting_for": [], "failed": 0, "attempt": None,
    }
