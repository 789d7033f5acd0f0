"""Catch-up cost in bytes on Prosody or ejabberd (issue 20): persistent hooks on N nodes,
one item of 1 KB missed on each while disconnected, then a connect through the counting
proxy; bytes from the server until every hook ran its missed item, minus a login alone
(another account, subscribed to nothing), over the missed payloads' bytes.

``python -m benchmarks.catchup_bytes [--nodes 100] [--old 20] [--server prosody|ejabberd|HOST:PORT]``

``prosody`` (the default): a private Prosody (memory storage); ``ejabberd``: a private
ejabberd (``testing.ejabberd``, profile ``plain``: bytes are the same under Debian's
shaper, only slower). ``HOST:PORT``: a running server whose accounts admin, alice and
bob have the passwords of :data:`PASSWORDS`, with a PubSub service ``pubsub.localhost``
where admin may create nodes.

Issue 20, 100 nodes, 20 items of 1 KB each, one missed: Prosody 0.12 2.56x before and
after; ejabberd 23.01 3.84x before, 3.11x after (the last item ejabberd pushes on
presence is used instead of being read again: :mod:`pubsub_hook_magic.pushed`), 2.86x
once that pushed item also stands for the node's subscription check.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

from pubsub_hook_magic.loopthread import LoopThread
from pubsub_hook_magic.manager import HookManager
from pubsub_hook_magic.testing.proxy import TcpProxy

SERVICE = "pubsub.localhost"
PASSWORDS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}


async def _client(jid: str, password: str, host: str, port: int) -> Any:
    from slixmpp import ClientXMPP

    client = ClientXMPP(jid, password, loop=asyncio.get_running_loop(),
                        plugin_config={"feature_mechanisms": {"unencrypted_plain": True}})
    client.enable_direct_tls = client.enable_starttls = False
    client.enable_plaintext = True
    for plugin in ("xep_0030", "xep_0004", "xep_0060"):
        client.register_plugin(plugin)
    client.connect(host, port)
    await client.wait_until("session_start", 15)
    return client


def _payload(text: str, size: int) -> Any:
    from slixmpp.xmlstream import ET

    body = (text + "-" + "x" * size)[:size]
    return ET.fromstring(f'<entry xmlns="urn:bench">{body}</entry>')


async def _publish_all(client: Any, nodes: list[str], prefix: str, count: int, size: int) -> int:
    """``count`` items of ``size`` B to each node, 50 in flight; their payloads' bytes."""
    from xml.etree.ElementTree import tostring

    xep = client.plugin["xep_0060"]
    sem = asyncio.Semaphore(50)
    total = 0

    async def one(node: str, n: int) -> None:
        nonlocal total
        payload = _payload(f"{prefix}{n}", size)
        total += len(tostring(payload))
        async with sem:
            await xep.publish(SERVICE, node, id=f"{prefix}{n}", payload=payload, timeout=60)

    await asyncio.gather(*(one(node, n) for n in range(count) for node in nodes))
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.catchup_bytes", description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--old", type=int, default=20, help="items on each node before the hooks are made")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--server", default="prosody", help="prosody, ejabberd (private servers) or HOST:PORT")
    args = ap.parse_args(argv)
    import logging

    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)
    srv: Any = None
    if ":" in args.server:
        host, port = args.server.rsplit(":", 1)[0], int(args.server.rsplit(":", 1)[1])
    else:
        if args.server == "ejabberd":
            from pubsub_hook_magic.testing.ejabberd import EjabberdServer

            srv = EjabberdServer(profile="plain").start()
        else:
            from pubsub_hook_magic.testing.server import TestServer

            srv = TestServer(storage="memory").start()
        for user, password in PASSWORDS.items():
            srv.register(user, password)
        host, port = srv.host, srv.port
    thread = LoopThread(name="catchup-bytes")
    proxy = TcpProxy(host, port)
    tag = uuid.uuid4().hex[:6]
    nodes = [f"cb{tag}-{i}" for i in range(args.nodes)]
    store = f"/tmp/catchup-bytes-{tag}"
    admin = None
    try:
        admin = thread.run(_client("admin@localhost/bench", PASSWORDS["admin"], host, port), 30)

        async def create() -> None:
            xep = admin.plugin["xep_0060"]
            for node in nodes:
                form = admin.plugin["xep_0004"].make_form("submit")
                form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#node_config")
                form.add_field(var="pubsub#max_items", value=str(args.old + 10))
                await xep.create_node(SERVICE, node, config=form, timeout=30)

        thread.run(create(), 300)
        thread.run(_publish_all(admin, nodes, "old", args.old, args.size), 600)

        async def prepare() -> None:
            manager = HookManager({}, data_dir=store)
            await manager.connect("alice@localhost/bench", PASSWORDS["alice"], host=host, port=port, tls=False)
            for node in nodes:
                await manager.create_hook(SERVICE, node, "python_code", "pass", persistent=True)
            await manager.disconnect()

        thread.run(prepare(), 600)
        payload = thread.run(_publish_all(admin, nodes, "missed", 1, args.size), 300)

        async def connect(jid: str, data_dir: str, runs: int) -> tuple[int, float, int]:
            while proxy.connections:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            proxy.reset_traffic()
            started = time.perf_counter()
            manager = HookManager({}, data_dir=data_dir)
            await manager.connect(jid, PASSWORDS[jid.split("@")[0]], host=proxy.host, port=proxy.port, tls=False)
            deadline = time.monotonic() + 120
            while sum(h["triggers"] for h in manager.list_hooks()) < runs and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            if not runs:
                await asyncio.sleep(0.5)
            seconds = time.perf_counter() - started
            got = proxy.traffic().to_client
            await asyncio.sleep(0.3)  # an item run twice would show now
            ran = sum(h["triggers"] for h in manager.list_hooks())
            await manager.disconnect()
            return got, seconds, ran

        login, _s, _r = thread.run(connect("bob@localhost/bench", f"{store}-login", 0), 60)
        got, seconds, ran = thread.run(connect("alice@localhost/bench", store, args.nodes), 180)
        cost = got - login
        print(f"{args.server}: {args.nodes} nodes of {args.old} items, 1 missed "
              f"each: {cost:,} B after a login ({login:,} B) for {payload:,} B of payloads = {cost / payload:.2f}x; "
              f"caught up in {seconds:.2f} s; {ran} runs for {args.nodes} missed items")
    finally:
        if admin is not None:  # (the account stays subscribed to nothing: ejabberd pushes their last items)
            async def delete() -> None:
                xep = admin.plugin["xep_0060"]
                await asyncio.gather(*(xep.delete_node(SERVICE, node, timeout=30) for node in nodes),
                                     return_exceptions=True)
                await admin.disconnect()

            thread.run(delete(), 120)
        proxy.close()
        thread.stop()
        if srv is not None:
            srv.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
