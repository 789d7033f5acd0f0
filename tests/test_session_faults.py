"""Faults of the XMPP session against real servers: a failed session connected again,
resource conflicts, stream management (XEP-0198) resumption, a resumption the server
refuses, a silent dead link, and refused certificates. No mock: private servers on
loopback and the fault proxy.

The session's faults run on Prosody 0.12 and on ejabberd 23.01 as Debian ships them (the
module-scoped ``debian_server`` fixture: rate limits, XEP-0198, STARTTLS verified with
``srv.ca_path``); each test uses accounts (so resources) and node names of its own. The
certificate refusals run on private Prosody servers presenting certificates made by
:mod:`pubsub_hook_magic.testing.certs` (what is refused, and why, is the client's
verdict: the server only presents the file).

Where the two servers differ, the tests say so: a resumption refused needs the server
to forget the lost stream's session, which ejabberd does on ``ejabberdctl kick_session``
and Debian's Prosody only after its hibernation time (600 s; here a server of the test's
own keeps them 2 s: ``TestServer(smacks_hibernation_time=2)``).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pubsub_hook_magic import xmpp_smacks
from pubsub_hook_magic.hooks import HookError
from pubsub_hook_magic.manager import HookManager
from pubsub_hook_magic.xmpp_session import SessionError, XmppSession
from pubsub_hook_magic.states import SessionState
from pubsub_hook_magic.testing import certs
from pubsub_hook_magic.testing.server import TestServer

from .conftest import PASSWORDS
from .faults import TcpProxy
from .support import NodeOwner

_users = itertools.count(1)
_nodes = itertools.count(1)
PUBSUB = "pubsub.localhost"


class CountingProxy(TcpProxy):
    """The fault proxy, counting the connections it accepted."""

    opened = 0

    def track(self, conn: Any, open_: bool) -> None:
        if open_:
            self.opened += 1
        super().track(conn, open_)


def new_user(srv: Any, password: str = "pw-1") -> str:
    """A fresh account (so a resource no other test meets); its bare JID."""
    return srv.register(f"fault{next(_users)}", password)


def fresh_node(owner: NodeOwner) -> str:
    name = f"fault{next(_nodes)}"
    owner.create_node(name)
    return name


async def until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> float:
    """Wait for ``predicate``; returns the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def run(main: Callable[[], Awaitable[None]], timeout: float = 60) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(timeout):
            await main()

    asyncio.run(bounded())


def via(proxy: TcpProxy, srv: Any) -> dict[str, Any]:
    """Connection options through ``proxy``: STARTTLS verified with the server's CA."""
    return {"host": "127.0.0.1", "port": proxy.port, "tls": True, "ca_file": str(srv.ca_path)}


async def manager_on(proxy: TcpProxy, srv: Any, jid: str, password: str, tmp_path: Path) -> tuple[HookManager, list[str]]:
    seen: list[str] = []
    manager = HookManager({"seen": seen}, data_dir=str(tmp_path / "store"))
    await manager.connect(jid, password, timeout=20, **via(proxy, srv))
    return manager, seen


async def publish(owner: NodeOwner, node: str, item_id: str) -> None:
    await asyncio.to_thread(owner.publish, node, item_id=item_id)


def session_gone(owner: NodeOwner, full_jid: str) -> bool:
    """Whether the server has forgotten ``full_jid``'s session: an iq to it is answered
    with an error (a hibernated XEP-0198 session queues it: no answer within 1 s)."""
    from slixmpp.exceptions import IqError, IqTimeout

    async def ask() -> bool:
        try:
            await owner.client.plugin["xep_0030"].get_info(jid=full_jid, timeout=1)
        except IqError:
            return True
        except IqTimeout:
            return False
        return False

    return owner.run(ask(), 10)


@pytest.fixture(scope="module")
def owner(debian_server) -> Iterator[NodeOwner]:
    """admin@localhost/faults: creates the module's nodes and publishes to them."""
    srv = debian_server
    owner = NodeOwner("admin@localhost/faults", PASSWORDS["admin"], srv.host, srv.port, ca_file=srv.ca_path)
    yield owner
    owner.close()


# ---------------------------------------------------------------- a failed session


