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
        async def stop() -> None:
            await self.client.disconnect(wait=1)
            task = getattr(self.client, "_run_out_filters", None)
            if task is not None:
                task.cancel()

        try:
            self.run(stop(), 10)
        except Exception:  # noqa: BLE001
            pass
        self.thread.stop()


@dataclass
class CellResult:
    status: str
    stdout: str = ""
    stderr: str = ""
    error: tuple[str, str] | None = None  # (ename, evalue)
    data: list[dict[str, Any]] = field(default_factory=list)

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

    def run(self, code: str, timeout: float = 60, allow_error: bool = False) -> CellResult:
        """Execute a cell; return its outputs. Raises if it errors, unless allowed.

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
            elif kind in ("execute_result", "display_data"):
                result.data.append(content["data"])

        msg_id = self.kc.execute(code, allow_stdin=False)
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
