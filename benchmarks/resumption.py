"""What a short network cut costs a session, with and without stream management (XEP-0198).

``python -m benchmarks.resumption [--server prosody|ejabberd] [--runs N]``

Prosody 0.12 and ejabberd 23.01 as Debian ships them (``TestServer(profile="debian")``,
``EjabberdServer(profile="debian")``: rate limits, XEP-0198, STARTTLS verified with the
server's CA), both by default, side by side in one run; each reached through the fault
proxy (:class:`~pubsub_hook_magic.testing.proxy.TcpProxy`, counting bytes). Each run: one
hook (``python_code``) on a fresh node has run one item; the proxy resets every
connection (RST both ways, the server stays up); one item is published at once, over the
publisher's own direct link. Measured: the time from the cut to the first hook run after
it, and the bytes through the proxy (both ways, TLS records included) over that time.
Three clients, each alone, interleaved run by run and server by server:

* ours with XEP-0198: :class:`~pubsub_hook_magic.manager.HookManager`: it resumes (no
  login, no catch-up);
* ours without: the same session with stream management off
  (``XmppSession(stream_management=False)``, on the same server): a new login,
  subscriptions checked and the node caught up;
* the floor: a bare slixmpp client with ``xep_0198``, which reconnects as soon as its
  stream closes (ours waits its first backoff delay, 0.5-0.6 s: sessions of a restarted
  server must not all come back at once).

Then the cost of noticing a silent dead link (see :mod:`pubsub_hook_magic.xmpp_smacks`):
the bytes of one probe round, ``<r/>``/``<a/>`` with stream management and an XEP-0199
ping without, and what they make in an hour at the session's probe interval.

Medians of ``--runs`` (default 5) runs after one warm-up; about 45 s for both servers
on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from pubsub_hook_magic import manager as manager_module
from pubsub_hook_magic import xmpp_smacks
from pubsub_hook_magic.loopthread import LoopThread
from pubsub_hook_magic.manager import HookManager
from pubsub_hook_magic.xmpp_session import XmppSession
from pubsub_hook_magic.testing.ejabberd import EjabberdServer
from pubsub_hook_magic.testing.proxy import TcpProxy
from pubsub_hook_magic.testing.server import TestServer

SERVICE = "pubsub.localhost"
PASSWORD = "bench-pw"
SERVERS = ("prosody", "ejabberd")
Server = TestServer | EjabberdServer


def _client(jid: str, srv: Server, smacks: bool) -> Any:
    """A bare slixmpp client logging in over STARTTLS, verified with the server's CA."""
    from slixmpp import ClientXMPP

    client = ClientXMPP(jid, PASSWORD, loop=asyncio.get_running_loop())
    client.enable_direct_tls = client.enable_plaintext = False
    client.enable_starttls = True
    client.ca_certs = Path(str(srv.ca_path))
    for plugin in ("xep_0030", "xep_0060"):
        client.register_plugin(plugin)
    if smacks:
        xmpp_smacks.enable(client)
    return client


@contextlib.contextmanager
def without_stream_management() -> Iterator[None]:
    """Sessions made meanwhile by ``HookManager.connect`` do not enable XEP-0198 (the
    session's own switch; ``connect`` has no option for it)."""
    with mock.patch.object(manager_module, "XmppSession", functools.partial(XmppSession, stream_management=False)):
        yield


class Publisher:
    """admin@localhost on its own loop thread, straight to the server."""

    def __init__(self, srv: Server):
        self.thread = LoopThread(name=f"publisher-{srv.kind}")
        self.client = self.thread.run(self._start(srv), 30)

    async def _start(self, srv: Server) -> Any:
        client = _client("admin@localhost/pub", srv, False)
        client.connect(srv.host, srv.port)
        await client.wait_until("session_start", 20)
        return client

    def create(self, node: str) -> None:
        self.thread.run(self.client.plugin["xep_0060"].create_node(SERVICE, node), 15)

    def delete(self, node: str) -> None:
        """(Its subscribers' subscriptions go too: on presence, ejabberd would push the
        last item of every node an account is still subscribed to, each run more.)"""
        self.thread.run(self.client.plugin["xep_0060"].delete_node(SERVICE, node), 15)

    async def publish(self, node: str, item_id: str) -> None:
        from slixmpp.xmlstream import ET

        payload = ET.fromstring(f'<n xmlns="urn:bench">{item_id}</n>')
        coro = self.client.plugin["xep_0060"].publish(SERVICE, node, id=item_id, payload=payload, timeout=15)
        await asyncio.to_thread(self.thread.run, coro, 20)

    def close(self) -> None:
        from pubsub_hook_magic.xmpp_plugin import close_client

        self.thread.run(close_client(self.client), 10)
        self.thread.stop()


