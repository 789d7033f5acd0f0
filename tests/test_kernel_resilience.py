"""Surviving a server that dies mid-stream: reconnection, and hooks that keep firing."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Iterator

import pytest

from pubsub_hook_magic.testing.server import TestServer

from .conftest import PASSWORDS, connect_line
from .faults import TcpProxy
from .support import Publisher

pytestmark = pytest.mark.kernel


@pytest.fixture
def file_server() -> Iterator[TestServer]:
    """A server with file storage: nodes and subscriptions survive a restart."""
    with TestServer(storage="file") as srv:
        for user, password in PASSWORDS.items():
            srv.register(user, password)
        yield srv


def connect(kernel, srv):
    kernel.run(
        f"%hook connect alice@localhost --host {srv.host} --port {srv.port} --password-env ALICE_PW --no-tls"
    )


def status(kernel) -> str:
    return kernel.run("%hook status").stdout


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_hooks_keep_firing_after_the_server_restarts(kernel, file_server, how):
    pub = Publisher("admin@localhost/pub", PASSWORDS["admin"], file_server.host, file_server.port)
    pub.create_node("restart")
    connect(kernel, file_server)
    kernel.run("seen = []")
    kernel.run('%hook create -s pubsub.localhost -n restart -t python_code seen.append(item["id"])')
    pub.publish("restart", item_id="before")
    kernel.wait_for("seen", lambda v: v == ["before"])
    pub.close()

    getattr(file_server, how)()
    deadline = time.monotonic() + 10
    while "reconnecting" not in status(kernel):
        assert time.monotonic() < deadline, status(kernel)
        time.sleep(0.1)
    assert "reconnecting" in kernel.usage_error("%hook create -s pubsub.localhost -n restart -t python_code pass")
    file_server.restart()
    deadline = time.monotonic() + 20
    while not status(kernel).startswith("connected"):
        assert time.monotonic() < deadline, status(kernel)
        time.sleep(0.2)
    assert "1 reconnection(s)" in status(kernel)

    pub = Publisher("admin@localhost/pub", PASSWORDS["admin"], file_server.host, file_server.port)
    try:
        pub.publish("restart", item_id="after")
        assert kernel.wait_for("seen", lambda v: len(v) >= 2) == ["before", "after"]
    finally:
        pub.close()


def wait_status(kernel, word: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = status(kernel)
        if text.startswith(word) or f"\n{word}" in text:
            return text
        assert time.monotonic() < deadline, text
        time.sleep(0.1)


def test_a_dropped_connection_reconnects_and_runs_what_was_missed(kernel, server, publisher, node):
    proxy = TcpProxy(server.host, server.port)
    try:
        kernel.run(f"%hook connect alice@localhost --host 127.0.0.1 --port {proxy.port} --password-env ALICE_PW --no-tls")
        kernel.run("seen = []")
        kernel.run(f'%hook create -s pubsub.localhost -n {node} -t python_code seen.append(item["id"])')
        publisher.publish(node, item_id="a1")
        kernel.wait_for("seen", lambda v: v == ["a1"])
        proxy.block()  # the network goes away; the server stays up
        wait_status(kernel, "reconnecting")
        for item_id in ("b1", "b2", "b3"):
            publisher.publish(node, item_id=item_id)
        proxy.unblock()
        wait_status(kernel, "connected")
        assert kernel.wait_for("seen", lambda v: len(v) >= 4) == ["a1", "b1", "b2", "b3"]
        publisher.publish(node, item_id="c1")
        assert kernel.wait_for("seen", lambda v: len(v) >= 5) == ["a1", "b1", "b2", "b3", "c1"]
        time.sleep(0.3)
        assert kernel.eval("len(seen)") == 5
    finally:
        proxy.close()


def test_a_kernel_restart_catches_up_exactly_the_missed_items_in_order(kernel_factory, server, publisher, node, tmp_path):
    out = tmp_path / "ran.txt"
    hook = tmp_path / "record_hook.py"
    hook.write_text(
        f"def hook(host, client, item):\n    with open({str(out)!r}, 'a') as f:\n        f.write(item['id'] + '\\n')\n"
    )
    lines = lambda: out.read_text().split() if out.exists() else []  # noqa: E731
    first = kernel_factory()
    first.run(connect_line(server))
    first.run(f"%hook create -s pubsub.localhost -n {node} -t python_file -P {hook}")
    for i in range(3):
        publisher.publish(node, item_id=f"before{i}")
    wait_until(lambda: len(lines()) == 3)
    first.close()  # a graceful shutdown
    missed = [publisher.publish(node, item_id=f"missed{i}") for i in range(5)]
    second = kernel_factory()
    second.run(connect_line(server))
    wait_until(lambda: len(lines()) >= 8)
    publisher.publish(node, item_id="after")
    wait_until(lambda: len(lines()) >= 9)
    time.sleep(0.3)
    assert lines() == [f"before{i}" for i in range(3)] + missed + ["after"]
    [summary] = json.loads(second.run("%hook list -O json").stdout)
    assert [t["kind"] for t in summary["recent"]] == ["catch-up"] * 5 + ["live"]


def test_a_node_that_kept_fewer_items_reports_the_gap(kernel_factory, server, publisher):
    node = f"small{time.monotonic_ns()}"
    publisher.create_node(node, max_items=3)
    first = kernel_factory()
    first.run(connect_line(server))
    first.run(f"%hook create -s pubsub.localhost -n {node} -t python_code -P pass")
    first.run(f"%hook create -s pubsub.localhost -n {node} -t python_code -P --no-catch-up x = 1")
    publisher.publish(node, item_id="seen0")
    time.sleep(0.5)
    first.close()
    for i in range(6):
        publisher.publish(node, item_id=f"m{i}")
    second = kernel_factory()
    second.run(connect_line(server))
    time.sleep(1.0)
    by_arg = {h["arg"]: h for h in json.loads(second.run("%hook list -O json").stdout)}
    caught = by_arg["pass"]
    assert caught["gaps"] == 1 and caught["triggers"] == 3
    assert [t["item_id"] for t in caught["recent"] if t["outcome"] == "ok"] == ["m3", "m4", "m5"]
    [gap] = [t for t in caught["recent"] if t["outcome"] == "gap"]
    assert "seen0" in gap["error"] and "lost" in gap["error"]
    assert by_arg["x = 1"]["triggers"] == 0  # --no-catch-up


def test_a_changed_password_stops_the_retries_with_a_clear_message(kernel, file_server):
    import subprocess

    proxy = TcpProxy(file_server.host, file_server.port)
    try:
        kernel.run(f"%hook connect alice@localhost --host 127.0.0.1 --port {proxy.port} --password-env ALICE_PW --no-tls")
        cfg = str(file_server.config_path)
        subprocess.run(["prosodyctl", "--config", cfg, "deluser", "alice@localhost"], check=True, capture_output=True)
        file_server.register("alice", "a-new-password")
        proxy.cut()
        text = wait_status(kernel, "failed")
        assert "password may have changed" in text
        time.sleep(1.5)
        assert status(kernel).startswith("failed")  # no retry loop
        kernel.run("%hook disconnect")
    finally:
        proxy.close()


def test_sigkill_mid_stream_loses_nothing_and_runs_each_item_once(kernel, file_server):
    pub = Publisher("admin@localhost/pub", PASSWORDS["admin"], file_server.host, file_server.port)
    pub.create_node("stream", max_items=2000)
    connect(kernel, file_server)
    kernel.run("got = []; temp = []")
    kernel.run('%hook create -s pubsub.localhost -n stream -t python_code -P got.append(item["id"])')
    kernel.run('%hook create -s pubsub.localhost -n stream -t python_code temp.append(item["id"])')
    ids = [f"s{i:04d}" for i in range(1000)]
    pending = list(ids)
    killed = False
    while pending:
        batch, pending = pending[:25], pending[25:]
        try:
            publish_batch(pub, "stream", batch)
        except Exception:  # noqa: BLE001 - the server died under us: publish these again
            pending = batch + pending
            pub.close()
            if not killed:
                raise
            file_server.restart()
            pub = Publisher("admin@localhost/pub", PASSWORDS["admin"], file_server.host, file_server.port)
            continue
        if not killed and len(pending) <= 600:
            killed = True
            file_server.kill()
    pub.close()
    got = kernel.wait_for("len(got)", lambda v: v >= 1000, timeout=60)
    time.sleep(1.0)
    got = kernel.eval("got")
    assert len(got) == 1000 and set(got) == set(ids)
    temp = kernel.eval("temp")
    assert temp and temp[-1] == "s0999"  # the temporary hook kept firing after the restart


def publish_batch(pub, node, batch):
    from slixmpp.xmlstream import ET

    async def run():
        xep = pub.client.plugin["xep_0060"]
        await asyncio.gather(
            *(xep.publish("pubsub.localhost", node, id=i, payload=ET.fromstring(f'<n xmlns="urn:test">{i}</n>'), timeout=5) for i in batch)
        )

    pub.run(run(), 20)


def wait_until(predicate, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_after_a_kernel_crash_items_run_at_least_once_with_few_repeats(kernel_factory, server, publisher, tmp_path):
    node = f"crash{time.monotonic_ns()}"
    publisher.create_node(node, max_items=200)  # keeps every item of the test
    out = tmp_path / "ran.txt"
    hook = tmp_path / "slow_hook.py"
    hook.write_text(
        "import time\n"
        f"def hook(host, client, item):\n    time.sleep(0.02)\n    with open({str(out)!r}, 'a') as f:\n        f.write(item['id'] + '\\n')\n"
    )
    lines = lambda: out.read_text().split() if out.exists() else []  # noqa: E731
    first = kernel_factory()
    first.run(connect_line(server))
    first.run(f"%hook create -s pubsub.localhost -n {node} -t python_file -P {hook}")
    ids = publisher.publish_many(node, 60)
    wait_until(lambda: len(lines()) >= 20)
    first.crash()
    second = kernel_factory()
    second.run(connect_line(server))
    wait_until(lambda: set(lines()) >= set(ids), timeout=30)
    ran = lines()
    repeats = len(ran) - len(set(ran))
    assert repeats <= 3, (repeats, ran)  # only the items in flight at the crash


def test_a_hook_stuck_in_a_loop_is_stopped_at_the_configured_limit(connected, publisher, node):
    connected.run("%config HookMagics.time_limit = 0.5")
    connected.run("done = []")
    connected.run(
        f"%%hook create -s pubsub.localhost -n {node}\n"
        "if item['id'] == 'stuck':\n    while True:\n        pass\n"
        "done.append(item['id'])\n"
    )
    connected.run("other = []")
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code other.append(item['id'])")
    for item_id in ("a", "stuck", "b"):
        publisher.publish(node, item_id=item_id)
    assert connected.wait_for("done", lambda v: v == ["a", "b"])
    assert connected.eval("other") == ["a", "stuck", "b"]
    hooks = json.loads(connected.run("%hook list -O json").stdout)
    [stuck] = [h for h in hooks if "while True" in h["arg"]]
    [timeout] = [t for t in stuck["recent"] if t["outcome"] == "timeout"]
    assert timeout["item_id"] == "stuck" and "time limit (0.5 s)" in timeout["error"]
