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

**Admission.** The runner owns what happens to an item offered to its hook
(:meth:`HookRunner.offer`, :meth:`HookRunner.offer_event`, :meth:`HookRunner.submit`):

* while the hook restarts from its position (:meth:`~HookRunner.park`), its live items
  are *parked*, to follow the missed ones (:meth:`~HookRunner.unpark`);
* an *inactive* hook takes nothing: in standby (another process runs it), waiting for
  notebook names, or overflowed (a persistent hook whose queue was full: it fetches
  from the node once drained);
* a paused hook records what it skips; a full queue drops (temporary hooks).

The mode flags change through methods only; ``inactive``, ``held`` and ``state`` are
computed from them, never copied.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Container, Mapping
from typing import TYPE_CHECKING, Any

from .admission import HookMode, Parked, ParkedEvent
from .deadletters import DeadLetters
from .dedupe import ItemRef
from .execution import call_hook, cancelling, describe_failure
from .hooks import Hook
from .retries import Retries
from .sourcewatch import SourceWatch
from .states import HookState, Outcome, TriggerKind
from .summary import HookSummary, needs_newer, summarize
from .trigger import Trigger
from .watchdog import HookTimeout, Watchdog

if TYPE_CHECKING:
    from .nodestatus import NodeProblem

__all__ = ["RECENT_POSITIONS", "HookRunner", "Parked", "ParkedEvent", "Trigger", "needs_newer_summary"]

log = logging.getLogger(__name__)
#: Seconds a hook's worker runs items back to back before giving the loop a turn.
_TURN = 0.005
#: How many of the last items run a hook remembers (and stores, if persistent):
#: catch-up resumes after the newest of them still on the node, so a retracted or
#: evicted last item is not a gap while an older one remains.
RECENT_POSITIONS = 16


