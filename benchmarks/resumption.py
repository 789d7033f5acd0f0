"""What a short network cut costs a session, with and without stream management (XEP-0198).

``python -m benchmarks.resumption [--runs N]``

A private Prosody with ``mod_smacks`` (resumption) and one without, each reached
through the fault proxy (:class:`~pubsub_hook_magic.testing.proxy.TcpProxy`, counting
bytes). Each run: one hook (``python_code``) on a fresh node has run one item; the
proxy resets every connection (RST both ways, the server stays up); one item is
published at once, over the publisher's own direct link. Measured: the time from the
cut to the first hook run after it, and the bytes through the proxy (both ways) over
that time. Three clients, each alone, interleaved run by run:

* ours with XEP-0198: :class:`~pubsub_hook_magic.manager.HookManager` on the smacks
  server: it resumes (no login, no catch-up);
* ours without: the same on the server without smacks: a new login, subscriptions
  checked and the node caught up;
* the floor: a bare slixmpp client with ``xep_0198`` on the smacks server, which
  reconnects as soon as its stream closes (ours waits its first backoff delay,
  0.5-0.6 s: sessions of a restarted server must not all come back at once).

Then the cost of noticing a silent dead link (see :mod:`pubsub_hook_magic.xmpp_smacks`):
the bytes of one probe round, ``<r/>``/``<a/>`` with stream management and an XEP-0199
ping without, and what they make in an hour at the session's probe interval.

Medians of ``--runs`` (default 5) runs; about 40 s on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from typing import Any

from pubsub_hook_magic import xmpp_smacks
from pubsub_hook_magic.loopthread import LoopThread
from pubsub_hook_magic.manager import HookManager
from pubsub_hook_magic.testing.proxy import TcpProxy
from pubsub_hook_magic.testing.server import TestServer

SERVICE = "pubsub.localhost"
PASSWORD = "bench-pw"


class SmacksServer(TestServer):
    """Prosody with ``mod_smacks`` (the benchmark's own: the test servers have none)."""

    def _config_lines(self, modules: list[str]) -> list[str]:
        return super()._config_lines([*modules, "smacks"])


def _client(jid: str, host: str, port: int, smacks: bool) -> Any:
    from slixmpp import ClientXMPP

    client = ClientXMPP(jid, PASSWORD, loop=asyncio.get_running_loop(),
                        plugin_config={"feature_mechanisms": {"unencrypted_plain": True}})
    client.enable_direct_tls = client.enable_starttls = False
    client.enable_plaintext = True
    for plugin in ("xep_0030", "xep_0060"):
        client.register_plugin(plugin)
    if smacks:
        xmpp_smacks.enable(client)
    return client


class Publisher:
    """admin@localhost on its own loop thread, straight to the server."""

    def __init__(self, srv: TestServer):
        self.thread = LoopThread(name="publisher")
        self.client = self.thread.run(self._start(srv), 30)

    async def _start(self, srv: TestServer) -> Any:
        client = _client("admin@localhost/pub", srv.host, srv.port, False)
        client.connect(srv.host, srv.port)
        await client.wait_until("session_start", 15)
        return client

    def create(self, node: str) -> None:
        self.thread.run(self.client.plugin["xep_0060"].create_node(SERVICE, node), 15)

    async def publish(self, node: str, item_id: str) -> None:
        from slixmpp.xmlstream import ET

        payload = ET.fromstring(f'<n xmlns="urn:bench">{item_id}</n>')
        coro = self.client.plugin["xep_0060"].publish(SERVICE, node, id=item_id, payload=payload, timeout=15)
        await asyncio.to_thread(self.thread.run, coro, 20)

    def close(self) -> None:
        from pubsub_hook_magic.xmpp_plugin import close_client

        self.thread.run(close_client(self.client), 10)
        self.thread.stop()


async def _until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not met")
        await asyncio.sleep(0.002)


async def cut_ours(srv: TestServer, pub: Publisher, user: str, node: str) -> tuple[float, int]:
    """HookManager: seconds from the cut to the hook's run of the item published then, and bytes."""
    runs: list[float] = []
    with tempfile.TemporaryDirectory() as store, TcpProxy(srv.host, srv.port) as proxy:
        manager = HookManager({"runs": runs, "now": time.monotonic}, data_dir=store)
        await manager.connect(f"{user}@localhost", PASSWORD, host="127.0.0.1", port=proxy.port, tls=False)
        try:
            await manager.create_hook(SERVICE, node, "python_code", "runs.append(now())")
            await pub.publish(node, "warm")
            await _until(lambda: len(runs) == 1)
            if isinstance(srv, SmacksServer):
                await _until(lambda: xmpp_smacks.enabled(manager.client))
            await asyncio.sleep(0.2)  # (the acks of the first item)
            proxy.reset_traffic()
            cut = time.monotonic()
            proxy.cut()
            await pub.publish(node, "after-cut")
            await _until(lambda: len(runs) == 2)
            traffic = proxy.traffic()
            return runs[1] - cut, traffic.to_server + traffic.to_client
        finally:
            await manager.disconnect()


async def cut_bare(srv: TestServer, pub: Publisher, user: str, node: str) -> tuple[float, int]:
    """A bare slixmpp client with xep_0198, subscribed to the node, reconnecting at once."""
    from pubsub_hook_magic.xmpp_plugin import close_client

    runs: list[float] = []
    with TcpProxy(srv.host, srv.port) as proxy:
        client = _client(f"{user}@localhost/bare", srv.host, proxy.port, True)
        client.add_event_handler("pubsub_publish", lambda _msg: runs.append(time.monotonic()))
        reconnect = {"on": True}
        client.add_event_handler(
            "disconnected", lambda _e: reconnect["on"] and client.connect("127.0.0.1", proxy.port)
        )
        client.add_event_handler("session_start", lambda _e: client.send_presence())
        client.connect("127.0.0.1", proxy.port)
        await client.wait_until("session_start", 15)
        try:
            await client.plugin["xep_0060"].subscribe(SERVICE, node, timeout=15)
            await _until(lambda: xmpp_smacks.enabled(client))
            await pub.publish(node, "warm")
            await _until(lambda: len(runs) == 1)
            await asyncio.sleep(0.2)
            proxy.reset_traffic()
            cut = time.monotonic()
            proxy.cut()
            await pub.publish(node, "after-cut")
            await _until(lambda: len(runs) == 2)
            traffic = proxy.traffic()
            return runs[1] - cut, traffic.to_server + traffic.to_client
        finally:
            reconnect["on"] = False
            await close_client(client)


async def probe_rounds(smacks: TestServer, plain: TestServer, user: str) -> dict[str, int]:
    """Bytes of one probe round of the session: <r/>/<a/> (smacks), and a ping (none)."""
    out: dict[str, int] = {}
    for label, srv in (("r/a", smacks), ("ping", plain)):
        with tempfile.TemporaryDirectory() as store, TcpProxy(srv.host, srv.port) as proxy:
            manager = HookManager(data_dir=store)
            await manager.connect(f"{user}@localhost", PASSWORD, host="127.0.0.1", port=proxy.port, tls=False)
            session = manager.session
            assert session is not None
            if label == "r/a":
                client = session.client
                await _until(lambda client=client: xmpp_smacks.enabled(client))
            rounds = []
            for _ in range(3):
                await asyncio.sleep(0.2)
                proxy.reset_traffic()
                assert await xmpp_smacks.answers(session.client, 5)
                await asyncio.sleep(0.05)  # (everything of the round counted)
                traffic = proxy.traffic()
                rounds.append(traffic.to_server + traffic.to_client)
            out[label] = int(statistics.median(rounds))
            await manager.disconnect()
    return out


async def main_async(runs: int) -> None:
    logging.getLogger("pubsub_hook_magic").setLevel(logging.ERROR)
    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)
    with SmacksServer(storage="memory") as smacks, TestServer(storage="memory") as plain:
        for srv in (smacks, plain):
            for user in ("admin", "ours", "bare"):
                srv.register(user, PASSWORD)
        pubs = {"smacks": Publisher(smacks), "plain": Publisher(plain)}
        cases = [
            ("ours, XEP-0198 (resumed)", cut_ours, smacks, "smacks", "ours"),
            ("ours, no XEP-0198 (login + catch-up)", cut_ours, plain, "plain", "ours"),
            ("bare slixmpp, XEP-0198 (floor)", cut_bare, smacks, "smacks", "bare"),
        ]
        results: dict[str, list[tuple[float, int]]] = {label: [] for label, *_ in cases}
        try:
            for run in range(runs + 1):  # the first run warms up, not counted
                for label, measure, srv, pub, user in cases[run % 3:] + cases[:run % 3]:
                    node = f"cut{time.monotonic_ns()}"
                    pubs[pub].create(node)
                    figure = await measure(srv, pubs[pub], user, node)
                    if run:
                        results[label].append(figure)
            probes = await probe_rounds(smacks, plain, "ours")
        finally:
            for p in pubs.values():
                p.close()
    print(f"Cut (RST) -> first hook run after it, and bytes through the proxy meanwhile; median of {runs} runs")
    print(f"{'client':40} {'time':>9} {'bytes':>7}")
    for label, figures in results.items():
        seconds = statistics.median(f[0] for f in figures)
        size = statistics.median(f[1] for f in figures)
        print(f"{label:40} {seconds * 1000:7.0f} ms {size:7.0f}")
    per_hour = 3600 / xmpp_smacks.PROBE_INTERVAL
    print(f"\nDead-link probe every {xmpp_smacks.PROBE_INTERVAL:g} s, deadline {xmpp_smacks.PROBE_DEADLINE:g} s "
          f"(noticed within {xmpp_smacks.PROBE_INTERVAL + xmpp_smacks.PROBE_DEADLINE:g} s), plaintext, TCP/IP headers not counted:")
    for label, size in probes.items():
        print(f"  one {label} round: {size} bytes; {size * per_hour / 1000:.0f} KB an hour")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.resumption", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="measured runs of each client (default: 5)")
    args = ap.parse_args(argv)
    start = time.monotonic()
    asyncio.run(main_async(max(1, args.runs)))
    print(f"\n({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
