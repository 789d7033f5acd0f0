"""Completing notifications that carry no payload, before any hook sees them.

A node configured with ``pubsub#deliver_payloads = false`` notifies ``<item id='x'/>``
alone, on Prosody and ejabberd alike; the item, retrieved, has its payload. Here such a
notification is completed: the item is fetched by id, then goes the normal way
(:meth:`.LivePath.dispatch`: copies dropped, positions kept, each item run once), so a
hook never runs with ``item["payload"] = None``, and a catch-up later knows the item it
ran (the payloads compare equal).

**Order holds per node.** From a payload-less notification on, the node's later items
and events (with payloads or not) wait behind it here, in order, until it is completed;
other nodes are not delayed. The ids waiting on a node are fetched together: one
request (XEP-0060 6.5.8, several ``<item id/>``) of at most :data:`BATCH` ids, one
request per node at a time, so the notifications of a burst that arrive during a
round trip go out in the next request.

**An item that cannot be fetched** (retracted meanwhile: the service leaves it out of
its answer; or the request fails) runs no hook: each hook of the node records a
``gap`` trigger saying which item and why, and the log has a warning.

Items with payloads pay nothing here: the live path's one test is
``ref.fingerprint and key not in completer.waiting`` (:meth:`.LivePath.on_item`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .xmpp_requests import RequestError

if TYPE_CHECKING:
    from .registry import HookIndex
    from .runner import HookRunner
    from .xmpp_session import XmppSession

__all__ = ["BATCH", "PayloadCompleter", "Waiting"]

log = logging.getLogger(__name__)

Key = tuple[str, str]
#: Ids asked for in one request, at most.
BATCH = 32


@dataclass(slots=True)
class Waiting:
    """One live item or event waiting on its node, in arrival order.

    ``entry`` is what the live path handed over (a :class:`~.live.HeldItem` or
    :class:`~.live.HeldEvent`); ``fetch_id`` the id of an item to complete (None: the
    entry is complete and only waits for its turn)."""

    entry: Any
    fetch_id: str | None = None
    #: Its fetch came back (with the item, or without: ``why`` says why not; empty
    #: when the stream went down, and the catch-up of the next one reads the item).
    done: bool = False
    fetched: Any = None
    why: str = ""


Deliver = Callable[[str, str, Any, Any], None]


class PayloadCompleter:
    """The nodes with a notification being completed, and their waiting entries.

    :param index: the engine's hooks, whose runners record the items that could not be
        completed.
    :param session: returns the current session (None when disconnected).
    :param deliver: ``deliver(service, node, entry, fetched)``: an entry's turn has
        come; ``fetched`` is the completed item (None: ``entry`` is complete as it is).
    """

    def __init__(
        self,
        index: HookIndex[HookRunner],
        session: Callable[[], XmppSession | None],
        deliver: Deliver,
        batch: int = BATCH,
    ):
        self.index = index
        self._session = session
        self._deliver = deliver
        self.batch = batch
        #: Nodes with entries waiting (the live path's test), oldest first.
        self.waiting: dict[Key, collections.deque[Waiting]] = {}
        self._workers: dict[Key, asyncio.Task[None]] = {}
        #: Requests sent, and items fetched (for tests and benchmarks).
        self.requests = self.fetched = 0

    def add(self, service: str, node: str, entry: Any, fetch_id: str | None) -> None:
        """Queue ``entry`` behind the node's waiting ones; ``fetch_id``: the id of the
        payload-less item to fetch ("" for one without id: it cannot be), or None."""
        key = (service, node)
        queue = self.waiting.get(key)
        if queue is None:
            queue = self.waiting[key] = collections.deque()
            self._workers[key] = asyncio.get_running_loop().create_task(
                self._work(key, queue), name=f"pubsub-hook-payloads {service} {node}"
            )
        queue.append(Waiting(entry, fetch_id))

    def reset(self) -> None:
        """Drop what waits (at disconnect: the catch-up of the next session finds it)."""
        for task in self._workers.values():
            task.cancel()
        self._workers.clear()
        self.waiting.clear()

    # ------------------------------------------------------------------ the worker

    async def _work(self, key: Key, queue: collections.deque[Waiting]) -> None:
        """Deliver the node's entries in order, fetching ahead what they lack; ends
        (and the node takes the fast path again) once none waits."""
        service, node = key
        try:
            while queue:
                head = queue[0]
                if head.fetch_id is None or head.done:
                    queue.popleft()
                    self._turn(service, node, head)
                    continue
                await self._fetch(service, node, [w for w in queue if w.fetch_id is not None and not w.done])
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug of ours must not stop the node for good
            log.exception("completing the items of %s/%s failed; %d dropped", service, node, len(queue))
        finally:
            if self.waiting.get(key) is queue:
                del self.waiting[key]
            if self._workers.get(key) is asyncio.current_task():
                del self._workers[key]

    async def _fetch(self, service: str, node: str, pending: list[Waiting]) -> None:
        """Fetch the first :attr:`batch` ids of ``pending`` (in one request), and mark
        them done, with their item or why not."""
        wanted: list[Waiting] = []
        ids: dict[str, None] = {}
        for waiting in pending:
            if len(ids) >= self.batch and waiting.fetch_id not in ids:
                break
            wanted.append(waiting)
            if waiting.fetch_id:
                ids[waiting.fetch_id] = None
        found: dict[str, Any] = {}
        why = "the item has no id to fetch it by"
        if ids:
            why = f"node {node!r} no longer holds it (retracted before its payload could be fetched)"
            try:
                found = await self._items(service, node, list(ids))
            except RequestError as exc:
                session = self._session()
                # (the stream went down: the catch-up after the reconnection reads it)
                why = f"its payload could not be fetched: {exc}" if session and session.connected else ""
        for waiting in wanted:
            waiting.done = True
            waiting.fetched = found.get(waiting.fetch_id or "")
            if waiting.fetched is None:
                waiting.why = why

    async def _items(self, service: str, node: str, ids: list[str]) -> dict[str, Any]:
        """The items of ``ids`` the node holds, by id. A service that refuses the whole
        request for one missing id (``item-not-found``) is asked for each id alone."""
        session = self._session()
        if session is None:
            raise RequestError(f"reading items of {node!r} on {service}", "not-connected", "")
        self.requests += 1
        try:
            items = await session.items_by_id(service, node, ids)
        except RequestError as exc:
            if exc.condition != "item-not-found" or len(ids) == 1:
                if exc.condition == "item-not-found":
                    return {}
                raise
            found: dict[str, Any] = {}
            for item_id in ids:
                found.update(await self._items(service, node, [item_id]))
            return found
        self.fetched += len(items)
        return {item["id"]: item for item in items if item["id"] in ids}

    def _turn(self, service: str, node: str, waiting: Waiting) -> None:
        """The entry's turn: to the hooks, completed, or recorded as not run."""
        try:
            if waiting.fetch_id is None or waiting.fetched is not None:
                self._deliver(service, node, waiting.entry, waiting.fetched)
            elif not waiting.why:
                log.info("%s/%s: item %r is left to the next catch-up", service, node, waiting.fetch_id)
            else:
                self._not_completed(service, node, waiting.fetch_id, waiting.why)
        except Exception:  # (as in the worker: the next entries still go)
            log.exception("dispatching an item of %s/%s failed", service, node)

    def _not_completed(self, service: str, node: str, item_id: str, why: str) -> None:
        runners = [r for r in self.index.for_node(service, node) if not r.inactive]
        if not runners:
            return
        reason = (
            f"item {item_id!r} was notified without its payload (the node does not deliver "
            f"payloads), and {why}: the hook did not run for it"
        )
        log.warning("%s/%s: %s (%d hook(s))", service, node, reason, len(runners))
        report_not_run(runners, item_id, reason)


def report_not_run(runners: Iterable[HookRunner], item_id: str, reason: str) -> None:
    """Record on each runner a ``gap`` trigger: ``item_id`` was not run, and why."""
    for runner in runners:
        runner.report_gap(item_id, 0, reason=reason, item_id=item_id or None)
