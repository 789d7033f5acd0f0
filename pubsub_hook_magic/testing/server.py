"""A private Prosody XMPP server on 127.0.0.1, for tests, benchmarks and the quickstart.

Standard library only; imports nothing from IPython or from the rest of the package.

    with TestServer() as srv:                     # memory storage, plaintext, free port
        jid = srv.register("alice", "pw")         # -> "alice@localhost"
        ...connect to (srv.host, srv.port), PubSub service srv.pubsub...

Each instance writes its own ``prosody.cfg.lua`` (absolute paths) into its data dir and
runs ``prosody --config CFG -F`` in the background.  ``storage="memory"`` keeps PubSub
and PEP in memory (fast, lost at restart); ``storage="file"`` keeps Prosody's default file
storage (nodes, items and subscriptions survive ``kill()`` + ``restart()``);
``storage="sqlite"`` keeps them in one SQLite database instead (Debian's ``lua-dbi-sqlite3``),
which stays fast as nodes grow (file storage rewrites a node's archive at each publish),
and lets PEP nodes keep up to 10,000 items as the service's do (soak runs). Accounts are
always in file storage so that ``prosodyctl register`` works, also while the server runs.

``profile="debian"`` runs Prosody as Debian's packaged ``/etc/prosody/prosody.cfg.lua``
(Prosody 0.12.3) does, in what clients meet:

* ``limits`` with Debian's own section, ``c2s = { rate = "10kb/s" }`` (no ``burst``: the
  epoll backend applies the rate with ``conn:setlimit`` as 10,000 B/s read from each
  client, and ignores bursts; see ``mod_limits.lua``); admins are limited too (no
  ``unlimited_jids``);
* ``smacks`` (XEP-0198 stream management and resumption, ``urn:xmpp:sm:3``);
* TLS required (``c2s_require_encryption = true``), SCRAM (``internal_hashed``), no
  PLAIN over plaintext; the certificate (``localhost`` and ``pubsub.localhost``) is
  signed by a private CA made for the instance (:mod:`.certs`): clients verify it with
  ``srv.ca_path`` (``XmppSession(ca_file=srv.ca_path)``);
* Debian's modules that need no other listener: disco, roster, saslauth, tls,
  blocklist, bookmarks, carbons, limits, pep, private, smacks, vcard4, vcard_legacy,
  csi_simple, ping, register (with ``allow_registration = false`` unless asked), time,
  uptime, version; ``offline`` stays on (Debian's), ``s2s`` off;
* Nagle's algorithm on and the stanza size limit at Prosody's default (Debian sets
  neither).

Like the default profile it listens on loopback only and adds the
``pubsub.localhost`` component (not in Debian's file) with the ``admins`` (and the
``node_creators``) as owners;
``storage`` applies as in the default profile.  ``profile="default"`` (plaintext unless
``tls=True``, no limits, no stream management) is unchanged.

Command line (runs until SIGTERM/SIGINT, then stops Prosody cleanly)::

    python -m pubsub_hook_magic.testing.server --user admin:pw --user alice:pw \
        [--storage file] [--env-file PATH] [--port N] [--data-dir DIR] [--tls] \
        [--node-creator alice@localhost]
"""

from __future__ import annotations

import argparse
import atexit
import collections
import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["TestServer", "main"]

PROSODY = os.environ.get("PROSODY_BIN", "prosody")
PROSODYCTL = os.environ.get("PROSODYCTL_BIN", "prosodyctl")

_STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL

# Every Prosody still running at interpreter exit is killed, so that a crashed test run
# does not leave servers behind (an orphan would keep its port and temp dir).
_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()


@atexit.register
def _kill_leftovers() -> None:
    with _live_lock:
        procs = list(_live)
        _live.clear()
    for proc in procs:
        if proc.poll() is None:
            try:
                proc.terminate()
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            except OSError:
                pass


def _lua_str(value) -> str:
    """A Lua double-quoted string literal."""
    s = str(value)
    s = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{s}"'


def _lua_list(values) -> str:
    return "{ " + "; ".join(_lua_str(v) for v in values) + " }"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_is_free(host: str, port: int) -> bool:
    # Same options as Prosody's listener (SO_REUSEADDR), so a socket of a just-stopped
    # Prosody in TIME_WAIT does not count as "in use".
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


