"""PubSub requests of a session, and what usually fixes a refused one.

:class:`PubSubRequests` is the request side of :class:`~.session.XmppSession`: each
method sends one XEP-0060 (or service discovery) request and awaits its answer, with
at most :data:`MAX_IN_FLIGHT` requests waiting at once. A refusal is a
:class:`RequestError` carrying the XMPP error condition and, where we know one, a hint
of what fixes it (``publish_hint``, ``create_hint``, ``retract_hint``,
``missing_node_hint``). The session remembers the services that refused it a node
creation, so that no hint advises what was just refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from .hooks import HookError

__all__ = [
    "MAX_IN_FLIGHT", "AuthFailed", "PubSubRequests", "RequestError", "SessionError", "create_hint",
    "missing_node_hint", "publish_hint", "retract_hint",
]

#: Requests to the server awaiting their answer at once, at most (see ``_request``).
MAX_IN_FLIGHT = 48


class SessionError(HookError):
    """Connecting, or a request to the server, failed; the message says why."""


class AuthFailed(SessionError):
    """The server refused the account's password (SASL failure at login)."""


class RequestError(SessionError):
    """A PubSub request failed with an XMPP error condition; ``hint`` says what usually
    fixes it."""

    def __init__(self, what: str, condition: str, text: str, hint: str = ""):
        self.what = what
        self.condition = condition
        self.text = text
        self.hint = hint
        detail = f"{condition}{': ' + text if text else ''}"
        super().__init__(f"{what} failed ({detail})" + (f": {hint}" if hint else ""))


def _event_item(item: Any) -> Any:
    """A retrieved ``<item/>`` as the stanza class of an event's item, so that hook code
    reads the same interfaces whatever brought the item (slixmpp's retrieved ``Item``
    has no ``publisher``: asking for it logs a warning on the root logger, which in a
    kernel prints into a cell)."""
    from slixmpp.plugins.xep_0060.stanza.pubsub_event import EventItem

    return EventItem(xml=item.xml)


def missing_node_hint(service: str, node: str, create_refused: str | None = None, me: str | None = None) -> str:
    """What to say of a node that does not exist: how to create it, unless the service
    refused this account a node creation (``create_refused``: its condition)."""
    if service == me:
        return (
            f"your PEP has no node {node!r} (never published to, or deleted): a publish creates it "
            f"(%hook publish -n {node} ...), as does %hook node create -n {node}"
        )
    if "@" in service:
        return f"{service} has no PEP node {node!r} (never published to, or deleted): check the name"
    if create_refused:
        return (
            f"node {node!r} does not exist on {service} (never created, or deleted), and it does not "
            f"let you create nodes ({create_refused}): ask its admin, check the name (%hook nodes "
            f"{service}), or use your own PEP (leave out -s)"
        )
    return (
        f"node {node!r} does not exist on {service} (never created, or deleted): create it with "
        f"%hook node create -s {service} -n {node} if the service lets you, or check the name "
        f"(%hook nodes {service})"
    )


def publish_hint(service: str, node: str, condition: str, me: str, create_refused: str | None = None) -> str:
    """What usually fixes a refused publish, by the server's error condition (the
    node exists: see :func:`missing_node_hint` otherwise)."""
    pep = service == me
    if condition == "forbidden":
        if pep:
            return "the server refused a publish to your own PEP node: check the node's publish model"
        own = "" if create_refused else f"a node of your own (%hook node create -s {service} -n NAME) or to "
        return (
            f"only the node's owner and its publishers may publish to it: ask the owner of "
            f"{node!r} (or an admin of {service}) to make {me} a publisher or to set its "
            f"publish model to open, or publish to {own}your PEP (leave out -s)"
        )
    if condition == "item-not-found":
        return missing_node_hint(service, node, create_refused, me)
    if condition == "not-acceptable":
        return "the node refused the item: it may be too big, or not the payload type the node takes"
    if condition in ("conflict", "precondition-not-met"):
        return "the node's configuration does not match what the publish asks for"
    if condition in ("service-unavailable", "remote-server-not-found", "feature-not-implemented"):
        return f"{service} does not answer as a PubSub service: check the JID (%hook nodes {service})"
    return ""


def retract_hint(service: str, node: str, item_id: str, condition: str, me: str) -> str:
    """What a refused retract of an item of an existing node means."""
    if condition == "forbidden":
        if service == me:
            return "the server refused a retract from your own PEP node"
        return (
            f"only the node's owner and its publishers may retract its items, and {me} is neither "
            f"on {node!r}: ask its owner (or an admin of {service})"
        )
    if condition == "item-not-found":
        return f"node {node!r} has no item {item_id!r} (never published, or already retracted)"
    return ""


