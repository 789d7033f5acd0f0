"""Faults of the XMPP session against real servers: a failed session connected again,
resource conflicts, refused certificates, stream management (XEP-0198) resumption and
a silent dead link. No mock: private Prosody servers on loopback and the fault proxy."""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pubsub_hook_magic import xmpp_smacks
from pubsub_hook_magic.hooks import HookError
from pubsub_hook_magic.manager import HookManager
from pubsub_hook_magic.session import SessionError, XmppSession
from pubsub_hook_magic.states import SessionState
from pubsub_hook_magic.testing.server import TestServer

from .faults import TcpProxy
from .support import Publisher

_users = itertools.count(1)
PUBSUB = "pubsub.localhost"


class SmacksServer(TestServer):
    """A private Prosody with stream management (``mod_smacks``), its hibernated
    sessions kept ``hibernation`` seconds."""

    def __init__(self, *, hibernation: int = 600, **options: Any):
        super().__init__(**options)
        self.hibernation = hibernation

    def _config_lines(self, modules: list[str]) -> list[str]:
        lines = super()._config_lines([*modules, "smacks"])
        at = next(i for i, line in enumerate(lines) if line.startswith("VirtualHost"))
        return [*lines[:at], f"smacks_hibernation_time = {self.hibernation}", *lines[at:]]


class CountingProxy(TcpProxy):
    """The fault proxy, counting the connections it accepted."""

    opened = 0

    def track(self, conn: Any, open_: bool) -> None:
        if open_:
            self.opened += 1
        super().track(conn, open_)


def new_user(srv: TestServer, password: str = "pw-1") -> str:
    name = f"fault{next(_users)}"
    srv.register(name, password)
    return f"{name}@localhost"


