"""The private Prosody of pubsub_hook_magic.testing.server, exercised with real slixmpp clients."""

from __future__ import annotations

import asyncio
import itertools
import os
import queue
import signal
import socket
import subprocess
import sys
import time
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import slixmpp

from pubsub_hook_magic.loopthread import LoopThread
from pubsub_hook_magic.xmpp_session import SessionError, XmppSession
from pubsub_hook_magic.testing import certs
from pubsub_hook_magic.testing.server import TestServer

from .conftest import PASSWORDS
from .support import NodeOwner

NS = "urn:example:pubsub-hook-magic:test"
_EV = "{http://jabber.org/protocol/pubsub#event}"
REPO = Path(__file__).resolve().parent.parent


def _payload(text: str) -> ET.Element:
    el = ET.Element(f"{{{NS}}}entry")
    el.text = text
    return el


async def _connect(srv: TestServer, jid: str, password: str, *, tls: bool = False,
                   timeout: float = 5.0) -> slixmpp.ClientXMPP:
    """A logged-in client (session started, initial presence sent) on the running loop."""
    client = slixmpp.ClientXMPP(
        jid, password, loop=asyncio.get_running_loop(),
        plugin_config={"feature_mechanisms": {"unencrypted_plain": True}},
    )
    client.register_plugin("xep_0030")
    client.register_plugin("xep_0060")
    client.enable_direct_tls = False
    client.enable_starttls = tls
    client.enable_plaintext = not tls
    if tls:
        client.ca_certs = srv.cert_path
    # Bare-JID subscriptions are only delivered after initial presence: send it on
    # every session_start.
    client.add_event_handler("session_start", lambda _event: client.send_presence())
    failed = asyncio.get_running_loop().create_future()
    client.add_event_handler(
        "failed_all_auth",
        lambda _e: failed.done() or failed.set_exception(AssertionError(f"auth failed: {jid}")))
    client.connect(srv.host, srv.port)
    started = asyncio.ensure_future(client.wait_until("session_start", timeout))
    done, _ = await asyncio.wait({started, failed}, timeout=timeout + 1,
                                 return_when=asyncio.FIRST_COMPLETED)
    if failed in done:
        started.cancel()
        await _disconnect(client)
        failed.result()
    failed.cancel()
    await started  # raises TimeoutError if the session did not start
    return client


async def _disconnect(client: slixmpp.ClientXMPP) -> None:
    await client.disconnect(wait=1.0)
    task = client._run_out_filters
    if task is not None:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


def _run(coro, timeout: float = 15.0):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


@pytest.fixture
def memory_server():
    with TestServer(storage="memory") as srv:
        yield srv
    assert not srv.data_dir.exists()  # temp dir removed by __exit__


def test_start_stop_basics(memory_server: TestServer):
    srv = memory_server
    assert srv.running and srv.host == "127.0.0.1" and srv.domain == "localhost"
    assert srv.pubsub == "pubsub.localhost"
    assert srv.config_path.is_file() and str(srv.config_path).startswith(str(srv.data_dir))
    # Loopback only and nothing but c2s.
    cfg = srv.config_path.read_text()
    assert f"c2s_ports = {{ {srv.port} }}" in cfg
    assert '"tls"' not in cfg and "nagle = false" in cfg
    with socket.create_connection((srv.host, srv.port), timeout=1):
        pass
    assert "Activated service 'c2s'" in srv.log_tail()
    srv.stop()
    assert not srv.running
    with pytest.raises(OSError):
        socket.create_connection((srv.host, srv.port), timeout=1).close()
    srv.start()
    assert srv.running


def test_port_in_use_is_an_error(memory_server: TestServer):
    other = TestServer(port=memory_server.port)
    try:
        with pytest.raises(RuntimeError, match="in use"):
            other.start()
        assert not other.running
    finally:
        other.close()


