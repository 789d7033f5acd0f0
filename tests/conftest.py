"""Fixtures: one private Prosody per test session, a publisher, a fresh kernel per test."""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

import pytest

from pubsub_hook_magic.testing.ejabberd import EJABBERDCTL, EjabberdServer
from pubsub_hook_magic.testing.server import TestServer

from .support import Kernel, Publisher, kernel_env

PASSWORDS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
_nodes = itertools.count(1)


@pytest.fixture(scope="session")
def server() -> Iterator[TestServer]:
    if shutil.which("prosody") is None:
        pytest.fail("Prosody is not installed: run .ci/run, or apt-get install prosody")
    with TestServer(storage="memory", autocreate=True) as srv:
        for user, password in PASSWORDS.items():
            srv.register(user, password)
        yield srv


@pytest.fixture(scope="module", params=["prosody", "ejabberd"])
def debian_server(request: pytest.FixtureRequest) -> Iterator[TestServer | EjabberdServer]:
    """A running private server with Debian's packaged defaults: Prosody 0.12
    (``TestServer(profile="debian")``) or ejabberd 23.01 (``EjabberdServer()``).

    Rate limits, XEP-0198, TLS required: log in over STARTTLS with ``ca_file=srv.ca_path``
    (``NodeOwner(..., ca_file=srv.ca_path)``, ``XmppSession(..., ca_file=...)``).
    Accounts ``admin``, ``alice``, ``bob`` with :data:`PASSWORDS`; ``srv.kind`` is
    ``"prosody"`` or ``"ejabberd"``.  Module-scoped (ejabberd takes about a second to
    start): use node names no other test of the module uses.
    """
    srv: TestServer | EjabberdServer
    if request.param == "prosody":
        if shutil.which("prosody") is None:
            pytest.fail("Prosody is not installed: run scripts/setup.sh, or apt-get install prosody")
        srv = TestServer(storage="memory", profile="debian")
    else:
        if not Path(EJABBERDCTL).exists():
            pytest.fail("ejabberd is not installed: run scripts/setup.sh, or apt-get install ejabberd")
        srv = EjabberdServer(profile="debian")
    with srv:
        for user, password in PASSWORDS.items():
            srv.register(user, password)
        yield srv


@pytest.fixture(scope="session")
def publisher(server: TestServer) -> Iterator[Publisher]:
    """admin@localhost: owns nodes on pubsub.localhost and publishes to them."""
    pub = Publisher("admin@localhost/publisher", PASSWORDS["admin"], server.host, server.port)
    yield pub
    pub.close()


@pytest.fixture
def node(publisher: Publisher) -> str:
    """A fresh node on pubsub.localhost, with a name no other test uses."""
    name = f"node{next(_nodes)}"
    publisher.create_node(name)
    return name


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    return path


@pytest.fixture
def kernel_factory(server: TestServer, data_dir: Path, tmp_path: Path) -> Iterator[Callable[[], Kernel]]:
    """Starts fresh IPython kernels (extension loaded, not connected), all sharing the
    test's store directory; shuts them down at the end."""
    started: list[Kernel] = []

    def start() -> Kernel:
        env = kernel_env(
            {
                "PUBSUB_HOOK_DATA_DIR": str(data_dir),
                "ALICE_PW": PASSWORDS["alice"],
                "BOB_PW": PASSWORDS["bob"],
                "ADMIN_PW": PASSWORDS["admin"],
                "XMPP_TEST_PORT": str(server.port),
            }
        )
        for name in ("XMPP_PASSWORD", "XMPP_JID", "XMPP_HOST", "XMPP_PORT"):
            env.pop(name, None)
        k = Kernel(env, cwd=str(tmp_path))
        started.append(k)
        k.run("%load_ext pubsub_hook_magic")
        return k

    yield start
    for k in started:
        k.close()


@pytest.fixture
def kernel(kernel_factory: Callable[[], Kernel]) -> Kernel:
    """A fresh IPython kernel with the extension loaded (not yet connected)."""
    return kernel_factory()


def connect_line(server: TestServer, user: str = "alice") -> str:
    return (
        f"%hook connect {user}@localhost --host {server.host} --port {server.port} "
        f"--password-env {user.upper()}_PW --no-tls"
    )


@pytest.fixture
def connected(kernel: Kernel, server: TestServer) -> Kernel:
    """The kernel, connected as alice@localhost."""
    out = kernel.run(connect_line(server)).stdout
    assert "Connected as alice@localhost" in out, out
    return kernel


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