def create_hint(service: str, node: str, condition: str, me: str) -> str:
    """What usually fixes a refused node creation."""
    if condition == "conflict":
        return f"node {node!r} already exists on {service}: hook it (%hook create -s {service} -n {node} ...)"
    if condition == "forbidden":
        return (
            f"{service} does not let {me} create nodes (many services leave that to their "
            "admins): ask an admin, or use your own PEP (leave out -s)"
        )
    if condition in ("not-acceptable", "bad-request", "not-allowed", "feature-not-implemented"):
        return f"{service} does not take this node configuration: try another --access-model, or none"
    if condition in ("service-unavailable", "remote-server-not-found"):
        return f"{service} does not answer as a PubSub service: check the JID"
    return ""


def _iq_condition(exc: BaseException) -> tuple[str, str]:
    """(condition, text) of an IqError; ("timeout", "") of an IqTimeout."""
    iq = getattr(exc, "iq", None)
    if iq is None:
        return ("timeout", "")
    return (iq["error"]["condition"] or "error", iq["error"]["text"] or "")


class PubSubRequests:
    """The requests a session sends on behalf of hooks and the façade (the session's
    base class: it needs :attr:`client`, the logged-in slixmpp client, and
    :attr:`bare`, the account's bare JID)."""

    client: Any

    def __init__(self) -> None:
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._interests: set[str] = set()
        #: Services that list every item id however few are asked (see newest_item_ids).
        self._rsm_ignored: set[str] = set()
        #: Services that refused this account a node creation: service -> condition.
        self._create_refused: dict[str, str] = {}

    @property
    def bare(self) -> str:
        raise NotImplementedError

    def _pubsub(self) -> Any:
        return self.client.plugin["xep_0060"]

    def create_refused(self, service: str) -> str | None:
        """The condition of the last node creation ``service`` refused this account
        (``forbidden``), or None: no hint then advises creating a node there."""
        return self._create_refused.get(service)

    def missing_hint(self, service: str, node: str) -> str:
        return missing_node_hint(service, node, self.create_refused(service), self.bare)

    async def _node_there(self, service: str, node: str) -> bool:
        """Whether the node exists; True when the service does not say (a refusal
        other than ``item-not-found``, or no answer)."""
        try:
            return await self.node_exists(service, node)
        except RequestError:
            return True

    def _missing(self, exc: RequestError, service: str, node: str) -> RequestError:
        """``exc`` with the hint of a missing node."""
        return RequestError(exc.what, exc.condition, exc.text, self.missing_hint(service, node))

    async def _request(self, what: str, make: Callable[[], Any]) -> Any:
        """Send one request (``make()`` builds and sends it) and await its answer, with
        at most :data:`MAX_IN_FLIGHT` requests waiting at once: many nodes go out
        together without flooding the server (slixmpp also matches each answer by a
        scan of the waiting requests)."""
        from slixmpp.exceptions import IqError, IqTimeout

        async with self._in_flight:
            try:
                return await make()
            except (IqError, IqTimeout) as exc:
                condition, text = _iq_condition(exc)
                raise RequestError(what, condition, text) from None

    async def subscription_state(self, service: str, node: str) -> str | None:
        """This account's (bare JID) subscription to the node: ``subscribed``,
        ``pending`` (waiting for the owner's approval), ``unconfigured``, or None."""
        iq = await self._request(
            f"listing subscriptions to {node!r} on {service}",
            lambda: self._pubsub().get_subscriptions(service, node, timeout=15),
        )
        me = self.client.boundjid.bare
        states = {
            sub["subscription"] or "subscribed"
            for sub in iq["pubsub"]["subscriptions"]
            if sub["jid"].bare == me and sub["node"] in ("", node)
        }
        states.discard("none")
        for state in ("subscribed", "unconfigured", "pending"):
            if state in states:
                return state
        return None

    async def subscription_states(self, service: str, timeout: float = 10) -> dict[str, str]:
        """This account's subscriptions on a service, ``{node: state}``, in one request
        (XEP-0060 5.6). Prosody 0.12 never answers it once a node the account was
        subscribed to has been deleted: callers give it a short ``timeout``."""
        iq = await self._request(
            f"listing subscriptions on {service}",
            lambda: self._pubsub().get_subscriptions(service, timeout=timeout),
        )
        me = self.client.boundjid.bare
        states: dict[str, str] = {}
        for sub in iq["pubsub"]["subscriptions"]:
            state = sub["subscription"] or "subscribed"
            if sub["jid"].bare == me and sub["node"] and state != "none" and states.get(sub["node"]) != "subscribed":
                states[sub["node"]] = state
        return states

    async def subscription_exists(self, service: str, node: str) -> bool:
        """Whether this account (bare JID) is subscribed to the node (not pending)."""
        return await self.subscription_state(service, node) in ("subscribed", "unconfigured")

    async def subscribe(self, service: str, node: str) -> str:
        """Subscribe the account's bare JID to the node; returns the subscription's
        state: ``subscribed``, or ``pending`` when the node's owner must approve it."""
        try:
            iq = await self._request(
                f"subscribing to {node!r} on {service}",
                lambda: self._pubsub().subscribe(service, node, bare=True, timeout=15),
            )
        except RequestError as exc:
            if exc.condition == "item-not-found":
                raise self._missing(exc, service, node) from None
            raise
        return str(iq["pubsub"]["subscription"]["subscription"] or "subscribed")

    async def unsubscribe(self, service: str, node: str) -> None:
        await self._request(
            f"unsubscribing from {node!r} on {service}",
            lambda: self._pubsub().unsubscribe(service, node, bare=True, timeout=15),
        )

    async def last_items(self, service: str, node: str, max_items: int | None = 1) -> list[Any]:
        """The newest ``max_items`` items of the node (all it keeps with None), oldest
        first."""
        try:
            iq = await self._request(
                f"reading items of {node!r} on {service}",
                lambda: self._pubsub().get_items(service, node, max_items=max_items, timeout=30),
            )
        except RequestError as exc:
            if exc.condition == "item-not-found":
                raise self._missing(exc, service, node) from None
            raise
        return [_event_item(i) for i in iq["pubsub"]["items"].iterables if i.name == "item"]

    async def items_by_id(self, service: str, node: str, ids: list[str]) -> list[Any]:
        """The node's items of these ids, in one request (XEP-0060 6.5.8); those it no
        longer holds are left out of the answer (Prosody 0.12)."""
        iq = await self._request(
            f"reading {len(ids)} item(s) of {node!r} on {service} by id",
            lambda: self._pubsub().get_items(service, node, item_ids=ids, timeout=30),
        )
        return [_event_item(i) for i in iq["pubsub"]["items"].iterables if i.name == "item"]

    async def newest_item_ids(self, service: str, node: str, count: int) -> list[str] | None:
        """The ids of the node's newest ``count`` items, oldest first, without payloads
        (service discovery limited with XEP-0059, which ejabberd honours); None where
        the service ignores the limit (Prosody 0.12 lists every id), not asked again."""
        if service in self._rsm_ignored:
            return None
        from slixmpp.xmlstream import ET

        rsm = "http://jabber.org/protocol/rsm"

        def make() -> Any:
            iq = self.client.Iq(sto=service, stype="get")
            iq["disco_items"]["node"] = node
            iq["disco_items"].xml.append(ET.fromstring(f"<set xmlns='{rsm}'><max>{count}</max><before/></set>"))
            return iq.send(timeout=30)

        iq = await self._request(f"listing the newest items of {node!r} on {service}", make)
        query = iq["disco_items"].xml
        if query.find(f"{{{rsm}}}set") is None:
            self._rsm_ignored.add(service)
            return None
        return [el.get("name") for el in query.iter("{http://jabber.org/protocol/disco#items}item") if el.get("name")]

    async def retract(self, service: str, node: str, item_id: str) -> None:
        """Retract an item, asking the service to notify the subscribers. A refusal
        says why: the node is missing, the account may not retract there, or the node
        has no such item (Prosody 0.12 says ``forbidden`` for a missing node, before it
        looks the node up)."""
        try:
            await self._request(
                f"retracting {item_id!r} from {node!r} on {service}",
                lambda: self._pubsub().retract(service, node, item_id, notify=True, timeout=15),
            )
        except RequestError as exc:
            if exc.condition in ("forbidden", "item-not-found") and not await self._node_there(service, node):
                raise self._missing(exc, service, node) from None
            hint = retract_hint(service, node, item_id, exc.condition, self.bare)
            raise RequestError(exc.what, exc.condition, exc.text, hint) from None

    async def node_config(self, service: str, node: str) -> dict[str, Any]:
        """The node's configuration form, as ``{var: value}`` (owners only)."""
        iq = await self._request(
            f"reading the configuration of {node!r} on {service}",
            lambda: self._pubsub().get_node_config(service, node, timeout=15),
        )
        form = iq["pubsub_owner"]["configure"]["form"]
        return dict(form.get_values())

    async def node_exists(self, service: str, node: str) -> bool:
        """Whether the node exists (its service discovery answers, XEP-0060 5.3)."""
        try:
            await self._request(
                f"looking for {node!r} on {service}",
                lambda: self.client.plugin["xep_0030"].get_info(jid=service, node=node, timeout=15),
            )
        except RequestError as exc:
            if exc.condition == "item-not-found":
                return False
            raise
        return True

    async def node_item_ids(self, service: str, node: str) -> set[str]:
        """The ids of the items a node holds, without their payloads (service discovery
        of the node's items, XEP-0060 5.5)."""
        iq = await self._request(
            f"listing the items of {node!r} on {service}",
            lambda: self.client.plugin["xep_0030"].get_items(jid=service, node=node, timeout=30),
        )
        return {name for _jid, _node, name in iq["disco_items"]["items"] if name}

    async def publish(self, service: str, node: str, payload: Any, item_id: str | None = None) -> str:
        """Publish ``payload`` (an XML element) to the node; returns the item id. A
        refusal says what the server said and what usually fixes it."""
        try:
            iq = await self._request(
                f"publishing to {node!r} on {service}",
                lambda: self._pubsub().publish(service, node, id=item_id, payload=payload, timeout=15),
            )
        except RequestError as exc:
            # Prosody 0.12 refuses a publish to a missing node as "forbidden" (it checks
            # the right to publish before the node): look the node up then.
            if exc.condition == "item-not-found" or (
                exc.condition == "forbidden" and service != self.bare and not await self._node_there(service, node)
            ):
                raise self._missing(exc, service, node) from None
            hint = publish_hint(service, node, exc.condition, self.bare, self.create_refused(service))
            raise RequestError(exc.what, exc.condition, exc.text, hint) from None
        return iq["pubsub"]["publish"]["item"]["id"] or item_id or ""

    async def create_node(self, service: str, node: str, config: dict[str, str] | None = None) -> str:
        """Create a node (XEP-0060 8.1) with the configuration fields given (e.g.
        ``{"pubsub#access_model": "open"}``); returns its name (a server may choose
        another). A refusal says what usually fixes it."""
        form = None
        if config:
            form = self.client.plugin["xep_0004"].make_form("submit")
            form.add_field(
                var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#node_config"
            )
            for var, value in config.items():
                form.add_field(var=var, value=value)
        try:
            iq = await self._request(
                f"creating node {node!r} on {service}",
                lambda: self._pubsub().create_node(service, node, config=form, timeout=15),
            )
        except RequestError as exc:
            if exc.condition == "forbidden":
                self._create_refused[service] = exc.condition
            hint = create_hint(service, node, exc.condition, self.bare)
            raise RequestError(exc.what, exc.condition, exc.text, hint) from None
        self._create_refused.pop(service, None)
        return iq["pubsub"]["create"]["node"] or node

    async def list_nodes(self, service: str) -> list[tuple[str, str]]:
        """The nodes a service lists in service discovery, as (node, name)."""
        iq = await self._request(
            f"listing the nodes of {service}",
            lambda: self.client.plugin["xep_0030"].get_items(jid=service, timeout=15),
        )
        return [
            (node, name or "")
            for _jid, node, name in iq["disco_items"]["items"]
            if node
        ]

    async def set_pep_interest(self, node: str, interested: bool) -> None:
        """Add or remove ``node+notify`` in our caps, then tell the server (presence)."""
        await self.set_pep_interests([node], interested)

    async def set_pep_interests(self, nodes: Iterable[str], interested: bool) -> None:
        """Add or remove ``+notify`` for several nodes at once: one caps update and one
        presence, however many nodes."""
        disco = self.client.plugin["xep_0030"]
        changed = False
        for node in nodes:
            feature = f"{node}+notify"
            if interested and node not in self._interests:
                disco.add_feature(feature)
                self._interests.add(node)
                changed = True
            elif not interested and node in self._interests:
                # xep_0163.remove_interest() of slixmpp 1.17 removes the wrong feature.
                disco.del_feature(feature=feature)
                self._interests.discard(node)
                changed = True
        if changed:
            await self.client.plugin["xep_0115"].update_caps(broadcast=False)
            self.client.send_presence()
