"""The private ejabberd of pubsub_hook_magic.testing.ejabberd: its life cycle and files.

What it answers to clients (beside Prosody's Debian profile) is in test_testing_server.py,
on the ``debian_server`` fixture.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import slixmpp

from pubsub_hook_magic.testing.ejabberd import EJABBERDCTL, EjabberdServer

from .support import NodeOwner

REPO = Path(__file__).resolve().parent.parent



@pytest.fixture(autouse=True)
def _ejabberd_installed() -> None:
    """Never skipped: without ejabberd these tests fail, saying how to install it."""
    if not Path(EJABBERDCTL).exists():
        pytest.fail("ejabberd is not installed: run scripts/setup.sh, or apt-get install ejabberd")


def _processes_of(data_dir: Path) -> list[str]:
    """Command lines of the processes still naming the data dir (ejabberdctl, beam)."""
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(data_dir) in line and "ps -eo" not in line]


def _features_before_tls(srv: EjabberdServer) -> str:
    """The first <stream:features/> the server sends on a plain TCP connection."""
    with socket.create_connection((srv.host, srv.port), timeout=5) as sock:
        sock.sendall(b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' "
                     b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
        data = b""
        while b"</stream:features>" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.decode()


def test_life_cycle_files_and_restart(tmp_path: Path):
    srv = EjabberdServer(data_dir=tmp_path / "ej")
    assert not srv.running and srv.pid is None and srv.kind == "ejabberd"
    try:
        srv.start()
        print(f"ejabberd started in {srv.start_seconds:.2f} s")
        assert srv.running and srv.start_seconds is not None and srv.start_seconds < 30
        assert srv.host == "127.0.0.1" and srv.domain == "localhost" and srv.pubsub == "pubsub.localhost"
        # The pid is the Erlang VM's, running as the current user (not 'ejabberd').
        with open(f"/proc/{srv.pid}/cmdline", "rb") as f:
            assert b"beam" in f.read()
        assert os.stat(f"/proc/{srv.pid}").st_uid == os.getuid()
        # Debian's settings; loopback c2s only; no epmd for this node.
        cfg = srv.config_path.read_text()
        assert cfg.count("module: ejabberd_c2s") == 1 and cfg.count("    port: ") == 1
        for line in (f"port: {srv.port}", 'ip: "127.0.0.1"', "starttls_required: true",
                     "rate: 3000", "burst_size: 20000", "max_user_sessions: 10", "mod_stream_mgmt:",
                     "access_createnode: pubsub_createnode", "mod_caps: {}", "mod_ping: {}"):
            assert line in cfg, line
        for absent in ("ejabberd_http", "ejabberd_s2s_in", "mod_mqtt", "ejabberd_stun", "send_last_published_item"):
            assert absent not in cfg, absent
        assert f"ERL_DIST_PORT={srv.dist_port}" in srv.ctl_config_path.read_text()
        assert srv.ca_path is not None and srv.ca_path.is_file()
        assert "Invalid certificate" not in srv.log_path.read_text()

        jid = srv.register("alice", "pw1")
        assert jid == "alice@localhost"
        assert srv.register("alice", "pw2") == jid  # again: resets the password
        bob = NodeOwner("alice@localhost", "pw2", srv.host, srv.port, ca_file=srv.ca_path)
        try:
            # Every local user may create nodes on pubsub.localhost (pubsub_createnode: local).
            bob.create_node("kept", srv.pubsub)
            bob.publish("kept", "before", id="k1")
        finally:
            bob.close()

        port, node = srv.port, srv.node
        started = time.monotonic()
        srv.stop()
        print(f"ejabberd stopped in {time.monotonic() - started:.2f} s")
        assert not srv.running and srv.pid is None
        assert "SIGTERM received" in srv.log_tail(200)
        assert not _processes_of(srv.data_dir), _processes_of(srv.data_dir)
        with pytest.raises(OSError):
            socket.create_connection((srv.host, port), timeout=1).close()
        srv.start()
        assert srv.running and srv.port == port and srv.node == node
        print(f"ejabberd restarted in {srv.start_seconds:.2f} s")
        again = NodeOwner("alice@localhost", "pw2", srv.host, srv.port, ca_file=srv.ca_path)
        try:  # Mnesia kept the account, the node and its item
            assert [i for i, _ in again.get_items("kept", srv.pubsub)] == ["k1"]
        finally:
            again.close()

        # SIGKILL: the node comes back on the same port (what a clean stop wrote is kept;
        # the last writes before a kill may be lost, as on a real server).
        srv.kill()
        assert not srv.running and not _processes_of(srv.data_dir)
        srv.restart()
        assert srv.running and srv.port == port
        NodeOwner("alice@localhost", "pw2", srv.host, srv.port, ca_file=srv.ca_path).close()
        srv.stop()
        with pytest.raises(RuntimeError, match="running"):
            srv.register("bob", "pw")
    finally:
        srv.close()
    assert (tmp_path / "ej").is_dir()  # a given data dir is kept


def test_two_instances_side_by_side_and_temp_dirs_removed():
    with EjabberdServer() as one, EjabberdServer(profile="plain") as two:
        assert one.running and two.running
        assert one.port != two.port and one.node != two.node and one.dist_port != two.dist_port
        dirs = (one.data_dir, two.data_dir)
        # The plain profile: no shaper, no TLS, plaintext PLAIN login.
        assert two.ca_path is None and "starttls_required" not in two.config_path.read_text()
        two.register("alice", "pw")
        alice = NodeOwner("alice@localhost", "pw", two.host, two.port)
        try:
            assert not any("starttls" in f for f in alice.features_xml)
            alice.create_node("plainnode", two.pubsub)
        finally:
            alice.close()
        # The Debian one offers no login before STARTTLS (required), the plain one does.
        assert "<required/>" in _features_before_tls(one) and "mechanisms" not in _features_before_tls(one)
        assert "PLAIN" in _features_before_tls(two)
    assert not any(d.exists() for d in dirs)


def test_profile_checks():
    with pytest.raises(ValueError, match="requires TLS"):
        EjabberdServer(profile="debian", tls=False)
    with pytest.raises(ValueError, match="profile"):
        EjabberdServer(profile="ubuntu")
    with pytest.raises(ValueError, match="storage"):
        EjabberdServer(storage="sqlite")


def test_cli_runs_until_sigterm(tmp_path: Path):
    env_file = tmp_path / "xmpp.env"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pubsub_hook_magic.testing.ejabberd", "--user", "alice:alicepw",
         "--env-file", str(env_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not env_file.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "env file never appeared"
            time.sleep(0.05)
        values = dict(line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines())
        assert values["XMPP_TEST_ALICE_JID"] == "alice@localhost"
        data_dir, ca_file = Path(values["XMPP_TEST_DATA_DIR"]), values["XMPP_TEST_CA_FILE"]
        alice = NodeOwner("alice@localhost", "alicepw", "127.0.0.1", int(values["XMPP_TEST_PORT"]), ca_file=ca_file)
        alice.close()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert not env_file.exists() and not data_dir.exists()
        assert not _processes_of(data_dir)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_crashed_start_says_why(tmp_path: Path):
    srv = EjabberdServer(data_dir=tmp_path / "bad")
    try:
        srv._write_config()
        # A config ejabberd cannot read: the start fails at once, with its log.
        original = srv._config_lines
        srv._config_lines = lambda: [*original(), "modules: [this is not: valid"]  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="exited with code"):
            srv.start(timeout=60)
        assert not srv.running
    finally:
        srv.close()


def test_slixmpp_refuses_an_untrusted_ejabberd(tmp_path: Path):
    """Without the CA (system trust store only), the certificate is refused."""
    import asyncio

    with EjabberdServer() as srv:
        srv.register("alice", "pw")

        async def login() -> str:
            client = slixmpp.ClientXMPP("alice@localhost", "pw", loop=asyncio.get_running_loop())
            client.enable_direct_tls = False
            failed = asyncio.get_running_loop().create_future()
            client.add_event_handler("ssl_invalid_chain",
                                     lambda e: failed.done() or failed.set_result(getattr(e, "verify_message", str(e))))
            client.connect(srv.host, srv.port)
            try:
                return await asyncio.wait_for(failed, 15)
            finally:
                client.abort()
                task = client._run_out_filters
                if task is not None:
                    task.cancel()

        reason = asyncio.run(login())
        print(f"untrusted: {reason}")
        assert "certificate" in reason