def test_publish_subscribe_roundtrip(memory_server: TestServer):
    srv = memory_server
    admin_jid = srv.register("admin", "adminpw")
    bob_jid = srv.register("bob", "bobpw")
    assert (admin_jid, bob_jid) == ("admin@localhost", "bob@localhost")

    async def scenario():
        admin = await _connect(srv, admin_jid, "adminpw")
        bob = await _connect(srv, bob_jid, "bobpw")
        try:
            received: list[tuple[str, str, str, str]] = []
            all_in = asyncio.get_running_loop().create_future()

            def on_publish(msg):
                # NEVER iterate msg["pubsub_event"]["items"] here (spins forever).
                items = msg["pubsub_event"]["items"]
                item = items["item"]
                received.append((str(msg["from"]), items["node"], item["id"],
                                 item["payload"].text if item["payload"] is not None else ""))
                if len(received) >= 3 and not all_in.done():
                    all_in.set_result(None)

            bob.add_event_handler("pubsub_publish", on_publish)

            await admin.plugin["xep_0060"].create_node(srv.pubsub, "news", timeout=5)
            await bob.plugin["xep_0060"].subscribe(srv.pubsub, "news", timeout=5)
            for i in range(3):
                await admin.plugin["xep_0060"].publish(
                    srv.pubsub, "news", id=f"item-{i}", payload=_payload(f"hello {i}"),
                    timeout=5)
            await asyncio.wait_for(all_in, 5)
            await asyncio.sleep(0.1)  # nothing extra arrives
            assert received == [(srv.pubsub, "news", f"item-{i}", f"hello {i}")
                                for i in range(3)]

            # Bob is not an admin: on pubsub.localhost only owners may create nodes.
            with pytest.raises(slixmpp.exceptions.IqError) as err:
                await bob.plugin["xep_0060"].create_node(srv.pubsub, "bobs", timeout=5)
            assert err.value.condition == "forbidden"
        finally:
            await _disconnect(bob)
            await _disconnect(admin)

    _run(scenario())


def test_a_node_creator_creates_nodes_on_the_service_and_is_no_server_admin(tmp_path: Path):
    """The quickstart's alice (``--node-creator``) may create nodes on pubsub.localhost;
    bob, neither admin nor creator, is still refused; alice is no admin of the server."""
    with TestServer(node_creators=("alice@localhost",)) as srv:
        cfg = srv.config_path.read_text()
        assert 'admins = { "admin@localhost" }' in cfg  # the server's admins
        assert 'admins = { "admin@localhost"; "alice@localhost" }' in cfg  # the component's
        alice_jid = srv.register("alice", "alicepw")
        bob_jid = srv.register("bob", "bobpw")

        async def scenario():
            alice = await _connect(srv, alice_jid, "alicepw")
            bob = await _connect(srv, bob_jid, "bobpw")
            try:
                await alice.plugin["xep_0060"].create_node(srv.pubsub, "alices", timeout=5)
                with pytest.raises(slixmpp.exceptions.IqError) as err:
                    await bob.plugin["xep_0060"].create_node(srv.pubsub, "bobs", timeout=5)
                assert err.value.condition == "forbidden"
            finally:
                await _disconnect(bob)
                await _disconnect(alice)

        _run(scenario())


