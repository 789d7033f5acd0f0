"""A private ejabberd XMPP server on 127.0.0.1, configured like Debian's package.

Standard library only; imports nothing from IPython or from the rest of the package
(but :mod:`.server` and :mod:`.certs`).  Needs Debian's ``ejabberd`` package
(23.01 on Debian 12: ``scripts/setup.sh`` installs it); its system service is never
used, nor started.

    with EjabberdServer() as srv:                 # Debian's defaults, free port
        jid = srv.register("alice", "pw")         # -> "alice@localhost"
        ...STARTTLS to (srv.host, srv.port) verifying srv.ca_path; PubSub: srv.pubsub...

Each instance runs ``ejabberdctl foreground`` with its own files under its data dir::

    conf/ejabberd.yml      the server's config (generated, rewritten at every start)
    conf/ejabberdctl.cfg   ejabberdctl's settings: node cookie, distribution port, pid file
    conf/inetrc            Erlang's resolver: localhost is 127.0.0.1
    spool/                 the Mnesia database (accounts, roster, PubSub nodes and items)
    logs/                  ejabberd.log, error.log, crash dumps; console.log (stdout)
    ca/, certs/            a private CA and the server's certificate signed by it

and its own Erlang node (``phm-<random>@localhost``, own cookie).  No ``epmd``: the node
listens for ``ejabberdctl`` on a free loopback port of its own (``ERL_DIST_PORT``,
``-erl_epmd_port``, OTP 23+), so instances, the tests and an ``epmd`` left running by
the package's postinst do not meet.  ejabberdctl switches to the ``ejabberd`` user when
run as root; our ``ejabberdctl.cfg`` (sourced after that check) keeps the current user,
so data dirs under root-only temp dirs work.

``profile="debian"`` (the default) mirrors ``/etc/ejabberd/ejabberd.yml`` of the package
in what clients meet: the c2s shaper ``normal`` (3000 B/s, burst 20000 B) for everyone
but admins (``none``), ``starttls_required``, ``max_stanza_size: 262144``, SCRAM
passwords, ``max_user_sessions: 10``, ``mod_stream_mgmt`` (``resend_on_timeout:
if_offline``), ``mod_pubsub`` with plugins ``flat`` and ``pep``, ``access_createnode:
pubsub_createnode`` (every local user may create nodes) and Debian's
``force_node_config``, and no ``send_last_published_item`` setting (so ejabberd's
default, ``on_sub_and_presence``), ``mod_caps``, ``mod_disco``, ``mod_ping``,
``mod_carboncopy``, ``mod_client_state``, ``mod_offline``, ``mod_roster`` (versioning),
``mod_pres_counter`` and the other modules that need no listener.  Left out: every
listener but c2s on loopback (no 5223, s2s, HTTP, STUN, MQTT), and the modules that need
one (``mod_bosh``, ``mod_http_api``, ``mod_mqtt``, ``mod_stun_disco``, ``mod_push*``,
``mod_s2s_dialback``), ``mod_muc`` (no MUC in these tests), ``mod_avatar``, and
``mod_fail2ban`` (it would ban 127.0.0.1 for an hour after 20 failed logins: the
tests' bad-password cases all come from loopback).

``profile="plain"``: the same modules, no shaper and no ``starttls_required``; STARTTLS
is offered only with ``tls=True``.  For tests that want speed, not Debian's limits.

Storage is always a private Mnesia directory (disc copies: served from memory, logged
to ``spool/``); ``storage="memory"`` and ``"file"`` are both accepted and both keep
accounts, nodes and items across ``restart()``.  After ``kill()`` the last writes may be
lost (accounts live in a ``disc_only`` table, which dets caches: an account registered
a second before a SIGKILL was gone after the restart); a clean ``stop()`` writes all.  Accounts are made with
``ejabberdctl register`` against the running node (about half a second each: an Erlang
VM boots for every ejabberdctl call).

Command line (runs until SIGTERM/SIGINT)::

    python -m pubsub_hook_magic.testing.ejabberd --user admin:pw --user alice:pw \
        [--profile plain] [--port N] [--data-dir DIR] [--env-file PATH]
"""

from __future__ import annotations

import argparse
import atexit
import collections
import contextlib
import json
import os
import secrets
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

from . import certs
from .server import _env_name, _parse_user, _port_is_free, free_port

__all__ = ["EjabberdServer", "main"]

