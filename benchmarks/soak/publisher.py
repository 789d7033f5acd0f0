"""The soak's publisher process: unique, numbered items at a steady rate, round robin
over the nodes (service nodes as admin@localhost, PEP nodes of alice@localhost as
alice's own ``soak-publisher`` resource, which sends no presence and so receives no
notification), straight to Prosody (never through the fault proxy).

Item ids are ``NODE-NNNNNNN``, numbered per node in the order they are sent on one
stream, which is the order the server stores them. Each outcome is one line of the
log, written when it is known (line-buffered)::

    ok   ITEM T_SENT T_ACKED        the server acknowledged it: it is on the node
    fail ITEM T_SENT T_FAILED WHY   no acknowledgement (server killed…): maybe stored
    # connected|disconnected ACCOUNT T

While an account's stream is down its ticks are skipped (nothing is numbered), so
the rate stays steady rather than bursting afterwards.

Commands on stdin, one a line: ``start``, ``burst NODE COUNT``, ``stop``; it answers
``ready``, ``burst-done NODE COUNT``, ``stopped`` on stdout.

    python -m benchmarks.soak.publisher --port P --log FILE --service-nodes s0,s1 \
        --pep-nodes p0 [--rate 50] [--max-items 5000]

Passwords: ``$SOAK_ADMIN_PW`` and ``$SOAK_ALICE_PW``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from typing import Any, TextIO

SERVICE = "pubsub.localhost"
#: Publishes of a burst in flight at once (slixmpp matches replies by a linear scan).
BURST_IN_FLIGHT = 100
PUBLISH_TIMEOUT = 30.0


class Conn:
    """One account's stream, reconnected for ever with a fresh client each time."""

    def __init__(self, jid: str, password: str, host: str, port: int, log: TextIO):
        self.jid, self.password, self.host, self.port, self.log = jid, password, host, port, log
        self.client: Any = None
        self.ready = asyncio.Event()

    def _make(self) -> Any:
        from slixmpp import ClientXMPP

        client = ClientXMPP(
            self.jid,
            self.password,
            loop=asyncio.get_running_loop(),
            plugin_config={"feature_mechanisms": {"unencrypted_plain": True}},
        )
        client.enable_direct_tls = False
        client.enable_starttls = False
        client.enable_plaintext = True
        for plugin in ("xep_0004", "xep_0030", "xep_0060"):
            client.register_plugin(plugin)
        return client

    async def keep(self) -> None:
        while True:
            client = self._make()
            started, ended = asyncio.Event(), asyncio.Event()
            client.add_event_handler("session_start", lambda _e, ev=started: ev.set())
            client.add_event_handler("session_end", lambda _e, ev=ended: ev.set())
            client.add_event_handler("disconnected", lambda _e, ev=ended: ev.set())
            client.connect(self.host, self.port)
            try:
                await asyncio.wait_for(started.wait(), 10)
            except TimeoutError:
                _drop(client)
                await asyncio.sleep(0.5)
                continue
            self.client = client
            self.ready.set()
            self.log.write(f"# connected {self.jid} {time.time():.3f}\n")
            await ended.wait()
            self.ready.clear()
            self.client = None
            self.log.write(f"# disconnected {self.jid} {time.time():.3f}\n")
            _drop(client)
            await asyncio.sleep(0.3)


def _drop(client: Any) -> None:
    try:
        client.cancel_connection_attempt()
        client.abort()
    except Exception:  # noqa: BLE001
        pass
    task = getattr(client, "_run_out_filters", None)
    if task is not None:
        task.cancel()


