"""Our slixmpp plugin: PubSub events, handled once, and the client's clean shutdown.

This is the one module that touches slixmpp's internals (xep_0060's item handler, the
stream's output-filter task). Each use is guarded: when a slixmpp release no longer
has what we expect, the plugin falls back to slixmpp's own behaviour (a little
slower, as correct) and says so in the log, instead of failing in a user's session.

:class:`PubSubHookEvents` is registered with a client like any slixmpp plugin::

    client.register_plugin(PLUGIN, pconfig={"on_item": ..., "on_event": ...})

``plugin_init`` takes the place of xep_0060's handler of ``<items/>`` events (ours
passes each event on to it only when something listens to what it raises: hook code
through ``client``, or a mapped node); ``plugin_end`` puts xep_0060's back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, ClassVar

from slixmpp.plugins.base import BasePlugin, register_plugin
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

__all__ = ["PLUGIN", "PubSubHookEvents", "close_client"]

log = logging.getLogger(__name__)

#: The plugin's name, as given to ``client.register_plugin`` and ``client.plugin[...]``.
PLUGIN = "pubsub_hook_magic"
EVENT_NS = "http://jabber.org/protocol/pubsub#event"
#: xep_0060's handler of item events (slixmpp 1.8 to 1.17 at least), replaced by ours.
_XEP_0060_ITEMS = "Pubsub Event: Items"
_ITEMS = f"{PLUGIN} items"
_NODE_EVENTS = ("purge", "delete")


def _ignore(*_args: Any) -> None:
    pass


class PubSubHookEvents(BasePlugin):
    """Delivers PubSub events to the session: ``<items/>`` once per ``<item/>`` and
    ``<retract/>``, ``<purge/>`` and ``<delete/>`` once per event.

    Configuration (``pconfig``): ``on_item(service, node, item)`` and
    ``on_event(service, node, kind, element)`` (``kind``: retract, purge or delete;
    None: node events are not handled). ``service`` is the bare JID that sent the
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
        #: xep_0060's item handler, called by ours when something listens to its events
        #: (None: xep_0060's handler runs by itself, see :meth:`_take_over_items`).
        self.xep_0060_items: Callable[[Any], None] | None = self._take_over_items()
        xmpp = self.xmpp
        xmpp.register_handler(Callback(_ITEMS, StanzaPath("message/pubsub_event/items"), self._on_items))
        for kind in _NODE_EVENTS:
            xmpp.register_handler(
                Callback(f"{PLUGIN} {kind}", StanzaPath(f"message/pubsub_event/{kind}"), self._on_node_event)
            )

    def plugin_end(self) -> None:
        xmpp = self.xmpp
        xmpp.remove_handler(_ITEMS)
        for kind in _NODE_EVENTS:
            xmpp.remove_handler(f"{PLUGIN} {kind}")
        if self.xep_0060_items is not None:  # give xep_0060 its handler back
            xmpp.register_handler(
                Callback(_XEP_0060_ITEMS, StanzaPath("message/pubsub_event/items"), self.xep_0060_items)
            )
            self.xep_0060_items = None

    def _take_over_items(self) -> Callable[[Any], None] | None:
        """Remove xep_0060's handler of item events and return it; None (and xep_0060's
        handler stays) when this slixmpp has no such handler.

        One handler instead of two: matching and handling every event twice cost about
        20 us per item, a tenth of bare slixmpp's cost."""
        xep_0060 = self.xmpp.plugin["xep_0060"]
        handle = getattr(xep_0060, "_handle_event_items", None)
        if not callable(handle) or not isinstance(getattr(xep_0060, "node_event_map", None), dict):
            log.debug("slixmpp's xep_0060 differs from what we know: its item handler stays beside ours")
            return None
        if not self.xmpp.remove_handler(_XEP_0060_ITEMS):
            log.debug("xep_0060 has no handler %r: its item events stay its own", _XEP_0060_ITEMS)
            return None
        return handle

    def _service(self, msg: Any) -> str:
        sender = msg["from"]
        return sender.bare if sender else self.xmpp.boundjid.bare

    def _on_items(self, msg: Any) -> None:
        """One ``<items/>`` event: ``on_item`` once per ``<item/>``, ``on_event`` once
        per ``<retract/>``."""
        self.received += 1
        sender = msg["from"]  # (inline, not _service: this runs for every event)
        service = sender.bare if sender else self.xmpp.boundjid.bare
        items = msg["pubsub_event"]["items"]
        node = items["node"]
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

    def _on_node_event(self, msg: Any) -> None:
        """A ``<purge/>`` or ``<delete/>`` event: ``on_event`` for the node."""
        on_event = self.on_event
        if on_event is None:
            return
        self.received += 1
        service = self._service(msg)
        event = msg["pubsub_event"]
        for kind in _NODE_EVENTS:
            # (reading event[kind] would add the element when it is not there)
            if event.xml.find(f"{{{EVENT_NS}}}{kind}") is not None:
                element = event[kind]
                try:
                    on_event(service, element["node"], kind, element)
                except Exception:  # (as above)
                    log.exception("dispatching a %s event of %s failed", kind, service)


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
