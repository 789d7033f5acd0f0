"""The XMPP session: one slixmpp client, its connection, and what hooks need of it.

:class:`XmppSession` runs on whatever asyncio loop starts it (the manager's loop
thread in a notebook, ``asyncio.run`` in a script). It logs in (TLS required and
verified unless told otherwise), sends presence on every new stream, subscribes to
PubSub nodes and registers PEP ``+notify`` interests, and hands each published item
to ``on_item(service, node, item)``, where ``service`` is the bare JID that sent the
event: an event forged by another JID cannot pretend to come from a hook's service.

Beside it: :mod:`.xmpp_plugin` (the slixmpp plugin that receives the events, the one
place touching slixmpp internals), :mod:`.xmpp_reconnect` (when a lost session tries
again) and :mod:`.xmpp_requests` (the PubSub requests: the session's base class).

slixmpp is imported lazily, so loading the IPython extension stays fast.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .states import SessionState
from .xmpp_reconnect import (
    AfterDelay,
    Reconnection,
    after_disconnect,
    after_reconnect_delay,
)
from .xmpp_requests import (
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
        keepalive: float = 30.0,
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
        self.keepalive = keepalive
        self.on_state = on_state
        self._state = SessionState.DISCONNECTED
        self.last_error: str | None = None
        self.reconnects = 0
        self._reconnection = Reconnection(self._reconnect_now)
        self._keepalive_task: asyncio.Task[None] | None = None
        self.client: Any = None
        self._events: Any = None  # our slixmpp plugin of the client (xmpp_plugin)
        self._password = password
        self._started: asyncio.Future[None] | None = None
        self._last_failure = ""
        self._resource: str | None = None

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

    def _fail_start(self, message: str) -> None:
        if self._started is not None and not self._started.done():
            self._started.set_exception(SessionError(message))

    def _on_session_start(self, _event: Any) -> None:
        # Synchronous on purpose: it runs before the stanzas that follow are handled,
        # so on_restored sees the new session before any of its events.
        self.client.send_presence()
        self._last_failure = ""  # (a later loss has a reason of its own)
        restored = self.state == SessionState.RECONNECTING
        self.state = SessionState.CONNECTED
        self._reconnection.succeeded()
        loop = asyncio.get_running_loop()
        if self._keepalive_task is None or self._keepalive_task.done():
            self._keepalive_task = loop.create_task(self._ping_forever())
        if self._started is not None and not self._started.done():
            self._started.set_result(None)
        if restored:
            self.reconnects += 1
            log.info("session of %s restored (reconnection %d)", self.bare, self.reconnects)
            if self.on_restored is not None:
                try:
                    self.on_restored()
                except Exception:  # a bug of ours must not end the new session
                    log.exception("restoring subscriptions after a reconnection failed")

    async def _ping_forever(self) -> None:
        """Ping the server now and then: a dead TCP connection is noticed and replaced."""
        from slixmpp.exceptions import IqError, IqTimeout

        while self.keepalive > 0:
            await asyncio.sleep(self.keepalive)
            client = self.client
            if client is None or self.state != SessionState.CONNECTED:
                continue
            try:
                await client.plugin["xep_0199"].send_ping(
                    client.boundjid.domain, timeout=max(5.0, self.keepalive / 2)
                )
            except IqTimeout:
                log.warning("the server did not answer a ping: reconnecting")
                client.abort()
            except IqError:
                pass  # an error reply is still an answer

    def _reconnect_now(self) -> None:
        if self.state != SessionState.RECONNECTING or self.client is None:
            return
        log.info("reconnecting %s (attempt %d)", self.jid, self._reconnection.attempt)
        self._connect()

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
            return
        if self.tls and not self._secure():
            self._fail_start(
                "the server did not offer TLS, and the password is not sent over a plaintext "
                "stream: use --no-tls only for a test server on loopback"
            )
        else:
            self._fail_start(
                f"authentication failed for {self.jid}: check the password (and the JID)"
            )

    def _on_invalid_certificate(self, error: Any) -> None:
        self._fail_start(
            f"the server's TLS certificate is not trusted ({getattr(error, 'reason', error)}): "
            "for a private server, pass its CA with --ca-file PEM"
        )
        self.client.abort()

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

    def _on_disconnected(self, reason: Any) -> None:
        decision = after_disconnect(self.state)
        if decision.announce:  # an established session dropped (server restart, network, ping)
            why = reason or self._last_failure or "the connection closed"
            log.warning("session of %s lost (%s): reconnecting", self.jid, why)
        self.state = decision.state
        if decision.reconnect:
            self._reconnection.schedule()
            return
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
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()
            self._keepalive_task = None
        if client is not None:
            await close_client(client)
            self.client = None
        self.state = SessionState.DISCONNECTED
