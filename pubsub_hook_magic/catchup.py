"""How items reach the hooks, live and after an absence: what happens at connect and
at every reconnection.

**Live items.** :meth:`CatchUp.on_item` is the event path: an item of a node nobody
hooks is ignored; a copy of an item already seen (servers re-send some) is dropped;
the others are queued to each hook of the node.

**Resuming** (:meth:`CatchUp.resume`, at connect and after every reconnection):

1. every node's live items are *held*, so that they run after what was missed;
2. every node is made to deliver again, all nodes at once
   (:meth:`.Subscriptions.ensure`); ``connect`` returns here;
3. each node then catches up on its own, in the background, as soon as its
   subscription is back: its missed items are fetched and queued to its hooks, then
   its held live items are released. A slow or failing node holds up no other.

**What is fetched.** A hook remembers the last :data:`~.runner.RECENT_POSITIONS`
items it ran (stored for persistent hooks). Catch-up asks the node for its newest
:data:`FIRST_FETCH` items and widens the request (x :data:`WIDEN`) only while some
hook's remembered items are none of them, so the cost follows what was missed, not
the size of the node. A hook resumes after the newest of its remembered items still
on the node (a retracted last item is no gap while an older one remains); only when
the node holds none of them is it a gap, recorded as such, and the hook runs what the
node holds.

**Positions.** Persistent hooks journal each item they run (one ``write``, see
:class:`.store.PositionStore`), so a restarted or killed process resumes where the
last one stopped, running again at most the item that was running.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from .dedupe import ItemRef, RecentItems
from .events import retraction
from .hooks import HookError
from .registry import HookRegistry
from .runner import HookRunner, Trigger
from .session import RequestError, XmppSession
from .states import TriggerKind
from .store import PositionStore
from .subscriptions import Subscriptions, node_missing

__all__ = ["CatchUp", "FIRST_FETCH", "WIDEN", "publisher_of", "resume_index"]

log = logging.getLogger(__name__)

Key = tuple[str, str]

#: Items asked for first when catching up a node (enough for one missed item).
FIRST_FETCH = 2
#: How much each further request widens (newest 2, 6, 18, 54… items).
WIDEN = 3
#: Past this many items, ask for everything the node keeps.
FETCH_ALL_ABOVE = 500


class CatchUp:
    """Live items, held items, catch-up and positions of one manager's hooks."""

    def __init__(
        self,
        registry: HookRegistry,
        runners: dict[str, HookRunner],
        subscriptions: Subscriptions,
        session: Callable[[], XmppSession | None],
        on_change: Callable[[], None],
    ):
        self.registry = registry
        self.runners = runners
        self.subscriptions = subscriptions
        self._session = session
        self._on_change = on_change
        self.recent = RecentItems()
        #: The newest item seen per node: where a new hook's catch-up starts.
        self.node_position: dict[Key, ItemRef] = {}
        #: Nodes catching up: their live items wait here, to run after the missed ones.
        self.held: dict[Key, list[tuple[Any, ItemRef]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: The catch-up task of each node still catching up (one at a time).
        self._catching: dict[Key, asyncio.Task[None]] = {}
        self.positions: PositionStore | None = None

    def reset(self) -> None:
        """Forget the session (at disconnect); background catch-ups are cancelled."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self._catching.clear()
        self.save_positions()
        self.positions = None
        self.recent = RecentItems()
        self.node_position.clear()
        self.held.clear()

    # ------------------------------------------------------------------ live items

    def on_item(self, service: str, node: str, item: Any) -> None:
        """The event path: one published item, from ``service`` (the sender)."""
        key = (service, node)
        held = self.held.get(key)
        if held is None:
            if not self.registry.for_node(service, node):
                return
            self.dispatch(service, node, item, ItemRef.of(item))
        else:
            held.append((item, ItemRef.of(item), None))

    def on_event(self, service: str, node: str, kind: str, element: Any) -> None:
        """A retraction, purge or delete of a node, from ``service`` (the sender)."""
        held = self.held.get((service, node))
        if held is None:
            self.dispatch_event(service, node, kind, element)
        else:
            held.append((element, None, kind))

    def dispatch(self, service: str, node: str, item: Any, ref: ItemRef) -> None:
        hooks = self.registry.for_node(service, node)
        if not hooks or self.recent.seen(service, node, ref):
            return
        if ref.id:
            self.node_position[(service, node)] = ref
        else:
            ref = None
        received = time.time()
        publisher = publisher_of(item)
        runners = self.runners
        for hook in hooks:
            runner = runners[hook.id]
            if runner.plain:  # publications only, unfiltered: the hot path
                runner.submit(item, ref, publisher, received)
            else:
                self._offer(runner, item, ref, publisher, received, TriggerKind.LIVE)

    def _offer(
        self, runner: HookRunner, item: Any, ref: ItemRef | None, publisher: str | None,
        received: float, kind: TriggerKind,
    ) -> None:
        """A publication for a hook that filters, or follows retractions."""
        if runner.parked is not None:
            runner.parked.append((item, ref, publisher, received, None))
            return
        if runner.inactive:
            return
        hook = runner.hook
        if runner.present is not None and ref is not None:
            runner.present[ref.id] = None
            self._journal_ids(runner, "+" + ref.id)
        wanted = "publish" in hook.events
        if not wanted or (hook.filter is not None and not hook.filter.matches(item)):
            if wanted:
                runner.filtered += 1
            if ref is not None:
                runner.submitted.append(ref)
            return
        runner.submit(item, ref, publisher, received, kind)

    def dispatch_event(self, service: str, node: str, kind: str, element: Any) -> None:
        """A retraction (its id), purge or delete (the node) to the hooks of the node;
        copies the server sends more than once are dropped."""
        hooks = self.registry.for_node(service, node)
        if not hooks:
            return
        if kind == "retract":
            event_id = element["id"]
            if not event_id or self.recent.retracted(service, node, event_id):
                return
        elif self.recent.node_event(service, node, kind):
            return
        else:
            event_id = node
        received = time.time()
        for hook in hooks:
            self._event_to(self.runners[hook.id], kind, element, event_id, received, TriggerKind.LIVE)

    def _event_to(
        self, runner: HookRunner, kind: str, element: Any, event_id: str, received: float,
        trigger_kind: TriggerKind,
    ) -> None:
        if runner.parked is not None:
            runner.parked.append((element, None, event_id, received, kind))
            return
        if runner.inactive:
            return
        if runner.present is not None:
            if kind == "retract":
                if runner.present.pop(event_id, False) is None:
                    self._journal_ids(runner, "-" + event_id)
            else:
                runner.present.clear()
                self._journal_ids(runner, "*")
        if kind in runner.hook.events:
            runner.submit(element, None, None, received, trigger_kind, event_id=event_id)

    async def seed(self, service: str, node: str) -> None:
        """Remember the node's newest item (before its first hook is made): a copy the
        server re-sends on subscribe or presence is then known as old and fires
        nothing, and a new hook's catch-up starts after it."""
        session = self._session()
        if session is None:
            raise HookError("not connected to an XMPP server: connect first (%hook connect JID)")
        try:
            items = await session.last_items(service, node, 1)
        except RequestError as exc:
            error = node_missing(service, node, exc)
            if error is not None:
                raise error from None
            return  # PEP nodes appear at their first publish; other refusals show later
        for item in items:
            ref = ItemRef.of(item)
            self.recent.seen(service, node, ref)
            self.node_position[(service, node)] = ref

    def forget(self, service: str, node: str) -> None:
        """A node no hook uses any more."""
        self.recent.forget(service, node)
        self.node_position.pop((service, node), None)

    # ------------------------------------------------------------------ resuming

    def hold(self, keys: Any) -> None:
        """Hold the live items of these nodes until they have caught up."""
        for key in keys:
            self.held.setdefault(key, [])
            for hook in self.registry.for_node(*key):
                self.runners[hook.id].held = True

    async def resume(self, keys: Any) -> dict[Key, HookError]:
        """Make the nodes deliver again (all at once), then let each catch up in the
        background. Returns the nodes that could not be made to deliver, with why;
        they still catch up on what they hold."""
        keys = sorted(set(keys))
        self.hold(keys)
        try:
            failed = await self.subscriptions.ensure(keys)
        except BaseException:
            for key in keys:
                self._release(key)
            raise
        for key in keys:
            previous = self._catching.get(key)
            if previous is not None:
                previous.cancel()  # (a retry of an earlier catch-up: this one replaces it)
            task = asyncio.get_running_loop().create_task(
                self.catch_up(*key), name=f"pubsub-hook-catch-up {key[0]} {key[1]}"
            )
            self._catching[key] = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return failed

    def resume_in_background(self, keys: Any) -> None:
        """:meth:`resume` after a reconnection (called before any event of the new
        stream): hold at once, the rest in a task; failures go to the log."""
        keys = sorted(set(keys))
        self.hold(keys)

        async def resume() -> None:
            for (service, node), exc in (await self.resume(keys)).items():
                log.warning("after reconnecting, %s/%s: %s", service, node, exc)

        task = asyncio.get_running_loop().create_task(resume(), name="pubsub-hook-resume")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def catch_up(self, service: str, node: str) -> None:
        """Run, for each hook of the node, the items published after the last one it
        ran; then the live items held meanwhile.

        If the node's items cannot be read, its live items stay held (running them
        would move the hooks past what they missed): the catch-up is tried again (1 s,
        2 s… up to 30 s apart) while the session lasts, and by the next reconnection's
        otherwise."""
        key = (service, node)
        delay = 1.0
        while True:
            try:
                await self._catch_up_once(service, node)
            except RequestError as exc:
                session = self._session()
                if session is None or not session.connected:
                    log.info("catching up on %s/%s: %s; again after the reconnection", service, node, exc)
                    return
                log.warning("catching up on %s/%s: %s; trying again in %g s", service, node, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            except asyncio.CancelledError:
                raise  # (replaced by a newer catch-up of the node: it stays held)
            except Exception:  # noqa: BLE001 - a bug of ours must not hold the node forever
                log.exception("catching up on %s/%s failed", service, node)
            self._release(key)
            if self._catching.get(key) is asyncio.current_task():
                del self._catching[key]
            return

    async def _catch_up_once(self, service: str, node: str) -> None:
        """One try of :meth:`catch_up`: a RequestError if the node cannot be read."""
        key = (service, node)
        for hook in self.registry.for_node(service, node):
            runner = self.runners[hook.id]
            if runner.position_unread:  # (read here, off connect's way)
                self.load_positions(runner)
        runners = [
            self.runners[h.id]
            for h in self.registry.for_node(service, node)
            if h.catch_up and h.func is not None and self.runners[h.id].submitted
            and not self.runners[h.id].inactive
        ]
        session = self._session()
        if not runners or session is None:
            return
        if not session.connected:
            raise RequestError(f"reading items of {node!r} on {service}", "not-connected", "")
        gone = await self._gone(session, service, node, runners)
        keyed, starts = await self._fetch(session, service, node, runners)
        self._report_gone(gone)
        for runner in runners:
            self._queue_missed(runner, keyed, starts.get(runner))
        for _item, ref in keyed:
            self.recent.seen(service, node, ref)
        if keyed:
            self.node_position[key] = keyed[-1][1]

    def restart(self, runner: HookRunner) -> None:
        """(Re)start one hook from its position, alone: its live items are parked while
        what it missed is fetched and queued, then they follow (a hook taken over from
        another process, one whose notebook names are now defined, one whose full
        queue has drained)."""
        runner.parked = []
        task = asyncio.get_running_loop().create_task(
            self._restart(runner), name=f"pubsub-hook-restart {runner.hook.id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._on_change()

    async def _restart(self, runner: HookRunner) -> None:
        keyed: list[tuple[Any, ItemRef]] = []
        starts: dict[HookRunner, int] | None = None
        gone: dict[HookRunner, list[str]] = {}
        delay = 1.0
        try:
            if runner.position_unread:
                self.load_positions(runner)
            hook = runner.hook
            while hook.catch_up and runner.submitted:
                session = self._session()
                if session is None:
                    break
                try:
                    if not session.connected:
                        raise RequestError(f"reading items of {hook.node!r}", "not-connected", "")
                    gone = await self._gone(session, hook.service, hook.node, [runner])
                    keyed, starts = await self._fetch(session, hook.service, hook.node, [runner])
                    break
                except RequestError as exc:  # its live items stay parked: try again
                    log.warning("catching up hook %s: %s; trying again in %g s", hook.id, exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
        finally:
            # No await from here on: the missed items, then the parked ones, in order.
            parked, runner.parked = runner.parked or [], None
            runner.inactive = runner.standby or bool(runner.waiting_for)
            if starts is not None and not runner.inactive:
                self._report_gone(gone)
                self._queue_missed(runner, keyed, starts.get(runner))
            fetched = {ref.id: ref for _item, ref in keyed}
            for item, ref, event_id, received, kind in parked:
                if kind is not None:
                    self._event_to(runner, kind, item, event_id, received, TriggerKind.LIVE)
                    continue
                seen = fetched.get(ref.id) if ref is not None else None
                if seen is None or not seen.same_payload(ref):
                    self._offer(runner, item, ref, event_id, received, TriggerKind.LIVE)
            self._on_change()

    def _queue_missed(self, runner: HookRunner, keyed: list[tuple[Any, ItemRef]], start: int | None) -> None:
        """Queue to the hook the node's items from ``start`` on (all of them, after a
        gap report, with None), but those it ran already."""
        remembered = list(runner.submitted)
        if start is None:
            newest = next((r.id for r in reversed(remembered) if r.id), "")
            runner.report_gap(newest, len(keyed))
            start = 0
        now = time.time()
        for item, ref in keyed[start:]:
            if not any(r.id == ref.id and r.same_payload(ref) for r in remembered):
                if runner.plain:
                    runner.submit(item, ref, publisher_of(item), now, TriggerKind.CATCH_UP)
                else:
                    self._offer(runner, item, ref, publisher_of(item), now, TriggerKind.CATCH_UP)

    async def _gone(
        self, session: XmppSession, service: str, node: str, runners: list[HookRunner]
    ) -> dict[HookRunner, list[str]]:
        """For the hooks that follow retractions: the ids they saw that the node no
        longer holds (retracted, or evicted, while away). XEP-0060 keeps no history of
        retractions: the node's ids are compared with the hook's."""
        trackers = [r for r in runners if r.present]
        if not trackers:
            return {}
        try:
            ids = await session.node_item_ids(service, node)
        except RequestError:  # no item discovery here: the items themselves
            ids = {i["id"] for i in await session.last_items(service, node, None)}
        return {r: [i for i in r.present if i not in ids] for r in trackers}

    def _report_gone(self, gone: dict[HookRunner, list[str]]) -> None:
        """Report the items that left the node as retractions, in one pass (before the
        missed publications)."""
        now = time.time()
        for runner, ids in gone.items():
            service, node = runner.hook.key
            for item_id in ids:
                self.recent.retracted(service, node, item_id)
                self._event_to(runner, "retract", retraction(item_id), item_id, now, TriggerKind.CATCH_UP)

    async def _fetch(
        self, session: XmppSession, service: str, node: str, runners: list[HookRunner]
    ) -> tuple[list[tuple[Any, ItemRef]], dict[HookRunner, int]]:
        """The node's newest items, as many as the hooks need to find where they
        resume: ``(items, where each hook resumes)``; a hook missing from the second
        resumes nowhere (a gap)."""
        from_start = any(not any(r.id for r in runner.submitted) for runner in runners)
        wanted: int | None = None if from_start else FIRST_FETCH
        while True:
            items = await session.last_items(service, node, wanted)
            keyed = [(item, ItemRef.of(item)) for item in items]
            complete = wanted is None or len(keyed) < wanted
            starts: dict[HookRunner, int] = {}
            for runner in runners:
                start = resume_index(keyed, list(runner.submitted), complete)
                if start is not None:
                    starts[runner] = start
            if complete or len(starts) == len(runners):
                return keyed, starts
            wanted = wanted * WIDEN
            if wanted > FETCH_ALL_ABOVE:
                wanted = None

    def _release(self, key: Key) -> None:
        """The node has caught up: run its held live items, in order."""
        held = self.held.pop(key, None)
        for hook in self.registry.for_node(*key):
            self.runners[hook.id].held = False
        if held is None:
            return
        service, node = key
        for item, ref, kind in held:
            if kind is None:
                self.dispatch(service, node, item, ref)
            else:
                self.dispatch_event(service, node, kind, item)
        self._on_change()

    # ------------------------------------------------------------------ positions

    def load_positions(self, runner: HookRunner) -> None:
        """Give a persistent hook the position its last process stored."""
        runner.position_unread = False
        if self.positions is None:
            return
        if runner.present is not None:
            runner.present = dict.fromkeys(self.positions.load_ids(runner.hook.id))
        stored = self.positions.load(runner.hook.id)
        if stored is not None:
            runner.set_position([ItemRef(item_id, digest=digest) for item_id, digest in stored])

    def save_position_now(self, runner: HookRunner) -> None:
        """Store a new persistent hook's starting position (errors propagate)."""
        if self.positions is not None and runner.ran:
            self.positions.save(runner.hook.id, [(r.id, r.digest) for r in runner.ran])

    def position_moved(self, runner: HookRunner, trigger: Trigger) -> None:
        """A persistent hook ran (or skipped) an item: journal it at once, so a killed
        process runs again only the item that was running."""
        positions = self.positions
        if positions is None or not runner.ran or trigger.retried:
            return  # (an attempt that will be retried has not moved the position)
        newest = runner.ran[-1]
        try:
            positions.append(
                runner.hook.id,
                (newest.id, newest.digest),
                lambda: [(r.id, r.digest) for r in runner.ran],
            )
        except OSError as exc:
            log.warning("cannot save the position of hook %s: %s", runner.hook.id, exc)

    def _journal_ids(self, runner: HookRunner, change: str) -> None:
        """Store a change of a persistent hook's present ids."""
        positions = self.positions
        if positions is None or not runner.hook.persistent:
            return
        try:
            positions.change_ids(runner.hook.id, change, lambda: list(runner.present or ()))
        except OSError as exc:
            log.warning("cannot save the item ids of hook %s: %s", runner.hook.id, exc)

    def drop_position(self, hook_id: str) -> None:
        if self.positions is not None:
            self.positions.remove(hook_id)

    def save_positions(self) -> None:
        """Close the position journals (at disconnect and at exit; every run is
        already written)."""
        if self.positions is not None:
            self.positions.close()


def publisher_of(item: Any) -> str | None:
    """The ``publisher`` attribute of an ``<item/>``, read from the XML: a retrieved
    item's stanza class lacks that interface, and asking it logs a warning on the root
    logger (printed into a cell)."""
    return item.xml.get("publisher") or None


def resume_index(
    keyed: list[tuple[Any, ItemRef]], remembered: list[ItemRef], complete: bool
) -> int | None:
    """Where a hook resumes in the node's newest items ``keyed`` (oldest first), given
    the last items it ran (``remembered``, oldest first): after the newest of them the
    node still holds, or at it when it was published again with another payload. From
    the first item for a hook that starts at the node's beginning, if ``keyed`` is the
    whole node. None when none of them is there."""
    if not any(r.id for r in remembered):
        return 0 if complete else None
    where = {ref.id: i for i, (_item, ref) in enumerate(keyed)}
    for ref in reversed(remembered):
        index = where.get(ref.id)
        if index is not None:
            return index + 1 if keyed[index][1].same_payload(ref) else index
    return None
