"""The private Prosody of pubsub_hook_magic.testing.server, exercised with real slixmpp clients."""

from __future__ import annotations

import asyncio
import os
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

from pubsub_hook_magic.testing.server import TestServer

NS = "urn:example:pubsub-hook-magic:test"
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