def test_kill_and_restart_keeps_nodes_with_file_storage():
    with TestServer(storage="file") as srv:
        admin_jid = srv.register("admin", "adminpw")
        bob_jid = srv.register("bob", "bobpw")
        port, data_dir = srv.port, srv.data_dir

        async def before_crash():
            admin = await _connect(srv, admin_jid, "adminpw")
            bob = await _connect(srv, bob_jid, "bobpw")
            try:
                await admin.plugin["xep_0060"].create_node(srv.pubsub, "news", timeout=5)
                await bob.plugin["xep_0060"].subscribe(srv.pubsub, "news", timeout=5)
                await admin.plugin["xep_0060"].publish(
                    srv.pubsub, "news", id="before", payload=_payload("before crash"),
                    timeout=5)
            finally:
                await _disconnect(bob)
                await _disconnect(admin)

        _run(before_crash())
        srv.kill()
        assert not srv.running
        srv.restart()
        assert srv.running and srv.port == port and srv.data_dir == data_dir

        async def after_restart():
            admin = await _connect(srv, admin_jid, "adminpw")
            bob = await _connect(srv, bob_jid, "bobpw")
            try:
                nodes = await admin.plugin["xep_0060"].get_nodes(jid=srv.pubsub, timeout=5)
                assert "news" in {node for _jid, node, _name in nodes["disco_items"]["items"]}
                items = await bob.plugin["xep_0060"].get_items(srv.pubsub, "news", timeout=5)
                assert [it["id"] for it in items["pubsub"]["items"]] == ["before"]
                # Bob's subscription survived too: he gets the next item.
                got = asyncio.get_running_loop().create_future()
                bob.add_event_handler(
                    "pubsub_publish",
                    lambda msg: got.done() or got.set_result(
                        msg["pubsub_event"]["items"]["item"]["id"]))
                await admin.plugin["xep_0060"].publish(
                    srv.pubsub, "news", id="after", payload=_payload("after"), timeout=5)
                assert await asyncio.wait_for(got, 5) == "after"
            finally:
                await _disconnect(bob)
                await _disconnect(admin)

        _run(after_restart())
    assert not data_dir.exists()


def test_memory_storage_forgets_nodes_at_restart(memory_server: TestServer):
    srv = memory_server
    admin_jid = srv.register("admin", "adminpw")

    async def create():
        admin = await _connect(srv, admin_jid, "adminpw")
        try:
            await admin.plugin["xep_0060"].create_node(srv.pubsub, "news", timeout=5)
        finally:
            await _disconnect(admin)

    async def check():
        admin = await _connect(srv, admin_jid, "adminpw")  # account is in file storage
        try:
            nodes = await admin.plugin["xep_0060"].get_nodes(jid=srv.pubsub, timeout=5)
            assert not nodes["disco_items"]["items"]
        finally:
            await _disconnect(admin)

    _run(create())
    srv.restart()
    _run(check())


def test_tls_offers_starttls():
    with TestServer(tls=True) as srv:
        assert srv.cert_path.is_file() and srv.key_path.is_file()
        jid = srv.register("alice", "alicepw")

        async def scenario():
            client = await _connect(srv, jid, "alicepw", tls=True)  # verified against cert
            try:
                assert "starttls" in client.features
            finally:
                await _disconnect(client)

        _run(scenario())


def test_plaintext_server_offers_no_starttls(memory_server: TestServer):
    jid = memory_server.register("alice", "alicepw")
    assert not any(memory_server.certs_dir.iterdir())

    async def scenario():
        client = await _connect(memory_server, jid, "alicepw")
        try:
            assert "starttls" not in client.features
        finally:
            await _disconnect(client)

    _run(scenario())