class TestServer:
    """A private Prosody on 127.0.0.1: free c2s port, its own temp data dir.

    Parameters
    ----------
    storage:
        ``"memory"`` (PubSub/PEP nodes and items in memory: fast, lost at restart) or
        ``"file"`` (Prosody's default internal file storage: survives restart) or
        ``"sqlite"`` (PubSub and PEP in ``data/prosody.sqlite``: survives restart, needs
        ``lua-dbi-sqlite3``; PEP nodes may keep up to 10,000 items).
    port:
        c2s port; default: a free port chosen once, kept across ``restart()``.
    data_dir:
        Directory for config, data, log (and certificates).  Default: a new temp dir,
        removed by ``close()`` / ``__exit__``.  A given ``data_dir`` is never removed.
    admins:
        Bare JIDs that are Prosody admins (and so owners on ``pubsub.DOMAIN``: only
        they may create nodes there).  Default: ``admin@DOMAIN``.
    domain:
        The server's XMPP domain (its ``VirtualHost``), ``"localhost"`` by default: its
        accounts are ``USER@DOMAIN`` (:meth:`jid`, :meth:`register`), its PubSub
        component ``pubsub.DOMAIN`` (:attr:`pubsub`) and its certificates are made for
        those two names (``DOMAIN.crt``).  A second server with another domain
        (``TestServer(domain="example.org")``) runs beside the first, each on its port.
    tls:
        Enable ``mod_tls`` with a self-signed certificate for ``DOMAIN`` (generated
        with openssl into the data dir) so STARTTLS is offered.  Default: plaintext only.
        (``profile="debian"`` always has TLS, with a CA-signed certificate instead.)
    allow_registration:
        Allow in-band registration (XEP-0077), without rate limit.
    node_creators:
        Bare JIDs that may create nodes on ``pubsub.DOMAIN`` besides the ``admins``
        (the quickstart's alice: it is her tour).  Prosody 0.12's ``mod_pubsub`` lets
        only the component's admins create nodes (it has no other setting for it), so
        these are made admins of that component only, not of the server: they own
        every node there, as the admins do.  Default: none.
    autocreate:
        Let any user's first publish to a missing node on ``pubsub.DOMAIN`` create it
        (``autocreate_on_publish``), so that a tour can publish without admin rights.
    profile:
        ``"default"`` (the fast test server above) or ``"debian"`` (Debian's defaults:
        rate limits, stream management, TLS required with a private CA; see the module
        docstring).
    smacks_hibernation_time:
        ``profile="debian"`` only: seconds Prosody keeps the session of a lost XEP-0198
        stream for resumption (``mod_smacks``).  Default: Prosody's (and Debian's), 600 s;
        a few seconds let a test see a resumption refused after a longer outage.
    """

    __test__ = False  # not a pytest test class, despite the name

    domain = "localhost"
    pubsub = "pubsub.localhost"
    host = "127.0.0.1"
    kind = "prosody"

    def __init__(
        self,
        *,
        storage: str = "memory",
        port: int | None = None,
        data_dir: str | os.PathLike | None = None,
        admins=None,
        tls: bool = False,
        allow_registration: bool = False,
        autocreate: bool = False,
        profile: str = "default",
        smacks_hibernation_time: int | None = None,
        domain: str = "localhost",
        node_creators=(),
    ) -> None:
        if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", domain or ""):
            raise ValueError(f"domain must be a DNS name in lower case, not {domain!r}")
        self.domain = domain
        self.pubsub = f"pubsub.{domain}"
        if admins is None:
            admins = (f"admin@{domain}",)
        if storage not in ("memory", "file", "sqlite"):
            raise ValueError(f"storage must be 'memory', 'file' or 'sqlite', not {storage!r}")
        if profile not in ("default", "debian"):
            raise ValueError(f"profile must be 'default' or 'debian', not {profile!r}")
        self.profile = profile
        if smacks_hibernation_time is not None and profile != "debian":
            raise ValueError("smacks_hibernation_time needs profile='debian' (the one with mod_smacks)")
        self.smacks_hibernation_time = smacks_hibernation_time
        if isinstance(admins, str):
            admins = (admins,)
        self.storage = storage
        self.admins = tuple(admins)
        if isinstance(node_creators, str):
            node_creators = (node_creators,)
        self.node_creators = tuple(node_creators)
        self.tls = bool(tls) or profile == "debian"
        self.allow_registration = bool(allow_registration)
        self.autocreate = bool(autocreate)
        self.port: int = int(port) if port else free_port(self.host)
        self._owns_dir = data_dir is None
        if data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="pubsub-testserver-")).resolve()
        else:
            self.data_dir = Path(data_dir).resolve()
            self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.data_dir / "prosody.cfg.lua"
        self.log_path = self.data_dir / "prosody.log"
        self.console_path = self.data_dir / "prosody.console.log"  # stdout/stderr
        self.store_path = self.data_dir / "data"
        self.certs_dir = self.data_dir / "certs"
        # Where Prosody looks the domain's certificate up (only meaningful with TLS).
        self.cert_path = self.certs_dir / f"{self.domain}.crt"
        self.key_path = self.certs_dir / f"{self.domain}.key"
        self.ca_dir = self.data_dir / "ca"  # profile="debian": the private CA
        self._proc: subprocess.Popen | None = None
        self._closed = False

    # -- state ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def ca_path(self) -> Path | None:
        """The certificate a client should trust (its ``ca_file``), or None without TLS:
        the private CA's with ``profile="debian"``, the self-signed one with ``tls=True``."""
        if self.profile == "debian":
            return self.ca_dir / "ca.crt"
        return self.cert_path if self.tls else None

    def jid(self, user: str) -> str:
        return f"{user}@{self.domain}"

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        profile = "" if self.profile == "default" else f" profile={self.profile}"
        return (f"<TestServer {self.host}:{self.port} storage={self.storage} "
                f"tls={self.tls}{profile} {state} data_dir={str(self.data_dir)!r}>")

    # -- configuration -------------------------------------------------------------

    def _write_config(self) -> None:
        self.store_path.mkdir(parents=True, exist_ok=True)
        # The certificates dir must exist, or Prosody's log fills with errors.
        self.certs_dir.mkdir(parents=True, exist_ok=True)
        if self.profile == "debian":
            self._ensure_ca_certificate()
            lines = self._debian_config_lines()
        else:
            modules = ["roster", "saslauth", "disco", "pep", "ping", "register"]
            if self.tls:
                self._ensure_certificate()
                modules.append("tls")
            lines = self._config_lines(modules)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines), encoding="utf-8")
        os.replace(tmp, self.config_path)

    def _storage_config(self) -> str:
        """The config's storage lines for ``self.storage``."""
        if self.storage == "memory":
            return ('storage = { pubsub_data = "memory"; pubsub_nodes = "memory"; '
                    'pep = "memory"; pep_data = "memory" }')
        if self.storage == "sqlite":
            return ('storage = { pubsub_data = "sql"; pubsub_nodes = "sql"; '
                    'pep = "sql"; pep_data = "sql" }\n'
                    f'sql = {{ driver = "SQLite3"; database = {_lua_str(self.store_path / "prosody.sqlite")} }}\n'
                    "pep_max_items = 10000")
        return "-- storage: default internal (file) storage for everything"

    def _config_lines(self, modules: list[str]) -> list[str]:
        """``prosody.cfg.lua``, line by line."""
        return [
            "-- Generated by pubsub_hook_magic.testing.server; rewritten on every start.",
            "run_as_root = true",
            f"pidfile = {_lua_str(self.data_dir / 'prosody.pid')}",
            f"data_path = {_lua_str(self.store_path)}",
            f"certificates = {_lua_str(self.certs_dir)}",
            f"log = {{ info = {_lua_str(self.log_path)} }}",
            "",
            "-- Loopback only, c2s only.",
            'interfaces = { "127.0.0.1" }',
            'local_interfaces = { "127.0.0.1" }',
            f"c2s_ports = {{ {self.port} }}",
            "s2s_ports = { }",
            "component_ports = { }",
            "http_ports = { }",
            "https_ports = { }",
            "c2s_direct_tls_ports = { }",
            "s2s_direct_tls_ports = { }",
            "legacy_ssl_ports = { }",
            "network_settings = { nagle = false }",
            "",
            f"admins = {_lua_list(self.admins)}",
            f"modules_enabled = {_lua_list(modules)}",
            'modules_disabled = { "s2s"; "offline" }',
            "",
            "c2s_require_encryption = false",
            "s2s_require_encryption = false",
            "allow_unencrypted_plain_auth = true",
            'authentication = "internal_plain"',
            'default_storage = "internal"',
            self._storage_config(),
            f"allow_registration = {'true' if self.allow_registration else 'false'}",
            "min_seconds_between_registrations = 0",
            "-- Room for the 1 MB payloads of the hostile-input tests.",
            "c2s_stanza_size_limit = 4 * 1024 * 1024",
            "",
            f"VirtualHost {_lua_str(self.domain)}",
            "",
            f"Component {_lua_str(self.pubsub)} \"pubsub\"",
            "    pubsub_max_items = 10000",
            "    -- Say who published each item (Prosody's default hides it): the table shows it.",
            "    expose_publisher = true",
            f"    autocreate_on_publish = {'true' if self.autocreate else 'false'}",
            f"    admins = {_lua_list(self._pubsub_admins())}",
            "",
        ]

    def _pubsub_admins(self) -> tuple[str, ...]:
        """The owners of ``pubsub.DOMAIN``: the admins, then the node creators."""
        return tuple(dict.fromkeys((*self.admins, *self.node_creators)))

    #: Debian's ``modules_enabled`` less those needing s2s, HTTP or an admin socket.
    DEBIAN_MODULES = (
        "disco", "roster", "saslauth", "tls", "blocklist", "bookmarks", "carbons",
        "limits", "pep", "private", "smacks", "vcard4", "vcard_legacy", "csi_simple",
        "ping", "register", "time", "uptime", "version",
    )

    def _debian_config_lines(self) -> list[str]:
        """``prosody.cfg.lua`` of ``profile="debian"``, line by line."""
        return [
            "-- Generated by pubsub_hook_magic.testing.server (profile debian: mirrors",
            "-- Debian's /etc/prosody/prosody.cfg.lua of Prosody 0.12); rewritten on every start.",
            "run_as_root = true",
            f"pidfile = {_lua_str(self.data_dir / 'prosody.pid')}",
            f"data_path = {_lua_str(self.store_path)}",
            f"certificates = {_lua_str(self.certs_dir)}",
            f"log = {{ info = {_lua_str(self.log_path)} }}",
            "",
            "-- Loopback only, c2s only (Debian listens on every interface, s2s too).",
            'interfaces = { "127.0.0.1" }',
            'local_interfaces = { "127.0.0.1" }',
            f"c2s_ports = {{ {self.port} }}",
            "s2s_ports = { }",
            "component_ports = { }",
            "http_ports = { }",
            "https_ports = { }",
            "c2s_direct_tls_ports = { }",
            "s2s_direct_tls_ports = { }",
            "legacy_ssl_ports = { }",
            "",
            f"admins = {_lua_list(self.admins)}",
            f"modules_enabled = {_lua_list(self.DEBIAN_MODULES)}",
            'modules_disabled = { "s2s" }',
            "",
            "-- Debian's: rate limits (mod_limits), encryption, hashed passwords.",
            "limits = {",
            '    c2s = { rate = "10kb/s"; };',
            '    s2sin = { rate = "30kb/s"; };',
            "}",
            "c2s_require_encryption = true",
            "s2s_require_encryption = true",
            "s2s_secure_auth = true",
            "allow_unencrypted_plain_auth = false",
            'authentication = "internal_hashed"',
            'default_storage = "internal"',
            self._storage_config(),
            f"allow_registration = {'true' if self.allow_registration else 'false'}",
            "min_seconds_between_registrations = 0",
            *([] if self.smacks_hibernation_time is None
              else [f"smacks_hibernation_time = {int(self.smacks_hibernation_time)}"]),
            "",
            f"VirtualHost {_lua_str(self.domain)}",
            "",
            f"Component {_lua_str(self.pubsub)} \"pubsub\"",
            f"    autocreate_on_publish = {'true' if self.autocreate else 'false'}",
            f"    admins = {_lua_list(self._pubsub_admins())}",
            "",
        ]

    def _ensure_ca_certificate(self) -> None:
        """The private CA and the server certificate it signs (``DOMAIN.crt``/``.key``
        in the certificates dir, where Prosody looks them up by host name)."""
        from . import certs

        if self.cert_path.exists() and self.key_path.exists() and self.ca_dir.exists():
            return
        ca = certs.make_ca(self.ca_dir)
        certs.issue(ca, self.certs_dir, [self.domain, self.pubsub], name=self.domain)

    def _ensure_certificate(self) -> None:
        if self.cert_path.exists() and self.key_path.exists():
            return
        self.certs_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
            "-days", "3650", "-subj", f"/CN={self.domain}",
            "-addext", f"subjectAltName=DNS:{self.domain},DNS:{self.pubsub}",
            "-keyout", str(self.key_path), "-out", str(self.cert_path),
        ]
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=60)
        if res.returncode != 0:
            raise RuntimeError(f"openssl failed ({res.returncode}): {res.stderr.strip()}")
        os.chmod(self.key_path, 0o600)

    # -- lifecycle -----------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> TestServer:
        """Start Prosody and wait until its c2s port accepts connections."""
        if self._closed:
            raise RuntimeError("TestServer is closed")
        if self.running:
            return self
        if not _port_is_free(self.host, self.port):
            raise RuntimeError(f"port {self.host}:{self.port} is already in use")
        self._write_config()
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.console_path, "ab") as console:
            proc = subprocess.Popen(
                [PROSODY, "--config", str(self.config_path), "-F"],
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                cwd=str(self.data_dir),
                start_new_session=True,  # a Ctrl-C in the terminal is ours to handle
            )
        self._proc = proc
        with _live_lock:
            _live.add(proc)

        deadline = time.monotonic() + timeout
        while True:
            rc = proc.poll()
            if rc is not None:
                self._forget(proc)
                raise RuntimeError(
                    f"prosody exited with code {rc} during start-up\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    break
            except OSError:
                pass
            if time.monotonic() >= deadline:
                self._terminate(proc)
                raise RuntimeError(
                    f"prosody did not accept connections on {self.host}:{self.port} "
                    f"within {timeout} s\n{self.log_tail()}")
            time.sleep(0.02)

        # Prosody keeps running when it cannot bind its port; make that an error.
        new_log = self._read_log(log_offset)
        if "Failed to open server port" in new_log:
            self._terminate(proc)
            raise RuntimeError(f"prosody could not open port {self.port}\n{self.log_tail()}")
        return self

    def stop(self) -> None:
        """SIGTERM, wait (SIGKILL after 5 s).  Keeps the data dir (see ``close()``)."""
        if self._proc is not None:
            self._terminate(self._proc)

    def kill(self) -> None:
        """SIGKILL (for crash tests), wait.  Keeps the data dir."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        proc.wait()
        self._forget(proc)

    def restart(self, timeout: float = 10.0) -> TestServer:
        """Start again on the same port and data dir (file storage keeps its data)."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop Prosody and remove the data dir if it is our temp dir."""
        self.stop()
        self._closed = True
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> TestServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _terminate(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(_STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._forget(proc)

    def _forget(self, proc: subprocess.Popen) -> None:
        with _live_lock:
            _live.discard(proc)

    # -- accounts ------------------------------------------------------------------

    def register(self, user: str, password: str) -> str:
        """Create (or reset the password of) ``user@DOMAIN``; returns the bare JID.

        Uses ``prosodyctl register``; works whether or not the server is running.
        """
        if "@" in user:
            user, _, dom = user.partition("@")
            if dom != self.domain:
                raise ValueError(f"can only register users on {self.domain}, not {dom}")
        if not self.config_path.exists():
            self._write_config()
        res = subprocess.run(
            [PROSODYCTL, "--config", str(self.config_path), "register",
             user, self.domain, password],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
            cwd=str(self.data_dir),
        )
        if res.returncode != 0:
            raise RuntimeError(f"prosodyctl register {user} failed ({res.returncode}): "
                               f"{(res.stdout + res.stderr).strip()}")
        return self.jid(user)

    # -- logs ----------------------------------------------------------------------

    def _read_log(self, offset: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    @staticmethod
    def _tail(path: Path, n: int) -> list[str]:
        try:
            with open(path, "rb") as f:
                return [ln.decode("utf-8", "replace").rstrip("\n")
                        for ln in collections.deque(f, maxlen=n)]
        except OSError:
            return []

    def log_tail(self, n: int = 40) -> str:
        """The last ``n`` lines of Prosody's log (and of its console output, if any)."""
        parts = []
        log = self._tail(self.log_path, n)
        if log:
            parts.append(f"--- {self.log_path} (last {len(log)} lines)")
            parts.extend(log)
        console = [ln for ln in self._tail(self.console_path, n) if ln.strip()]
        if console:
            parts.append(f"--- {self.console_path} (last {len(console)} lines)")
            parts.extend(console)
        return "\n".join(parts) if parts else "(no log output)"


# -- command line ------------------------------------------------------------------


def _env_name(user: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", user).upper()


def _env_lines(srv: TestServer, users: list[tuple[str, str]]) -> list[str]:
    values = [
        ("XMPP_TEST_HOST", srv.host),
        ("XMPP_TEST_PORT", str(srv.port)),
        ("XMPP_TEST_DOMAIN", srv.domain),
        ("XMPP_TEST_PUBSUB", srv.pubsub),
        ("XMPP_TEST_DATA_DIR", str(srv.data_dir)),
        ("XMPP_TEST_PID", str(srv.pid or "")),
    ]
    for user, password in users:
        name = _env_name(user)
        values.append((f"XMPP_TEST_{name}_JID", srv.jid(user)))
        values.append((f"XMPP_TEST_{name}_PASSWORD", password))
    return [f"export {k}={shlex.quote(v)}" for k, v in values]


def _parse_user(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise argparse.ArgumentTypeError(f"expected USER:PASSWORD, got {text!r}")
    return user, password


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m pubsub_hook_magic.testing.server",
        description="Run a private Prosody on 127.0.0.1 until SIGTERM/SIGINT.")
    ap.add_argument("--user", action="append", default=[], type=_parse_user,
                    metavar="USER:PASSWORD", help="register this account (repeatable)")
    ap.add_argument("--storage", choices=("memory", "file", "sqlite"), default="memory")
    ap.add_argument("--port", type=int, default=None, help="c2s port (default: a free one)")
    ap.add_argument("--data-dir", default=None,
                    help="keep config/data/log here (default: a temp dir, removed at exit)")
    ap.add_argument("--admin", action="append", default=None, metavar="JID",
                    help="admin JID (repeatable; default admin@DOMAIN)")
    ap.add_argument("--node-creator", action="append", default=[], metavar="JID",
                    help="this account may create nodes on pubsub.DOMAIN, as the admins do "
                         "(repeatable; the quickstart's alice)")
    ap.add_argument("--tls", action="store_true", help="offer STARTTLS (self-signed cert)")
    ap.add_argument("--domain", default="localhost",
                    help="the server's XMPP domain (default localhost; PubSub on pubsub.DOMAIN)")
    ap.add_argument("--autocreate", action="store_true",
                    help="a publish to a missing node on pubsub.localhost creates it")
    ap.add_argument("--env-file", default=None, metavar="PATH",
                    help="also write the export lines here once ready (removed at exit)")
    return ap


def _serve(srv: TestServer, users: list[tuple[str, str]], env_file: Path | None,
           stop_requested: threading.Event) -> int:
    """Start ``srv``, register ``users``, print (and write) the export lines, then run
    until ``stop_requested``; 1 if Prosody died meanwhile."""
    srv.start()
    for user, password in users:
        srv.register(user, password)
    text = "\n".join(_env_lines(srv, users)) + "\n"
    if env_file is not None:
        tmp = env_file.with_name(env_file.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, env_file)  # appears complete, or not at all
    sys.stdout.write(text)
    sys.stdout.flush()
    print(f"prosody ready on {srv.host}:{srv.port} (pid {srv.pid}, "
          f"storage {srv.storage}, data {srv.data_dir}); SIGTERM/Ctrl-C to stop",
          file=sys.stderr, flush=True)
    while not stop_requested.wait(0.5):
        if not srv.running:
            print(f"prosody died unexpectedly\n{srv.log_tail()}", file=sys.stderr)
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    env_file = Path(args.env_file).resolve() if args.env_file else None
    if env_file is not None:
        # A stale file would tell a waiting script the wrong port.
        env_file.unlink(missing_ok=True)

    srv = TestServer(storage=args.storage, port=args.port, data_dir=args.data_dir,
                     admins=tuple(args.admin) if args.admin else None,
                     tls=args.tls, autocreate=args.autocreate, domain=args.domain,
                     node_creators=tuple(args.node_creator))
    try:
        return _serve(srv, args.user, env_file, stop_requested)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        srv.close()
        if env_file is not None:
            env_file.unlink(missing_ok=True)

if __name__ == "__main__":
    sys.exit(main())