EJABBERDCTL = os.environ.get("EJABBERDCTL_BIN", "/usr/sbin/ejabberdctl")

_STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL

# Process groups (ejabberdctl, erl, beam.smp and helpers) still running at interpreter
# exit are killed, so that a crashed test run leaves no server behind.
_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()


def _killpg(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _gone(pid: int) -> bool:
    """Whether every thread of ``pid`` has exited.  A zombie main thread is not enough:
    the VM's other threads (and so its sockets) may live on a moment longer."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", encoding="ascii", errors="replace") as f:
                if f.read().rpartition(")")[2].split()[0] not in ("Z", "X"):
                    return False
        except (OSError, IndexError):
            continue
    return True


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(not _gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)


@atexit.register
def _kill_leftovers() -> None:
    with _live_lock:
        procs = list(_live)
        _live.clear()
    for proc in procs:
        if proc.poll() is None:
            _killpg(proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                proc.wait(5)


def _q(value) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is YAML's)."""
    return json.dumps(str(value))


class EjabberdServer:
    """A private ejabberd on 127.0.0.1: free c2s port, its own node and data dir.

    Parameters
    ----------
    storage:
        ``"memory"`` or ``"file"``: the same (a private Mnesia dir, kept across restart).
    port:
        c2s port; default: a free port chosen once, kept across ``restart()``.
    data_dir:
        Directory for config, Mnesia, logs and certificates.  Default: a new temp dir,
        removed by ``close()``.  A given ``data_dir`` is never removed.
    admins:
        Bare JIDs in the ``admin`` ACL (no shaper, ``configure`` rights).
    profile:
        ``"debian"`` (Debian's defaults, TLS required) or ``"plain"`` (no shaper, TLS
        optional: offered only with ``tls=True``).
    tls:
        Offer STARTTLS with a certificate signed by the instance's CA (``ca_path``).
        Default: True for ``"debian"`` (which cannot do without), False for ``"plain"``.
    """

    __test__ = False

    domain = "localhost"
    pubsub = "pubsub.localhost"
    host = "127.0.0.1"
    kind = "ejabberd"

    def __init__(
        self,
        *,
        storage: str = "memory",
        port: int | None = None,
        data_dir: str | os.PathLike | None = None,
        admins=("admin@localhost",),
        profile: str = "debian",
        tls: bool | None = None,
    ) -> None:
        if storage not in ("memory", "file"):
            raise ValueError(f"storage must be 'memory' or 'file', not {storage!r}")
        if profile not in ("debian", "plain"):
            raise ValueError(f"profile must be 'debian' or 'plain', not {profile!r}")
        if tls is None:
            tls = profile == "debian"
        if profile == "debian" and not tls:
            raise ValueError("profile='debian' requires TLS (starttls_required): drop tls=False")
        if isinstance(admins, str):
            admins = (admins,)
        self.storage = storage
        self.profile = profile
        self.tls = bool(tls)
        self.admins = tuple(admins)
        self.port: int = int(port) if port else free_port(self.host)
        self.dist_port: int = free_port(self.host)  # the node's Erlang distribution
        self._cookie = secrets.token_hex(16)
        self._owns_dir = data_dir is None
        if data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="pubsub-ejabberd-")).resolve()
        else:
            self.data_dir = Path(data_dir).resolve()
            self.data_dir.mkdir(parents=True, exist_ok=True)
        self.conf_dir = self.data_dir / "conf"
        # Mnesia's schema belongs to one node name: a data dir keeps its node's name.
        node_file = self.data_dir / "node-name"
        try:
            self.node = node_file.read_text(encoding="ascii").strip()
        except OSError:
            self.node = f"phm-{secrets.token_hex(4)}@localhost"
            node_file.write_text(self.node + "\n", encoding="ascii")
        self.config_path = self.conf_dir / "ejabberd.yml"
        self.ctl_config_path = self.conf_dir / "ejabberdctl.cfg"
        self.spool_dir = self.data_dir / "spool"
        self.logs_dir = self.data_dir / "logs"
        self.log_path = self.logs_dir / "ejabberd.log"
        self.error_log_path = self.logs_dir / "error.log"
        self.console_path = self.logs_dir / "console.log"
        self.pid_path = self.data_dir / "ejabberd.pid"
        self.ca_dir = self.data_dir / "ca"
        self.certs_dir = self.data_dir / "certs"
        self.ca_path: Path | None = self.ca_dir / "ca.crt" if self.tls else None
        self.cert_path = self.certs_dir / "localhost.crt"  # only meaningful with TLS
        #: Seconds the last ``start()`` took until the c2s port accepted connections.
        self.start_seconds: float | None = None
        self._proc: subprocess.Popen | None = None
        self._closed = False

    # -- state ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The pid of the Erlang VM (``beam.smp``), or of ejabberdctl until it is known."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return None
        beam = self._beam_pid()
        return beam if beam is not None else proc.pid

    def _beam_pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        return None if _gone(pid) else pid

    def _group_pids(self, proc: subprocess.Popen) -> list[int]:
        """The live processes of the server's process group (ejabberdctl, beam, helpers)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError):
                    if os.getpgid(int(entry.name)) == proc.pid and not _gone(int(entry.name)):
                        pids.append(int(entry.name))
        return pids

    def jid(self, user: str) -> str:
        return f"{user}@{self.domain}"

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (f"<EjabberdServer {self.host}:{self.port} profile={self.profile} "
                f"tls={self.tls} node={self.node} {state} data_dir={str(self.data_dir)!r}>")

    # -- configuration -------------------------------------------------------------

    def _write_config(self) -> None:
        for d in (self.conf_dir, self.spool_dir, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        if self.tls:
            ca = certs.make_ca(self.ca_dir)
            pem = self.certs_dir / "localhost.pem"
            if not pem.exists():
                certs.issue(ca, self.certs_dir, [self.domain, self.pubsub], name="localhost")
        self._write(self.config_path, "\n".join(self._config_lines()) + "\n")
        self._write(self.ctl_config_path, "\n".join(self._ctl_lines()) + "\n")
        self._write(self.conf_dir / "inetrc",
                    '{lookup,["file","native"]}.\n'
                    '{host,{127,0,0,1}, ["localhost"]}.\n'
                    '{file, resolv, "/etc/resolv.conf"}.\n')

    @staticmethod
    def _write(path: Path, text: str) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)

    def _ctl_lines(self) -> list[str]:
        """``ejabberdctl.cfg``: sourced by ejabberdctl (a shell script) for every call."""
        return [
            "# Generated by pubsub_hook_magic.testing.ejabberd; rewritten at every start.",
            "# Run as the current user (root in the sandbox), not as 'ejabberd': this file",
            "# is sourced after ejabberdctl's user check.",
            "EXEC_CMD=as_current_user",
            "# No epmd: the node listens on its own loopback port for ejabberdctl.",
            f"ERL_DIST_PORT={self.dist_port}",
            'ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 '
            f'-setcookie {self._cookie} -kernel inet_dist_use_interface {{127,0,0,1}}"',
            f"EJABBERD_PID_PATH={shlex.quote(str(self.pid_path))}",
            f"HOME={shlex.quote(str(self.data_dir))}",
            "export HOME",
        ]

    def _config_lines(self) -> list[str]:
        """``ejabberd.yml``, line by line (Debian's, less its other listeners)."""
        debian = self.profile == "debian"
        admins = "\n".join(f"      - {_q(j)}" for j in self.admins) or '      - ""'
        lines = [
            "# Generated by pubsub_hook_magic.testing.ejabberd; rewritten at every start.",
            f"# profile: {self.profile} (mirrors Debian's /etc/ejabberd/ejabberd.yml of 23.01)",
            "loglevel: info",
            "log_rotate_count: 0",
            "hosts:",
            f"  - {_q(self.domain)}",
        ]
        if self.tls:
            # ca_file: our CA, so that ejabberd's own check of the chain passes (Debian's
            # default, the system's CAs, would log "self-signed certificate" at start).
            lines += ["certfiles:", f"  - {_q(self.certs_dir / 'localhost.pem')}",
                      f"ca_file: {_q(self.ca_dir / 'ca.crt')}"]
        lines += [
            "define_macro:",
            "  'TLS_CIPHERS': \"HIGH:!aNULL:!eNULL:!3DES:@STRENGTH\"",
            "  'TLS_OPTIONS':",
            '    - "no_sslv3"',
            '    - "no_tlsv1"',
            '    - "no_tlsv1_1"',
            '    - "cipher_server_preference"',
            '    - "no_compression"',
            "c2s_ciphers: 'TLS_CIPHERS'",
            "c2s_protocol_options: 'TLS_OPTIONS'",
            "acme:",
            "  auto: false",
            "",
            "listen:",
            "  -",
            f"    port: {self.port}",
            f"    ip: {_q(self.host)}",
            "    module: ejabberd_c2s",
            "    max_stanza_size: 262144",
            "    shaper: c2s_shaper",
            "    access: c2s",
        ]
        if debian:
            lines.append("    starttls_required: true")
        if self.tls:
            lines.append("    protocol_options: 'TLS_OPTIONS'")
        lines += [
            "",
            "disable_sasl_mechanisms:",
            '  - "digest-md5"',
            '  - "X-OAUTH2"',
            "auth_password_format: scram",
            "",
            "acl:",
            "  admin:",
            "     user:",
            admins,
            "  local:",
            '    user_regexp: ""',
            "  loopback:",
            "    ip:",
            "      - 127.0.0.0/8",
            "      - ::1/128",
            "",
            "access_rules:",
            "  local:",
            "    allow: local",
            "  c2s:",
            "    deny: blocked",
            "    allow: all",
            "  announce:",
            "    allow: admin",
            "  configure:",
            "    allow: admin",
            "  muc_create:",
            "    allow: local",
            "  pubsub_createnode:",
            "    allow: local",
            "  trusted_network:",
            "    allow: loopback",
            "",
            "api_permissions:",
            '  "console commands":',
            "    from:",
            "      - ejabberd_ctl",
            "    who: all",
            '    what: "*"',
            "",
            "shaper:",
            "  normal:",
            "    rate: 3000",
            "    burst_size: 20000",
            "  fast: 200000",
            "",
            "shaper_rules:",
            "  max_user_sessions: 10",
            "  max_user_offline_messages:",
            "    5000: admin",
            "    100: all",
        ]
        if debian:
            lines += [
                "  c2s_shaper:",
                "    none: admin",
                "    normal: all",
            ]
        else:
            lines += ["  c2s_shaper: none"]
        lines += [
            "  s2s_shaper: fast",
            "",
            "modules:",
            "  mod_adhoc: {}",
            "  mod_admin_extra: {}",
            "  mod_announce:",
            "    access: announce",
            "  mod_blocking: {}",
            "  mod_caps: {}",
            "  mod_carboncopy: {}",
            "  mod_client_state: {}",
            "  mod_configure: {}",
            "  mod_disco: {}",
            "  mod_last: {}",
            "  mod_offline:",
            "    access_max_user_messages: max_user_offline_messages",
            "  mod_ping: {}",
            "  mod_pres_counter:",
            "    count: 5",
            "    interval: 60",
            "  mod_privacy: {}",
            "  mod_private: {}",
            "  mod_pubsub:",
            "    access_createnode: pubsub_createnode",
            "    plugins:",
            "      - flat",
            "      - pep",
            "    force_node_config:",
            '      "eu.siacs.conversations.axolotl.*":',
            "        access_model: open",
            "      storage:bookmarks:",
            "        access_model: whitelist",
            "  mod_roster:",
            "    versioning: true",
            "  mod_shared_roster: {}",
            "  mod_sic: {}",
            "  mod_stream_mgmt:",
            "    resend_on_timeout: if_offline",
            "  mod_vcard:",
            "    search: false",
            "  mod_vcard_xupdate: {}",
            "  mod_version: {}",
        ]
        return lines

    # -- lifecycle -----------------------------------------------------------------

    def _ctl_command(self, *args: str) -> list[str]:
        return [EJABBERDCTL,
                "--config-dir", str(self.conf_dir),
                "--config", str(self.config_path),
                "--ctl-config", str(self.ctl_config_path),
                "--logs", str(self.logs_dir),
                "--spool", str(self.spool_dir),
                "--node", self.node,
                *args]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ERL_", "EJABBERD", "EJABBERDCTL"))}
        env["HOME"] = str(self.data_dir)
        return env

    def start(self, timeout: float = 60.0, *, retry_dist_port: bool = True) -> EjabberdServer:
        """Start ejabberd and wait until its c2s port accepts connections and its node
        answers ``ejabberdctl``."""
        if self._closed:
            raise RuntimeError("EjabberdServer is closed")
        if self.running:
            return self
        if not Path(EJABBERDCTL).exists() and shutil.which(EJABBERDCTL) is None:
            raise RuntimeError(f"{EJABBERDCTL} not found: install Debian's ejabberd package "
                               "(scripts/setup.sh)")
        for port in (self.port, self.dist_port):
            settle = time.monotonic() + (5.0 if self._proc is not None else 0.0)
            while not _port_is_free(self.host, port) and time.monotonic() < settle:
                time.sleep(0.02)  # our own last run's sockets, closing
            if not _port_is_free(self.host, port):
                if port == self.dist_port and self._proc is None:
                    self.dist_port = free_port(self.host)
                    continue
                raise RuntimeError(f"port {self.host}:{port} is already in use")
        self._write_config()
        self.pid_path.unlink(missing_ok=True)
        began = time.monotonic()
        with open(self.console_path, "ab") as console:
            proc = subprocess.Popen(
                self._ctl_command("foreground"),
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                cwd=str(self.data_dir), env=self._env(),
                start_new_session=True,  # one process group: ejabberdctl, erl, helpers
            )
        self._proc = proc
        with _live_lock:
            _live.add(proc)
        deadline = began + timeout
        while True:
            rc = proc.poll()
            if rc is not None:
                self._forget(proc)
                raise RuntimeError(
                    f"ejabberd exited with code {rc} during start-up\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    break
            except OSError:
                pass
            if time.monotonic() >= deadline:
                self._terminate(proc)
                raise RuntimeError(
                    f"ejabberd did not accept connections on {self.host}:{self.port} "
                    f"within {timeout} s\n{self.log_tail()}")
            time.sleep(0.05)
        # The c2s port is open; ejabberdctl (accounts, commands) needs the node's own
        # distribution port too, which another process may have taken since it was
        # chosen: then once more with another port.
        if not self._answers_ctl(proc, min(deadline, time.monotonic() + 20)):
            self._terminate(proc)
            if retry_dist_port:
                self.dist_port = free_port(self.host)
                return self.start(timeout, retry_dist_port=False)
            raise RuntimeError(f"ejabberd's node does not answer ejabberdctl\n{self.log_tail()}")
        self.start_seconds = time.monotonic() - began
        return self

    def _answers_ctl(self, proc: subprocess.Popen, deadline: float) -> bool:
        """Wait until ``ejabberdctl status`` reaches the node (False: it never did)."""
        while proc.poll() is None:
            try:
                if self.ctl("status", timeout=10).returncode == 0:
                    return True
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        """SIGTERM to the Erlang VM (a clean ``init:stop``), wait; SIGKILL after 10 s."""
        if self._proc is not None:
            self._terminate(self._proc)

    def kill(self) -> None:
        """SIGKILL to the whole process group (for crash tests), wait.  Keeps the data."""
        proc = self._proc
        if proc is None:
            return
        pids = self._group_pids(proc)
        _killpg(proc, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        _wait_gone(pids, 10)  # the VM is not our child: wait until it has let go of its ports
        self._forget(proc)

    def restart(self, timeout: float = 60.0) -> EjabberdServer:
        """Start again on the same port, node and data dir (Mnesia keeps its data)."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop ejabberd and remove the data dir if it is our temp dir."""
        self.stop()
        self._closed = True
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EjabberdServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _terminate(self, proc: subprocess.Popen) -> None:
        pids = self._group_pids(proc)
        if proc.poll() is None:
            beam = self._beam_pid()
            if beam is not None:
                # Only the VM: ejabberdctl (bash) waits for it, then exits itself.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(beam, signal.SIGTERM)
            else:
                _killpg(proc, signal.SIGTERM)
            try:
                proc.wait(_STOP_GRACE)
            except subprocess.TimeoutExpired:
                _killpg(proc, signal.SIGKILL)
                proc.wait()
        # Helpers (erl_child_setup, inet_gethost) leave with the VM; make sure.
        _killpg(proc, signal.SIGKILL)
        _wait_gone(pids, 10)
        self._forget(proc)

    def _forget(self, proc: subprocess.Popen) -> None:
        with _live_lock:
            _live.discard(proc)

    # -- accounts ------------------------------------------------------------------

    def ctl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Run ``ejabberdctl ARGS`` against this node (which must be running)."""
        return subprocess.run(self._ctl_command(*args), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout,
                              cwd=str(self.data_dir), env=self._env())

    def register(self, user: str, password: str) -> str:
        """Create (or reset the password of) ``user@localhost``; returns the bare JID.

        Uses ``ejabberdctl register``: the server must be running.
        """
        if "@" in user:
            user, _, dom = user.partition("@")
            if dom != self.domain:
                raise ValueError(f"can only register users on {self.domain}, not {dom}")
        if not self.running:
            raise RuntimeError("EjabberdServer.register needs the server running: start() it")
        res = self.ctl("register", user, self.domain, password)
        out = (res.stdout + res.stderr).strip()
        if res.returncode != 0 and "already registered" in out:
            res = self.ctl("change_password", user, self.domain, password)
            out = (res.stdout + res.stderr).strip()
        if res.returncode != 0:
            raise RuntimeError(f"ejabberdctl register {user} failed ({res.returncode}): {out}")
        return self.jid(user)

    # -- logs ----------------------------------------------------------------------

    @staticmethod
    def _tail(path: Path, n: int) -> list[str]:
        try:
            with open(path, "rb") as f:
                return [ln.decode("utf-8", "replace").rstrip("\n")
                        for ln in collections.deque(f, maxlen=n)]
        except OSError:
            return []

    def log_tail(self, n: int = 40) -> str:
        """The last ``n`` lines of ejabberd's log, error log and console output."""
        parts = []
        for path in (self.log_path, self.error_log_path, self.console_path):
            lines = [ln for ln in self._tail(path, n) if ln.strip()]
            if lines:
                parts.append(f"--- {path} (last {len(lines)} lines)")
                parts.extend(lines)
        return "\n".join(parts) if parts else "(no log output)"


# -- command line ------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m pubsub_hook_magic.testing.ejabberd",
        description="Run a private ejabberd on 127.0.0.1 until SIGTERM/SIGINT.")
    ap.add_argument("--user", action="append", default=[], type=_parse_user,
                    metavar="USER:PASSWORD", help="register this account (repeatable)")
    ap.add_argument("--profile", choices=("debian", "plain"), default="debian")
    ap.add_argument("--port", type=int, default=None, help="c2s port (default: a free one)")
    ap.add_argument("--data-dir", default=None,
                    help="keep config/data/logs here (default: a temp dir, removed at exit)")
    ap.add_argument("--admin", action="append", default=None, metavar="JID",
                    help="admin JID (repeatable; default admin@localhost)")
    ap.add_argument("--env-file", default=None, metavar="PATH",
                    help="also write the export lines here once ready (removed at exit)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stop_requested = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.set())
    signal.signal(signal.SIGINT, lambda *_: stop_requested.set())
    env_file = Path(args.env_file).resolve() if args.env_file else None
    if env_file is not None:
        env_file.unlink(missing_ok=True)
    srv = EjabberdServer(port=args.port, data_dir=args.data_dir, profile=args.profile,
                         admins=tuple(args.admin) if args.admin else ("admin@localhost",))
    try:
        srv.start()
        for user, password in args.user:
            srv.register(user, password)
        values = [("XMPP_TEST_HOST", srv.host), ("XMPP_TEST_PORT", str(srv.port)),
                  ("XMPP_TEST_DOMAIN", srv.domain), ("XMPP_TEST_PUBSUB", srv.pubsub),
                  ("XMPP_TEST_DATA_DIR", str(srv.data_dir)),
                  ("XMPP_TEST_CA_FILE", str(srv.ca_path or "")),
                  ("XMPP_TEST_PID", str(srv.pid or ""))]
        for user, password in args.user:
            values.append((f"XMPP_TEST_{_env_name(user)}_JID", srv.jid(user)))
            values.append((f"XMPP_TEST_{_env_name(user)}_PASSWORD", password))
        text = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in values)
        if env_file is not None:
            tmp = env_file.with_name(env_file.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, env_file)
        sys.stdout.write(text)
        sys.stdout.flush()
        print(f"ejabberd ready on {srv.host}:{srv.port} in {srv.start_seconds:.1f} s "
              f"(node {srv.node}, data {srv.data_dir}); SIGTERM/Ctrl-C to stop",
              file=sys.stderr, flush=True)
        while not stop_requested.wait(0.5):
            if not srv.running:
                print(f"ejabberd died unexpectedly\n{srv.log_tail()}", file=sys.stderr)
                return 1
        return 0
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        srv.close()
        if env_file is not None:
            env_file.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