async def until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> float:
    """Wait for ``predicate``; returns the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def run(main: Callable[[], Awaitable[None]], timeout: float = 90) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(timeout):
            await main()

    asyncio.run(bounded())


async def manager_on(proxy: TcpProxy, jid: str, password: str, tmp_path: Path) -> tuple[HookManager, list[str]]:
    seen: list[str] = []
    manager = HookManager({"seen": seen}, data_dir=str(tmp_path / "store"))
    await manager.connect(jid, password, host="127.0.0.1", port=proxy.port, tls=False, timeout=15)
    return manager, seen


@pytest.fixture(scope="module")
def smacks_server() -> Iterator[TestServer]:
    with SmacksServer(storage="memory", autocreate=True, hibernation=3) as srv:
        srv.register("admin", "admin-secret")
        yield srv


@pytest.fixture(scope="module")
def smacks_publisher(smacks_server: TestServer) -> Iterator[Publisher]:
    pub = Publisher("admin@localhost/pub", "admin-secret", smacks_server.host, smacks_server.port)
    yield pub
    pub.close()


# ---------------------------------------------------------------- a failed session


def test_a_failed_session_reconnects_on_connect_and_keeps_its_hooks(server, publisher, node, tmp_path):
    jid = new_user(server, "old-pw")
    publisher.create_node(f"{node}p")

    async def main() -> None:
        with TcpProxy(server.host, server.port) as proxy:
            manager, seen = await manager_on(proxy, jid, "old-pw", tmp_path)
            await manager.create_hook(PUBSUB, node, "python_code", "seen.append('t:' + item['id'])")
            await manager.create_hook(PUBSUB, f"{node}p", "python_code", "seen.append('p:' + item['id'])", persistent=True)
            server.register(jid.split("@")[0], "new-pw")  # the password changes on the server
            proxy.cut()
            await until(lambda: manager.state == SessionState.FAILED, what="failed")
            assert "password may have changed" in (manager.session.last_error or "")
            await asyncio.to_thread(publisher.publish, node, item_id="while-failed")

            with pytest.raises(HookError, match="disconnect first to log in as"):
                await manager.connect("someone@localhost", "x", host="127.0.0.1", port=proxy.port, tls=False)
            with pytest.raises(SessionError, match="password may have changed"):
                await manager.connect(jid, "wrong", host="127.0.0.1", port=proxy.port, tls=False, timeout=10)
            assert manager.state == SessionState.FAILED

            assert await manager.connect(jid, "new-pw", host="127.0.0.1", port=proxy.port, tls=False) == []
            assert manager.state == SessionState.CONNECTED and len(manager.hooks()) == 2
            await until(lambda: "t:while-failed" in seen, what="catch-up of the temporary hook")
            await asyncio.to_thread(publisher.publish, node, item_id="after")
            await asyncio.to_thread(publisher.publish, f"{node}p", item_id="after")
            await until(lambda: {"t:after", "p:after"} <= set(seen), what="both hooks run")
            assert seen.count("t:while-failed") == 1
            await manager.disconnect()

    run(main)


def test_percent_hook_connect_reconnects_a_failed_session(server, publisher, node, tmp_path, monkeypatch, capsys):
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    jid = new_user(server, "old-pw")
    monkeypatch.setenv("PUBSUB_HOOK_DATA_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("FAULT_PW", "old-pw")
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance(history_length=0, hist_file=":memory:")
    shell.extension_manager.load_extension("pubsub_hook_magic")
    proxy = TcpProxy(server.host, server.port)
    try:
        line = f"connect {jid} --host 127.0.0.1 --port {proxy.port} --password-env FAULT_PW --no-tls"
        shell.run_line_magic("hook", line)
        shell.user_ns["seen"] = []
        shell.run_line_magic("hook", f"create -s {PUBSUB} -n {node} -t python_code seen.append(item['id'])")
        with pytest.raises(UsageError, match="already connected"):
            shell.run_line_magic("hook", line)
        server.register(jid.split("@")[0], "new-pw")
        proxy.cut()
        manager = shell._pubsub_hook_magics.manager
        deadline = time.monotonic() + 20
        while manager.state != SessionState.FAILED:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        capsys.readouterr()
        monkeypatch.setenv("FAULT_PW", "new-pw")
        shell.run_line_magic("hook", line)
        assert "Reconnected as" in capsys.readouterr().out
        publisher.publish(node, item_id="x1")
        deadline = time.monotonic() + 20
        while shell.user_ns["seen"] != ["x1"]:
            assert time.monotonic() < deadline, shell.user_ns["seen"]
            time.sleep(0.05)
    finally:
        shell.extension_manager.unload_extension("pubsub_hook_magic")
        InteractiveShell.clear_instance()
        proxy.close()


# ---------------------------------------------------------------- resource conflict


@pytest.mark.parametrize("explicit", [True, False])
def test_a_resource_conflict_fails_the_older_session_instead_of_a_kick_loop(server, explicit):
    jid = new_user(server)

    async def main() -> None:
        with CountingProxy(server.host, server.port) as proxy:
            first = XmppSession(f"{jid}/res" if explicit else jid, "pw-1", on_item=lambda *a: None,
                                host="127.0.0.1", port=proxy.port, tls=False)
            await first.start(15)
            full = first.client.boundjid.full
            second = XmppSession(full, "pw-1", on_item=lambda *a: None, host="127.0.0.1", port=proxy.port, tls=False)
            await second.start(15)
            await until(lambda: first.state == SessionState.FAILED, what="the older session failed")
            message = first.last_error or ""
            assert f"another client logged in as {full}" in message
            if explicit:
                assert "connect with another resource" in message and "stop the other client" in message
            # The next attempt would come after 0.5-0.6 s: watch three times as long.
            await asyncio.sleep(2.0)
            assert proxy.opened == 2, proxy.opened
            assert first.state == SessionState.FAILED and second.state == SessionState.CONNECTED
            assert second.client.is_connected()
            await first.stop()
            await second.stop()

    run(main)


# ---------------------------------------------------------------- certificates


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA and certificates for ``localhost`` signed by it (valid, expired), one for
    ``otherhost`` signed by it, a self-signed one, and a second, unrelated CA."""
    d = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "ca2"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30", "-subj", f"/CN=Test {ca}",
                 "-keyout", str(d / f"{ca}.key"), "-out", str(d / f"{ca}.crt"))
    for name, host, days in (("good", "localhost", "30"), ("other", "otherhost", "30"), ("expired", "localhost", "-1")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={host}", "-keyout", str(d / f"{name}.key"),
                 "-out", str(d / f"{name}.csr"))
        (d / f"{name}.ext").write_text(f"subjectAltName=DNS:{host}\n")
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"),
                 "-CAcreateserial", "-days", days, "-sha256", "-extfile", str(d / f"{name}.ext"),
                 "-out", str(d / f"{name}.crt"))
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost", "-keyout", str(d / "self.key"), "-out", str(d / "self.crt"))
    return d


@pytest.mark.parametrize(
    ("cert", "ca", "expected", "unexpected"),
    [
        ("other", "ca", "the server's TLS certificate is for otherhost, not localhost", "pass"),
        ("expired", "ca", "has expired: renew it on the server", "--ca-file PEM"),
        ("self", None, "is self-signed", None),
        ("good", None, "signed by a CA that the CAs this machine trusts does not include", None),
        ("good", "ca2", "signed by a CA that the CA of --ca-file", None),
    ],
)
def test_a_refused_certificate_says_why_and_what_fixes_it(pki, tmp_path, cert, ca, expected, unexpected):
    import shutil

    certs = tmp_path / "srv" / "certs"
    certs.mkdir(parents=True)
    shutil.copy(pki / f"{cert}.crt", certs / "localhost.crt")
    shutil.copy(pki / f"{cert}.key", certs / "localhost.key")
    ca_file = str(pki / f"{ca}.crt") if ca else None

    async def main() -> None:
        session = XmppSession("alice@localhost", "pw", on_item=lambda *a: None, host="127.0.0.1",
                              port=srv.port, tls=True, ca_file=ca_file)
        with pytest.raises(SessionError) as info:
            await session.start(10)
        message = str(info.value)
        assert expected in message, message
        if cert == "other":
            assert "--ca-file does not help" in message
        elif unexpected:
            assert unexpected not in message, message
        if ca:
            assert "--ca-file PEM" not in message or cert == "good"

    with TestServer(tls=True, data_dir=tmp_path / "srv") as srv:
        run(main, 30)


