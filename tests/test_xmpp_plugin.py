"""Our slixmpp plugin, fed stanzas without a server (xmpp_plugin)."""

from __future__ import annotations

import asyncio
import warnings
from xml.etree import ElementTree as ET

import pytest

pytest.importorskip("slixmpp")

from slixmpp import ClientXMPP
from slixmpp.stanza import Message

from pubsub_hook_magic.xmpp_session import XmppSession
from pubsub_hook_magic.xmpp_plugin import PLUGIN, close_client

EVENT = (
    "<message xmlns='jabber:client' from='pubsub.localhost/x' to='alice@localhost/r' type='headline'>"
    "<event xmlns='http://jabber.org/protocol/pubsub#event'>{body}</event></message>"
)
TWO_ITEMS = "<items node='n'><item id='a'><x xmlns='urn:t'/></item><item id='b'><x xmlns='urn:t'/></item></items>"


def feed(client, body: str) -> None:
    client.recv_stanza(Message(client, xml=ET.fromstring(EVENT.format(body=body))))


def handler_names(client) -> list[str]:
    return [h.name for h in client._XMLStream__handlers]


class Recorder:
    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []
        self.events: list[tuple[str, str, str]] = []

    def on_item(self, service, node, item) -> None:
        self.items.append((service, node, item["id"]))

    def on_event(self, service, node, kind, element) -> None:
        self.events.append((service, node, kind))


def run(coro_fn):
    """Run ``coro_fn(session, client, recorder)`` on a fresh loop with an unconnected client."""

    async def main():
        rec = Recorder()
        session = XmppSession("alice@localhost/r", "pw", on_item=rec.on_item, on_event=rec.on_event, tls=False)
        session.client = client = session._make_client()
        try:
            return await coro_fn(session, client, rec)
        finally:
            await session.stop()

    return asyncio.run(main())


def test_each_item_of_an_event_is_delivered_once_with_the_sender_as_service():
    async def check(session, client, rec):
        feed(client, TWO_ITEMS)
        await asyncio.sleep(0)
        assert rec.items == [("pubsub.localhost", "n", "a"), ("pubsub.localhost", "n", "b")]
        assert session.events_received == 1

    run(check)


def test_retract_purge_and_delete_are_node_events():
    async def check(session, client, rec):
        feed(client, "<items node='n'><retract id='a'/></items>")
        feed(client, "<purge node='n'/>")
        feed(client, "<delete node='m'/>")
        await asyncio.sleep(0)
        assert rec.items == []
        assert rec.events == [
            ("pubsub.localhost", "n", "retract"),
            ("pubsub.localhost", "n", "purge"),
            ("pubsub.localhost", "m", "delete"),
        ]
        assert session.events_received == 3

    run(check)


def test_xep_0060s_node_events_still_reach_their_listeners_through_ours():
    async def check(session, client, rec):
        raised: list[str] = []
        for name in ("pubsub_purge", "pubsub_delete", "pubsub_config", "pubsub_subscription"):
            client.add_event_handler(name, lambda msg, name=name: raised.append(name))
        feed(client, "<purge node='n'/>")
        feed(client, "<delete node='n'/>")
        feed(client, "<configuration node='n'/>")
        feed(client, "<subscription node='n' jid='alice@localhost' subscription='none'/>")
        await asyncio.sleep(0)
        assert raised == ["pubsub_purge", "pubsub_delete", "pubsub_config", "pubsub_subscription"]
        assert [e[2] for e in rec.events] == ["purge", "delete", "subscription"]

    run(check)


def test_ours_takes_the_place_of_xep_0060s_handler_and_feeds_its_listeners():
    async def check(session, client, rec):
        names = handler_names(client)
        assert not any(n.startswith("Pubsub Event") for n in names)  # one handler for all five
        assert [n for n in names if n.startswith(PLUGIN)] == [f"{PLUGIN} events"]
        published: list[str] = []
        feed(client, TWO_ITEMS)  # nobody listens to pubsub_publish: not raised
        client.add_event_handler("pubsub_publish", lambda msg: published.append(msg["id"]))
        feed(client, TWO_ITEMS)
        await asyncio.sleep(0)
        assert len(published) == 2  # xep_0060 raises it once per item
        assert len(rec.items) == 4

    run(check)


def test_plugin_end_gives_xep_0060_its_handler_back():
    async def check(session, client, rec):
        client.plugin.disable(PLUGIN)
        names = handler_names(client)
        assert "Pubsub Event: Items" in names and not any(n.startswith(PLUGIN) for n in names)
        assert {n for n in names if n.startswith("Pubsub Event")} == {
            "Pubsub Event: Items", "Pubsub Event: Purge", "Pubsub Event: Delete",
            "Pubsub Event: Configuration", "Pubsub Event: Subscription",
        }
        published: list[str] = []
        client.add_event_handler("pubsub_publish", lambda msg: published.append(msg["id"]))
        feed(client, TWO_ITEMS)
        await asyncio.sleep(0)
        assert rec.items == [] and len(published) == 2

    run(check)


def test_without_xep_0060s_handler_ours_runs_beside_and_forwards_nothing():
    async def main():
        client = ClientXMPP("alice@localhost/r", "pw", loop=asyncio.get_running_loop())
        client.register_plugin("xep_0060")
        client.remove_handler("Pubsub Event: Items")  # as if a slixmpp release renamed it
        seen: list[str] = []
        client.register_plugin(PLUGIN, {"on_item": lambda s, n, item: seen.append(item["id"])})
        plugin = client.plugin[PLUGIN]
        assert plugin.xep_0060_items is None
        feed(client, TWO_ITEMS)
        assert seen == ["a", "b"]
        client.plugin.disable(PLUGIN)
        assert "Pubsub Event: Items" not in handler_names(client)  # nothing restored that was not ours
        await close_client(client)

    asyncio.run(main())


def test_closing_a_client_leaves_no_pending_task():
    async def main():
        client = ClientXMPP("alice@localhost/r", "pw", loop=asyncio.get_running_loop())
        client.register_plugin(PLUGIN)
        client.connect("127.0.0.1", 1)  # refused: starts the output-filter task
        await asyncio.sleep(0)
        await close_client(client)
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
        assert pending == []
        assert not client.plugin.enabled(PLUGIN)

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        asyncio.run(main())