def test_a_failed_session_reconnects_on_connect_and_keeps_its_hooks(debian_server, owner, tmp_path):
    srv = debian_server
    jid = new_user(srv, "old-pw")
    node, kept = fresh_node(owner), fresh_node(owner)

    async def main() -> None:
        with TcpProxy(srv.host, srv.port) as proxy:
            manager, seen = await manager_on(proxy, srv, jid, "old-pw", tmp_path)
            await manager.create_hook(PUBSUB, node, "python_code", "seen.append('t:' + item['id'])")
            await manager.create_hook(PUBSUB, kept, "python_code", "seen.append('p:' + item['id'])", persistent=True)
            await asyncio.to_thread(srv.register, jid.split("@")[0], "new-pw")  # the password changes on the server
            proxy.cut()
            await until(lambda: manager.state == SessionState.FAILED, what="failed")
            assert "password may have changed" in (manager.session.last_error or "")
            await publish(owner, node, "while-failed")

            with pytest.raises(HookError, match="disconnect first to log in as"):
                await manager.connect("someone@localhost", "x", **via(proxy, srv))
            with pytest.raises(SessionError, match="password may have changed"):
                await manager.connect(jid, "wrong", timeout=10, **via(proxy, srv))
            assert manager.state == SessionState.FAILED

            assert await manager.connect(jid, "new-pw", **via(proxy, srv)) == []
            assert manager.state == SessionState.CONNECTED and len(manager.hooks()) == 2
            await until(lambda: "t:while-failed" in seen, what="catch-up of the temporary hook")
            await publish(owner, node, "after")
            await publish(owner, kept, "after")
            await until(lambda: {"t:after", "p:after"} <= set(seen), what="both hooks run")
            assert seen.count("t:while-failed") == 1
            await manager.disconnect()

    run(main)


