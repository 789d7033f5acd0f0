"""The XMPP session: one slixmpp client, its connection, and what hooks need of it.

:class:`XmppSession` runs on whatever asyncio loop starts it (the manager's loop
thread in a notebook, ``asyncio.run`` in a script). It logs in (TLS required and
verified unless told otherwise), sends presence on every new stream, subscribes to
PubSub nodes and registers PEP ``+notify`` interests, and hands each published item
to ``on_item(service, node, item)``, where ``service`` is the bare JID that sent the
event: an event forged by another JID cannot pretend to come from a hook's service.

slixmpp is imported lazily, so loading the IPython extension stays fast.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import ssl
from typing import Any, Callable

from .hooks import HookError
from .states import SessionState

__all__ = ["XmppSession", "SessionError", "RequestError", "bare_jid"]

log = logging.getLogger(__name__)

EVENT_NS = "http://jabber.org/protocol/pubsub#event"
#: Requests to the server awaiting their answer at once, at most (see ``_request``).
MAX_IN_FLIGHT = 48


class SessionError(HookError):
    """Connecting, or a request to the server, failed; the message says why."""


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


class RequestError(SessionError):
    """A PubSub request failed with an XMPP error condition; ``hint`` says what usually
    fixes it."""

    def __init__(self, what: str, condition: str, text: str, hint: str = ""):
        self.what = what
        self.condition = condition
        self.text = text
        self.hint = hint
        detail = f"{condition}{': ' + text if text else ''}"
        super().__init__(f"{what} failed ({detail})" + (f": {hint}" if hint else ""))


def _event_item(item: Any) -> Any:
    """A retrieved ``<item/>`` as the stanza class of an event's item, so that hook code
    reads the same interfaces whatever brought the item (slixmpp's retrieved ``Item``
    has no ``publisher``: asking for it logs a warning on the root logger, which in a
    kernel prints into a cell)."""
    from slixmpp.plugins.xep_0060.stanza.pubsub_event import EventItem

    return EventItem(xml=item.xml)


def publish_hint(service: str, node: str, condition: str, me: str) -> str:
    """What usually fixes a refused publish, by the server's error condition."""
    pep = service == me
    if condition == "forbidden":
        if pep:
            return "the server refused a publish to your own PEP node: check the node's publish model"
        return (
            f"only the node's owner and its publishers may publish to it: ask the owner of "
            f"{node!r} (or an admin of {service}) to make {me} a publisher or to set its "
            f"publish model to open, or publish to a node of your own "
            f"(%hook node create -s {service} -n NAME) or to your PEP (leave out -s)"
        )
    if condition == "item-not-found":
        return f"create it first: %hook node create -s {service} -n {node}"
    if condition == "not-acceptable":
        return "the node refused the item: it may be too big, or not the payload type the node takes"
    if condition in ("conflict", "precondition-not-met"):
        return "the node's configuration does not match what the publish asks for"
    if condition in ("service-unavailable", "remote-server-not-found", "feature-not-implemented"):
        return f"{service} does not answer as a PubSub service: check the JID (%hook nodes {service})"
    return ""


def create_hint(service: str, node: str, condition: str, me: str) -> str:
    """What usually fixes a refused node creation."""
    if condition == "conflict":
        return f"node {node!r} already exists on {service}: hook it (%hook create -s {service} -n {node} ...)"
    if condition == "forbidden":
        return (
            f"{service} does not let {me} create nodes (many services leave that to their "
            "admins): ask an admin, or use your own PEP (leave out -s)"
        )
    if condition in ("not-acceptable", "bad-request", "not-allowed", "feature-not-implemented"):
        return f"{service} does not take this node configuration: try another --access-model, or none"
    if condition in ("service-unavailable", "remote-server-not-found"):
        return f"{service} does not answer as a PubSub service: check the JID"
    return ""


def _iq_condition(exc: BaseException) -> tuple[str, str]:
    """(condition, text) of an IqError; ("timeout", "") of an IqTimeout."""
    iq = getattr(exc, "iq", None)
    if iq is None:
        return ("timeout", "")
    return (iq["error"]["condition"] or "error", iq["error"]["text"] or "")


