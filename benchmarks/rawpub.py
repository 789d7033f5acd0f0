"""A publisher that is not the bottleneck: pre-serialised stanzas over a raw socket.

A slixmpp publisher builds, serialises and parses every stanza in Python: on 2 cores
its ceiling (about 2,000 items/s) is below what Prosody and a subscriber can do, so a
subscriber measured behind it only shows the publisher's pace. This one is a minimal
XMPP client on :mod:`asyncio` streams: it opens a plaintext stream, logs in with SASL
PLAIN, binds a resource, then writes pre-built ``<iq type='set'><pubsub><publish>``
stanzas in pipelined bursts (at most ``inflight`` unanswered), counting the results
as they come back with expat (``XMLPullParser``). Prosody is then the limit.

:class:`RawPublisherRole` is a worker role of :mod:`benchmarks.workers` (``"rawpub"``)
with the same ``publish`` command as :class:`~benchmarks.workers.PublisherRole`; the
payload's ``t`` is the time the stanzas were built (just before the burst), not of
each send: row 1 measures throughput only.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import time
from typing import Any
from xml.etree.ElementTree import XMLPullParser

__all__ = ["RawPublisherRole", "RawXmppClient"]

SERVICE = "pubsub.localhost"
_STREAMS = "http://etherx.jabber.org/streams"
_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
_PUBLISH = (
    "<iq type='set' to='{service}' id='{prefix}{i}'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
    "<publish node='{node}'><item id='{prefix}{i}'><x xmlns='urn:bench' t='{t!r}'/></item>"
    "</publish></pubsub></iq>"
)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("'", "&apos;").replace('"', "&quot;")


class RawXmppClient:
    """One XMPP client stream with nothing but what publishing needs."""

    def __init__(self, jid: str, password: str, host: str, port: int):
        local_and_domain, _, resource = jid.partition("/")
        self.user, _, self.domain = local_and_domain.partition("@")
        self.resource = resource or "raw"
        self.password = password
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.parser: XMLPullParser | None = None
        self.depth = 0
        self.root: Any = None
        #: Parsed events not handled yet (a read may bring several stanzas).
        self.events: collections.deque[tuple[str, Any]] = collections.deque()

    # ---- the stream

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        await self._open()
        features = await self._next()
        mechanisms = [m.text for m in features.iter(f"{{{_SASL}}}mechanism")]
        if "PLAIN" not in mechanisms:
            raise RuntimeError(f"the server offers no PLAIN login on this stream: {mechanisms}")
        token = base64.b64encode(f"\0{self.user}\0{self.password}".encode()).decode()
        self._send(f"<auth xmlns='{_SASL}' mechanism='PLAIN'>{token}</auth>")
        answer = await self._next()
        if answer.tag != f"{{{_SASL}}}success":
            raise RuntimeError(f"login refused: {answer.tag}")
        await self._open()  # a new stream after SASL
        await self._next()  # its features (bind)
        self._send(
            f"<iq type='set' id='bind'><bind xmlns='{_BIND}'><resource>{_escape(self.resource)}</resource></bind></iq>"
        )
        bound = await self._next()
        if bound.get("type") != "result":
            raise RuntimeError("resource binding refused")

    async def _open(self) -> None:
        self.parser = XMLPullParser(events=("start", "end"))
        self.events.clear()
        self.depth = 0
        self._send(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            f"xmlns:stream='{_STREAMS}' to='{self.domain}' version='1.0'>"
        )
        while self.depth == 0:  # the server's stream header
            event, element = await self._event()
            self.depth += 1 if event == "start" else -1
            self.root = element

    def _send(self, text: str) -> None:
        assert self.writer is not None
        self.writer.write(text.encode())

    async def _event(self) -> tuple[str, Any]:
        """The parser's next event, reading the socket when it has none."""
        assert self.reader is not None and self.parser is not None
        while not self.events:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("the server closed the stream")
            self.parser.feed(data)
            self.events.extend(self.parser.read_events())
        return self.events.popleft()

    async def _next(self) -> Any:
        """The next top-level stanza, whole (during the login: one at a time)."""
        while True:
            event, element = await self._event()
            if event == "start":
                self.depth += 1
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.root.remove(element)  # (the stream keeps no stanza)
                    return element

    async def close(self) -> None:
        if self.writer is not None:
            try:
                self.writer.write(b"</stream:stream>")
                await self.writer.drain()
                self.writer.close()
                await asyncio.wait_for(self.writer.wait_closed(), 2)
            except (OSError, TimeoutError):
                pass
            self.writer = None

    # ---- publishing

    async def publish_burst(self, stanzas: list[bytes], inflight: int) -> dict[str, Any]:
        """Write ``stanzas`` (each an ``<iq>`` expecting one answer) keeping at most
        ``inflight`` unanswered, as many per write as there are free slots; wait for
        every answer."""
        assert self.reader is not None and self.writer is not None and self.parser is not None
        count = len(stanzas)
        sent = acked = errors = 0
        first_error: str | None = None
        t_first = time.time()
        t_last_send = t_first
        parser, root = self.parser, self.root
        if self.events:
            raise RuntimeError("unread stanzas before a burst")
        while acked < count:
            free = min(inflight - (sent - acked), count - sent)
            if free > 0:
                self.writer.write(b"".join(stanzas[sent:sent + free]))
                sent += free
                if sent == count:
                    t_last_send = time.time()
            data = await self.reader.read(262144)
            if not data:
                raise ConnectionError("the server closed the stream")
            parser.feed(data)
            depth = self.depth
            for event, element in parser.read_events():
                if event == "start":
                    if depth == 1 and element.tag == "{jabber:client}iq":
                        kind = element.get("type")
                        if kind == "result":
                            acked += 1
                        elif kind == "error":
                            acked += 1
                            errors += 1
                            if first_error is None:
                                first_error = f"iq {element.get('id')} error"
                    depth += 1
                else:
                    depth -= 1
                    if depth == 1:
                        root.remove(element)  # (the stream keeps no stanza)
            self.depth = depth
        return {
            "t_first": t_first, "t_last_send": t_last_send, "t_last_ack": time.time(),
            "errors": errors, "first_error": first_error,
        }