def test_the_good_certificate_is_accepted(pki, tmp_path):
    import shutil

    certs = tmp_path / "srv" / "certs"
    certs.mkdir(parents=True)
    shutil.copy(pki / "good.crt", certs / "localhost.crt")
    shutil.copy(pki / "good.key", certs / "localhost.key")
    with TestServer(tls=True, data_dir=tmp_path / "srv") as srv:
        srv.register("alice", "pw")

        async def main() -> None:
            session = XmppSession("alice@localhost", "pw", on_item=lambda *a: None, host="127.0.0.1",
                                  port=srv.port, tls=True, ca_file=str(pki / "ca.crt"))
            await session.start(10)
            assert session.connected
            await session.stop()

        run(main, 30)


# ---------------------------------------------------------------- stream management


def _counters(manager: HookManager) -> xmpp_smacks.SmCounters:
    counters = xmpp_smacks.counters(manager.client)
    assert counters is not None
    return counters


async def _all_acked(manager: HookManager) -> xmpp_smacks.SmCounters:
    """Ask the server for an ack until it has acknowledged every stanza we sent."""
    for _ in range(50):
        assert await xmpp_smacks.ack(manager.client, 5)
        c = _counters(manager)
        if c.unacked == 0 and c.last_ack == c.seq:
            return c
        await asyncio.sleep(0.05)
    raise AssertionError(_counters(manager))


def test_a_short_cut_resumes_the_stream_without_login_or_catch_up(smacks_server, smacks_publisher, tmp_path, caplog):
    jid = new_user(smacks_server)
    node = f"sm{time.monotonic_ns()}"
    smacks_publisher.create_node(node)
    caplog.set_level(logging.ERROR, logger="asyncio")

    async def main() -> None:
        with TcpProxy(smacks_server.host, smacks_server.port) as proxy:
            manager, seen = await manager_on(proxy, jid, "pw-1", tmp_path)
            session = manager.session
            assert session is not None
            # (slixmpp enables it after binding, so just after session_start)
            await until(lambda: xmpp_smacks.enabled(session.client), 5, "stream management enabled")
            await manager.create_hook(PUBSUB, node, "python_code", "seen.append(item['id'])")
            await asyncio.to_thread(smacks_publisher.publish, node, item_id="a1")
            await until(lambda: seen == ["a1"])
            sm_id = session.client.plugin["xep_0198"].sm_id
            logins, restored = [], []
            session.client.add_event_handler("session_start", lambda _e: logins.append(1))
            session.on_restored = lambda: restored.append(1)
            before = await _all_acked(manager)

            proxy.cut()  # RST both ways; the server keeps the session (hibernated)
            await until(lambda: manager.state == SessionState.RECONNECTING, 5)
            for item_id in ("b1", "b2", "b3"):  # while the stream is down: the server queues them
                await asyncio.to_thread(smacks_publisher.publish, node, item_id=item_id)
            await until(lambda: manager.state == SessionState.CONNECTED, 15, "resumed")
            await until(lambda: len(seen) >= 4)
            assert seen == ["a1", "b1", "b2", "b3"]
            assert session.resumptions == 1 and session.reconnects == 1 and manager.status()["resumptions"] == 1
            assert logins == [] and restored == []  # no new login, no catch-up
            assert session.client.plugin["xep_0198"].sm_id == sm_id
            after = await _all_acked(manager)
            assert after.seq == before.seq  # not one request sent to restore the stream
            assert after.handled == before.handled + 3  # the three items, each once
            await asyncio.to_thread(smacks_publisher.publish, node, item_id="c1")
            await until(lambda: len(seen) >= 5)
            await asyncio.sleep(0.3)
            assert seen == ["a1", "b1", "b2", "b3", "c1"]
            await manager.disconnect()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            assert others == [], others

    run(main)
    gc.collect()
    assert "Task was destroyed" not in caplog.text