class HookRunner:
    """Feeds one hook its items, owns its state, and keeps its statistics and recent
    triggers."""

    #: perf_counter() when the current run started (None when idle).
    running_since: float | None
    #: The last items run (or skipped), oldest first: where catch-up resumes after a
    #: restart. A single reference with an empty id means "from the node's first item".
    ran: collections.deque[ItemRef]
    #: The same for the last items queued: where catch-up resumes after a reconnection.
    submitted: collections.deque[ItemRef]
    #: Runs for publications only, unfiltered (the event path's fast lane).
    plain: bool
    #: Persistent hooks never drop: a full queue makes them fetch from the node later.
    lossless: bool
    #: For a hook that runs on retractions: the ids it saw published that should
    #: still be on the node (catch-up reports those gone as retractions).
    present: dict[str, None] | None
    #: Called with (runner, "+id" / "-id" / "*") when ``present`` changes (journal),
    #: and (on the loop) when an overflowed hook's queue has drained.
    on_present_change: Callable[[HookRunner, str], None] | None
    on_drained: Callable[[HookRunner], None] | None

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
        held_nodes: Container[tuple[str, str]] = (),
        node_problems: Mapping[tuple[str, str], NodeProblem] | None = None,
        live_only: Mapping[tuple[str, str], str] | None = None,
    ):
        #: Nodes whose items cannot be read back, with why (:mod:`.nodeinfo`).
        self._live_only: Mapping[tuple[str, str], str] = live_only if live_only is not None else {}
        self.hook = hook
        self.dead_letters = dead_letters if dead_letters is not None else DeadLetters()
        self.retries = Retries(hook, self.dead_letters)
        self.source = SourceWatch(hook, loader)
        #: A persistent hook's position is stored: its digest is taken as the item is
        #: queued, before any hook can change the item.
        self._digest_on_submit = self.lossless = hook.persistent and hook.catch_up
        self._run_lock = asyncio.Lock()
        self.time_limit = time_limit  # seconds one run may take (then: "timeout")
        self.watchdog = watchdog or Watchdog()
        self.running_since = None
        self._call_args = call_args  # -> (host, client), read at each run
        self.triggers: collections.deque[Trigger] = collections.deque(maxlen=max(1, history))
        #: Runs, failed runs, dropped (queue full), skipped (paused), gaps reported, and
        #: publications skipped by the hook's ``--where`` filter.
        self.count = self.errors = self.dropped = self.skipped = self.gaps = self.filtered = 0
        self.total_duration = 0.0
        self.last_duration: float | None = None
        self.last_error: Trigger | None = None
        self.catch_up_left = 0  # items of a catch-up still queued
        self.ran = collections.deque(maxlen=RECENT_POSITIONS)
        self.submitted = collections.deque(maxlen=RECENT_POSITIONS)
        self.plain = tuple(hook.events) == ("publish",) and hook.filter is None
        self.present = {} if "retract" in hook.events else None
        self.on_present_change = self.on_drained = None
        #: Parked, standby, waiting, paused, overflowed, held (see :mod:`.admission`).
        self.mode = HookMode(hook.key, held_nodes, node_problems)
        self._queue: asyncio.Queue[tuple[Any, Trigger]] = asyncio.Queue(maxsize=queue_size)
        self._worker: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[HookRunner, Trigger], None]] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the worker on the running loop (call from the session loop)."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"pubsub-hook-{self.hook.id}")

    async def stop(self) -> None:
        """Stop the worker; an item being run is cancelled, queued ones are dropped."""
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    def replace_code(self, new: Hook) -> None:
        """Run ``new``'s code from its next item on (a cell run again with other code):
        the same hook, with its id, position, statistics and triggers. ``new`` is
        loaded and checked (``new.func`` set) and has this hook's definition but its
        code."""
        hook = self.hook
        hook.arg, hook.source, hook.function, hook.func = new.arg, new.source, new.function, new.func
        hook.load_error = None
        hook.notes = list(new.notes)

    def add_listener(self, listener: Callable[[HookRunner, Trigger], None]) -> None:
        """Call ``listener(runner, trigger)`` after each run (on the session loop)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[HookRunner, Trigger], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # ------------------------------------------------------------------ state
    # (Owned by ``self.mode``, see :mod:`.admission`; read here for the reports.)

    @property
    def paused(self) -> bool:
        return self.mode.paused

    @property
    def standby(self) -> bool:
        return self.mode.standby

    @property
    def owner(self) -> str | None:
        return self.mode.owner

    @property
    def waiting_for(self) -> tuple[str, ...]:
        return self.mode.waiting_for

    @property
    def inactive(self) -> bool:
        return self.mode.inactive

    @property
    def held(self) -> bool:
        return self.mode.held

    @property
    def live_only(self) -> str | None:
        """Why the hook's node cannot be caught up on (it keeps no items), if so."""
        return self._live_only.get(self.hook.key)

    def restore(self, positions: list[ItemRef] | None, present: list[str] | None) -> None:
        """The position (and the present ids) its last process stored."""
        self.mode.position_read()
        if present is not None and self.present is not None:
            self.present = dict.fromkeys(present)
        if positions is not None:
            self.set_position(positions)

    @property
    def retry_attempt(self) -> int | None:
        """The attempt of the item being retried (None: not retrying)."""
        return self.retries.attempt

    @property
    def reload_error(self) -> str | None:
        """Why the last edit of the hook's file could not be loaded."""
        return self.source.reload_error

    @property
    def reloads(self) -> int:
        return self.source.reloads

    # ------------------------------------------------------------------ admission

    def offer(
        self, item: Any, ref: ItemRef | None, publisher: str | None, received: float,
        kind: TriggerKind = TriggerKind.LIVE,
    ) -> None:
        """A publication, for a hook that filters or follows retractions (the others
        take :meth:`submit` straight)."""
        mode = self.mode
        if mode.closed:
            mode.keep(Parked(item, ref, publisher, received))
            return
        hook = self.hook
        if self.present is not None and ref is not None:
            self.present[ref.id] = None
            self._present_changed("+" + ref.id)
        wanted = "publish" in hook.events
        if not wanted or (hook.filter is not None and not hook.filter.matches(item)):
            if wanted:
                self.filtered += 1
            if ref is not None:
                self.submitted.append(ref)
            return
        self.submit(item, ref, publisher, received, kind)

    def offer_event(
        self, kind: str, element: Any, event_id: str, received: float,
        trigger_kind: TriggerKind = TriggerKind.LIVE,
    ) -> None:
        """A retraction (``event_id``: the item's id), purge or delete (the node)."""
        mode = self.mode
        if mode.closed:
            mode.keep(ParkedEvent(element, event_id, received, kind))
            return
        if kind in self.hook.events:
            self.submit(element, None, None, received, trigger_kind, event_id=event_id)
            if mode.overflowed:
                return  # the node is read again once drained: what it lost is found then
        if self.present is not None:
            if kind == "retract":
                if self.present.pop(event_id, False) is None:
                    self._present_changed("-" + event_id)
            else:
                self.present.clear()
                self._present_changed("*")

    def _present_changed(self, change: str) -> None:
        if self.on_present_change is not None:
            self.on_present_change(self, change)

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
        hook (the hot path); count it as dropped if the queue is full, and as skipped
        while the hook is paused. A persistent hook drops nothing: when its queue is
        full it stops taking items, and fetches them from the node once drained."""
        mode = self.mode
        if mode.closed:
            mode.keep(Parked(item, ref, publisher, received))
            return
        if ref is not None and ref.id:
            trigger = Trigger(ref.id, publisher, received, payload=item, ref=ref, kind=kind)
            self.submitted.append(ref)
            if self._digest_on_submit:
                ref.digest  # noqa: B018 - computed once per item, shared by its hooks
        else:  # an item without id, or an event (retract, purge, delete: its id or node)
            trigger = Trigger(event_id, publisher, received, payload=item, kind=kind)
        if mode.paused:
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
                if trigger.ref is not None:
                    self.submitted.pop()  # (appended above: an item with an id)
                mode.overflow()
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

    # ------------------------------------------------------------------ running

    async def _work(self) -> None:
        queue = self._queue
        lock = self._run_lock
        clock = time.perf_counter
        turn_ends = clock() + _TURN
        while True:
            if queue.empty():
                self.source.check_next_run()  # idle: the next item starts a burst
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
                if queue.empty() and self.mode.overflowed and self.mode.drained() and self.on_drained:
                    self.on_drained(self)
                await asyncio.sleep(0)
                turn_ends = clock() + _TURN

    async def _retry(self, item: Any, failed: Trigger) -> Trigger:
        """Wait (exponential backoff from the hook's ``retry_delay``), then run a
        failed item again; return the new attempt's trigger. A stop of the runner
        during the wait cancels it."""
        try:
            await asyncio.sleep(self.retries.delay(failed))
        except asyncio.CancelledError:
            self.retries.stopped()
            raise
        trigger = Trigger(
            failed.item_id, failed.publisher, failed.received, payload=item, ref=failed.ref,
            kind=failed.kind, attempt=failed.attempt + 1,
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
        self.source.check_next_run()  # the file may have been edited just before
        async with self._run_lock:
            return await self.run(item, trigger)

    async def run(self, item: Any, trigger: Trigger) -> Trigger:
        """Run the hook once for ``item``, recording the outcome on ``trigger``."""
        self.source.before_run()
        func = self.hook.func
        host, client = self._call_args()
        limit = self.time_limit
        trigger.started = time.time()
        self.running_since = start = time.perf_counter()
        try:
            if func is None:
                raise RuntimeError(self.hook.load_error or "the hook's code is not loaded")
            await call_hook(func, host, client, item, self.watchdog, limit)
        except HookTimeout as exc:
            self._fail(trigger, exc, outcome=Outcome.TIMEOUT)
            trigger.error = f"ran longer than its time limit ({limit:g} s): stopped"
        except asyncio.CancelledError:
            if cancelling():
                raise  # the runner is stopping
            self._fail(trigger, asyncio.CancelledError("the hook was cancelled"))
        except BaseException as exc:  # a hook must never stop the session
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
        retried = trigger.retried = self.retries.settle(trigger)
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

    def report_gap(self, last_id: str, kept: int, reason: str | None = None, item_id: str | None = None) -> None:
        """Record that items may have been missed: the node holds none of the last items
        the hook ran (``last_id`` the newest); or ``reason`` says why (``item_id``: the
        item not run, :mod:`.payloads`, :mod:`.nodeinfo`)."""
        self.gaps += 1
        trigger = Trigger(item_id, None, time.time(), outcome=Outcome.GAP, kind=TriggerKind.CATCH_UP)
        trigger.error = reason or (
            f"the node no longer holds item {last_id!r}, the last one this hook ran, nor the "
            f"ones before it (it keeps {kept} item(s)): items published in between were lost"
        )
        self._record(trigger)

    def _fail(self, trigger: Trigger, exc: BaseException, outcome: Outcome = Outcome.ERROR) -> None:
        self.errors += 1
        self.last_error = trigger
        trigger.outcome = outcome
        trigger.error, trigger.traceback = describe_failure(exc)
        attempt = ""
        if self.hook.retry and trigger.kind in (TriggerKind.LIVE, TriggerKind.CATCH_UP):
            attempt = f" (attempt {trigger.attempt} of {self.hook.retry + 1})"
        log.warning("hook %s failed on item %s%s: %s", self.hook.id, trigger.item_id, attempt, trigger.error)

    def _record(self, trigger: Trigger) -> None:
        self.triggers.append(trigger)
        for listener in self._listeners:
            try:
                listener(self, trigger)
            except Exception:
                log.exception("trigger listener failed")

    # ------------------------------------------------------------------ reporting

    @property
    def last_trigger(self) -> Trigger | None:
        return self.triggers[-1] if self.triggers else None

    @property
    def state(self) -> HookState:
        mode = self.mode
        if self.hook.func is None:
            return HookState.BROKEN
        problem = mode.node_problem
        if problem is not None:
            return problem.state
        if mode.standby:
            return HookState.STANDBY
        if mode.waiting_for:
            return HookState.WAITING
        if mode.paused:
            return HookState.PAUSED
        if self.retry_attempt is not None:
            return HookState.RETRYING
        if mode.held or self.catch_up_left > 0 or mode.parking or mode.overflowed:
            return HookState.CATCHING_UP
        return HookState.ACTIVE

    @property
    def mean_duration(self) -> float | None:
        return self.total_duration / self.count if self.count else None

    def summary(self, recent: bool = True) -> HookSummary:
        """The hook and its statistics, JSON-ready (``%hook list -O json``); without
        the recent triggers when ``recent`` is false (the table's cheap refresh)."""
        return summarize(self.hook, self, recent=recent)


def needs_newer_summary(record: dict[str, Any]) -> HookSummary:
    """A stored hook this version cannot run, as ``list_hooks`` shows it."""
    return needs_newer(record)