class XmppSession:
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
        self._attempt = 0
        self._retry: asyncio.TimerHandle | None = None
        self._keepalive_task: asyncio.Task[None] | None = None
        self.client: Any = None
        #: xep_0060's item-event handler, called by ours when someone listens to it.
        self._xep_0060_items: Callable[[Any], None] | None = None
        self.events_received = 0
        self._password = password
        self._started: asyncio.Future[None] | None = None
        self._last_failure = ""
        self._interests: set[str] = set()
        self._resource: str | None = None
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)

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
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import StanzaPath

        mechanisms = {}
        if not self.tls:
            mechanisms = {"unencrypted_plain": True, "unencrypted_scram": True}
        client = ClientXMPP(
            self._full_jid(),
            self._password,
            loop=asyncio.get_running_loop(),
            plugin_config={"feature_mechanisms": mechanisms},
        )
        for plugin in ("xep_0030", "xep_0060", "xep_0115", "xep_0163", "xep_0199"):
            client.register_plugin(plugin)
        if self.tls:
            client.enable_plaintext = False
            client.enable_starttls = not self.direct_tls
            client.enable_direct_tls = self.direct_tls or (self.host is None)
            if self.ca_file:
                client.ca_certs = self.ca_file
        else:
            client.enable_plaintext = True
            client.enable_starttls = False
            client.enable_direct_tls = False
        client.add_event_handler("session_start", self._on_session_start)
        client.add_event_handler("failed_all_auth", self._on_failed_auth)
        client.add_event_handler("no_auth", self._on_failed_auth)
        client.add_event_handler("ssl_invalid_chain", self._on_invalid_certificate)
        client.add_event_handler("connection_failed", self._on_connection_failed)
        client.add_event_handler("reconnect_delay", self._on_reconnect_delay)
        client.add_event_handler("stream_error", self._on_stream_error)
        client.add_event_handler("disconnected", self._on_disconnected)
        # One handler for item events instead of two: ours takes the place of
        # xep_0060's, and passes each event on to it only when something (hook code,
        # through ``client``) listens to the events it raises. Matching and handling
        # every event twice cost about 20 us per item, a tenth of bare slixmpp's cost.
        xep_0060 = client.plugin["xep_0060"]
        self._xep_0060_items = getattr(xep_0060, "_handle_event_items", None)
        if self._xep_0060_items is not None:
            client.remove_handler("Pubsub Event: Items")
        client.register_handler(
            Callback(
                "pubsub_hook_magic items",
                StanzaPath("message/pubsub_event/items"),
                self._on_event_items,
            )
        )
        for kind in ("purge", "delete"):
            client.register_handler(
                Callback(
                    f"pubsub_hook_magic {kind}",
                    StanzaPath(f"message/pubsub_event/{kind}"),
                    self._on_event_node,
                )
            )
        return client

    async def start(self, timeout: float = 30.0) -> None:
        """Connect and log in; return once the session is up, or raise SessionError."""
        loop = asyncio.get_running_loop()
        self._started = loop.create_future()
        self.client = self._make_client()
        self.state = SessionState.CONNECTING
        if self.host and self.port:
            self.client.connect(self.host, self.port)
        else:
            self.client.connect()
        try:
            await asyncio.wait_for(asyncio.shield(self._started), timeout)
        except asyncio.TimeoutError:
            await self.stop()
            where = f"{self.host}:{self.port}" if self.host else self.bare.split("@")[-1]
            detail = f" ({self._last_failure})" if self._last_failure else ""
            raise SessionError(
                f"no XMPP session with {where} after {timeout:g} s{detail}: check the "
                "server address and that it is running"
            ) from None
        except SessionError:
            await self.stop()
            raise
        except BaseException:
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
        self._attempt = 0
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
                except Exception:  # noqa: BLE001
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

    def _reconnect_later(self) -> None:
        """Schedule the next attempt: 0.5 s, 1 s, 2 s… up to 30 s, with some jitter."""
        delay = min(30.0, 0.5 * 2**self._attempt) * random.uniform(1.0, 1.2)
        self._attempt += 1
        if self._retry is not None:
            self._retry.cancel()
        self._retry = asyncio.get_running_loop().call_later(delay, self._reconnect_now)

    def _reconnect_now(self) -> None:
        self._retry = None
        if self.state != SessionState.RECONNECTING or self.client is None:
            return
        log.info("reconnecting %s (attempt %d)", self.jid, self._attempt)
        if self.host and self.port:
            self.client.connect(self.host, self.port)
        else:
            self.client.connect()

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
        if self.state == SessionState.RECONNECTING:
            self.client.cancel_connection_attempt()
            self._reconnect_later()
            return
        if self._started is not None and not self._started.done():
            where = f"{self.host}:{self.port}" if self.host else self.bare.split("@")[-1]
            self.client.cancel_connection_attempt()
            self._fail_start(
                f"cannot reach the XMPP server {where} ({self._last_failure or 'refused'}): "
                "check --host/--port and that the server is running"
            )

    def _on_stream_error(self, error: Any) -> None:
        self._last_failure = f"stream error: {error['condition']}"

    def _on_disconnected(self, reason: Any) -> None:
        if self.state in (SessionState.CONNECTED, SessionState.RECONNECTING):
            # An established session dropped (server restart, network, ping timeout).
            if self.state == SessionState.CONNECTED:
                why = reason or self._last_failure or "the connection closed"
                log.warning("session of %s lost (%s): reconnecting", self.jid, why)
            self.state = SessionState.RECONNECTING
            self._reconnect_later()
            return
        if self.state not in (SessionState.STOPPING, SessionState.FAILED):
            self.state = SessionState.DISCONNECTED
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
        client = self.client
        self.state = SessionState.STOPPING
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()
            self._keepalive_task = None
        if client is not None:
            client.cancel_connection_attempt()
            try:
                await asyncio.wait_for(client.disconnect(wait=1.0), 3.0)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                client.abort()
            filters = getattr(client, "_run_out_filters", None)
            if filters is not None and not filters.done():
                filters.cancel()
                try:
                    await filters
                except (asyncio.CancelledError, Exception):  # noqa: BLE001
                    pass
            self.client = None
        self.state = SessionState.DISCONNECTED

    # ------------------------------------------------------------------ events

    def _on_event_items(self, msg: Any) -> None:
        """One ``<items/>`` event: call ``on_item`` once per ``<item/>`` in it."""
        self.events_received += 1
        sender = msg["from"]
        service = sender.bare if sender else self.client.boundjid.bare
        items = msg["pubsub_event"]["items"]
        node = items["node"]
        for item in list(items.iterables):  # never iterate the stanza itself (see docs)
            try:
                if item.name == "item":
                    self.on_item(service, node, item)
                elif item.name == "retract" and self.on_event is not None:
                    self.on_event(service, node, "retract", item)
            except Exception:  # noqa: BLE001 - a bug of ours must not bounce an error to the sender
                log.exception("dispatching an event of %s/%s failed", service, node)
        handle = self._xep_0060_items
        if handle is not None:
            client = self.client
            if (
                client.event_handled("pubsub_publish")
                or client.event_handled("pubsub_retract")
                or node in client.plugin["xep_0060"].node_event_map
            ):
                handle(msg)  # pubsub_publish, pubsub_retract and mapped node events

    def _on_event_node(self, msg: Any) -> None:
        """A ``<purge/>`` or ``<delete/>`` event: ``on_event`` for the node."""
        if self.on_event is None:
            return
        self.events_received += 1
        sender = msg["from"]
        service = sender.bare if sender else self.client.boundjid.bare
        event = msg["pubsub_event"]
        for kind in ("purge", "delete"):
            # (reading event[kind] would add the element when it is not there)
            if event.xml.find(f"{{{EVENT_NS}}}{kind}") is not None:
                element = event[kind]
                try:
                    self.on_event(service, element["node"], kind, element)
                except Exception:  # noqa: BLE001
                    log.exception("dispatching a %s event of %s failed", kind, service)

    # ------------------------------------------------------------------ requests

    def _pubsub(self) -> Any:
        return self.client.plugin["xep_0060"]

    async def _request(self, what: str, make: Callable[[], Any]) -> Any:
        """Send one request (``make()`` builds and sends it) and await its answer, with
        at most :data:`MAX_IN_FLIGHT` requests waiting at once: many nodes go out
        together without flooding the server (slixmpp also matches each answer by a
        scan of the waiting requests)."""
        from slixmpp.exceptions import IqError, IqTimeout

        async with self._in_flight:
            try:
                return await make()
            except (IqError, IqTimeout) as exc:
                condition, text = _iq_condition(exc)
                raise RequestError(what, condition, text) from None

    async def subscription_exists(self, service: str, node: str) -> bool:
        """Whether this account (bare JID) is already subscribed to the node."""
        iq = await self._request(
            f"listing subscriptions to {node!r} on {service}",
            lambda: self._pubsub().get_subscriptions(service, node, timeout=15),
        )
        me = self.client.boundjid.bare
        for sub in iq["pubsub"]["subscriptions"]:
            if sub["jid"].bare == me and sub["node"] in ("", node) and sub["subscription"] in (
                "subscribed",
                "",
            ):
                return True
        return False

    async def subscribe(self, service: str, node: str) -> None:
        """Subscribe the account's bare JID to the node."""
        iq = await self._request(
            f"subscribing to {node!r} on {service}",
            lambda: self._pubsub().subscribe(service, node, bare=True, timeout=15),
        )
        state = iq["pubsub"]["subscription"]["subscription"]
        if state not in ("", "subscribed"):
            raise SessionError(
                f"the subscription to {node!r} on {service} is {state}: the node's owner "
                "must approve it before events arrive"
            )

    async def unsubscribe(self, service: str, node: str) -> None:
        await self._request(
            f"unsubscribing from {node!r} on {service}",
            lambda: self._pubsub().unsubscribe(service, node, bare=True, timeout=15),
        )

    async def last_items(self, service: str, node: str, max_items: int | None = 1) -> list[Any]:
        """The newest ``max_items`` items of the node (all it keeps with None), oldest
        first."""
        iq = await self._request(
            f"reading items of {node!r} on {service}",
            lambda: self._pubsub().get_items(service, node, max_items=max_items, timeout=30),
        )
        return [_event_item(i) for i in iq["pubsub"]["items"].iterables if i.name == "item"]

    async def retract(self, service: str, node: str, item_id: str) -> None:
        """Retract an item, asking the service to notify the subscribers."""
        await self._request(
            f"retracting {item_id!r} from {node!r} on {service}",
            lambda: self._pubsub().retract(service, node, item_id, notify=True, timeout=15),
        )

    async def node_config(self, service: str, node: str) -> dict[str, Any]:
        """The node's configuration form, as ``{var: value}`` (owners only)."""
        iq = await self._request(
            f"reading the configuration of {node!r} on {service}",
            lambda: self._pubsub().get_node_config(service, node, timeout=15),
        )
        form = iq["pubsub_owner"]["configure"]["form"]
        return dict(form.get_values())

    async def node_item_ids(self, service: str, node: str) -> set[str]:
        """The ids of the items a node holds, without their payloads (service discovery
        of the node's items, XEP-0060 5.5)."""
        iq = await self._request(
            f"listing the items of {node!r} on {service}",
            lambda: self.client.plugin["xep_0030"].get_items(jid=service, node=node, timeout=30),
        )
        return {name for _jid, _node, name in iq["disco_items"]["items"] if name}

    async def publish(self, service: str, node: str, payload: Any, item_id: str | None = None) -> str:
        """Publish ``payload`` (an XML element) to the node; returns the item id. A
        refusal says what the server said and what usually fixes it."""
        try:
            iq = await self._request(
                f"publishing to {node!r} on {service}",
                lambda: self._pubsub().publish(service, node, id=item_id, payload=payload, timeout=15),
            )
        except RequestError as exc:
            hint = publish_hint(service, node, exc.condition, self.bare)
            raise RequestError(exc.what, exc.condition, exc.text, hint) from None
        return iq["pubsub"]["publish"]["item"]["id"] or item_id or ""

    async def create_node(self, service: str, node: str, config: dict[str, str] | None = None) -> str:
        """Create a node (XEP-0060 8.1) with the configuration fields given (e.g.
        ``{"pubsub#access_model": "open"}``); returns its name (a server may choose
        another). A refusal says what usually fixes it."""
        form = None
        if config:
            form = self.client.plugin["xep_0004"].make_form("submit")
            form.add_field(
                var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#node_config"
            )
            for var, value in config.items():
                form.add_field(var=var, value=value)
        try:
            iq = await self._request(
                f"creating node {node!r} on {service}",
                lambda: self._pubsub().create_node(service, node, config=form, timeout=15),
            )
        except RequestError as exc:
            hint = create_hint(service, node, exc.condition, self.bare)
            raise RequestError(exc.what, exc.condition, exc.text, hint) from None
        return iq["pubsub"]["create"]["node"] or node

    async def list_nodes(self, service: str) -> list[tuple[str, str]]:
        """The nodes a service lists in service discovery, as (node, name)."""
        iq = await self._request(
            f"listing the nodes of {service}",
            lambda: self.client.plugin["xep_0030"].get_items(jid=service, timeout=15),
        )
        return [
            (node, name or "")
            for _jid, node, name in iq["disco_items"]["items"]
            if node
        ]

    async def set_pep_interest(self, node: str, interested: bool) -> None:
        """Add or remove ``node+notify`` in our caps, then tell the server (presence)."""
        await self.set_pep_interests([node], interested)

    async def set_pep_interests(self, nodes: Any, interested: bool) -> None:
        """Add or remove ``+notify`` for several nodes at once: one caps update and one
        presence, however many nodes."""
        disco = self.client.plugin["xep_0030"]
        changed = False
        for node in nodes:
            feature = f"{node}+notify"
            if interested and node not in self._interests:
                disco.add_feature(feature)
                self._interests.add(node)
                changed = True
            elif not interested and node in self._interests:
                # xep_0163.remove_interest() of slixmpp 1.17 removes the wrong feature.
                disco.del_feature(feature=feature)
                self._interests.discard(node)
                changed = True
        if changed:
            await self.client.plugin["xep_0115"].update_caps(broadcast=False)
            self.client.send_presence()