async def _until(predicate: Any, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark condition not met: {what}")
        await asyncio.sleep(0.002)


async def _connected(srv: Server, proxy: TcpProxy, store: str, namespace: dict[str, Any] | None = None) -> HookManager:
    manager = HookManager(namespace or {}, data_dir=store)
    await manager.connect("ours@localhost", PASSWORD, host="127.0.0.1", port=proxy.port, ca_file=str(srv.ca_path),
                          timeout=20)
    return manager


async def cut_ours(srv: Server, pub: Publisher, node: str, smacks: bool) -> tuple[float, int]:
    """HookManager: seconds from the cut to the hook's run of the item published then, and bytes."""
    runs: list[float] = []
    with tempfile.TemporaryDirectory() as store, TcpProxy(srv.host, srv.port) as proxy:
        with contextlib.nullcontext() if smacks else without_stream_management():
            manager = await _connected(srv, proxy, store, {"runs": runs, "now": time.monotonic})
        try:
            assert manager.session is not None and manager.session.stream_management == smacks
            await manager.create_hook(SERVICE, node, "python_code", "runs.append(now())")
            await pub.publish(node, "warm")
            await _until(lambda: len(runs) == 1, what="the first item")
            if smacks:
                await _until(lambda: xmpp_smacks.enabled(manager.client), what="stream management enabled")
            await asyncio.sleep(0.2)  # (the acks of the first item)
            proxy.reset_traffic()
            cut = time.monotonic()
            proxy.cut()
            await pub.publish(node, "after-cut")
            await _until(lambda: len(runs) == 2, what="the item after the cut")
            traffic = proxy.traffic()
            resumed = manager.session.resumptions == 1
            if resumed != smacks:
                raise RuntimeError(f"{srv.kind}: resumed {resumed}, expected {smacks}")
            return runs[1] - cut, traffic.to_server + traffic.to_client
        finally:
            await manager.disconnect()


async def cut_bare(srv: Server, pub: Publisher, node: str) -> tuple[float, int]:
    """A bare slixmpp client with xep_0198, subscribed to the node, reconnecting at once."""
    from pubsub_hook_magic.xmpp_plugin import close_client

    runs: list[float] = []
    with TcpProxy(srv.host, srv.port) as proxy:
        client = _client("bare@localhost/bare", srv, True)
        client.add_event_handler(  # (ejabberd pushes the last items of other nodes on presence)
            "pubsub_publish",
            lambda msg: msg["pubsub_event"]["items"]["node"] == node and runs.append(time.monotonic()),
        )
        reconnect = {"on": True}
        client.add_event_handler(
            "disconnected", lambda _e: reconnect["on"] and client.connect("127.0.0.1", proxy.port)
        )
        client.add_event_handler("session_start", lambda _e: client.send_presence())
        client.connect("127.0.0.1", proxy.port)
        await client.wait_until("session_start", 20)
        try:
            await client.plugin["xep_0060"].subscribe(SERVICE, node, timeout=15)
            await _until(lambda: xmpp_smacks.enabled(client), what="stream management enabled")
            await pub.publish(node, "warm")
            await _until(lambda: len(runs) == 1, what="the first item")
            await asyncio.sleep(0.2)
            proxy.reset_traffic()
            cut = time.monotonic()
            proxy.cut()
            await pub.publish(node, "after-cut")
            await _until(lambda: len(runs) == 2, what="the item after the cut")
            traffic = proxy.traffic()
            return runs[1] - cut, traffic.to_server + traffic.to_client
        finally:
            reconnect["on"] = False
            await close_client(client)


async def probe_rounds(srv: Server) -> dict[str, int]:
    """Bytes of one probe round of the session: <r/>/<a/> (XEP-0198), and a ping (without)."""
    out: dict[str, int] = {}
    for label, smacks in (("r/a", True), ("ping", False)):
        with tempfile.TemporaryDirectory() as store, TcpProxy(srv.host, srv.port) as proxy:
            with contextlib.nullcontext() if smacks else without_stream_management():
                manager = await _connected(srv, proxy, store)
            session = manager.session
            assert session is not None
            client = session.client
            if smacks:
                await _until(lambda client=client: xmpp_smacks.enabled(client))
            rounds = []
            for _ in range(3):
                await asyncio.sleep(0.3)  # (the server's own ack requests, if any)
                proxy.reset_traffic()
                assert await xmpp_smacks.answers(client, 5)
                await asyncio.sleep(0.05)  # (everything of the round counted)
                traffic = proxy.traffic()
                rounds.append(traffic.to_server + traffic.to_client)
            out[label] = int(statistics.median(rounds))
            await manager.disconnect()
    return out


def start(kind: str) -> Server:
    srv: Server = TestServer(storage="memory", profile="debian") if kind == "prosody" else EjabberdServer()
    srv.start()
    for user in ("admin", "ours", "bare"):
        srv.register(user, PASSWORD)
    return srv


CASES = (
    ("ours, XEP-0198 (resumed)", "ours", True),
    ("ours, no XEP-0198 (login + catch-up)", "ours", False),
    ("bare slixmpp, XEP-0198 (floor)", "bare", True),
)


async def main_async(kinds: tuple[str, ...], runs: int) -> None:
    logging.getLogger("pubsub_hook_magic").setLevel(logging.ERROR)
    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)
    results: dict[tuple[str, str], list[tuple[float, int]]] = {}
    probes: dict[str, dict[str, int]] = {}
    with contextlib.ExitStack() as stack:
        servers = {kind: stack.enter_context(start(kind)) for kind in kinds}
        pubs = {kind: Publisher(srv) for kind, srv in servers.items()}
        stack.callback(lambda: [p.close() for p in pubs.values()])
        for run in range(runs + 1):  # the first run warms up, not counted
            for kind in kinds:
                srv, pub = servers[kind], pubs[kind]
                for label, who, smacks in CASES[run % 3:] + CASES[:run % 3]:
                    node = f"cut{time.monotonic_ns()}"
                    pub.create(node)
                    try:
                        figure = await (cut_ours(srv, pub, node, smacks) if who == "ours" else cut_bare(srv, pub, node))
                    except TimeoutError as exc:
                        raise TimeoutError(f"{kind}, {label}: {exc}") from None
                    pub.delete(node)
                    if run:
                        results.setdefault((label, kind), []).append(figure)
        for kind in kinds:
            probes[kind] = await probe_rounds(servers[kind])
    print("Cut (RST) -> first hook run after it, and bytes through the proxy meanwhile "
          f"(STARTTLS, Debian's server configs); median of {runs} runs")
    print(f"{'client':40}" + "".join(f" {kind:>18}" for kind in kinds))
    for label, *_ in CASES:
        cells = []
        for kind in kinds:
            figures = results[(label, kind)]
            seconds = statistics.median(f[0] for f in figures)
            size = statistics.median(f[1] for f in figures)
            cells.append(f" {seconds * 1000:6.0f} ms {size:6.0f} B")
        print(f"{label:40}" + "".join(cells))
    per_hour = 3600 / xmpp_smacks.PROBE_INTERVAL
    print(f"\nDead-link probe every {xmpp_smacks.PROBE_INTERVAL:g} s, deadline {xmpp_smacks.PROBE_DEADLINE:g} s "
          f"(noticed within {xmpp_smacks.PROBE_INTERVAL + xmpp_smacks.PROBE_DEADLINE:g} s), over TLS 1.3, "
          "TCP/IP headers not counted:")
    for kind in kinds:
        for label, size in probes[kind].items():
            print(f"  {kind}: one {label} round: {size} bytes; {size * per_hour / 1000:.0f} KB an hour")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.resumption", description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", choices=SERVERS, default=None,
                    help="measure on this server only (default: both, side by side)")
    ap.add_argument("--runs", type=int, default=5, help="measured runs of each client (default: 5)")
    args = ap.parse_args(argv)
    began = time.monotonic()
    asyncio.run(main_async((args.server,) if args.server else SERVERS, max(1, args.runs)))
    print(f"\n({time.monotonic() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
