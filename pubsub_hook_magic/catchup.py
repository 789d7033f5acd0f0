"""What happens at connect and at every reconnection: the items missed while away.

**Resuming** (:meth:`CatchUp.resume`, at connect and after every reconnection):

1. every node's live items are *held* (:meth:`.LivePath.hold`), so that they run
   after what was missed;
2. every node is made to deliver again, all nodes at once
   (:meth:`.Subscriptions.ensure`); a node an item came from on the new stream (ejabberd
   pushes each node's last item on presence) is subscribed and not asked; ``connect``
   returns here;
3. each node then catches up on its own, in the background, as soon as its
   subscription is back: its missed items are fetched and queued to its hooks, then
   its held live items are released. A slow or failing node holds up no other.

**What is fetched.** A hook remembers the last :data:`~.runner.RECENT_POSITIONS`
items it ran (stored for persistent hooks, :mod:`.positions`). Catch-up asks the node
for its newest :data:`FIRST_FETCH` items and widens the request (x :data:`WIDEN`) only
while some hook's remembered items are none of them, so the cost follows what was
missed, not the size of the node. A hook resumes after the newest of its remembered
items still on the node (a retracted last item is no gap while an older one remains);
only when the node holds none of them is it a gap, recorded as such, and the hook runs
what the node holds.

**One hook alone** (:meth:`CatchUp.restart`): a hook taken over from another
process, one whose notebook names are now defined, one whose full queue has drained,
parks its live items while what it missed is fetched, then they follow.

The live path itself is :mod:`.live`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from .admission import ParkedEvent
from .background import Backoff, TaskSet
from .dedupe import ItemRef
from .events import retraction
from .hooks import HookError
from .live import LivePath, publisher_of
from .nodeinfo import report_live_only
from .pushed import resume_from_pushed
from .positions import PositionKeeper
from .registry import HookIndex
from .runner import HookRunner
from .xmpp_session import RequestError, XmppSession
from .states import TriggerKind
from .subscriptions import NodeGone, Subscriptions, is_pep

__all__ = ["FIRST_FETCH", "WIDEN", "CatchUp", "publisher_of", "resume_index"]

log = logging.getLogger(__name__)

Key = tuple[str, str]
Keyed = list[tuple[Any, ItemRef]]

#: Items asked for first when catching up a node (enough for one missed item).
FIRST_FETCH = 2
#: How much each further request widens (newest 2, 6, 18, 54… items).
WIDEN = 3
#: Past this many items, ask for everything the node keeps.
FETCH_ALL_ABOVE = 500


class CatchUp:
    """Catch-up of one engine's hooks, node by node and hook by hook."""

    def __init__(
        self,
        index: HookIndex[HookRunner],
        live: LivePath,
        positions: PositionKeeper,
        subscriptions: Subscriptions,
        session: Callable[[], XmppSession | None],
        tasks: TaskSet,
        on_change: Callable[[], None],
        on_problem: Callable[[Key, HookError], bool] = lambda _key, _exc: False,
    ):
        self.index = index
        self.live = live
        self.positions = positions
        self.subscriptions = subscriptions
        self._session = session
        self._tasks = tasks
        self._on_change = on_change
        #: Told of a node that cannot deliver (deleted, unsubscribed, pending: see
        #: :mod:`.nodewatch`); True when it is such a problem, dealt with there.
        self._on_problem = on_problem
        #: The catch-up task of each node still catching up (one at a time).
        self._catching: dict[Key, asyncio.Task[Any]] = {}

    def reset(self) -> None:
        """Forget the session (at disconnect); background catch-ups are cancelled."""
        self._tasks.cancel_all()
        self._catching.clear()
        self.positions.close()
        self.live.reset()

    # ------------------------------------------------------------------ nodes

    async def resume(self, keys: Iterable[Key]) -> dict[Key, HookError]:
        """Make the nodes deliver again (all at once), then let each catch up in the
        background. Returns the nodes that could not be made to deliver, with why;
        they still catch up on what they hold. A node that is deleted, or whose
        subscription was removed or waits for approval, is not among them: its hooks
        show it (:mod:`.nodewatch`)."""
        keys = sorted(set(keys))
        self.live.hold(keys)
        try:
            failed = await self.subscriptions.ensure(keys, delivering=lambda key: key in self.live.delivering)
        except BaseException:
            for key in keys:
                self.live.release(key)
            raise
        problems = {key for key, exc in failed.items() if self._on_problem(key, exc)}
        for key in problems:
            if key not in self.live.away:
                self.live.release(key)
            del failed[key]
        for key in keys:
            if key in problems:
                continue
            previous = self._catching.get(key)
            if previous is not None:
                previous.cancel()  # (a retry of an earlier catch-up: this one replaces it)
            self._catching[key] = self._tasks.start(
                self.catch_up(*key), name=f"pubsub-hook-catch-up {key[0]} {key[1]}"
            )
        return failed

    def resume_in_background(self, keys: Iterable[Key]) -> None:
        """:meth:`resume` after a reconnection (called before any event of the new
        stream): hold at once, the rest in a task; failures go to the log."""
        keys = sorted(set(keys))
        self.live.new_stream()
        self.live.hold(keys)

        async def resume() -> None:
            for (service, node), exc in (await self.resume(keys)).items():
                log.warning("after reconnecting, %s/%s: %s", service, node, exc)

        self._tasks.start(resume(), name="pubsub-hook-resume")

    async def catch_up(self, service: str, node: str) -> None:
        """Run, for each hook of the node, the items published after the last one it
        ran; then the live items held meanwhile.

        If the node's items cannot be read, its live items stay held (running them
        would move the hooks past what they missed): the catch-up is tried again (1 s,
        2 s… up to 30 s apart) while the session lasts, and by the next reconnection's
        otherwise."""
        key = (service, node)
        delays = Backoff(1.0, 30.0)
        while True:
            try:
                await self._catch_up_once(service, node)
            except RequestError as exc:
                if exc.condition == "item-not-found":
                    if self._on_problem(key, NodeGone(str(exc))):  # deleted: held while away
                        self._finished(key)
                        return
                    # (else a PEP node not published yet: nothing was missed)
                elif self.live.live_only.refused(service, node, exc):  # keeps no items: :mod:`.nodeinfo`
                    report_live_only(self.index.for_node(service, node), self.live.live_only[key])
                else:
                    session = self._session()
                    if session is None or not session.connected:
                        log.info("catching up on %s/%s: %s; again after the reconnection", service, node, exc)
                        return
                    log.warning("catching up on %s/%s: %s; trying again in %g s", service, node, exc, delays.delay)
                    await delays.wait()
                    continue
            except asyncio.CancelledError:
                raise  # (replaced by a newer catch-up of the node: it stays held)
            except Exception:  # a bug of ours must not hold the node forever
                log.exception("catching up on %s/%s failed", service, node)
            self.live.release(key)
            self._finished(key)
            return

    def _finished(self, key: Key) -> None:
        if self._catching.get(key) is asyncio.current_task():
            del self._catching[key]

    async def _catch_up_once(self, service: str, node: str) -> None:
        """One try of :meth:`catch_up`: a RequestError if the node cannot be read."""
        for runner in self.index.for_node(service, node):
            if runner.mode.position_unread:  # (read here, off connect's way)
                self.positions.load(runner)
        runners = [
            r for r in self.index.for_node(service, node)
            if r.hook.catch_up and r.hook.func is not None and r.submitted and not r.inactive
        ]
        session = self._session()
        if not runners or session is None:
            return
        if not session.connected:
            raise RequestError(f"reading items of {node!r} on {service}", "not-connected", "")
        gone = await self._gone(session, service, node, runners)
        keyed, starts = await self._fetch(session, service, node, runners)
        if len(starts) < len(runners):
            await self._subscribe_again(service, node)
        self._report_gone(gone)
        for runner in runners:
            self._queue_missed(runner, keyed, starts.get(runner))
        for _item, ref in keyed:
            self.live.recent.seen(service, node, ref)
        if keyed:
            self.live.node_position[(service, node)] = keyed[-1][1]

    async def _subscribe_again(self, service: str, node: str) -> None:
        """A gap: none of the items a hook ran is on the node. It may have been
        deleted and created again while away, and Prosody 0.12 then still lists our
        subscription to the old node as one to the new node, which has none: make ours
        again (one request, only on a gap)."""
        if is_pep(service) or (service, node) not in self.subscriptions.ours:
            return
        try:
            await self.subscriptions.subscribe(service, node)
        except HookError as exc:
            if not self._on_problem((service, node), exc):
                log.warning("subscribing again to %s/%s: %s", service, node, exc)

    # ------------------------------------------------------------------ one hook

    def restart(self, runner: HookRunner) -> None:
        """(Re)start one hook from its position, alone: its live items are parked while
        what it missed is fetched and queued, then they follow."""
        runner.mode.park()
        self._tasks.start(self._restart(runner), name=f"pubsub-hook-restart {runner.hook.id}")
        self._on_change()

    async def _restart(self, runner: HookRunner) -> None:
        keyed: Keyed = []
        starts: dict[HookRunner, int] | None = None
        gone: dict[HookRunner, list[str]] = {}
        try:
            if runner.mode.position_unread:
                self.positions.load(runner)
            keyed, starts, gone = await self._read_missed(runner)
        finally:
            # No await from here on: the missed items, then the parked ones, in order.
            parked = runner.mode.unpark()
            if starts is not None and not runner.inactive:
                self._report_gone(gone)
                self._queue_missed(runner, keyed, starts.get(runner))
            fetched = {ref.id: ref for _item, ref in keyed}
            for entry in parked:
                if isinstance(entry, ParkedEvent):
                    runner.offer_event(entry.kind, entry.element, entry.event_id, entry.received)
                    continue
                seen = fetched.get(entry.ref.id) if entry.ref is not None else None
                if seen is None or not seen.same_payload(entry.ref):  # type: ignore[arg-type]
                    runner.offer(entry.item, entry.ref, entry.publisher, entry.received)
            self._on_change()

    async def _read_missed(
        self, runner: HookRunner
    ) -> tuple[Keyed, dict[HookRunner, int] | None, dict[HookRunner, list[str]]]:
        """What one restarting hook missed; its live items stay parked while the
        node cannot be read (tried again, 1 s, 2 s… up to 30 s apart)."""
        hook = runner.hook
        delays = Backoff(1.0, 30.0)
        while hook.catch_up and runner.submitted:
            session = self._session()
            if session is None:
                break
            try:
                if not session.connected:
                    raise RequestError(f"reading items of {hook.node!r}", "not-connected", "")
                gone = await self._gone(session, hook.service, hook.node, [runner])
                keyed, starts = await self._fetch(session, hook.service, hook.node, [runner])
                return keyed, starts, gone
            except RequestError as exc:
                if exc.condition == "item-not-found":
                    self._on_problem(hook.key, NodeGone(str(exc)))
                    break
                if self.live.live_only.refused(hook.service, hook.node, exc):  # (as in catch_up)
                    report_live_only([runner], self.live.live_only[hook.key])
                    break
                log.warning("catching up hook %s: %s; trying again in %g s", hook.id, exc, delays.delay)
                await delays.wait()
        return [], None, {}

    def _queue_missed(self, runner: HookRunner, keyed: Keyed, start: int | None) -> None:
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
                    runner.offer(item, ref, publisher_of(item), now, TriggerKind.CATCH_UP)

    # ------------------------------------------------------------------ reading the node

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
        return {r: [i for i in (r.present or ()) if i not in ids] for r in trackers}

    def _report_gone(self, gone: dict[HookRunner, list[str]]) -> None:
        """Report the items that left the node as retractions, in one pass (before the
        missed publications)."""
        now = time.time()
        for runner, ids in gone.items():
            service, node = runner.hook.key
            for item_id in ids:
                self.live.recent.retracted(service, node, item_id)
                runner.offer_event("retract", retraction(item_id), item_id, now, TriggerKind.CATCH_UP)

    async def _fetch(
        self, session: XmppSession, service: str, node: str, runners: list[HookRunner]
    ) -> tuple[Keyed, dict[HookRunner, int]]:
        """The node's newest items, as many as the hooks need to find where they
        resume: ``(items, where each hook resumes)``; a hook missing from the second
        resumes nowhere (a gap)."""
        pushed = await resume_from_pushed(session, service, node, runners, self.live.held.get((service, node)))
        if pushed is not None:  # (from the item the server pushed: :mod:`.pushed`)
            return pushed
        from_start = any(not any(r.id for r in runner.submitted) for runner in runners)
        wanted: int | None = None if from_start else FIRST_FETCH
        while True:
            items = await session.last_items(service, node, wanted)
            self.live.live_only.readable(service, node)
            keyed = [(item, ItemRef.of(item)) for item in items]
            complete = wanted is None or len(keyed) < wanted
            starts: dict[HookRunner, int] = {}
            for runner in runners:
                start = resume_index(keyed, list(runner.submitted), complete)
                if start is not None:
                    starts[runner] = start
            if complete or len(starts) == len(runners):
                return keyed, starts
            assert wanted is not None
            wanted = wanted * WIDEN
            if wanted > FETCH_ALL_ABOVE:
                wanted = None


def resume_index(keyed: Keyed, remembered: list[ItemRef], complete: bool) -> int | None:
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
