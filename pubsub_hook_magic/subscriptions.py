"""Which nodes must deliver their events, and making them do so.

A node must deliver while at least one installed hook is on it (derived from the
registry, never counted). A service node delivers through a subscription of the
account's bare JID; a PEP node through ``node+notify`` in our entity capabilities.

Subscriptions this extension made itself ("ours") are recorded in the store, so that
they are removed with the last hook of their node, even by a later session, while a
subscription the user made by other means is never touched.

:meth:`Subscriptions.ensure` makes many nodes deliver at once: every node's check goes
out together, then the missing subscriptions (the session bounds how many requests
wait at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from .events import Event
from .hooks import HookError
from .xmpp_requests import missing_node_hint
from .xmpp_session import RequestError, XmppSession
from .store import HookStore, StoreError

__all__ = ["NodeGone", "SubscriptionPending", "SubscriptionRemoved", "Subscriptions", "is_pep"]

log = logging.getLogger(__name__)

Key = tuple[str, str]

#: Seconds the subscription checks of a connect wait at most for the server's answer
#: to our presence (and the items it pushes before: :meth:`Subscriptions.ensure`).
PRESENCE_WAIT = 1.0


def is_pep(service: str) -> bool:
    """Whether ``service`` is an account (PEP, XEP-0163) rather than a PubSub service."""
    return "@" in service


class NodeGone(HookError):
    """The service says the node does not exist (``item-not-found``)."""


class SubscriptionRemoved(HookError):
    """A subscription this extension made is gone, the node still there: its owner (or
    the service) removed it. It is not made again without the user's word."""


class SubscriptionPending(HookError):
    """The subscription waits for the node owner's approval."""


