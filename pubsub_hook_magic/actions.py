"""The façade's actions that install nothing: publishing, retracting, listing and
creating nodes (:class:`NodeRequests`), and one-off runs of a hook, replayed or on a
test item (:class:`OneOffRuns`). :class:`.HookManager` inherits them; they go through
the session and the engine's public API only."""

from __future__ import annotations

import time
from typing import Any

from .engine import Engine
from .hooks import Hook, HookError
from .live import publisher_of
from .xmpp_session import RequestError, XmppSession, bare_jid
from .states import SessionState, TriggerKind
from .trigger import Trigger

__all__ = ["NodeRequests", "OneOffRuns"]


class NodeRequests:
    """Requests to PubSub services and PEP, from the connected account."""

    session: XmppSession | None
    jid: Any
    engine: Engine

    def _require_session(self) -> XmppSession:
        session = self.session
        if session is None:
            raise HookError("not connected to an XMPP server: connect first (%hook connect JID)")
        if session.state == SessionState.RECONNECTING:
            raise HookError(
                "the session is reconnecting to the server: try again once %hook status "
                "says connected"
            )
        if not session.connected:
            raise HookError(session.last_error or f"the session is {session.state}: connect again")
        return session

    async def publish(
        self, service: str | None, node: str, payload: str, item_id: str | None = None
    ) -> str:
        """Publish an item (``payload``: one XML element, as text) from this account;
        handy to try hooks. Returns the item id."""
        from xml.etree.ElementTree import ParseError, fromstring

        session = self._require_session()
        if not node:
            raise HookError("a node is needed: give it with -n NODE")
        try:
            element = fromstring(payload)
        except ParseError as exc:
            raise HookError(
                f"the payload is not XML ({exc}): give one element, e.g. "
                "<entry xmlns='urn:example'>hi</entry>"
            ) from None
        service = bare_jid(service, "service JID") if service else session.bare
        try:
            return await session.publish(service, node, element, item_id)
        except RequestError as exc:
            raise HookError(str(exc)) from None

    async def retract(self, service: str | None, node: str, item_id: str) -> None:
        """Retract an item (from your own PEP by default), notifying the node's
        subscribers: hooks on ``retract`` run."""
        session = self._require_session()
        if not node or not item_id:
            raise HookError("give the node (-n NODE) and the id of the item to retract")
        service = bare_jid(service, "service JID") if service else session.bare
        try:
            await session.retract(service, node, item_id)
        except RequestError as exc:
            raise HookError(str(exc)) from None

    async def nodes(self, service: str | None = None) -> list[tuple[str, str]]:
        """The nodes ``service`` offers (service discovery), as ``(node, name)``;
        your own PEP nodes by default."""
        session = self._require_session()
        service = bare_jid(service, "service JID") if service else session.bare
        try:
            return sorted(await session.list_nodes(service))
        except RequestError as exc:
            raise HookError(str(exc)) from None

    async def create_node(
        self, service: str | None, node: str, config: dict[str, str] | None = None
    ) -> tuple[str, str]:
        """Create ``node`` on ``service`` (your own PEP by default), with ``config``
        (``pubsub#`` fields, e.g. ``{"pubsub#access_model": "open"}``), as Libervia's
        ``li pubsub node create``. Returns ``(service, node)`` as created."""
        session = self._require_session()
        if not node:
            raise HookError("a node is needed: give it with -n NODE")
        service = bare_jid(service, "service JID") if service else session.bare
        try:
            created = await session.create_node(service, node, config or {})
        except RequestError as exc:
            raise HookError(str(exc)) from None
        await self.engine.nodewatch.back((service, created))  # (hooks on it, if it was deleted)
        return service, created



class OneOffRuns(NodeRequests):
    """Runs of a hook outside its queue (between two queued items)."""

    engine: Engine

    async def replay(
        self, hook_id: str, item_id: str | None = None, last: int | None = None
    ) -> list[Trigger]:
        """Run a hook again on items it saw: its last one, the item ``item_id`` (from
        its recent triggers, else from the node), or the node's ``last`` stored items.
        Each run is recorded as a trigger of kind "replay"."""
        runner = self.engine.runner(hook_id)
        hook = runner.hook
        if last:
            items = await self._node_items(hook, last)
        elif item_id:
            seen = [t.payload for t in runner.triggers if t.item_id == item_id and t.payload is not None]
            items = seen[-1:] or [i for i in await self._node_items(hook, None) if i["id"] == item_id]
            if not items:
                raise HookError(f"item {item_id!r} is neither in hook {hook_id}'s recent triggers nor on its node")
        else:
            queued = (TriggerKind.LIVE, TriggerKind.CATCH_UP)
            seen = [t.payload for t in runner.triggers if t.payload is not None and t.kind in queued]
            if not seen:
                raise HookError(
                    f"hook {hook_id} has no item to replay yet: use --item ID or --last N to "
                    "take items from the node"
                )
            items = seen[-1:]
        return [await runner.run_now(item, TriggerKind.REPLAY, publisher=publisher_of(item)) for item in items]

    async def _node_items(self, hook: Hook, last: int | None) -> list[Any]:
        session = self._require_session()
        try:
            return await session.last_items(hook.service, hook.node, last)
        except RequestError as exc:
            raise HookError(str(exc)) from None

    async def test(self, hook_id: str, payload: str, item_id: str | None = None) -> Trigger:
        """Run a hook on an item built here from ``payload`` (XML), without the network."""
        from xml.etree.ElementTree import ParseError, fromstring

        from slixmpp.plugins.xep_0060.stanza.pubsub_event import EventItem

        runner = self.engine.runner(hook_id)
        try:
            element = fromstring(payload)
        except ParseError as exc:
            raise HookError(f"the payload is not XML ({exc}): give one element") from None
        item = EventItem()
        item["id"] = item_id or f"test-{int(time.time() * 1000)}"
        item["payload"] = element
        if self.jid:
            item["publisher"] = self.jid
        return await runner.run_now(item, TriggerKind.TEST)