def test_a_stream_that_cannot_resume_logs_in_again_and_catches_up(smacks_server, smacks_publisher, tmp_path):
    jid = new_user(smacks_server)
    node = f"sm{time.monotonic_ns()}"
    smacks_publisher.create_node(node)

    async def main() -> None:
        with TcpProxy(smacks_server.host, smacks_server.port) as proxy:
            manager, seen = await manager_on(proxy, jid, "pw-1", tmp_path)
            session = manager.session
            assert session is not None
            await manager.create_hook(PUBSUB, node, "python_code", "seen.append(item['id'])")
            await asyncio.to_thread(smacks_publisher.publish, node, item_id="a1")
            await until(lambda: seen == ["a1"])
            restored: list[int] = []
            restore = session.on_restored
            assert restore is not None

            def counted() -> None:
                restored.append(1)
                restore()

            session.on_restored = counted
            proxy.block()
            await until(lambda: manager.state == SessionState.RECONNECTING, 5)
            await asyncio.to_thread(smacks_publisher.publish, node, item_id="b1")
            await asyncio.sleep(smacks_server.hibernation + 1)  # the server drops the hibernated session
            proxy.unblock()
            await until(lambda: manager.state == SessionState.CONNECTED, 40, "logged in again")
            await until(lambda: len(seen) >= 2)
            assert seen == ["a1", "b1"]  # by catch-up
            assert restored == [1] and session.resumptions == 0 and session.reconnects == 1
            await manager.disconnect()

    run(main)


def test_a_silent_dead_link_is_noticed_within_15_s(smacks_server, smacks_publisher, tmp_path):
    jid = new_user(smacks_server)
    node = f"sm{time.monotonic_ns()}"
    smacks_publisher.create_node(node)

    async def main() -> None:
        with TcpProxy(smacks_server.host, smacks_server.port) as proxy:
            manager, seen = await manager_on(proxy, jid, "pw-1", tmp_path)
            session = manager.session
            assert session is not None
            await until(lambda: xmpp_smacks.enabled(session.client), 5, "stream management enabled")
            await manager.create_hook(PUBSUB, node, "python_code", "seen.append(item['id'])")
            proxy.reset_traffic()
            assert await xmpp_smacks.ack(session.client, 5)
            one_round = proxy.traffic()
            assert one_round.to_server + one_round.to_client < 100, one_round

            proxy.delay = 3600.0  # every byte from now on is held an hour: no RST, silence
            took = await until(lambda: manager.state != SessionState.CONNECTED, 20, "the dead link noticed")
            assert took <= 15, took
            await asyncio.to_thread(smacks_publisher.publish, node, item_id="b1")
            proxy.delay = 0.0
            proxy.cut()  # (the held bytes and the stuck attempt go)
            await until(lambda: manager.state == SessionState.CONNECTED, 40, "back")
            await until(lambda: seen == ["b1"])
            print(f"dead link noticed in {took:.1f} s; one <r/>/<a/> round: {one_round}")
            await manager.disconnect()

    run(main)


# ---------------------------------------------------------------- certificate wording (pure)


def _verify_error(code: int, message: str) -> Exception:
    import ssl

    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}")
    error.verify_code, error.verify_message = code, message
    return error


@pytest.mark.parametrize(
    ("code", "message", "ca_file", "names", "expected", "absent"),
    [
        (62, "Hostname mismatch, certificate is not valid for 'example.org'.", "ca.pem", ["xmpp.example.net"],
         "is for xmpp.example.net, not example.org", "--ca-file PEM"),
        (62, "Hostname mismatch, certificate is not valid for 'example.org'.", None, None,
         "is not valid for example.org (Hostname mismatch", "--ca-file PEM"),
        (10, "certificate has expired", "ca.pem", None, "has expired: renew it", "--ca-file"),
        (9, "certificate is not yet valid", None, None, "check this machine's clock", "--ca-file"),
        (18, "self-signed certificate", None, None, "is self-signed (self-signed certificate)", None),
        (20, "unable to get local issuer certificate", None, None, "a CA that the CAs this machine trusts", None),
        (20, "unable to get local issuer certificate", "mine.pem", None, "the CA of --ca-file mine.pem", None),
        (23, "certificate revoked", None, None, "is not trusted (certificate revoked)", None),
    ],
)
def test_certificate_problem_wording(code, message, ca_file, names, expected, absent):
    from pubsub_hook_magic.xmpp_tls import certificate_problem

    text = certificate_problem(_verify_error(code, message), "example.org", ca_file=ca_file, names=names)
    assert expected in text, text
    if absent:
        assert absent not in text, text
    if code in (18, 20):
        assert "--ca-file PEM" in text


def test_certificate_problem_of_something_else_than_a_verify_error():
    from pubsub_hook_magic.xmpp_tls import certificate_problem

    assert "not trusted (handshake failure)" in certificate_problem(OSError("handshake failure"), "example.org")