def test_cli_runs_until_sigterm(tmp_path: Path):
    env_file = tmp_path / "xmpp.env"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pubsub_hook_magic.testing.server",
         "--user", "admin:adminpw", "--user", "alice:alicepw", "--env-file", str(env_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 10
        while not env_file.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "env file never appeared"
            time.sleep(0.05)
        values = {}
        for line in env_file.read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            values[key] = value
        assert values["XMPP_TEST_HOST"] == "127.0.0.1"
        assert values["XMPP_TEST_ALICE_JID"] == "alice@localhost"
        assert values["XMPP_TEST_ADMIN_PASSWORD"] == "adminpw"
        port = int(values["XMPP_TEST_PORT"])
        prosody_pid = int(values["XMPP_TEST_PID"])
        data_dir = Path(values["XMPP_TEST_DATA_DIR"])

        srv = types.SimpleNamespace(host=values["XMPP_TEST_HOST"], port=port)

        async def login():
            client = await _connect(srv, "alice@localhost", "alicepw")
            await _disconnect(client)
        _run(login())

        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert f"export XMPP_TEST_PORT={port}" in out
        assert not env_file.exists() and not data_dir.exists()
        with pytest.raises(ProcessLookupError):
            os.kill(prosody_pid, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- profile="debian" and the debian_server fixture (Prosody and ejabberd) ----------------
#
# What each server answers is recorded in the assertions (and printed: pytest -s).

_debian_nodes = itertools.count(1)


def _fresh(prefix: str) -> str:
    return f"{prefix}{next(_debian_nodes)}"


@pytest.fixture(scope="module")
def owners(debian_server):
    """NodeOwner clients of admin (owner of the nodes) and alice (subscriber), over
    STARTTLS verified with the server's CA."""
    srv = debian_server
    admin = NodeOwner("admin@localhost", PASSWORDS["admin"], srv.host, srv.port, ca_file=srv.ca_path)
    alice = NodeOwner("alice@localhost", PASSWORDS["alice"], srv.host, srv.port, ca_file=srv.ca_path)
    yield admin, alice
    alice.close()
    admin.close()


def test_debian_profile_config_mirrors_debian():
    srv = TestServer(profile="debian")
    try:
        assert srv.tls and srv.ca_path == srv.ca_dir / "ca.crt" and srv.kind == "prosody"
        srv._write_config()
        cfg = srv.config_path.read_text()
        for line in ('"limits"', '"smacks"', '"carbons"', '"csi_simple"', '"pep"', '"tls"',
                     'rate = "10kb/s"', "c2s_require_encryption = true",
                     'authentication = "internal_hashed"', "allow_registration = false",
                     f"c2s_ports = {{ {srv.port} }}", 'interfaces = { "127.0.0.1" }'):
            assert line in cfg, line
        assert "nagle" not in cfg and "allow_unencrypted_plain_auth = false" in cfg
        assert srv.ca_path.is_file() and srv.cert_path.is_file() and srv.key_path.is_file()
        assert not any(p.suffix == ".key" and p.stem == "ca" for p in srv.certs_dir.iterdir())
    finally:
        srv.close()
    with pytest.raises(ValueError, match="profile"):
        TestServer(profile="ubuntu")
    plain = TestServer()
    try:
        assert plain.ca_path is None and plain.profile == "default"
    finally:
        plain.close()


def test_product_session_over_starttls_with_the_ca(debian_server):
    """XmppSession (TLS on, verified against srv.ca_path) logs in, subscribes, gets an item."""
    srv = debian_server
    node = _fresh("product")
    admin = NodeOwner("admin@localhost", PASSWORDS["admin"], srv.host, srv.port, ca_file=srv.ca_path)
    thread = LoopThread(name="debian-session")
    got: queue.Queue = queue.Queue()
    session = XmppSession("alice@localhost", PASSWORDS["alice"], host=srv.host, port=srv.port,
                          tls=True, ca_file=str(srv.ca_path),
                          on_item=lambda service, node, item: got.put((service, node, item["id"])))
    try:
        admin.create_node(node, srv.pubsub)
        thread.run(session.start(20), 30)
        assert session.connected and "starttls" in session.client.features
        assert thread.run(session.subscribe(srv.pubsub, node), 20) == "subscribed"
        admin.publish(node, "over tls", id="t1")
        assert got.get(timeout=10) == (srv.pubsub, node, "t1")
    finally:
        thread.run(session.stop(), 20)
        thread.stop()
        admin.close()


def test_debian_profile_offers_stream_management(debian_server):
    """<sm xmlns='urn:xmpp:sm:3'/> in the features after login; <enable resume='true'/>
    is answered with <enabled resume='true' id=... max=.../> (Prosody max=600, ejabberd 300)."""
    srv = debian_server
    alice = NodeOwner("alice@localhost/features", PASSWORDS["alice"], srv.host, srv.port,
                      ca_file=srv.ca_path, presence=False)
    try:
        features = "\n".join(alice.features_xml)
        assert "urn:ietf:params:xml:ns:xmpp-tls" in alice.features_xml[0]  # STARTTLS first
        assert "<required" in alice.features_xml[0]
        assert '<sm xmlns="urn:xmpp:sm:3"' in features, features
    finally:
        alice.close()

    async def resume() -> str:
        client = slixmpp.ClientXMPP("alice@localhost/sm", PASSWORDS["alice"],
                                    loop=asyncio.get_running_loop())
        client.register_plugin("xep_0198")
        client.enable_direct_tls = False
        client.ca_certs = srv.ca_path
        enabled = asyncio.get_running_loop().create_future()

        def watch(stanza):
            if stanza.xml.tag == "{urn:xmpp:sm:3}enabled" and not enabled.done():
                enabled.set_result(str(stanza))
            return stanza

        client.add_filter("in", watch)
        client.connect(srv.host, srv.port)
        try:
            await client.wait_until("session_start", 15)
            return await asyncio.wait_for(enabled, 5)
        finally:
            await _disconnect(client)

    answer = _run(resume(), 30)
    print(f"{srv.kind}: {answer}")
    assert 'resume="true"' in answer and 'id="' in answer


def _burst(client: NodeOwner, count: int = 32, size: int = 800) -> tuple[float, int]:
    """Publish ``count`` items of ``size`` bytes to the client's own PEP node at once;
    (seconds until all are acknowledged, bytes of the publish stanzas)."""
    from slixmpp.xmlstream import ET as SET

    async def go() -> tuple[float, int]:
        xep = client.client.plugin["xep_0060"]
        me = client.client.boundjid.bare
        pad = "x" * size
        sent = [0]

        def count_out(stanza):
            sent[0] += len(str(stanza).encode())
            return stanza

        client.client.add_filter("out", count_out)
        start = time.monotonic()
        try:
            await asyncio.gather(*(
                xep.publish(me, "urn:test:burst", id=f"b{i}",
                            payload=SET.fromstring(f'<n xmlns="urn:test">{pad}</n>'), timeout=60)
                for i in range(count)))
        finally:
            client.client.del_filter("out", count_out)
        return time.monotonic() - start, sent[0]

    return client.run(go(), 90)


def test_debian_profile_limits_the_rate(debian_server):
    """A 30 kB burst is slowed to the server's rate: Prosody 10 kB/s for everyone,
    ejabberd 3000 B/s after a 20000 B burst for all but admins."""
    srv = debian_server
    alice = NodeOwner("alice@localhost/burst", PASSWORDS["alice"], srv.host, srv.port, ca_file=srv.ca_path)
    try:
        limited, nbytes = _burst(alice)
    finally:
        alice.close()
    if srv.kind == "ejabberd":  # admins are not shaped ("c2s_shaper: none: admin")
        reference_srv = None
        ref = NodeOwner("admin@localhost/burst", PASSWORDS["admin"], srv.host, srv.port, ca_file=srv.ca_path)
    else:  # Prosody limits admins too: compare with the default (unlimited) profile
        reference_srv = TestServer(tls=True).start()
        reference_srv.register("alice", "pw")
        ref = NodeOwner("alice@localhost/burst", "pw", reference_srv.host, reference_srv.port,
                        ca_file=reference_srv.ca_path)
    try:
        unlimited, ref_bytes = _burst(ref)
    finally:
        ref.close()
        if reference_srv is not None:
            reference_srv.close()
    print(f"{srv.kind}: {nbytes} B in {limited:.2f} s = {nbytes / limited:,.0f} B/s limited; "
          f"{ref_bytes} B in {unlimited:.3f} s = {ref_bytes / unlimited:,.0f} B/s unlimited")
    assert limited > 1.0
    assert nbytes / limited < (ref_bytes / unlimited) / 5


def test_node_delete_notifications(debian_server, owners):
    """notify_delete on: both send <delete node=.../>.  Default: Prosody on (it sends it),
    ejabberd off (nothing arrives)."""
    srv, (admin, alice) = debian_server, owners
    on, default = _fresh("delon"), _fresh("deldefault")
    admin.create_node(on, srv.pubsub, notify_delete=True)
    admin.create_node(default, srv.pubsub)
    alice.subscribe(on, srv.pubsub)
    alice.subscribe(default, srv.pubsub)
    assert admin.node_config(default, srv.pubsub)["notify_delete"] is (srv.kind == "prosody")
    admin.delete_node(on, srv.pubsub)
    event = alice.wait_event("delete", on)
    print(f"{srv.kind}: {event.xml}")
    assert event.sender == srv.pubsub and f'<delete node="{on}"' in event.xml
    admin.delete_node(default, srv.pubsub)
    if srv.kind == "prosody":
        alice.wait_event("delete", default)
    else:
        with pytest.raises(TimeoutError):
            alice.wait_event("delete", default, timeout=1.0)


def test_purge_notification(debian_server, owners):
    srv, (admin, alice) = debian_server, owners
    node = _fresh("purge")
    admin.create_node(node, srv.pubsub)
    alice.subscribe(node, srv.pubsub)
    admin.publish(node, "to purge", id="p1")
    alice.wait_event("item", node)
    admin.purge(node, srv.pubsub)
    assert f'<purge node="{node}"' in alice.wait_event("purge", node).xml
    assert admin.get_items(node, srv.pubsub) == []


def test_owner_sets_a_subscription_to_none(debian_server, owners):
    """XEP-0060 8.8.2: the subscription is gone on both; ejabberd tells the subscriber
    (<subscription subscription='none'/>, a normal message), Prosody 0.12 says nothing."""
    srv, (admin, alice) = debian_server, owners
    node = _fresh("subnone")
    admin.create_node(node, srv.pubsub)
    alice.subscribe(node, srv.pubsub)
    assert admin.subscriptions(node, srv.pubsub) == {"alice@localhost": "subscribed"}
    alice.events(0.3)  # (ejabberd: nothing pending; the node has no item yet)
    admin.set_subscription(node, "alice@localhost", "none", srv.pubsub)
    assert admin.subscriptions(node, srv.pubsub) == {}
    if srv.kind == "ejabberd":
        event = alice.wait_event("subscription", node)
        print(f"ejabberd: {event.xml}")
        assert 'subscription="none"' in event.xml and 'jid="alice@localhost"' in event.xml
    else:
        with pytest.raises(TimeoutError):
            alice.wait_event("subscription", node, timeout=1.0)
    admin.publish(node, "after none", id="n1")
    with pytest.raises(TimeoutError):
        alice.wait_event("item", node, timeout=1.0)
    admin.set_subscription(node, "alice@localhost", "subscribed", srv.pubsub)
    assert admin.subscriptions(node, srv.pubsub) == {"alice@localhost": "subscribed"}


def test_items_of_a_node_that_does_not_persist(debian_server, owners):
    """persist_items=false: Prosody refuses items requests (cancel/feature-not-implemented);
    ejabberd keeps the last item only, and retracts the one it replaces (subscribers get
    <retract id='a'/>)."""
    srv, (admin, alice) = debian_server, owners
    node = _fresh("nopersist")
    admin.create_node(node, srv.pubsub, persist_items=False)
    assert admin.node_config(node, srv.pubsub)["persist_items"] is False
    alice.subscribe(node, srv.pubsub)
    admin.publish(node, "a-payload", id="a")
    admin.publish(node, "b-payload", id="b")
    assert "a-payload" in alice.wait_event("item", node).xml
    assert "b-payload" in alice.wait_event("item", node).xml
    if srv.kind == "prosody":
        with pytest.raises(slixmpp.exceptions.IqError) as err:
            alice.get_items(node, srv.pubsub)
        answer = f"{err.value.iq['error']['type']}/{err.value.condition}"
        print(f"prosody: items -> {answer}")
        assert answer == "cancel/feature-not-implemented"
    else:
        items = alice.get_items(node, srv.pubsub)
        print(f"ejabberd: items -> {items}")
        assert [item_id for item_id, _ in items] == ["b"]
        assert '<retract id="a"' in alice.wait_event("retract", node).xml


def test_notifications_without_payloads(debian_server, owners):
    """deliver_payloads=false: <item id='a'/> without payload on both; fetched, it has it."""
    srv, (admin, alice) = debian_server, owners
    node = _fresh("nopayload")
    admin.create_node(node, srv.pubsub, deliver_payloads=False)
    alice.subscribe(node, srv.pubsub)
    admin.publish(node, "the payload", id="a")
    event = alice.wait_event("item", node)
    print(f"{srv.kind}: {event.xml}")
    item = event.element.find(f"{_EV}items/{_EV}item")
    assert item is not None and item.get("id") == "a" and len(item) == 0
    assert "the payload" not in event.xml
    [(item_id, payload)] = alice.get_items(node, srv.pubsub)
    assert item_id == "a" and payload is not None and "the payload" in payload


def test_last_published_item_on_subscribe_and_presence(debian_server, owners):
    """ejabberd (send_last_published_item on_sub_and_presence, Debian's default): the last
    item on subscribe (with <delay/>) and to each new session's full JID (no <delay/>),
    with its payload even where deliver_payloads=false; Prosody's generic service: never."""
    srv, (admin, alice) = debian_server, owners
    node, bare = _fresh("lastitem"), _fresh("lastnopayload")
    admin.create_node(node, srv.pubsub)
    admin.create_node(bare, srv.pubsub, deliver_payloads=False)
    expected = "on_sub_and_presence" if srv.kind == "ejabberd" else "never"
    assert admin.node_config(node, srv.pubsub)["send_last_published_item"] == expected
    admin.publish(node, "last one", id="L1")
    admin.publish(bare, "hidden?", id="L2")
    alice.subscribe(node, srv.pubsub)
    alice.subscribe(bare, srv.pubsub)
    if srv.kind == "ejabberd":
        on_sub = alice.wait_event("item", node)
        print(f"ejabberd on subscribe: {on_sub.xml}")
        assert "last one" in on_sub.xml and "urn:xmpp:delay" in on_sub.xml
        assert "hidden?" in alice.wait_event("item", bare).xml  # the payload, despite the config
    else:
        with pytest.raises(TimeoutError):
            alice.wait_event("item", node, timeout=1.0)
    second = NodeOwner("alice@localhost/second", PASSWORDS["alice"], srv.host, srv.port, ca_file=srv.ca_path)
    try:
        if srv.kind == "ejabberd":
            on_presence = second.wait_event("item", node)
            print(f"ejabberd on presence: {on_presence.xml}")
            assert 'to="alice@localhost/second"' in on_presence.xml
            assert "urn:xmpp:delay" not in on_presence.xml
        else:
            with pytest.raises(TimeoutError):
                second.wait_event("item", node, timeout=1.0)
    finally:
        second.close()


def test_subscription_approval(debian_server, owners):
    """access_model=authorize: ejabberd answers the subscribe with 'pending' and sends the
    owner an authorization form; the owner approves by setting the subscription.  Prosody
    0.12 does not have the model (create: modify/not-acceptable)."""
    srv, (admin, alice) = debian_server, owners
    node = _fresh("authorize")
    if srv.kind == "prosody":
        with pytest.raises(slixmpp.exceptions.IqError) as err:
            admin.create_node(node, srv.pubsub, access_model="authorize")
        assert err.value.condition == "not-acceptable"
        return
    admin.create_node(node, srv.pubsub, access_model="authorize")
    reply = alice.run(alice.client.plugin["xep_0060"].subscribe(srv.pubsub, node, bare=True, timeout=15))
    assert reply["pubsub"]["subscription"]["subscription"] == "pending"
    deadline = time.monotonic() + 5
    while admin.pending_requests(node, srv.pubsub) != ["alice@localhost"]:
        assert time.monotonic() < deadline, admin.authorization_requests
        time.sleep(0.05)
    admin.approve(node, "alice@localhost", srv.pubsub)
    assert 'subscription="subscribed"' in alice.wait_event("subscription", node).xml
    assert admin.subscriptions(node, srv.pubsub) == {"alice@localhost": "subscribed"}
    assert admin.pending_requests(node, srv.pubsub) == []


@pytest.mark.parametrize("case", ["other-host", "expired"])
def test_certificates_of_the_ca_that_do_not_fit_are_refused(tmp_path: Path, case: str):
    """A certificate signed by the trusted CA, but for another host name or expired, is
    refused with the reason."""
    ca = certs.make_ca(tmp_path / "srv" / "ca")
    if case == "other-host":
        certs.issue(ca, tmp_path / "srv" / "certs", ["example.org"], name="localhost")
        reason = "example.org"  # (the session names the certificate's host)
    else:
        certs.issue(ca, tmp_path / "srv" / "certs", ["localhost", "pubsub.localhost"],
                    name="localhost", expired=True)
        reason = "expired"
    with TestServer(profile="debian", data_dir=tmp_path / "srv") as srv:
        assert srv.ca_path == ca.cert_path
        srv.register("alice", "pw")
        session = XmppSession("alice@localhost", "pw", host=srv.host, port=srv.port, tls=True,
                              ca_file=str(srv.ca_path), on_item=lambda *a: None)

        async def login():
            try:
                await session.start(10)
            finally:
                await session.stop()

        with pytest.raises(SessionError) as err:
            _run(login(), 20)
        print(f"{case}: {err.value}")
        assert "certificate" in str(err.value)
        assert reason in str(err.value), err.value


def test_a_second_server_with_another_domain_runs_beside_the_first(memory_server: TestServer):
    """``TestServer(domain=...)``: its accounts, its PubSub component and its certificate
    are of that domain; it runs beside a ``localhost`` one, and each knows only its own."""
    with pytest.raises(ValueError, match="domain"):
        TestServer(domain="Not A Domain")
    with TestServer(domain="example.org", tls=True) as other:
        assert (other.domain, other.pubsub, other.admins) == (
            "example.org", "pubsub.example.org", ("admin@example.org",))
        assert other.port != memory_server.port
        assert other.cert_path.name == "example.org.crt" and other.key_path.is_file()
        names = subprocess.run(
            ["openssl", "x509", "-in", str(other.cert_path), "-noout", "-ext", "subjectAltName"],
            capture_output=True, text=True, check=True).stdout
        assert "DNS:example.org" in names and "DNS:pubsub.example.org" in names
        cfg = other.config_path.read_text()
        assert 'VirtualHost "example.org"' in cfg and 'Component "pubsub.example.org" "pubsub"' in cfg
        assert other.register("admin", "adminpw") == "admin@example.org" == other.jid("admin")
        with pytest.raises(ValueError, match=r"example\.org"):
            other.register("bob@localhost", "bobpw")
        bob = memory_server.register("bob", "bobpw")

        async def scenario():
            # Verified STARTTLS against the certificate made for example.org.
            admin = await _connect(other, "admin@example.org", "adminpw", tls=True)
            local = await _connect(memory_server, bob, "bobpw")
            try:
                pubsub = admin.plugin["xep_0060"]
                await pubsub.create_node(other.pubsub, "news", timeout=5)
                await pubsub.publish(other.pubsub, "news", id="x1", payload=_payload("hi"), timeout=5)
                items = await pubsub.get_items(other.pubsub, "news", timeout=5)
                assert [i["id"] for i in items["pubsub"]["items"]] == ["x1"]
                # The localhost server has no pubsub.example.org (no s2s): not found there.
                with pytest.raises((slixmpp.exceptions.IqError, slixmpp.exceptions.IqTimeout)):
                    await local.plugin["xep_0060"].get_items(other.pubsub, "news", timeout=3)
            finally:
                await _disconnect(local)
                await _disconnect(admin)

        _run(scenario())
        with pytest.raises(AssertionError, match="auth failed"):  # example.org's account only
            _run(_connect(other, "bob@example.org", "bobpw"))