def build_publishes(node: str, count: int, prefix: str, service: str = SERVICE) -> list[bytes]:
    """``count`` pre-serialised publishes of items ``PREFIX0``… to ``node``."""
    now = time.time()
    node = _escape(node)
    return [_PUBLISH.format(service=service, node=node, prefix=prefix, i=i, t=now).encode() for i in range(count)]


class RawPublisherRole:
    """A worker role: :class:`RawXmppClient` publishing pre-serialised bursts."""

    def __init__(self, jid: str, password: str, host: str, port: int):
        self.client = RawXmppClient(jid.partition("/")[0] + "/raw-publisher", password, host, port)

    async def start(self) -> None:
        await self.client.connect()

    async def stop(self) -> None:
        await self.client.close()

    async def cmd_publish(
        self, node: str, count: int, prefix: str, inflight: int = 100, rate: float | None = None, size: int = 0,
    ) -> dict[str, Any]:
        """Like :meth:`benchmarks.workers.PublisherRole.cmd_publish` (as fast as
        ``inflight`` allows; no pacing, no padding)."""
        if rate or size:
            raise ValueError("the raw publisher publishes bursts only (no rate, no size)")
        stanzas = build_publishes(node, count, prefix)
        cpu0 = time.process_time()
        got = await self.client.publish_burst(stanzas, inflight)
        elapsed = got["t_last_send"] - got["t_first"]
        got.update(
            send_rate=count / elapsed if count > 1 and elapsed > 0 else None,
            cpu=time.process_time() - cpu0,
            payload_bytes=0,
        )
        return got
