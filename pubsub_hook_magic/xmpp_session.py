"""The XMPP session: one slixmpp client, its connection, and what hooks need of it.

:class:`XmppSession` runs on whatever asyncio loop starts it (the manager's loop
thread in a notebook, ``asyncio.run`` in a script). It logs in (TLS required and
verified unless told otherwise), sends presence on every new stream, subscribes to
PubSub nodes and registers PEP ``+notify`` interests, and hands each published item
to ``on_item(service, node, item)``, where ``service`` is the bare JID that sent the
event: an event forged by another JID cannot pretend to come from a hook's service.

Beside it: :mod:`.xmpp_plugin` (the slixmpp plugin that receives the events, the one
place touching slixmpp internals), :mod:`.xmpp_reconnect` (when a lost session tries
again, and when it must not: a resource conflict), :mod:`.xmpp_smacks` (stream
management: a short cut resumes the stream, no login, no catch-up; and how a silent
dead link is noticed within 12 s), :mod:`.xmpp_tls` (why a certificate was refused and
what fixes it) and :mod:`.xmpp_requests` (the PubSub requests: the session's base class).

``reconnects`` counts the streams restored after a loss, resumed or logged in again;
``resumptions`` those of them that were resumed (XEP-0198: ``on_restored`` is not
called for them, nothing was missed).

slixmpp is imported lazily, so loading the IPython extension stays fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import xmpp_smacks
from .states import SessionState
from .xmpp_reconnect import (
    ATTEMPT_TIMEOUT,
    AfterDelay,
    Reconnection,
    after_disconnect,
    after_reconnect_delay,
    conflict_message,
)
from .xmpp_requests import (
    AuthFailed,
    PubSubRequests,
    RequestError,
    SessionError,
    create_hint,
    publish_hint,
)

__all__ = ["RequestError", "SessionError", "XmppSession", "bare_jid", "create_hint", "publish_hint"]

log = logging.getLogger(__name__)

#: The plugins a session's client runs (ours, :mod:`.xmpp_plugin`, comes after them).
PLUGINS = ("xep_0030", "xep_0060", "xep_0115", "xep_0163", "xep_0199")


def bare_jid(value: str, what: str = "JID") -> str:
    """``value`` as a normalized bare JID, or a :class:`SessionError` saying it is invalid."""
    from slixmpp.jid import JID, InvalidJID

    try:
        jid = JID(value)
    except InvalidJID as exc:
        raise SessionError(f"{value!r} is not a valid {what}: {exc}") from None
    if not jid.domain:
        raise SessionError(f"{value!r} is not a valid {what}")
    return jid.bare


class _RedactAuth(logging.Filter):
    """Keeps SASL exchanges (which carry the password, base64-encoded) out of logs."""

    _sasl = re.compile(r"(<(auth|response|challenge|success)\b[^>]*>)[^<]*(</\2>)")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and "urn:ietf:params:xml:ns:xmpp-sasl" in str(record.args):
            record.msg = record.getMessage()
            record.msg = self._sasl.sub(r"\1[redacted]\3", record.msg)
            record.args = ()
        return True


_redact = _RedactAuth()
logging.getLogger("slixmpp.xmlstream.xmlstream").addFilter(_redact)
# slixmpp logs errors (e.g. "No appropriate login method.") that we report ourselves;
# without a handler of the application's, Python would print them into a random cell.
logging.getLogger("slixmpp").addHandler(logging.NullHandler())


class XmppSession(PubSubRequests):
    """A logged-in slixmpp client that delivers PubSub items."""

    def __init__(
        self,
        jid: str,
        password: str,
        *,
        on_item: Callable[[str, str, Any], None],
        host: str | None = None,
        port: int | None = None,
        tls: bool = True,
        direct_tls: bool = False,
        ca_file: str | None = None,
        on_restored: Callable[[], None] | None = None,
        on_event: Callable[[str, str, str, Any], None] | None = None,
        on_state: Callable[[SessionState], None] | None = None,
        keepalive: float = xmpp_smacks.PROBE_INTERVAL,
        stream_management: bool = True,
    ):
        super().__init__()
        self.jid = jid
        self.host = host
        self.port = port
        self.tls = tls
        self.direct_tls = direct_tls
        self.ca_file = ca_file
        self.on_item = on_item
        self.on_restored = on_restored
        #: ``on_event(service, node, kind, element)`` for retract, purge and delete.
        self.on_event = on_event
        #: Seconds between two probes of the link (0: none); see :mod:`.xmpp_smacks`.
        self.keepalive = keepalive
        self.stream_management = stream_management
        self.on_state = on_state
        self._state = SessionState.DISCONNECTED
        self.last_error: str | None = None
        self.reconnects = 0
        self.resumptions = 0
        self._reconnection = Reconnection(self._reconnect_now)
        self._attempt_timer: asyncio.TimerHandle | None = None
        self._keepalive_task: asyncio.Task[None] | None = None
        self._explaining: asyncio.Task[None] | None = None  # a refused certificate's reason
        self.client: Any = None
        self._events: Any = None  # our slixmpp plugin of the client (xmpp_plugin)
        self._password = password
        self._started: asyncio.Future[None] | None = None
        self._last_failure = ""
        self._resource: str | None = None
        self._presence_answered = asyncio.Event()  # (this stream's initial presence came back)

    # ------------------------------------------------------------------ connection

    @property
    def state(self) -> SessionState:
        """connecting, connected, reconnecting, failed (gave up: see ``last_error``),
        stopping or disconnected."""
        return self._state

    @state.setter
    def state(self, value: SessionState) -> None:
        if value != self._state:
            self._state = value
            if self.on_state is not None:
                self.on_state(value)

    @property
    def connected(self) -> bool:
        return self.state == SessionState.CONNECTED

    @property
    def bare(self) -> str:
        return self.client.boundjid.bare if self.client is not None else bare_jid(self.jid)

    @property
    def events_received(self) -> int:
        """PubSub events received by this session (all its streams)."""
        return self._events.received if self._events is not None else 0

    def _full_jid(self) -> str:
        """The JID to log in with: the account's own resource, else one of ours, kept
        across reconnections. slixmpp keeps service discovery features and entity
        capabilities per full JID: with a resource the server chose anew at each
        reconnection, the restored session would announce no ``+notify`` interest (no
        PEP notifications) and no feature."""
        if "/" in self.jid:
            return self.jid
        if self._resource is None:
            import secrets

            self._resource = f"pubsub-hook-{secrets.token_hex(4)}"
        return f"{self.jid}/{self._resource}"

    def _make_client(self) -> Any:
        from slixmpp import ClientXMPP

        from .xmpp_plugin import PLUGIN

        mechanisms = {}
        if not self.tls:
            mechanisms = {"unencrypted_plain": True, "unencrypted_scram": True}
        client = ClientXMPP(
            self._full_jid(),
            self._password,
            loop=asyncio.get_running_loop(),
            plugin_config={"feature_mechanisms": mechanisms},
        )
        for plugin in PLUGINS:
            client.register_plugin(plugin)
        if self.stream_management:
            xmpp_smacks.enable(client)
        client.register_plugin(PLUGIN, {"on_item": self.on_item, "on_event": self.on_event})
        plugins: Any = client.plugin  # (typed for slixmpp's own plugins only)
        self._events = plugins[PLUGIN]
        if self.tls:
            client.enable_plaintext = False
            client.enable_starttls = not self.direct_tls
            client.enable_direct_tls = self.direct_tls or (self.host is None)
            if self.ca_file:
                client.ca_certs = Path(self.ca_file)
        else:
            client.enable_plaintext = True
            client.enable_starttls = False
            client.enable_direct_tls = False
        for event, handler in (
            ("session_start", self._on_session_start),
            ("session_resumed", self._on_session_resumed),
            ("presence", self._on_presence),
            ("failed_all_auth", self._on_failed_auth),
            ("no_auth", self._on_failed_auth),
            ("ssl_invalid_chain", self._on_invalid_certificate),
            ("connection_failed", self._on_connection_failed),
            ("reconnect_delay", self._on_reconnect_delay),
            ("stream_error", self._on_stream_error),
            ("disconnected", self._on_disconnected),
        ):
            client.add_event_handler(event, handler)
        return client

    def _connect(self) -> None:
        if self.host and self.port:
            self.client.connect(self.host, self.port)
        else:
            self.client.connect()

    def _where(self) -> str:
        return f"{self.host}:{self.port}" if self.host else self.bare.split("@")[-1]

    async def start(self, timeout: float = 30.0) -> None:
        """Connect and log in; return once the session is up, or raise SessionError."""
        loop = asyncio.get_running_loop()
        self._started = loop.create_future()
        self.client = self._make_client()
        self.state = SessionState.CONNECTING
        self._connect()
        try:
            await asyncio.wait_for(asyncio.shield(self._started), timeout)
        except TimeoutError:
            await self.stop()
            detail = f" ({self._last_failure})" if self._last_failure else ""
            raise SessionError(
                f"no XMPP session with {self._where()} after {timeout:g} s{detail}: check the "
                "server address and that it is running"
            ) from None
        except BaseException:  # SessionError, cancellation: nothing stays running
            await self.stop()
            raise

    def _fail_start(self, message: str, error: type[SessionError] = SessionError) -> None:
        if self._started is not None and not self._started.done():
            self._started.set_exception(error(message))

    def _on_session_start(self, _event: Any) -> None:
        # Synchronous on purpose: it runs before the stanzas that follow are handled,
        # so on_restored sees the new session before any of its events.
        self._presence_answered.clear()
        self.client.send_presence()
        restored = self._up()
        if restored:
            self.reconnects += 1
            log.info("session of %s restored (reconnection %d)", self.bare, self.reconnects)
            if self.on_restored is not None:
                try:
                    self.on_restored()
                except Exception:  # a bug of ours must not end the new session
                    log.exception("restoring subscriptions after a reconnection failed")

    def _on_presence(self, presence: Any) -> None:
        if presence["from"] == self.client.boundjid:
            self._presence_answered.set()

    async def presence_answered(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until the server has sent this stream's
        initial presence back to us (RFC 6121 4.2.2: to the sending resource too); what
        it sends on that presence comes before (ejabberd: each subscribed node's last
        item). Whether it came."""
        try:
            await asyncio.wait_for(self._presence_answered.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _on_session_resumed(self, _event: Any) -> None:
        # XEP-0198: the old stream goes on (subscriptions, presence, what the server
        # had not delivered); no on_restored, no catch-up (see xmpp_smacks).
        if self._up():
            self.reconnects += 1
            self.resumptions += 1
            log.info("session of %s resumed (resumption %d)", self.bare, self.resumptions)

    def _up(self) -> bool:
        """A stream is up (new or resumed); whether it replaces a lost one."""
        self._last_failure = ""  # (a later loss has a reason of its own)
        restored = self.state == SessionState.RECONNECTING
        self.state = SessionState.CONNECTED
        self._reconnection.succeeded()
        self._cancel_attempt_timer()
        if self._keepalive_task is None or self._keepalive_task.done():
            self._keepalive_task = asyncio.get_running_loop().create_task(self._watch_link())
        if self._started is not None and not self._started.done():
            self._started.set_result(None)
        return restored

    async def _watch_link(self) -> None:
        """Probe the link now and then (stream management's ``<r/>``, else a ping): a
        dead connection, silent or not, is noticed and replaced (see xmpp_smacks)."""
        while self.keepalive > 0:
            await asyncio.sleep(self.keepalive)
            client = self.client
            if client is None or self.state != SessionState.CONNECTED:
                continue
            answered = await xmpp_smacks.answers(client, xmpp_smacks.PROBE_DEADLINE)
            if not answered and client is self.client and self.state == SessionState.CONNECTED:
                log.warning("the server did not answer within %g s: reconnecting", xmpp_smacks.PROBE_DEADLINE)
                self._last_failure = "the link went silent"
                client.abort()

    def _reconnect_now(self) -> None:
        if self.state != SessionState.RECONNECTING or self.client is None:
            return
        log.info("reconnecting %s (attempt %d)", self.jid, self._reconnection.attempt)
        self._cancel_attempt_timer()
        self._attempt_timer = asyncio.get_running_loop().call_later(ATTEMPT_TIMEOUT, self._attempt_expired)
        self._connect()

    def _attempt_expired(self) -> None:
        """A reconnection attempt got no session in time (a link that swallows all)."""
        self._attempt_timer = None
        if self.state == SessionState.RECONNECTING and self.client is not None:
            self._last_failure = f"no session within {ATTEMPT_TIMEOUT:g} s"
            if self.client.is_connected():
                self.client.abort()  # -> disconnected -> the next attempt, later
            else:
                self.client.cancel_connection_attempt()
                self._reconnection.schedule()

    def _cancel_attempt_timer(self) -> None:
        if self._attempt_timer is not None:
            self._attempt_timer.cancel()
            self._attempt_timer = None

    async def reconnect(self, password: str, timeout: float = 30.0) -> None:
        """Log a ``failed`` session in again, with ``password`` (the account's, maybe
        new): the session, its client and what runs on it stay; the restored stream
        calls ``on_restored`` as after any reconnection. Raises SessionError when it
        fails again (the session stays ``failed``) or when no session came within
        ``timeout`` (it goes on trying: ``reconnecting``)."""
        if self.state != SessionState.FAILED or self.client is None:
            raise SessionError(f"the session of {self.bare} is {self.state}, not failed")
        self._password = self.client.password = password
        self.last_error = None
        self._last_failure = ""
        self._started = asyncio.get_running_loop().create_future()
        self.state = SessionState.RECONNECTING
        self._reconnection.succeeded()
        self._reconnect_now()
        try:
            await asyncio.wait_for(asyncio.shield(self._started), timeout)
        except TimeoutError:
            raise SessionError(
                f"the session of {self.bare} did not come back within {timeout:g} s"
                f"{' (' + self._last_failure + ')' if self._last_failure else ''}: it goes on trying "
                "(%hook status)"
            ) from None

    def _secure(self) -> bool:
        client = self.client
        return "starttls" in client.features or isinstance(
            client.socket, (ssl.SSLSocket, ssl.SSLObject)
        )

    def _on_failed_auth(self, _event: Any) -> None:
        if self.state == SessionState.RECONNECTING:
            # The password no longer works (changed on the server): stop retrying.
            self.state = SessionState.FAILED
            self.last_error = (
                f"authentication failed for {self.jid} while reconnecting: the password "
                "may have changed; connect again with the new one"
            )
            log.error("%s", self.last_error)
            self._fail_start(self.last_error)  # (reconnect() waits for it)
            return
        if self.tls and not self._secure():
            self._fail_start(
                "the server did not offer TLS, and the password is not sent over a plaintext "
                "stream: use --no-tls only for a test server on loopback"
            )
        else:
            self._fail_start(
                f"authentication failed for {self.jid}: check the password (and the JID)", AuthFailed
            )

    def _on_invalid_certificate(self, error: Any) -> None:
        self.client.abort()
        if self._explaining is None or self._explaining.done():
            self._explaining = asyncio.get_running_loop().create_task(self._explain_certificate(error))

    async def _explain_certificate(self, error: Any) -> None:
        from .xmpp_tls import certificate_names, certificate_problem

        domain = bare_jid(self.jid).split("@")[-1]
        names = None
        if getattr(error, "verify_code", None) == 62:  # a hostname mismatch: for which name, then?
            names = await certificate_names(
                self.host or domain, self.port or (5223 if self.direct_tls else 5222), domain,
                direct_tls=self.direct_tls, ca_file=self.ca_file,
            )
        message = certificate_problem(error, domain, ca_file=self.ca_file, names=names)
        self._last_failure = message
        self._fail_start(message)

    def _on_connection_failed(self, error: Any) -> None:
        self._last_failure = str(error)
        if isinstance(error, ssl.SSLCertVerificationError):
            self._on_invalid_certificate(error)

    def _on_reconnect_delay(self, _delay: Any) -> None:
        # Every address was tried once: during start, that means "unreachable"; while
        # reconnecting, our own backoff replaces slixmpp's (which grows to 300 s).
        starting = self._started is not None and not self._started.done()
        decision = after_reconnect_delay(self.state, starting)
        if decision is AfterDelay.NOTHING:
            return
        self.client.cancel_connection_attempt()
        if decision is AfterDelay.RETRY_LATER:
            self._reconnection.schedule()
        else:
            self._fail_start(
                f"cannot reach the XMPP server {self._where()} ({self._last_failure or 'refused'}): "
                "check --host/--port and that the server is running"
            )

    def _on_stream_error(self, error: Any) -> None:
        self._last_failure = f"stream error: {error['condition']}"
        if error["condition"] == "conflict" and self.state != SessionState.STOPPING:
            # Another client logged in with our full JID: never reconnect (we would kick it
            # out, and it us, forever; see xmpp_reconnect).
            self.state = SessionState.FAILED
            self.last_error = conflict_message(self._full_jid(), explicit="/" in self.jid)
            log.error("%s", self.last_error)
            self._fail_start(self.last_error)

    def _on_disconnected(self, reason: Any) -> None:
        decision = after_disconnect(self.state)
        if decision.announce:  # an established session dropped (server restart, network, ping)
            why = reason or self._last_failure or "the connection closed"
            log.warning("session of %s lost (%s): reconnecting", self.jid, why)
        self.state = decision.state
        if decision.reconnect:
            self._reconnection.schedule()
            return
        if self._explaining is not None and not self._explaining.done():
            return  # a refused certificate: its reason comes
        if self._started is not None and not self._started.done():
            # A more precise reason (bad certificate, failed auth) may be reported just
            # after the connection is lost: let it win.
            message = (
                f"the server closed the connection before the session started"
                f"{': ' + str(self._last_failure) if self._last_failure else ''}"
            )
            asyncio.get_running_loop().call_later(0.1, self._fail_start, message)

    async def stop(self) -> None:
        """Close the stream and everything the client runs; safe to call twice."""
        from .xmpp_plugin import close_client

        client = self.client
        self.state = SessionState.STOPPING
        self._reconnection.cancel()
        self._cancel_attempt_timer()
        for task in (self._keepalive_task, self._explaining):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._keepalive_task = self._explaining = None
        if client is not None:
            await close_client(client)
            self.client = None
        self.state = SessionState.DISCONNECTED
