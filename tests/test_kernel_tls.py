"""TLS is required and verified by default; --no-tls is explicit."""

from __future__ import annotations

import time
from typing import Iterator

import pytest

from pubsub_hook_magic.testing.server import TestServer

from .conftest import PASSWORDS

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TestServer]:
    with TestServer(storage="memory", tls=True) as srv:
        srv.register("alice", PASSWORDS["alice"])
        yield srv


def test_tls_with_a_trusted_certificate(kernel, tls_server):
    out = kernel.run(
        f"%hook connect alice@localhost --host 127.0.0.1 --port {tls_server.port} "
        f"--password-env ALICE_PW --ca-file {tls_server.cert_path}"
    ).stdout
    assert "Connected as alice@localhost" in out
    assert "no TLS" not in kernel.run("%hook status").stdout
    assert kernel.eval("get_ipython()._pubsub_hook_magics.manager.client.is_connected()")


def test_an_untrusted_certificate_is_refused(kernel, tls_server):
    start = time.monotonic()
    message = kernel.usage_error(
        f"%hook connect alice@localhost --host 127.0.0.1 --port {tls_server.port} --password-env ALICE_PW --timeout 10"
    )
    assert "certificate" in message, message
    assert time.monotonic() - start < 10


def test_a_plaintext_server_is_refused_unless_no_tls(kernel, server):
    message = kernel.usage_error(
        f"%hook connect alice@localhost --host 127.0.0.1 --port {server.port} --password-env ALICE_PW --timeout 10"
    )
    assert "TLS" in message and "--no-tls" in message, message
    assert "Not connected" in kernel.run("%hook status").stdout