def test_percent_hook_connect_reconnects_a_failed_session(debian_server, owner, tmp_path, monkeypatch, capsys):
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    srv = debian_server
    jid = new_user(srv, "old-pw")
    node = fresh_node(owner)
    monkeypatch.setenv("PUBSUB_HOOK_DATA_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("FAULT_PW", "old-pw")
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance(history_length=0, hist_file=":memory:")
    shell.extension_manager.load_extension("pubsub_hook_magic")
    proxy = TcpProxy(srv.host, srv.port)
    try:
        line = f"connect {jid} --host 127.0.0.1 --port {proxy.port} --password-env FAULT_PW --ca-file {srv.ca_path}"
        shell.run_line_magic("hook", line)
        shell.user_ns["seen"] = []
        shell.run_line_magic("hook", f"create -s {PUBSUB} -n {node} -t python_code seen.append(item['id'])")
        with pytest.raises(UsageError, match="already connected"):
            shell.run_line_magic("hook", line)
        srv.register(jid.split("@")[0], "new-pw")
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
        owner.publish(node, item_id="x1")
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
def test_a_resource_conflict_fails_the_older_session_instead_of_a_kick_loop(debian_server, explicit):
    srv = debian_server
    jid = new_user(srv)

    async def main() -> None:
        with CountingProxy(srv.host, srv.port) as proxy:
            first = XmppSession(f"{jid}/res" if explicit else jid, "pw-1", on_item=lambda *a: None, **via(proxy, srv))
            await first.start(20)
            full = first.client.boundjid.full
            second = XmppSession(full, "pw-1", on_item=lambda *a: None, **via(proxy, srv))
            await second.start(20)
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


def test_starttls_is_verified_with_the_servers_ca(debian_server):
    """Accepted with ``ca_file=srv.ca_path``; refused without it (a private CA), saying so."""
    srv = debian_server
    jid = new_user(srv)

    async def main() -> None:
        session = XmppSession(jid, "pw-1", on_item=lambda *a: None, host=srv.host, port=srv.port,
                              tls=True, ca_file=str(srv.ca_path))
        await session.start(20)
        assert session.connected and "starttls" in session.client.features
        await session.stop()
        untrusted = XmppSession(jid, "pw-1", on_item=lambda *a: None, host=srv.host, port=srv.port, tls=True)
        with pytest.raises(SessionError, match="signed by a CA that the CAs this machine trusts does not include"):
            await untrusted.start(20)

    run(main, 45)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    """A CA, certificates for ``localhost`` signed by it (valid, expired), one for
    ``otherhost`` signed by it, and a second, unrelated CA: name -> directory/files."""
    d = tmp_path_factory.mktemp("pki")
    ca = certs.make_ca(d / "ca")
    certs.make_ca(d / "ca2", name="another test CA")
    certs.issue(ca, d, ["localhost"], name="good")
    certs.issue(ca, d, ["otherhost"], name="other")
    certs.issue(ca, d, ["localhost"], name="expired", expired=True)
    return {"dir": d, "ca": d / "ca" / "ca.crt", "ca2": d / "ca2" / "ca.crt"}


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
    certs_dir = tmp_path / "srv" / "certs"
    certs_dir.mkdir(parents=True)
    if cert != "self":  # (else the server makes its own self-signed one)
        shutil.copy(pki["dir"] / f"{cert}.crt", certs_dir / "localhost.crt")
        shutil.copy(pki["dir"] / f"{cert}.key", certs_dir / "localhost.key")
    ca_file = str(pki[ca]) if ca else None

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


def test_a_short_cut_resumes_the_stream_without_login_or_catch_up(debian_server, owner, tmp_path, caplog):
    srv = debian_server
    jid = new_user(srv)
    node = fresh_node(owner)
    caplog.set_level(logging.ERROR, logger="asyncio")

    async def main() -> None:
        with TcpProxy(srv.host, srv.port) as proxy:
            manager, seen = await manager_on(proxy, srv, jid, "pw-1", tmp_path)
            session = manager.session
            assert session is not None
            # (slixmpp enables it after binding, so just after session_start)
            await until(lambda: xmpp_smacks.enabled(session.client), 5, "stream management enabled")
            await manager.create_hook(PUBSUB, node, "python_code", "seen.append(item['id'])")
            await publish(owner, node, "a1")
            await until(lambda: seen == ["a1"])
            sm_id = session.client.plugin["xep_0198"].sm_id
            logins, restored = [], []
            session.client.add_event_handler("session_start", lambda _e: logins.append(1))
            session.on_restored = lambda: restored.append(1)
            before = await _all_acked(manager)

            proxy.cut()  # RST both ways; the server keeps the session (hibernated)
            await until(lambda: manager.state == SessionState.RECONNECTING, 5)
            for item_id in ("b1", "b2", "b3"):  # while the stream is down: the server queues them
                await publish(owner, node, item_id)
            await until(lambda: manager.state == SessionState.CONNECTED, 15, "resumed")
            await until(lambda: len(seen) >= 4)
            assert seen == ["a1", "b1", "b2", "b3"]
            assert session.resumptions == 1 and session.reconnects == 1 and manager.status()["resumptions"] == 1
            assert logins == [] and restored == []  # no new login, no catch-up
            assert session.client.plugin["xep_0198"].sm_id == sm_id
            after = await _all_acked(manager)
            assert after.seq == before.seq  # not one request sent to restore the stream
            assert after.handled == before.handled + 3  # the three items, each once
            await publish(owner, node, "c1")
            await until(lambda: len(seen) >= 5)
            await asyncio.sleep(0.3)
            assert seen == ["a1", "b1", "b2", "b3", "c1"]
            await manager.disconnect()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            assert others == [], others

    run(main)
    gc.collect()
    assert "Task was destroyed" not in caplog.text


def _cannot_resume(srv: Any, owner: NodeOwner, tmp_path: Path, forget: Callable[[str], None] | None) -> None:
    """A stream lost, an item published, the server forgets the session (``forget(full
    JID)``, or its hibernation time): back, the session logs in again and catches up."""
    jid = new_user(srv)
    node = fresh_node(owner)

    async def main() -> None:
        with TcpProxy(srv.host, srv.port) as proxy:
            manager, seen = await manager_on(proxy, srv, jid, "pw-1", tmp_path)
            session = manager.session
            assert session is not None
            await until(lambda: xmpp_smacks.enabled(session.client), 5, "stream management enabled")
            await manager.create_hook(PUBSUB, node, "python_code", "seen.append(item['id'])")
            await publish(owner, node, "a1")
            await until(lambda: seen == ["a1"])
            full = session.client.boundjid.full
            restored: list[int] = []
            restore = session.on_restored
            assert restore is not None

            def counted() -> None:
                restored.append(1)
                restore()

            session.on_restored = counted
            proxy.block()
            await until(lambda: manager.state == SessionState.RECONNECTING, 5)
            await publish(owner, node, "b1")
            if forget is not None:
                await asyncio.to_thread(forget, full)
            took = time.monotonic()
            while not await asyncio.to_thread(session_gone, owner, full):
                assert time.monotonic() - took < 15, "the server still keeps the lost stream's session"
            proxy.unblock()
            await until(lambda: manager.state == SessionState.CONNECTED, 40, "logged in again")
            await until(lambda: len(seen) >= 2)
            await asyncio.sleep(0.3)
            assert seen == ["a1", "b1"]  # by catch-up
            assert restored == [1] and session.resumptions == 0 and session.reconnects == 1
            await manager.disconnect()

    run(main)


def test_a_stream_that_cannot_resume_logs_in_again_and_catches_up(debian_server, owner, tmp_path):
    if debian_server.kind == "ejabberd":

        def kick(full: str) -> None:
            user, _, resource = full.partition("/")
            res = debian_server.ctl("kick_session", user.split("@")[0], debian_server.domain, resource, "test")
            assert res.returncode == 0, res.stdout + res.stderr

        _cannot_resume(debian_server, owner, tmp_path, kick)
        return
    # Debian's Prosody keeps a lost stream's session 600 s and has no command that ends
    # one: a server of this test's own keeps them 2 s.
    with TestServer(storage="memory", profile="debian", smacks_hibernation_time=2) as srv:
        srv.register("admin", PASSWORDS["admin"])
        own = NodeOwner("admin@localhost/faults", PASSWORDS["admin"], srv.host, srv.port, ca_file=srv.ca_path)
        try:
            _cannot_resume(srv, own, tmp_path, None)
        finally:
            own.close()


def test_a_silent_dead_link_is_noticed_within_15_s(debian_server, owner, tmp_path):
    srv = debian_server
    jid = new_user(srv)
    node = fresh_node(owner)

    async def main() -> None:
        with TcpProxy(srv.host, srv.port) as proxy:
            manager, seen = await manager_on(proxy, srv, jid, "pw-1", tmp_path)
            session = manager.session
            assert session is not None
            await until(lambda: xmpp_smacks.enabled(session.client), 5, "stream management enabled")
            await manager.create_hook(PUBSUB, node, "python_code", "seen.append(item['id'])")
            await asyncio.sleep(0.3)  # (the server's own ack requests of the subscription)
            proxy.reset_traffic()
            assert await xmpp_smacks.ack(session.client, 5)
            await asyncio.sleep(0.05)
            one_round = proxy.traffic()
            # 59 bytes of XML, and two TLS 1.3 records of 22 bytes each
            assert one_round.to_server + one_round.to_client < 150, one_round

            proxy.delay = 3600.0  # every byte from now on is held an hour: no RST, silence
            # (the figure is printed; the time is the probe's policy, asserted without a clock)
            assert xmpp_smacks.PROBE_INTERVAL + xmpp_smacks.PROBE_DEADLINE <= 15
            took = await until(lambda: manager.state != SessionState.CONNECTED, 30, "the dead link noticed")
            await publish(owner, node, "b1")
            proxy.delay = 0.0
            proxy.cut()  # (the held bytes and the stuck attempt go)
            await until(lambda: manager.state == SessionState.CONNECTED, 40, "back")
            await until(lambda: seen == ["b1"])
            print(f"{srv.kind}: dead link noticed in {took:.1f} s; one <r/>/<a/> round: {one_round}")
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
        (19, "self-signed certificate in certificate chain", None, None, "a CA that the CAs this machine trusts",
         "is self-signed"),
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
    if code in (18, 19, 20):
        assert "--ca-file PEM" in text


def test_certificate_problem_of_something_else_than_a_verify_error():
    from pubsub_hook_magic.xmpp_tls import certificate_problem

    assert "not trusted (handshake failure)" in certificate_problem(OSError("handshake failure"), "example.org")