class Subscriptions:
    """Subscriptions and PEP interests of one session.

    :param session: returns the current session (None when disconnected).
    :param store: returns the account's store (None when disconnected).
    :param claimed_elsewhere: whether another process of the machine has a hook on a
        node (its subscription, the account's, stays then).
    """

    def __init__(
        self,
        session: Callable[[], XmppSession | None],
        store: Callable[[], HookStore | None],
        claimed_elsewhere: Callable[[Key], bool] = lambda _key: False,
    ):
        self._session = session
        self._store = store
        self._claimed_elsewhere = claimed_elsewhere
        #: Subscriptions this extension made (stored: a later session removes them).
        self.ours: set[Key] = set()
        #: Services that did not answer a service-wide list of subscriptions (Prosody
        #: 0.12 once a node of ours was deleted): :meth:`states` asks them per node.
        self._no_service_list: set[str] = set()

    def load(self, store: HookStore) -> None:
        """Read the subscriptions a previous session made (at connect)."""
        try:
            self.ours = store.subscriptions()
        except StoreError as exc:
            log.warning("%s", exc)

    def clear(self) -> None:
        self.ours = set()

    def forget(self, service: str, node: str) -> None:
        """A subscription of ours is gone (with its deleted node)."""
        if (service, node) in self.ours:
            self._set_ours(service, node, False)

    # ------------------------------------------------------------------ one node

    async def listen(self, service: str, node: str, *, subscribed: bool | None = None) -> None:
        """Make the node's events arrive. ``subscribed``: whether the account is known
        to be subscribed already (None: ask the service; then a subscription of ours
        found missing raises :class:`SubscriptionRemoved` rather than being made again
        behind the owner's back). A node that does not exist raises :class:`NodeGone`,
        a subscription waiting for approval :class:`SubscriptionPending`."""
        session = self._require()
        if is_pep(service):
            await session.set_pep_interest(node, True)
            return
        if subscribed is None:
            state = await self._state(service, node)
            if state == "pending":
                raise SubscriptionPending(pending_note(service, node))
            if state is not None:
                return
            if (service, node) in self.ours:
                raise SubscriptionRemoved(
                    f"the subscription to {node!r} on {service} was removed (by the node's owner or the "
                    f"service): nothing arrives; %hook resume ID subscribes again"
                )
        elif subscribed:
            return
        await self.subscribe(service, node)

    async def subscribe(self, service: str, node: str) -> None:
        """Subscribe (again) to a service node, on the user's word."""
        try:
            state = await self._require().subscribe(service, node)
        except RequestError as exc:
            raise _refused(service, node, exc) from None
        self._set_ours(service, node, True)
        if state == "pending":
            raise SubscriptionPending(pending_note(service, node))

    async def states(self, service: str, nodes: Iterable[str]) -> dict[str, str | None]:
        """The account's subscription to each of ``nodes`` of a service node:
        ``subscribed``, ``pending``, … or None (none). One request for them all where
        the service answers it, else one per node (a node that is gone is left out)."""
        nodes = list(nodes)
        try:
            if service in self._no_service_list:
                raise RequestError(f"listing subscriptions on {service}", "unanswered", "")
            listed = await self._require().subscription_states(service)
        except RequestError:
            self._no_service_list.add(service)  # (asked per node from now on)
            found: dict[str, str | None] = {}

            async def one(node: str) -> None:
                with contextlib.suppress(NodeGone):
                    found[node] = await self._state(service, node)

            await asyncio.gather(*(one(node) for node in nodes))
            return found
        return {node: listed.get(node) for node in nodes}

    async def _state(self, service: str, node: str) -> str | None:
        """The account's subscription to a service node (None: none, or the service
        does not say: subscribing tells)."""
        try:
            return await self._require().subscription_state(service, node)
        except RequestError as exc:
            if exc.condition == "item-not-found":
                raise NodeGone(f"node {node!r} does not exist on {service} (deleted?)") from None
            return None

    async def is_subscribed(self, service: str, node: str) -> bool:
        """Whether the account is subscribed to a service node (False when the service
        does not say: subscribing again tells)."""
        try:
            return await self._require().subscription_exists(service, node)
        except RequestError:
            return False

    async def unlisten(self, service: str, node: str) -> None:
        """Stop the events of a node that no hook uses any more."""
        session = self._session()
        if session is None or not session.connected:
            return
        if is_pep(service):
            await session.set_pep_interest(node, False)
        elif (service, node) in self.ours and not self._claimed_elsewhere((service, node)):
            try:
                await session.unsubscribe(service, node)
            except RequestError as exc:
                if exc.condition not in ("item-not-found", "unexpected-request"):
                    raise HookError(str(exc)) from None
            self._set_ours(service, node, False)

    async def unsent_events(self, service: str, node: str, events: tuple[str, ...]) -> list[str]:
        """What the node's configuration says it will not notify, where we may read it
        (node owners only; nothing is said otherwise)."""
        try:
            config = await self._require().node_config(service, node)
        except RequestError:
            return []
        notes = []
        for event, field_name in ((Event.RETRACT, "pubsub#notify_retract"), (Event.DELETE, "pubsub#notify_delete")):
            if event in events and str(config.get(field_name, "1")).lower() in ("0", "false"):
                notes.append(
                    f"node {node!r} is configured not to notify {event.value}s ({field_name} is "
                    "off): this hook will not run for them unless its owner turns it on"
                )
        return notes

    # ------------------------------------------------------------------ many nodes

    async def ensure(
        self, keys: Iterable[Key], delivering: Callable[[Key], bool] | None = None
    ) -> dict[Key, HookError]:
        """Make every node of ``keys`` deliver, all at once (the session bounds how
        many requests wait at once); returns the nodes that failed with why (the others
        deliver).

        Each service node's subscription is checked on its own: a service-wide list of
        subscriptions (XEP-0060 5.6) would take one request, but Prosody 0.12 never
        answers it once a node the account was subscribed to has been deleted.

        ``delivering`` (at a connect or reconnection) says which nodes an item came
        from on this stream: ejabberd pushes each subscribed node's last item on
        initial presence, and such a node is subscribed, not asked. The checks wait
        for the server's answer to that presence (at most :data:`PRESENCE_WAIT`), so
        that the pushed items are in; a node whose item comes later is asked, as any
        other (the answer then decides)."""
        session = self._require()
        keys = sorted(set(keys))
        pep = [node for service, node in keys if is_pep(service)]
        if pep:
            await session.set_pep_interests(pep, True)
        failed: dict[Key, HookError] = {}
        if delivering is not None and any(not is_pep(service) for service, _node in keys):
            await session.presence_answered(PRESENCE_WAIT)

        async def one(service: str, node: str) -> None:
            try:
                known = delivering is not None and delivering((service, node))
                await self.listen(service, node, subscribed=True if known else None)
            except HookError as exc:
                failed[(service, node)] = exc

        await asyncio.gather(*(one(s, n) for s, n in keys if not is_pep(s)))
        return failed

    async def drop_unused(self, used: set[Key]) -> None:
        """Remove the subscriptions we made for nodes no hook uses (e.g. a crashed
        kernel's temporary hooks)."""
        unused = sorted(self.ours - used)

        async def one(key: Key) -> None:
            try:
                await self.unlisten(*key)
            except HookError as exc:
                log.warning("%s", exc)

        await asyncio.gather(*(one(key) for key in unused))

    # ------------------------------------------------------------------ internals

    def _require(self) -> XmppSession:
        session = self._session()
        if session is None:
            raise HookError("not connected to an XMPP server: connect first (%hook connect JID)")
        return session

    def _set_ours(self, service: str, node: str, ours: bool) -> None:
        if ours:
            self.ours.add((service, node))
        else:
            self.ours.discard((service, node))
        store = self._store()
        if store is not None:
            try:
                store.set_subscription(service, node, ours)
            except StoreError as exc:
                log.warning("%s", exc)


def pending_note(service: str, node: str) -> str:
    """What a pending subscription means for the hooks."""
    return (
        f"the subscription to {node!r} on {service} waits for the node owner's approval: the hooks "
        "run once it is approved"
    )


def _refused(service: str, node: str, exc: RequestError) -> HookError:
    if exc.condition == "item-not-found":
        return NodeGone(_missing(service, node, exc))
    return HookError(
        f"{service} refused the subscription to {node!r} ({exc.condition}"
        f"{': ' + exc.text if exc.text else ''}): the node's access model may "
        "require an invitation, a roster group or the owner's approval"
    )


def node_missing(service: str, node: str, exc: RequestError) -> HookError | None:
    """The error to give when reading a node's items failed, or None when that failure
    does not stop a hook from being made (a PEP node appears at its first publish)."""
    if exc.condition == "item-not-found" and not is_pep(service):
        return HookError(_missing(service, node, exc))
    if exc.condition == "timeout":
        return HookError(f"{service} does not answer ({exc.what})")
    return None


def _missing(service: str, node: str, exc: RequestError) -> str:
    """A missing node, and what to do (the session's hint: it knows whether the
    service refused this account a node creation)."""
    return exc.hint or missing_node_hint(service, node)
