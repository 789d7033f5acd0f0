"""Surviving a server that dies mid-stream: reconnection, and hooks that keep firing."""

from __future__ import annotations

import time
from typing import Iterator

import pytest

from pubsub_hook_magic.testserver import TestServer

from .conftest import PASSWORDS
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
