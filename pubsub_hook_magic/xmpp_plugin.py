"""Our slixmpp plugin: PubSub events, handled once, and the client's clean shutdown.

This is the one module that touches slixmpp's internals (xep_0060's item handler, the
stream's output-filter task). Each use is guarded: when a slixmpp release no longer
has what we expect, the plugin falls back to slixmpp's own behaviour (a little
slower, as correct) and says so in the log, instead of failing in a user's session.

:class:`PubSubHookEvents` is registered with a client like any slixmpp plugin::

    client.register_plugin(PLUGIN, pconfig={"on_item": ..., "on_event": ...})

``plugin_init`` takes the place of xep_0060's five handlers of PubSub events with one
(ours passes each item event on to xep_0060's only when something listens to what it
raises: hook code through ``client``, or a mapped node; the rare node events always);
``plugin_end`` puts xep_0060's back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, ClassVar

from slixmpp.jid import JID
from slixmpp.plugins.base import BasePlugin, register_plugin
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

__all__ = ["PLUGIN", "PubSubHookEvents", "close_client"]

log = logging.getLogger(__name__)

#: The plugin's name, as given to ``client.register_plugin`` and ``client.plugin[...]``.
PLUGIN = "pubsub_hook_magic"
EVENT_NS = "http://jabber.org/protocol/pubsub#event"
#: xep_0060's handlers of the PubSub events (slixmpp 1.8 to 1.17 at least), by the
#: event's child element, all replaced by our one handler.
_XEP_0060_HANDLERS = {
    "items": "Pubsub Event: Items",
    "purge": "Pubsub Event: Purge",
    "delete": "Pubsub Event: Delete",
    "configuration": "Pubsub Event: Configuration",
    "subscription": "Pubsub Event: Subscription",
}
_XEP_0060_ITEMS = _XEP_0060_HANDLERS["items"]
#: Our one handler of ``<message><event xmlns=pubsub#event/></message>``.
_EVENTS = f"{PLUGIN} events"
#: Events about a node itself (and our subscription to it), handled by ``on_event``.
_NODE_EVENTS = ("purge", "delete", "subscription")
_EVENT_TAG = f"{{{EVENT_NS}}}event"
#: Senders whose bare JID is remembered (a session hears from a few services).
_SENDERS_KEPT = 256


def _ignore(*_args: Any) -> None:
    pass


class PubSubHookEvents(BasePlugin):
    """Delivers PubSub events to the session: ``<items/>`` once per ``<item/>`` and
    ``<retract/>``; ``<purge/>``, ``<delete/>`` and ``<subscription/>`` (a change of a
    subscription to the node, e.g. ours removed by its owner) once per event.

    Configuration (``pconfig``): ``on_item(service, node, item)`` and
    ``on_event(service, node, kind, element)`` (``kind``: retract, purge, delete or
    subscription; None: node events are not handled). ``service`` is the bare JID that sent the
    event (the account itself when the stanza has no ``from``).
    """

    name = PLUGIN
    description = "pubsub_hook_magic: PubSub events for hooks"
    dependencies: ClassVar[set[str]] = {"xep_0060"}

    def plugin_init(self) -> None:
        self.on_item: Callable[[str, str, Any], None] = self.config.get("on_item") or _ignore
        self.on_event: Callable[[str, str, str, Any], None] | None = self.config.get("on_event")
        #: Events received (``<items/>``, and node events when ``on_event`` is set).
        self.received = 0
        #: The bare JID of each recent sender (its ``from`` as written): parsing a JID
        #: costs more than the rest of an event's dispatch.
        self._bare_jids: dict[str, str] = {}
        #: xep_0060's handlers we took over, by event (see :meth:`_take_over`); ours
        #: calls them when something listens to what they raise.
        self.xep_0060_handlers = self._take_over()
        self.xmpp.register_handler(Callback(_EVENTS, StanzaPath("message/pubsub_event"), self._on_event_message))

    def plugin_end(self) -> None:
        xmpp = self.xmpp
        xmpp.remove_handler(_EVENTS)
        for kind, handle in self.xep_0060_handlers.items():  # give xep_0060 its handlers back
            path = StanzaPath(f"message/pubsub_event/{kind}")
            xmpp.register_handler(Callback(_XEP_0060_HANDLERS[kind], path, handle))
        self.xep_0060_handlers = {}

    @property
    def xep_0060_items(self) -> Callable[[Any], None] | None:
        """xep_0060's item handler, called by ours when something listens to its events
        (None: xep_0060's handler runs by itself)."""
        return self.xep_0060_handlers.get("items")

    @xep_0060_items.setter
    def xep_0060_items(self, handle: Callable[[Any], None] | None) -> None:
        if handle is None:
            self.xep_0060_handlers.pop("items", None)
        else:
            self.xep_0060_handlers["items"] = handle

    def _take_over(self) -> dict[str, Callable[[Any], None]]:
        """Remove xep_0060's handlers of PubSub events and return them by event; those
        this slixmpp lacks (or names otherwise) stay as they are, beside ours.

        One handler instead of six: slixmpp matches every stanza against every
        handler, and each PubSub matcher cost about as much as a tenth of bare
        slixmpp's whole cost per item. Node events (purge, delete) stay xep_0060's
        when we are not told of them (no ``on_event``)."""
        xep_0060 = self.xmpp.plugin["xep_0060"]
        if not isinstance(getattr(xep_0060, "node_event_map", None), dict):
            log.debug("slixmpp's xep_0060 differs from what we know: its handlers stay beside ours")
            return {}
        taken: dict[str, Callable[[Any], None]] = {}
        for kind, name in _XEP_0060_HANDLERS.items():
            if kind in _NODE_EVENTS and self.on_event is None:
                continue
            handle = getattr(xep_0060, f"_handle_event_{kind}", None)
            if callable(handle) and self.xmpp.remove_handler(name):
                taken[kind] = handle
            else:
                log.debug("xep_0060 has no handler %r: it stays its own", name)
        return taken

    def _on_event_message(self, msg: Any) -> None:
        """A PubSub event message: each of its events to the handler of its kind."""
        event = msg.xml.find(_EVENT_TAG)
        if event is None:
            return
        for child in event:
            kind = child.tag.rpartition("}")[2]
            if kind == "items":
                self._on_items(msg)
            elif kind in _NODE_EVENTS:
                self._on_node_event(msg, kind)
            else:
                handle = self.xep_0060_handlers.get(kind)
                if handle is not None:
                    handle(msg)  # pubsub_config, pubsub_subscription

    def _service(self, msg: Any) -> str:
        """The bare JID that sent ``msg`` (the account itself when it has no ``from``)."""
        sender = msg.xml.get("from")
        if not sender:
            return self.xmpp.boundjid.bare
        bare = self._bare_jids.get(sender)
        if bare is None:
            bare = JID(sender).bare
            if len(self._bare_jids) >= _SENDERS_KEPT:
                self._bare_jids.clear()
            self._bare_jids[sender] = bare
        return bare

    def _on_items(self, msg: Any) -> None:
        """One ``<items/>`` event: ``on_item`` once per ``<item/>``, ``on_event`` once
        per ``<retract/>``."""
        self.received += 1
        service = self._service(msg)
        items = msg["pubsub_event"]["items"]
        node = items.xml.get("node", "")  # (items["node"], without its lookups)
        on_item, on_event = self.on_item, self.on_event
        for item in list(items.iterables):  # never iterate the stanza itself (it spins)
            try:
                if item.name == "item":
                    on_item(service, node, item)
                elif item.name == "retract" and on_event is not None:
                    on_event(service, node, "retract", item)
            except Exception:  # a bug of ours must not bounce an error to the sender
                log.exception("dispatching an event of %s/%s failed", service, node)
        handle = self.xep_0060_items
        if handle is not None:
            xmpp = self.xmpp
            if (
                xmpp.event_handled("pubsub_publish")
                or xmpp.event_handled("pubsub_retract")
                or node in xmpp.plugin["xep_0060"].node_event_map
            ):
                handle(msg)  # pubsub_publish, pubsub_retract and mapped node events

    def _on_node_event(self, msg: Any, kind: str) -> None:
        """A ``<purge/>``, ``<delete/>`` or ``<subscription/>`` event: ``on_event`` for
        the node, then xep_0060's handler (``pubsub_purge``, ``pubsub_delete``,
        ``pubsub_subscription``, mapped node events)."""
        on_event = self.on_event
        if on_event is None:
            return
        self.received += 1
        service = self._service(msg)
        element = msg["pubsub_event"][kind]
        try:
            on_event(service, element["node"], kind, element)
        except Exception:  # (as above)
            log.exception("dispatching a %s event of %s failed", kind, service)
        handle = self.xep_0060_handlers.get(kind)
        if handle is not None:
            handle(msg)


register_plugin(PubSubHookEvents)


async def close_client(client: Any, wait: float = 1.0, timeout: float = 3.0) -> None:
    """Close the client's stream (abort it when it does not close within ``timeout``)
    and end everything it runs, so that asyncio has no pending task to warn about."""
    client.cancel_connection_attempt()
    try:
        await asyncio.wait_for(client.disconnect(wait=wait), timeout)
    except Exception:  # (TimeoutError included) closing must finish
        client.abort()
    # The stream's output-filter task (slixmpp 1.8+) outlives disconnect(): without
    # this, asyncio warns "Task was destroyed but it is pending!" at exit.
    filters = getattr(client, "_run_out_filters", None)
    if isinstance(filters, asyncio.Future) and not filters.done():
        filters.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await filters
    if client.plugin.enabled(PLUGIN):
        client.plugin.disable(PLUGIN)
