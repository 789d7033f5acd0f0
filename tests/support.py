"""Real parts for the tests: a publishing XMPP client and a real IPython kernel."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from pubsub_hook_magic.loopthread import LoopThread

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Publisher:
    """A plain slixmpp client on its own loop thread, driven synchronously.

    It is the "other side" of the tests: creates nodes, publishes items, and can
    send arbitrary stanzas (forged events).
    """

    def __init__(self, jid: str, password: str, host: str, port: int):
        from slixmpp import ClientXMPP

        self.thread = LoopThread(name=f"publisher-{jid}")
        self.jid = jid

        async def make() -> Any:
            client = ClientXMPP(
                jid,
                password,
                loop=asyncio.get_running_loop(),
                plugin_config={"feature_mechanisms": {"unencrypted_plain": True}},
            )
            client.enable_direct_tls = False
            client.enable_starttls = False
            client.enable_plaintext = True
            for plugin in ("xep_0030", "xep_0060", "xep_0115", "xep_0163"):
                client.register_plugin(plugin)
            client.connect(host, port)
            await client.wait_until("session_start", 15)
            client.send_presence()
            await client.get_roster()
            return client

        self.client = self.thread.run(make(), 30)

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return self.thread.run(coro, timeout)

    def create_node(self, node: str, service: str = "pubsub.localhost", max_items: int | None = None) -> None:
        from slixmpp.exceptions import IqError

        form = None
        if max_items is not None:
            form = self.client.plugin["xep_0004"].make_form("submit")
            form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#node_config")
            form.add_field(var="pubsub#max_items", value=str(max_items))

        async def create() -> None:
            try:
                await self.client.plugin["xep_0060"].create_node(service, node, config=form)
            except IqError as exc:
                if exc.iq["error"]["condition"] != "conflict":
                    raise

        self.run(create())

    def delete_node(self, node: str, service: str = "pubsub.localhost") -> None:
        self.run(self.client.plugin["xep_0060"].delete_node(service, node))

    def publish(
        self,
        node: str,
        text: str = "hello",
        *,
        item_id: str | None = None,
        service: str | None = "pubsub.localhost",
        payload: str | None = None,
    ) -> str:
        """Publish one item; returns its id (the server's when none is given)."""
        from slixmpp.xmlstream import ET

        xml = payload or f'<entry xmlns="urn:test">{text}</entry>'
        jid = service if service is not None else self.client.boundjid.bare

        async def publish() -> str:
            iq = await self.client.plugin["xep_0060"].publish(
                jid, node, id=item_id, payload=ET.fromstring(xml), timeout=15
            )
            return iq["pubsub"]["publish"]["item"]["id"] or item_id or ""

        return self.run(publish())

    def publish_many(self, node: str, count: int, service: str = "pubsub.localhost") -> list[str]:
        from slixmpp.xmlstream import ET

        async def publish_all() -> list[str]:
            xep = self.client.plugin["xep_0060"]
            ids = [f"i{n}" for n in range(count)]
            await asyncio.gather(
                *(
                    xep.publish(service, node, id=i, payload=ET.fromstring(f'<n xmlns="urn:test">{i}</n>'), timeout=30)
                    for i in ids
                )
            )
            return ids

        return self.run(publish_all(), 60)

    def subscribe(self, node: str, service: str = "pubsub.localhost") -> None:
        """Subscribe this client's bare JID to a node."""
        self.run(self.client.plugin["xep_0060"].subscribe(service, node, bare=True, timeout=15))

    def subscribers(self, node: str, service: str = "pubsub.localhost") -> set[str]:
        """The bare JIDs subscribed to a node (an owner's view)."""

        async def get() -> set[str]:
            iq = await self.client.plugin["xep_0060"].get_node_subscriptions(service, node, timeout=15)
            return {
                sub["jid"].bare
                for sub in iq["pubsub_owner"]["subscriptions"]
                if sub["subscription"] == "subscribed"
            }

        return self.run(get())

    def send_raw(self, xml: str) -> None:
        async def send() -> None:
            self.client.send_raw(xml)

        self.run(send())

    def subscribe_presence(self, jid: str) -> None:
        async def sub() -> None:
            self.client.send_presence(pto=jid, ptype="subscribe")

        self.run(sub())

    def approve_presence(self, jid: str) -> None:
        async def approve() -> None:
            self.client.send_presence(pto=jid, ptype="subscribed")

        self.run(approve())

    def close(self) -> None:
        from pubsub_hook_magic.xmpp_plugin import close_client

        async def stop() -> None:
            await close_client(self.client)  # (the stream's tasks end before the loop does)

        try:
            self.run(stop(), 10)
        except Exception:  # noqa: BLE001
            pass
        self.thread.stop()


class PubSubEvent:
    """One PubSub event message a :class:`NodeOwner` received (kept as raw XML too)."""

    def __init__(self, kind: str, node: str, sender: str, xml: str, element: Any):
        self.kind = kind  # "item", "retract", "delete", "purge", "subscription", "configuration"
        self.node = node
        self.sender = sender
        self.xml = xml
        self.element = element  # the <event/> element

    def __repr__(self) -> str:
        return f"<PubSubEvent {self.kind} node={self.node!r} from={self.sender}: {self.xml[:300]}>"


_EVENT_NS = "{http://jabber.org/protocol/pubsub#event}"


def _config_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class NodeOwner(Publisher):
    """A :class:`Publisher` that logs in over STARTTLS (verified against ``ca_file``) or in
    plaintext, runs a node owner's requests (XEP-0060 section 8) and records the PubSub
    events it receives.

    Config keywords of ``create_node``/``configure_node`` are node-config fields without
    their ``pubsub#`` prefix (``persist_items``, ``deliver_payloads``, ``access_model``,
    ``notify_delete``, ``max_items``, ``send_last_published_item``...); booleans become
    ``1``/``0``.  Requests raise slixmpp's ``IqError`` with the server's answer.
    """

    def __init__(self, jid: str, password: str, host: str, port: int, *,
                 ca_file: str | os.PathLike | None = None, tls: bool | None = None,
                 presence: bool = True):
        from pathlib import Path

        from slixmpp import ClientXMPP
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath

        use_tls = ca_file is not None if tls is None else tls
        self.thread = LoopThread(name=f"nodeowner-{jid}")
        self.jid = jid
        self.event_queue: queue.Queue[PubSubEvent] = queue.Queue()
        #: every event received, in order (also those already taken by ``wait_event``)
        self.received: list[PubSubEvent] = []
        self.features_xml: list[str] = []  # the raw <stream:features/> the server sent
        #: ``(node, subscriber JID)`` of the subscription authorization requests received
        #: (XEP-0060 8.6: ejabberd sends them for ``access_model=authorize`` nodes)
        self.authorization_requests: list[tuple[str, str]] = []

        async def make() -> Any:
            client = ClientXMPP(
                jid if "/" in jid else f"{jid}/owner",
                password,
                loop=asyncio.get_running_loop(),
                plugin_config={"feature_mechanisms": {} if use_tls else {"unencrypted_plain": True}},
            )
            client.enable_direct_tls = False
            client.enable_starttls = use_tls
            client.enable_plaintext = not use_tls
            if ca_file is not None:
                client.ca_certs = Path(ca_file)
            for plugin in ("xep_0004", "xep_0030", "xep_0060", "xep_0115", "xep_0163"):
                client.register_plugin(plugin)
            # (slixmpp's "message" event is for messages with a <body/> only)
            client.register_handler(
                Callback("NodeOwner events", MatchXPath(f"{{{client.default_ns}}}message/{_EVENT_NS}event"), self._on_message)
            )
            client.register_handler(
                Callback(
                    "NodeOwner authorizations",
                    MatchXPath(f"{{{client.default_ns}}}message/{{jabber:x:data}}x"),
                    self._on_form,
                )
            )

            def features_in(stanza: Any) -> Any:
                if stanza.xml.tag == "{http://etherx.jabber.org/streams}features":
                    self.features_xml.append(str(stanza))
                return stanza

            client.add_filter("in", features_in)
            failed = asyncio.get_running_loop().create_future()
            for event in ("failed_all_auth", "no_auth"):
                client.add_event_handler(
                    event, lambda _e, event=event: failed.done() or failed.set_exception(PermissionError(f"{jid}: {event}"))
                )
            client.connect(host, port)
            started = asyncio.ensure_future(client.wait_until("session_start", 30))
            await asyncio.wait({started, failed}, return_when=asyncio.FIRST_COMPLETED)
            if failed.done():
                started.cancel()
                client.abort()
                failed.result()
            failed.cancel()
            await started
            if presence:
                client.send_presence()
                await client.get_roster()
            return client

        self.client = self.thread.run(make(), 45)

    # -- events ----------------------------------------------------------------------

    def _on_message(self, msg: Any) -> None:
        event = msg.xml.find(f"{_EVENT_NS}event")
        if event is None:
            return
        for child in event:
            kind = child.tag.removeprefix(_EVENT_NS)
            if kind == "items":
                kind = "retract" if child.find(f"{_EVENT_NS}retract") is not None else "item"
            got = PubSubEvent(kind, child.get("node", ""), str(msg["from"]), str(msg), event)
            self.received.append(got)
            self.event_queue.put(got)

    def _on_form(self, msg: Any) -> None:
        form = msg.xml.find("{jabber:x:data}x")
        values: dict[str, str] = {}
        for form_field in form.iter("{jabber:x:data}field"):
            value = form_field.find("{jabber:x:data}value")
            values[form_field.get("var", "")] = (value.text or "") if value is not None else ""
        if values.get("FORM_TYPE") == "http://jabber.org/protocol/pubsub#subscribe_authorization":
            self.authorization_requests.append((values.get("pubsub#node", ""), values.get("pubsub#subscriber_jid", "")))

    def wait_event(self, kind: str | None = None, node: str | None = None,
                   timeout: float = 5.0) -> PubSubEvent:
        """The next received event of ``kind`` for ``node`` (others are skipped);
        ``TimeoutError`` if none comes within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                got = self.event_queue.get(timeout=remaining)
            except queue.Empty:
                break
            if (kind is None or got.kind == kind) and (node is None or got.node == node):
                return got
        raise TimeoutError(f"no {kind or 'PubSub'} event for node {node!r} within {timeout} s")

    def events(self, seconds: float = 0.0) -> list[PubSubEvent]:
        """Events not yet taken, after waiting ``seconds`` for more to arrive."""
        if seconds:
            time.sleep(seconds)
        return drain(self.event_queue)

    # -- owner requests (XEP-0060 section 8) ---------------------------------------------

    def _form(self, config: dict[str, Any]) -> Any:
        form = self.client.plugin["xep_0004"].make_form("submit")
        form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#node_config")
        for key, value in config.items():
            form.add_field(var=key if key.startswith("pubsub#") else f"pubsub#{key}", value=_config_value(value))
        return form

    def create_node(self, node: str, service: str = "pubsub.localhost", max_items: int | None = None,
                    **config: Any) -> None:
        """Create ``node`` with these config fields (an existing node is an error)."""
        if max_items is not None:
            config["max_items"] = max_items
        form = self._form(config) if config else None
        self.run(self.client.plugin["xep_0060"].create_node(service, node, config=form, timeout=15))

    def configure_node(self, node: str, service: str = "pubsub.localhost", **config: Any) -> None:
        self.run(self.client.plugin["xep_0060"].set_node_config(service, node, self._form(config), timeout=15))

    def node_config(self, node: str, service: str = "pubsub.localhost") -> dict[str, Any]:
        """The node's configuration form values, ``pubsub#`` prefixes dropped."""
        iq = self.run(self.client.plugin["xep_0060"].get_node_config(service, node, timeout=15))
        values = iq["pubsub_owner"]["configure"]["form"].get_values()
        return {k.removeprefix("pubsub#"): v for k, v in values.items()}

    def purge(self, node: str, service: str = "pubsub.localhost") -> None:
        self.run(self.client.plugin["xep_0060"].purge(service, node, timeout=15))

    def publish(
        self,
        node: str,
        text: str = "hello",
        *,
        item_id: str | None = None,
        id: str | None = None,  # XEP-0060's name
        service: str | None = "pubsub.localhost",
        payload: str | None = None,
    ) -> str:
        """As :meth:`Publisher.publish`; a second argument starting with ``<`` is the
        payload's XML itself, and ``id=`` is ``item_id=``."""
        if payload is None and text.lstrip().startswith("<"):
            payload = text
        return super().publish(node, text, item_id=item_id or id, service=service, payload=payload)

    def get_items(self, node: str, service: str = "pubsub.localhost",
                  max_items: int | None = None) -> list[tuple[str, str | None]]:
        """``(id, payload XML or None)`` of the node's items, as the server answers."""
        from slixmpp.xmlstream import tostring

        iq = self.run(self.client.plugin["xep_0060"].get_items(service, node, max_items=max_items, timeout=15))
        got = []
        for el in iq.xml.iter("{http://jabber.org/protocol/pubsub}item"):
            children = list(el)
            got.append((el.get("id", ""), tostring(children[0]) if children else None))
        return got

    def unsubscribe(self, node: str, service: str = "pubsub.localhost") -> None:
        self.run(self.client.plugin["xep_0060"].unsubscribe(service, node, bare=True, timeout=15))

    def subscriptions(self, node: str, service: str = "pubsub.localhost") -> dict[str, str]:
        """``{jid: state}`` of the node's subscriptions (owner's view, XEP-0060 8.8.1)."""

        async def get() -> dict[str, str]:
            iq = await self.client.plugin["xep_0060"].get_node_subscriptions(service, node, timeout=15)
            return {str(sub["jid"]): sub["subscription"] for sub in iq["pubsub_owner"]["subscriptions"]}

        return self.run(get())

    def set_subscription(self, node: str, jid: str, state: str, service: str = "pubsub.localhost") -> None:
        """Set ``jid``'s subscription to ``state`` (``"none"``, ``"subscribed"``...), XEP-0060 8.8.2."""
        self.run(
            self.client.plugin["xep_0060"].modify_subscriptions(service, node, subscriptions=[(jid, state)], timeout=15)
        )

    def pending_requests(self, node: str, service: str = "pubsub.localhost") -> list[str]:
        """JIDs whose subscription waits for the owner's approval: those the server asked
        about (authorization forms received) and those listed as ``pending`` (ejabberd
        23.01 does not list pending ones; Prosody 0.12 has no ``authorize`` model)."""
        pending = {jid for jid, state in self.subscriptions(node, service).items() if state == "pending"}
        current = self.subscriptions(node, service)
        for asked_node, jid in self.authorization_requests:
            if asked_node == node and current.get(jid) != "subscribed":
                pending.add(jid)
        return sorted(pending)

    def approve(self, node: str, jid: str, service: str = "pubsub.localhost") -> None:
        """Approve a pending subscription (by setting it to ``subscribed``, XEP-0060 8.8.2)."""
        self.set_subscription(node, jid, "subscribed", service)

    def affiliations(self, node: str, service: str = "pubsub.localhost") -> dict[str, str]:
        """``{jid: affiliation}`` of the node (owner's view, XEP-0060 8.9.1)."""

        async def get() -> dict[str, str]:
            iq = await self.client.plugin["xep_0060"].get_node_affiliations(service, node, timeout=15)
            return {str(a["jid"]): a["affiliation"] for a in iq["pubsub_owner"]["affiliations"]}

        return self.run(get())


@dataclass
class CellResult:
    status: str
    stdout: str = ""
    stderr: str = ""
    error: tuple[str, str] | None = None  # (ename, evalue)
    data: list[dict[str, Any]] = field(default_factory=list)
    #: The error's traceback as the front end shows it (ANSI colours removed).
    traceback: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


class Kernel:
    """A real IPython kernel (ipykernel via jupyter_client), one per test."""

    def __init__(self, env: dict[str, str], cwd: str | None = None):
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env, cwd=cwd)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.iopub: list[dict[str, Any]] = []

    def run(self, code: str, timeout: float = 60, allow_error: bool = False, cell_id: str | None = None) -> CellResult:
        """Execute a cell; return its outputs. Raises if it errors, unless allowed.
        ``cell_id``: the cell's id, sent as JupyterLab does (the request's
        ``cellId`` metadata).

        Every iopub message seen meanwhile (widget updates sent from background
        threads included) is appended to ``self.iopub``."""
        result = CellResult(status="")

        def on_output(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    result.stdout += content["text"]
                else:
                    result.stderr += content["text"]
            elif kind == "error":
                result.error = (content["ename"], content["evalue"])
                result.traceback = [ANSI.sub("", line) for line in content["traceback"]]
            elif kind in ("execute_result", "display_data"):
                result.data.append(content["data"])

        if cell_id is None:
            msg_id = self.kc.execute(code, allow_stdin=False)
        else:
            content = {
                "code": code, "silent": False, "store_history": True, "user_expressions": {},
                "allow_stdin": False, "stop_on_error": True,
            }
            request = self.kc.session.msg("execute_request", content, metadata={"cellId": cell_id})
            self.kc.shell_channel.send(request)
            msg_id = request["header"]["msg_id"]
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"cell did not finish in {timeout} s: {code[:80]}")
            try:
                msg = self.kc.get_iopub_msg(timeout=remaining)
            except queue.Empty:
                continue
            self.iopub.append(msg)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            on_output(msg)
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        result.status = reply["content"]["status"]
        if result.status == "error" and result.error is None:
            result.error = (reply["content"].get("ename", ""), reply["content"].get("evalue", ""))
        result.stderr = ANSI.sub("", result.stderr)
        if result.status != "ok" and not allow_error:
            raise AssertionError(f"cell failed: {result.error}\n{result.text}\n--- code:\n{code}")
        return result

    def drain_iopub(self, seconds: float) -> list[dict[str, Any]]:
        """Collect iopub messages for ``seconds`` (background widget updates)."""
        deadline = time.monotonic() + seconds
        got = []
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                got.append(self.kc.get_iopub_msg(timeout=remaining))
            except queue.Empty:
                break
        self.iopub.extend(got)
        return got

    def usage_error(self, code: str) -> str:
        """Run a cell that must fail with a UsageError; return its message."""
        result = self.run(code, allow_error=True)
        assert result.status == "error", f"expected a UsageError, got: {result.text}"
        assert result.error is not None and result.error[0] == "UsageError", result
        assert "Traceback" not in result.text, result.text
        return result.error[1]

    def eval(self, expr: str, timeout: float = 30) -> Any:
        """The value of a Python expression in the kernel (must be a literal)."""
        import ast

        out = self.run(f"print(repr({expr}))", timeout=timeout).stdout.strip()
        return ast.literal_eval(out)

    def wait_for(self, expr: str, predicate: Callable[[Any], bool], timeout: float = 15) -> Any:
        """Poll ``expr`` in the kernel until ``predicate(value)``; return the value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.eval(expr)
            if predicate(value):
                return value
            time.sleep(0.1)
        raise AssertionError(f"{expr} never satisfied the condition; last value: {value!r}")

    def crash(self) -> None:
        """Kill the kernel process with SIGKILL, as a crash would."""
        import signal

        os.kill(self.km.provisioner.pid, signal.SIGKILL)
        self._closed = True
        self.kc.stop_channels()
        try:
            self.km.shutdown_kernel(now=True)
        except Exception:  # noqa: BLE001 - already dead
            pass

    def close(self) -> None:
        """Shut the kernel down gracefully (idempotent)."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        try:
            self.kc.stop_channels()
        finally:
            self.km.shutdown_kernel(now=False)


def kernel_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "PYTEST_"))}
    env.update(extra)
    return env


def drain(q: "queue.Queue[Any]") -> list[Any]:
    items = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            return items


def stored_hooks(data_dir: os.PathLike[str] | str) -> dict[str, list[dict[str, Any]]]:
    """Every account's stored hook records in ``data_dir``, read as the product reads
    them (the base file and its journal), by bare JID."""
    from pubsub_hook_magic.accountfiles import stored_accounts
    from pubsub_hook_magic.store import HookStore

    return {account: HookStore(account, data_dir).hooks() for account in stored_accounts(data_dir)}
