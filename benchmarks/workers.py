"""The benchmark's worker processes, each with its own asyncio loop and XMPP account.

* :class:`PublisherRole`: publishes items (``t`` = ``time.time()`` at send, in the
  payload), either with a fixed number of publishes in flight or paced at a rate.
* :class:`BareRole`: the physical limit: a bare slixmpp client that only counts
  ``pubsub_publish`` events (optionally recording latency from the payload).
  :class:`BareThread` runs one in a thread of another process (a kernel).
* :class:`HookRole`: our :class:`~pubsub_hook_magic.manager.HookManager`, exactly as a
  script uses it (``asyncio.run``), running hooks.
* :class:`DistanceRole` (rows 8-10): a HookManager, and a bare slixmpp client for the
  floor, reaching Prosody through a delaying, byte-counting
  :class:`~pubsub_hook_magic.testing.proxy.TcpProxy`.

Each worker is started with the ``spawn`` method and serves commands sent over a
:mod:`multiprocessing` pipe: ``(name, args)`` -> ``("ok", result)`` or
``("error", traceback)``. While it waits for a command, the pipe is read by an
executor thread blocked in ``recv`` (no CPU, no GIL), and the loop handles XMPP.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import tempfile
import time
import traceback
from typing import Any

SERVICE = "pubsub.localhost"


def worker_main(conn: Any, role: str, kwargs: dict[str, Any]) -> None:
    """Entry point of a spawned worker process."""
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("slixmpp").setLevel(logging.CRITICAL)
    obj = ROLES[role](**kwargs)
    try:
        asyncio.run(_serve(conn, obj))
    except KeyboardInterrupt:
        pass


async def _serve(conn: Any, obj: Any) -> None:
    loop = asyncio.get_running_loop()
    try:
        await obj.start()
    except BaseException:  # noqa: BLE001
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ok", {"pid": os.getpid()}))
    while True:
        try:
            name, args = await loop.run_in_executor(None, conn.recv)
        except EOFError:
            name, args = "stop", ()
        try:
            if name == "stop":
                await obj.stop()
                conn.send(("ok", None))
                return
            result = await getattr(obj, f"cmd_{name}")(*args)
        except BaseException:  # noqa: BLE001 - reported to the orchestrator
            conn.send(("error", traceback.format_exc()))
        else:
            conn.send(("ok", result))


def write_calls() -> int:
    """This process's ``write`` system calls so far (``syscw`` of ``/proc/self/io``):
    a journal line is one; the subscribers send nothing per item."""
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("syscw:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rss() -> int:
    gc.collect()
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:  # /proc fallback
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _client(jid: str, password: str, host: str, port: int) -> Any:
    from slixmpp import ClientXMPP

    client = ClientXMPP(
        jid,
        password,
        loop=asyncio.get_running_loop(),
        plugin_config={"feature_mechanisms": {"unencrypted_plain": True}},
    )
    client.enable_direct_tls = False
    client.enable_starttls = False
    client.enable_plaintext = True
    for plugin in ("xep_0030", "xep_0004", "xep_0060"):
        client.register_plugin(plugin)
    client.connect(host, port)
    await client.wait_until("session_start", 30)
    client.send_presence()
    return client


async def _close(client: Any) -> None:
    try:
        await asyncio.wait_for(client.disconnect(wait=1.0), 5)
    except Exception:  # noqa: BLE001
        client.abort()
    task = getattr(client, "_run_out_filters", None)
    if task is not None and not task.done():
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass


# ------------------------------------------------------------------------ publisher


class PublisherRole:
    def __init__(self, jid: str, password: str, host: str, port: int):
        self.args = (jid, password, host, port)
        self.client: Any = None

    async def start(self) -> None:
        self.client = await _client(*self.args)

    async def stop(self) -> None:
        await _close(self.client)

    async def cmd_create_nodes(self, nodes: list[str], inflight: int = 50, max_items: int | None = None) -> float:
        """Create nodes on the PubSub service (an existing one is fine), keeping
        ``max_items`` items (Prosody's default: 20); returns seconds."""
        from slixmpp.exceptions import IqError

        xep = self.client.plugin["xep_0060"]
        sem = asyncio.Semaphore(inflight)
        started = time.perf_counter()
        config = None
        if max_items is not None:
            config = self.client.plugin["xep_0004"].make_form("submit")
            config.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#node_config")
            config.add_field(var="pubsub#max_items", value=str(max_items))

        async def create(node: str) -> None:
            async with sem:
                try:
                    await xep.create_node(SERVICE, node, config=config, timeout=60)
                except IqError as exc:
                    if exc.iq["error"]["condition"] != "conflict":
                        raise

        await asyncio.gather(*(create(n) for n in nodes))
        return time.perf_counter() - started

    async def cmd_publish(
        self,
        node: str,
        count: int,
        prefix: str,
        inflight: int = 100,
        rate: float | None = None,
        size: int = 0,
    ) -> dict[str, Any]:
        """Publish ``count`` items with at most ``inflight`` unanswered, either as fast
        as that allows or paced at ``rate`` items/s. The payload carries
        ``t`` = ``time.time()`` taken just before the publish is sent; with ``size``,
        text pads it to about ``size`` bytes serialised (their sum is returned)."""
        from slixmpp.xmlstream import ET

        xep = self.client.plugin["xep_0060"]
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(inflight)
        done = loop.create_future()
        state = {"acked": 0, "errors": 0, "t_last_ack": 0.0, "first_error": None}
        tag = "{urn:bench}x"

        def finished(fut: asyncio.Future) -> None:
            sem.release()
            state["acked"] += 1
            if fut.cancelled() or fut.exception() is not None:
                state["errors"] += 1
                if state["first_error"] is None:
                    state["first_error"] = repr(fut.exception() if not fut.cancelled() else "cancelled")
            state["t_last_ack"] = time.time()
            if state["acked"] == count and not done.done():
                done.set_result(None)

        t_first = None
        payload_bytes = 0
        cpu0 = time.process_time()
        start = time.time() + 0.01
        for i in range(count):
            if rate:
                delay = start + i / rate - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await sem.acquire()
            now = time.time()
            if t_first is None:
                t_first = now
            payload = ET.Element(tag, t=repr(now))
            if size:
                payload_bytes += _pad(payload, size)
            fut = asyncio.ensure_future(
                xep.publish(SERVICE, node, id=f"{prefix}{i}", payload=payload, timeout=120)
            )
            fut.add_done_callback(finished)
        t_last_send = time.time()
        if count:
            await asyncio.wait_for(done, 300)
        return {
            "t_first": t_first,
            "t_last_send": t_last_send,
            "t_last_ack": state["t_last_ack"],
            "errors": state["errors"],
            "first_error": state["first_error"],
            "send_rate": count / (t_last_send - t_first) if count > 1 and t_last_send > t_first else None,
            "cpu": time.process_time() - cpu0,
            "payload_bytes": payload_bytes,
        }

    async def cmd_publish_nodes(self, nodes: list[str], count: int, prefix: str, size: int = 0) -> dict[str, Any]:
        """``count`` items to each node in turn (:meth:`cmd_publish`); the errors and
        payload bytes of all."""
        total = {"errors": 0, "first_error": None, "payload_bytes": 0}
        for node in nodes:
            got = await self.cmd_publish(node, count, prefix, 100, None, size)
            total["errors"] += got["errors"]
            total["first_error"] = total["first_error"] or got["first_error"]
            total["payload_bytes"] += got["payload_bytes"]
        return total


def _pad(payload: Any, size: int) -> int:
    """Pad ``payload``'s text so that it serialises to about ``size`` bytes; returns its size."""
    from slixmpp.xmlstream import tostring

    payload.text = ""
    payload.text = "x" * max(0, size - len(tostring(payload)))
    return len(tostring(payload).encode())


# ------------------------------------------------------------------------ bare client


class BareRole:
    """A slixmpp client that counts ``pubsub_publish`` events, nothing else."""

    def __init__(self, jid: str, password: str, host: str, port: int):
        self.args = (jid, password, host, port)
        self.client: Any = None
        self.prefix = ""
        self.target = 0
        self.count = 0
        self.t_last = 0.0
        self.latency = False
        self.latencies: list[float] = []
        self.done: asyncio.Event | None = None

    async def start(self) -> None:
        self.client = await _client(*self.args)
        self.client.add_event_handler("pubsub_publish", self._on_publish)

    async def stop(self) -> None:
        await _close(self.client)

    def _on_publish(self, msg: Any) -> None:
        now = time.time()
        # The item of a one-item event; never iterate the stanza (slixmpp trap).
        item = msg["pubsub_event"]["items"]["item"]
        if not item["id"].startswith(self.prefix):
            return
        if self.latency:
            self.latencies.append(now - float(item["payload"].get("t")))
        self.count += 1
        self.t_last = now
        if self.count == self.target:
            self.done.set()  # type: ignore[union-attr]

    async def cmd_subscribe(self, node: str) -> None:
        await self.client.plugin["xep_0060"].subscribe(SERVICE, node, bare=True, timeout=30)

    async def cmd_arm(self, prefix: str, count: int, latency: bool = False) -> None:
        self.prefix, self.target, self.count, self.latency = prefix, count, 0, latency
        self.latencies = []
        self.done = asyncio.Event()
        self.writes0 = write_calls()
        self.cpu0 = time.process_time()

    async def cmd_wait(self, timeout: float) -> dict[str, Any]:
        try:
            await asyncio.wait_for(self.done.wait(), timeout)  # type: ignore[union-attr]
        except asyncio.TimeoutError:
            pass
        return {"count": self.count, "t_last": self.t_last, "latencies": self.latencies,
                "cpu": time.process_time() - self.cpu0, "writes": write_calls() - self.writes0}

    async def cmd_rss(self) -> int:
        return _rss()


class BareThread:
    """A :class:`BareRole` on the package's :class:`LoopThread` in the calling process:
    the layout of our session inside a kernel, without our layer (row 4's reference).

    ``call(name, *args)`` runs ``cmd_<name>`` there and waits for its result."""

    def __init__(self, jid: str, password: str, host: str, port: int):
        from pubsub_hook_magic.loopthread import LoopThread

        self.role = BareRole(jid, password, host, port)
        self.loop_thread = LoopThread(name="bench-bare-slixmpp")
        self.loop_thread.run(self.role.start(), 120)

    def call(self, name: str, *args: Any) -> Any:
        return self.loop_thread.run(getattr(self.role, f"cmd_{name}")(*args), 120)

    def close(self) -> None:
        self.loop_thread.run(self.role.stop(), 10)
        self.loop_thread.stop()


# ------------------------------------------------------------------------ our HookManager


class HookRole:
    """A :class:`HookManager` in a plain script, with the defaults a user gets."""

    def __init__(self, jid: str, password: str, host: str, port: int, **manager_kwargs: Any):
        self.args = (jid, password, host, port)
        self.manager_kwargs = manager_kwargs
        self.manager: Any = None
        self.targets: dict[str, int] = {}
        self.bases: dict[str, int] = {}
        self.dropped_before: dict[str, int] = {}
        self.tmp = tempfile.mkdtemp(prefix="phm-bench-")

    async def start(self) -> None:
        from pubsub_hook_magic.manager import HookManager

        jid, password, host, port = self.args
        self.manager = HookManager(data_dir=os.path.join(self.tmp, "store"), **self.manager_kwargs)
        await self.manager.connect(jid, password, host=host, port=port, tls=False)

    async def stop(self) -> None:
        await self.manager.disconnect()

    async def cmd_create(
        self, node: str, hook_type: str, arg: str, service: str = SERVICE, persistent: bool = False
    ) -> str:
        if hook_type == "python_file" and not arg:
            from .hooks_noop import FILE_HOOK

            arg = os.path.join(self.tmp, "noop_file_hook.py")
            with open(arg, "w", encoding="utf-8") as f:
                f.write(FILE_HOOK)
        hook = await self.manager.create_hook(service, node, hook_type, arg, persistent=persistent)
        return hook.id

    async def cmd_create_many(self, nodes: list[str], hook_type: str, arg: str) -> float:
        started = time.perf_counter()
        for node in nodes:
            await self.manager.create_hook(SERVICE, node, hook_type, arg)
        return time.perf_counter() - started

    async def cmd_delete(self, hook_ids: list[str]) -> int:
        deleted = 0
        for hook_id in hook_ids:
            deleted += await self.manager.delete_hooks(hook_id=hook_id)
        return deleted

    async def cmd_arm(self, hook_ids: list[str], count: int, latency: bool = False) -> None:
        from . import hooks_noop

        runners = self.manager.runners
        self.bases = {h: runners[h].count for h in hook_ids}
        self.dropped_before = {h: runners[h].dropped for h in hook_ids}
        self.targets = {h: base + count for h, base in self.bases.items()}
        hooks_noop.LATENCIES.clear()
        self.writes0 = write_calls()
        self.cpu0 = time.process_time()

    async def cmd_wait(self, timeout: float) -> dict[str, Any]:
        from . import hooks_noop

        runners = self.manager.runners
        deadline = time.monotonic() + timeout
        def dropped(h: str) -> int:
            return runners[h].dropped - self.dropped_before[h]

        while time.monotonic() < deadline:
            # Every item ran, or was dropped by a full queue (then it never will).
            if all(runners[h].count + dropped(h) >= n for h, n in self.targets.items()):
                break
            await asyncio.sleep(0.01)
        t_last = max(
            (r.last_trigger.started or 0.0) for h in self.targets if (r := runners[h]).last_trigger
        )
        return {
            "count": min(runners[h].count - base for h, base in self.bases.items()),
            "dropped": sum(dropped(h) for h in self.targets),
            "dropped_max": max(dropped(h) for h in self.targets),
            "errors": sum(runners[h].errors for h in self.targets),
            "t_last": t_last,
            "latencies": list(hooks_noop.LATENCIES),
            "cpu": time.process_time() - self.cpu0,
            "writes": write_calls() - self.writes0,
        }

    async def cmd_rss(self) -> int:
        return _rss()

    async def cmd_stats(self) -> dict[str, Any]:
        return {
            "hooks": len(self.manager.runners),
            "nodes": len(self.manager.runners.nodes()),
            "events": self.manager.session.events_received,
        }


# ------------------------------------------------------------------------ at a distance


class DistanceRole:
    """Rows 8-10: our HookManager as a script uses it, and a bare slixmpp client (the
    floor, on its own loop thread), both reaching Prosody through a
    :class:`~pubsub_hook_magic.testing.proxy.TcpProxy` that delays each direction by
    ``delay`` and counts the bytes. The proxy runs on its own loop thread here.

    Persistent hooks live in named stores (data dirs) of this worker: ``prepare``
    makes them over the direct path, ``connect`` installs them again through the proxy.
    """

    def __init__(self, jid: str, password: str, host: str, port: int, *, bare: dict[str, Any], delay: float):
        self.args = (jid, password, host, port)
        self.bare_account = bare
        self.delay = delay
        self.tmp = tempfile.mkdtemp(prefix="phm-bench-far-")
        self.proxy: Any = None
        self.manager: Any = None  # connected through the proxy between commands, or None

    async def start(self) -> None:
        from pubsub_hook_magic.testing.proxy import TcpProxy

        self.proxy = TcpProxy(*self.args[2:], delay=self.delay, name="bench-proxy")

    async def stop(self) -> None:
        await self.cmd_disconnect()
        self.proxy.close()

    async def _connect(self, store: str, far: bool) -> Any:
        from pubsub_hook_magic.manager import HookManager

        jid, password, host, port = self.args
        if far:
            host, port = self.proxy.host, self.proxy.port
        manager = HookManager(data_dir=os.path.join(self.tmp, store))
        await manager.connect(jid, password, host=host, port=port, tls=False)
        return manager

    async def _quiet(self) -> None:
        """Wait until no connection goes through the proxy (the last one's closing
        bytes have passed), so that a count starts at zero."""
        deadline = time.monotonic() + 10
        while self.proxy.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(2 * self.delay + 0.02)

    async def cmd_prepare(self, store: str, nodes: list[str], code: str = "pass") -> float:
        """Persistent ``python_code`` hooks on ``nodes`` in ``store``, made over the
        direct (fast) path, then a disconnect; returns seconds."""
        started = time.perf_counter()
        manager = await self._connect(store, far=False)
        try:
            for node in nodes:
                await manager.create_hook(SERVICE, node, "python_code", code, persistent=True)
        finally:
            await manager.disconnect()
        return time.perf_counter() - started

    async def cmd_forget(self, store: str) -> int:
        """Delete every hook of ``store`` over the direct path (which unsubscribes from
        their nodes); returns how many."""
        await self.cmd_disconnect()
        manager = await self._connect(store, far=False)
        try:
            deleted = 0
            for hook in manager.list_hooks():
                deleted += await manager.delete_hooks(hook_id=hook["id"])
            return deleted
        finally:
            await manager.disconnect()

    async def cmd_connect(self, store: str, runs: int = 0, timeout: float = 600) -> dict[str, Any]:
        """Connect through the proxy with ``store``'s persistent hooks; wait until they
        have run ``runs`` items in all (polling ``list_hooks()``). Times from the call
        of ``connect``, bytes through the proxy from then until the runs were done."""
        await self.cmd_disconnect()
        await self._quiet()
        self.proxy.reset_traffic()
        started = time.perf_counter()
        self.manager = await self._connect(store, far=True)
        connected = time.perf_counter() - started
        deadline = time.monotonic() + timeout
        ran = 0
        while True:
            hooks = self.manager.list_hooks()
            ran = sum(h["triggers"] for h in hooks)
            if ran >= runs or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.005)
        done = time.perf_counter() - started
        traffic = self.proxy.traffic()
        await asyncio.sleep(0.2)  # a repeated run would show now
        return {
            "connect": connected,
            "caught_up": done,
            "to_client": traffic.to_client,
            "to_server": traffic.to_server,
            "hooks": len(hooks),
            "runs": sum(h["triggers"] for h in self.manager.list_hooks()),
            "errors": sum(h["errors"] for h in hooks),
        }

    async def cmd_disconnect(self) -> None:
        if self.manager is not None:
            manager, self.manager = self.manager, None
            await manager.disconnect()

    async def cmd_create(self, store: str, nodes: list[str], code: str = "pass") -> dict[str, list[Any]]:
        """Connect ``store`` through the proxy, then time each persistent hook's
        ``create_hook`` on ``nodes`` (each one that no hook uses yet), one after another,
        and count its round trips (the client's flights of requests through the proxy)."""
        await self.cmd_disconnect()
        self.manager = await self._connect(store, far=True)
        times, flights = [], []
        for node in nodes:
            await asyncio.sleep(0.2)  # nothing else in flight
            self.proxy.reset_traffic()
            started = time.perf_counter()
            await self.manager.create_hook(SERVICE, node, "python_code", code, persistent=True)
            times.append(time.perf_counter() - started)
            flights.append(self.proxy.traffic().flights)
        await self.cmd_disconnect()
        return {"times": times, "flights": flights}

    async def cmd_floor(self, request: str, nodes: list[str], max_items: int | None = None,
                        at_once: bool = True) -> dict[str, Any]:
        """The bare client through the proxy, on its own loop thread: its login, then
        ``get_items(max_items=...)`` (``request="items"``) or ``subscribe``
        (``"subscribe"``) on every node, all at once or one after another."""
        from pubsub_hook_magic.loopthread import LoopThread

        await self._quiet()
        account = dict(self.bare_account, host=self.proxy.host, port=self.proxy.port)
        thread = LoopThread(name="bench-bare-far")
        try:
            started = time.perf_counter()
            client = thread.run(_client(**account), 120)
            login = time.perf_counter() - started
            xep = client.plugin["xep_0060"]

            def one(node: str) -> Any:
                if request == "subscribe":
                    return xep.subscribe(SERVICE, node, bare=True, timeout=120)
                return xep.get_items(SERVICE, node, max_items=max_items, timeout=120)

            async def send() -> list[float]:
                if at_once:
                    started = time.perf_counter()
                    await asyncio.gather(*(one(n) for n in nodes))
                    return [time.perf_counter() - started]
                times = []
                for node in nodes:
                    started = time.perf_counter()
                    await one(node)
                    times.append(time.perf_counter() - started)
                return times

            self.proxy.reset_traffic()
            times = thread.run(send(), 600)
            traffic = self.proxy.traffic()
            thread.run(_close(client), 30)
        finally:
            thread.stop()
        return {"login": login, "times": times, "to_client": traffic.to_client, "to_server": traffic.to_server}


from .rawpub import RawPublisherRole  # noqa: E402 - (a module of its own: no slixmpp)

ROLES = {
    "publisher": PublisherRole, "rawpub": RawPublisherRole, "bare": BareRole, "hooks": HookRole,
    "distance": DistanceRole,
}


if __name__ == "__main__":  # pragma: no cover - spawned, not run
    sys.exit("benchmarks.workers is started by benchmarks.run")