class Publisher:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.log = open(args.log, "a", buffering=1, encoding="utf-8")
        admin = Conn("admin@localhost/soak-publisher", os.environ["SOAK_ADMIN_PW"], args.host, args.port, self.log)
        alice = Conn("alice@localhost/soak-publisher", os.environ["SOAK_ALICE_PW"], args.host, args.port, self.log)
        self.conns = [admin, alice]
        #: node -> (connection, service JID)
        self.nodes: dict[str, tuple[Conn, str]] = {}
        for node in filter(None, args.service_nodes.split(",")):
            self.nodes[node] = (admin, SERVICE)
        for node in filter(None, args.pep_nodes.split(",")):
            self.nodes[node] = (alice, "alice@localhost")
        self.counters = {node: 0 for node in self.nodes}
        self.pending: set[asyncio.Future[Any]] = set()
        self.stopping = False
        self.skipped = 0

    async def setup(self) -> None:
        """Create every node, configured to keep ``--max-items`` items."""
        from slixmpp.exceptions import IqError

        for conn in self.conns:
            await asyncio.wait_for(conn.ready.wait(), 30)
        for node, (conn, service) in self.nodes.items():
            xep4 = conn.client.plugin["xep_0004"]
            form = xep4.make_form("submit")
            form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#node_config")
            form.add_field(var="pubsub#max_items", value=str(self.args.max_items))
            try:
                await conn.client.plugin["xep_0060"].create_node(service, node, config=form, timeout=30)
            except IqError as exc:
                if exc.iq["error"]["condition"] != "conflict":
                    raise

    def send(self, node: str) -> asyncio.Future[Any] | None:
        """Number and send one item now (in order); None if its stream is down."""
        from slixmpp.xmlstream import ET

        conn, service = self.nodes[node]
        client = conn.client
        if client is None or not conn.ready.is_set():
            self.skipped += 1
            return None
        n = self.counters[node]
        self.counters[node] = n + 1
        item_id = f"{node}-{n:07d}"
        sent = time.time()
        try:
            future = client.plugin["xep_0060"].publish(
                service, node, id=item_id, payload=ET.fromstring(f'<soak xmlns="urn:soak" n="{n}"/>'),
                timeout=PUBLISH_TIMEOUT,
            )
        except Exception as exc:  # noqa: BLE001
            self.log.write(f"fail {item_id} {sent:.3f} {time.time():.3f} {type(exc).__name__}\n")
            return None
        task = asyncio.ensure_future(self._outcome(future, item_id, sent))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return task

    async def _outcome(self, future: Any, item_id: str, sent: float) -> None:
        try:
            await future
        except BaseException as exc:  # noqa: BLE001 - timeout, error reply, cancelled
            why = type(exc).__name__
            if hasattr(exc, "iq"):
                why += ":" + str(exc.iq["error"]["condition"])
            self.log.write(f"fail {item_id} {sent:.3f} {time.time():.3f} {why}\n")
        else:
            self.log.write(f"ok {item_id} {sent:.3f} {time.time():.3f}\n")

    async def steady(self) -> None:
        period = 1.0 / self.args.rate
        order = list(self.nodes)
        i = 0
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not self.stopping:
            self.send(order[i % len(order)])
            i += 1
            next_at += period
            delay = next_at - loop.time()
            if delay < -1.0:  # the loop was held up: do not catch up in a rush
                next_at = loop.time()
                delay = 0
            await asyncio.sleep(max(0.0, delay))

    async def burst(self, node: str, count: int) -> None:
        conn, _service = self.nodes[node]
        sent = 0
        in_flight: set[asyncio.Future[Any]] = set()
        while sent < count:
            if not conn.ready.is_set():
                await asyncio.wait_for(conn.ready.wait(), 120)
            while len(in_flight) >= BURST_IN_FLIGHT:
                _done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            task = self.send(node)
            if task is None:
                await asyncio.sleep(0.1)
                continue
            in_flight.add(task)
            sent += 1
        if in_flight:
            await asyncio.wait(in_flight)
        _say(f"burst-done {node} {count}")

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        keepers = [loop.create_task(conn.keep()) for conn in self.conns]
        await self.setup()
        _say("ready")
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        steady: asyncio.Task[None] | None = None
        bursts: set[asyncio.Task[None]] = set()
        while True:
            line = (await reader.readline()).decode().strip()
            if not line or line == "stop":
                break
            words = line.split()
            if words[0] == "start" and steady is None:
                steady = loop.create_task(self.steady())
            elif words[0] == "burst":
                task = loop.create_task(self.burst(words[1], int(words[2])))
                bursts.add(task)
                task.add_done_callback(bursts.discard)
        self.stopping = True
        if steady is not None:
            await steady
        for task in list(bursts):
            task.cancel()
        if self.pending:
            await asyncio.wait(list(self.pending), timeout=PUBLISH_TIMEOUT + 5)
        self.log.write(f"# stopped {time.time():.3f} skipped={self.skipped}\n")
        self.log.close()
        for task in keepers:
            task.cancel()
        _say("stopped")


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.soak.publisher")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--service-nodes", default="")
    ap.add_argument("--pep-nodes", default="")
    ap.add_argument("--max-items", type=int, default=5000)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)
    asyncio.run(Publisher(args).main())
    return 0


if __name__ == "__main__":
    sys.exit(main())
