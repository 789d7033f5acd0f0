"""The live event path: a published item (or a retraction, purge, delete) from the
session to the runners of its node's hooks.

:meth:`LivePath.on_item` is the hot path: an item of a node nobody hooks is ignored; a
copy of an item already seen (servers re-send some) is dropped; the others go to each
hook of the node (:meth:`.HookRunner.submit` for plain hooks, :meth:`.HookRunner.offer`
for those that filter or follow retractions).

While a node catches up (:mod:`.catchup`), its live items are *held* here, in order,
and released once the missed ones are queued (:meth:`LivePath.release`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from .dedupe import ItemRef, RecentItems
from .hooks import HookError
from .nodeinfo import LiveOnly
from .payloads import PayloadCompleter
from .registry import HookIndex
from .runner import HookRunner
from .xmpp_session import RequestError, XmppSession
from .states import TriggerKind
from .subscriptions import node_missing

__all__ = ["HeldEvent", "HeldItem", "LivePath", "publisher_of"]

Key = tuple[str, str]


class HeldItem(NamedTuple):
    """A live publication held while its node catches up."""

    item: Any
    ref: ItemRef


class HeldEvent(NamedTuple):
    """A live retraction, purge or delete held while its node catches up."""

    element: Any
    kind: str


class LivePath:
    """Live items and events to the hooks of one engine."""

    def __init__(
        self,
        index: HookIndex[HookRunner],
        on_change: Callable[[], None],
        on_node_event: Callable[[str, str, str, Any], None] | None = None,
        session: Callable[[], XmppSession | None] = lambda: None,
    ):
        self.index = index
        #: Payload-less notifications being completed, and what waits behind them.
        self.payloads = PayloadCompleter(index, session, self.completed)
        #: Nodes whose items cannot be read back: no catch-up (:mod:`.nodeinfo`).
        self.live_only = LiveOnly()
        self._on_change = on_change
        #: ``(service, node, kind, element)``: a node deleted, our subscription changed,
        #: or (kind ``back``) a live item of a node held while deleted (:mod:`.nodewatch`).
        self._on_node_event = on_node_event or (lambda _s, _n, _k, _e: None)
        #: Deleted nodes, held while away: their first live item says they are back.
        self.away: set[Key] = set()
        self.recent = RecentItems()
        #: The newest item seen per node: where a new hook's catch-up starts.
        self.node_position: dict[Key, ItemRef] = {}
        #: Nodes catching up: their live items wait here, to run after the missed ones.
        self.held: dict[Key, list[HeldItem | HeldEvent]] = {}
        #: Held nodes an item came from on the current stream: they deliver, so the
        #: account's subscription is there and need not be asked for (ejabberd pushes
        #: each node's last item on presence: :meth:`.Subscriptions.ensure`).
        self.delivering: set[Key] = set()

    def reset(self) -> None:
        """Forget what was seen (at disconnect)."""
        self.recent = RecentItems()
        self.node_position.clear()
        self.held.clear()
        self.delivering.clear()
        self.away.clear()
        self.payloads.reset()
        self.live_only.reset()

    # ------------------------------------------------------------------ the path

    def on_item(self, service: str, node: str, item: Any) -> None:
        """The event path: one published item, from ``service`` (the sender)."""
        held = self.held.get((service, node))
        if held is None:
            if self.index.for_node(service, node):
                ref = ItemRef.of(item)
                if ref.fingerprint and (service, node) not in self.payloads.waiting:
                    self.dispatch(service, node, item, ref)
                else:  # no payload (or behind one): completed first, in order (:mod:`.payloads`)
                    self.payloads.add(service, node, HeldItem(item, ref), None if ref.fingerprint else ref.id)
        else:
            held.append(HeldItem(item, ItemRef.of(item)))
            self.delivering.add((service, node))
            if self.away and (service, node) in self.away:
                self.away.discard((service, node))
                self._on_node_event(service, node, "back", item)

    def on_event(self, service: str, node: str, kind: str, element: Any) -> None:
        """A retraction, purge or delete of a node, or a change of our subscription
        to it, from ``service`` (the sender)."""
        if kind == "subscription":
            self._on_node_event(service, node, kind, element)
            return
        held = self.held.get((service, node))
        if held is not None:
            held.append(HeldEvent(element, kind))
        elif (service, node) in self.payloads.waiting:
            self.payloads.add(service, node, HeldEvent(element, kind), None)
        else:
            self.dispatch_event(service, node, kind, element)
        if kind == "delete":
            self._on_node_event(service, node, kind, element)

    def dispatch(self, service: str, node: str, item: Any, ref: ItemRef) -> None:
        runners = self.index.for_node(service, node)
        if not runners or self.recent.seen(service, node, ref):
            return
        queued_ref: ItemRef | None = ref
        if ref.id:
            self.node_position[(service, node)] = ref
        else:
            queued_ref = None
        received = time.time()
        publisher = publisher_of(item)
        for runner in runners:
            if runner.plain:  # publications only, unfiltered: the hot path
                runner.submit(item, queued_ref, publisher, received)
            else:
                runner.offer(item, queued_ref, publisher, received)

    def dispatch_event(self, service: str, node: str, kind: str, element: Any) -> None:
        """A retraction (its id), purge or delete (the node) to the hooks of the node;
        copies the server sends more than once are dropped."""
        runners = self.index.for_node(service, node)
        if not runners:
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
        for runner in runners:
            runner.offer_event(kind, element, event_id, received, TriggerKind.LIVE)

    # ------------------------------------------------------------------ holding

    def hold(self, keys: Iterable[Key]) -> None:
        """Hold the live items of these nodes until they have caught up."""
        for key in keys:
            self.held.setdefault(key, [])

    def new_stream(self) -> None:
        """A new stream begins (a reconnection, before its first event): what came on
        the old one says nothing of the subscriptions now."""
        self.delivering.clear()

    def watch_for_return(self, key: Key) -> None:
        """Hold a deleted node's live items until it is back (its first one says so)."""
        self.held.setdefault(key, [])
        self.away.add(key)

    def stop_watching(self, key: Key) -> None:
        """The node is no longer away (back, or no hook on it)."""
        self.away.discard(key)

    def release(self, key: Key) -> None:
        """The node has caught up: run its held live items, in order."""
        held = self.held.pop(key, None)
        self.delivering.discard(key)
        if held is None:
            return
        service, node = key
        for entry in held:
            lacking = entry.ref.id if isinstance(entry, HeldItem) and not entry.ref.fingerprint else None
            if lacking is not None or key in self.payloads.waiting:  # (see on_item)
                self.payloads.add(service, node, entry, lacking)
            elif isinstance(entry, HeldItem):
                self.dispatch(service, node, entry.item, entry.ref)
            else:
                self.dispatch_event(service, node, entry.kind, entry.element)
        self._on_change()

    def completed(self, service: str, node: str, entry: HeldItem | HeldEvent, fetched: Any) -> None:
        """An entry's turn after a notification without payload (:mod:`.payloads`):
        ``fetched``, the item completed (None: ``entry`` as it came)."""
        if fetched is not None:
            publisher = entry.item.xml.get("publisher") if isinstance(entry, HeldItem) else None
            if publisher and not fetched.xml.get("publisher"):
                fetched.xml.set("publisher", publisher)
            entry = HeldItem(fetched, ItemRef.of(fetched))
        held = self.held.get((service, node))
        if held is not None:  # (a reconnection's catch-up began meanwhile)
            held.append(entry)
        elif isinstance(entry, HeldItem):
            self.dispatch(service, node, entry.item, entry.ref)
        else:
            self.dispatch_event(service, node, entry.kind, entry.element)

    # ------------------------------------------------------------------ nodes

    async def seed(self, session: XmppSession | None, service: str, node: str) -> None:
        """Remember the node's newest item (before its first hook is made): a copy the
        server re-sends on subscribe or presence is then known as old and fires
        nothing, and a new hook's catch-up starts after it."""
        if session is None:
            raise HookError("not connected to an XMPP server: connect first (%hook connect JID)")
        try:
            items = await session.last_items(service, node, 1)
        except RequestError as exc:
            error = node_missing(service, node, exc)
            if error is not None:
                raise error from None
            self.live_only.refused(service, node, exc)  # (a node that keeps no items)
            return  # PEP nodes appear at their first publish; other refusals show later
        for item in items:
            self.saw(service, node, ItemRef.of(item))

    def saw(self, service: str, node: str, ref: ItemRef) -> None:
        """An item of the node was read (not live): its copies fire nothing."""
        self.recent.seen(service, node, ref)
        self.node_position[(service, node)] = ref

    def forget(self, service: str, node: str) -> None:
        """A node no hook uses any more."""
        self.recent.forget(service, node)
        self.node_position.pop((service, node), None)


def publisher_of(item: Any) -> str | None:
    """The ``publisher`` attribute of an ``<item/>``, read from the XML: a retrieved
    item's stanza class lacks that interface, and asking it logs a warning on the root
    logger (printed into a cell)."""
    return item.xml.get("publisher") or None
