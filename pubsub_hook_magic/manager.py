"""The host: ties the XMPP session, the hook registry, the runners and the store.

:class:`HookManager` is the object hooks receive as ``host`` and the Python API of the
package. Its methods are coroutines that run on the session's loop, so a plain script
uses it with ``asyncio.run``::

    async def main():
        host = HookManager()
        await host.connect("alice@example.org", password)
        await host.create_hook("pubsub.example.org", "news", "python_code", "print(item['id'])")
        await asyncio.Event().wait()

In a notebook the IPython magics drive the same object through a loop thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from typing import Any, Callable

from .dedupe import ItemRef, RecentItems
from .hooks import (
    Hook,
    HookError,
    HookLoadError,
    HookType,
    load_hook,
    missing_names,
    new_hook_id,
    normalize_arg,
)
from .registry import HookRegistry
from .runner import HookRunner, Trigger
from .session import RequestError, SessionError, XmppSession, bare_jid
from .store import HookStore, PositionStore, StoreDamaged, StoreError
from .watchdog import Watchdog

__all__ = ["HookManager"]


def _is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (resolving names that need it)."""
    import ipaddress
    import socket

    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)

log = logging.getLogger(__name__)
logging.getLogger("pubsub_hook_magic").addHandler(logging.NullHandler())


class HookManager:
    """Hooks on PubSub nodes of one XMPP account.

    :param namespace: the namespace ``python_code`` hooks share (the notebook's user
        namespace; a fresh dict by default).
    :param shell: the IPython shell, exposed to hooks as ``host.shell`` (None outside IPython).
    :param kernel_loop: the kernel's main loop, for :meth:`call_in_kernel`.
    :param data_dir: where persistent hooks are stored (default: see :mod:`.store`).
    :param history: how many recent triggers each hook keeps.
    :param queue_size: how many items may wait for a busy hook before it drops some.
    :param time_limit: seconds one run of a hook may take before it is stopped.
    :param strict_names: refuse python_code that reads names nothing defines (outside
        a notebook, where no notebook variables exist).
    """

    def __init__(
        self,
        namespace: dict[str, Any] | None = None,
        *,
        shell: Any = None,
        kernel_loop: asyncio.AbstractEventLoop | None = None,
        data_dir: str | None = None,
        history: int = 50,
        queue_size: int = 1000,
        time_limit: float | None = 60.0,
        strict_names: bool = False,
    ):
        self.namespace = namespace if namespace is not None else {}
        self.shell = shell
        self.kernel_loop = kernel_loop
        self.data_dir = data_dir
        self.history = history
        self.queue_size = queue_size
        self.time_limit = time_limit
        self.strict_names = strict_names
        self.watchdog = Watchdog()
        self.registry = HookRegistry()
        self.runners: dict[str, HookRunner] = {}
        self.session: XmppSession | None = None
        self.store: HookStore | None = None
        self.connected_since: float | None = None
        self._recent = RecentItems()
        self._ours: set[tuple[str, str]] = set()  # subscriptions this extension made
        self._retired = [0, 0]  # triggers and errors of hooks deleted during the session
        self.positions: PositionStore | None = None
        self._unsaved_positions: dict[str, ItemRef] = {}
        #: The newest item seen per node: where a new hook's catch-up starts.
        self._node_position: dict[tuple[str, str], ItemRef] = {}
        #: Nodes catching up: their live items wait here, to run after the older ones.
        self._held: dict[tuple[str, str], list[tuple[Any, ItemRef]]] = {}
        self._lock = asyncio.Lock()
        self._trigger_listeners: list[Callable[[HookRunner, Trigger], None]] = []
        self._change_listeners: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ what hooks use

    @property
    def client(self) -> Any:
        """The slixmpp client of the session (None when disconnected)."""
        return self.session.client if self.session is not None else None

    @property
    def jid(self) -> str | None:
        """The bare JID of the connected account."""
        return self.session.bare if self.session is not None else None

    def call_in_kernel(self, func: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        """Run ``func(*args)`` on the kernel's main loop (where widgets and the notebook's
        own asyncio code live) and return a future of its result. Without a kernel loop
        it runs at once, on the calling thread."""
        future: concurrent.futures.Future = concurrent.futures.Future()

        def call() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(func(*args))
                except BaseException as exc:  # noqa: BLE001
                    future.set_exception(exc)

        loop = self.kernel_loop
        if loop is None or loop.is_closed():
            call()
        else:
            loop.call_soon_threadsafe(call)
        return future

    async def run_in_kernel(self, func: Callable[..., Any], *args: Any) -> Any:
        """``await host.run_in_kernel(func, ...)``: :meth:`call_in_kernel`, awaited."""
        return await asyncio.wrap_future(self.call_in_kernel(func, *args))

    # ------------------------------------------------------------------ connection

    @property
    def connected(self) -> bool:
        return self.session is not None and self.session.connected

    @property
    def state(self) -> str:
        return self.session.state if self.session is not None else "disconnected"

    async def connect(
        self,
        jid: str,
        password: str,
        *,
        host: str | None = None,
        port: int | None = None,
        tls: bool = True,
        direct_tls: bool = False,
        ca_file: str | None = None,
        timeout: float = 30.0,
    ) -> list[str]:
        """Log in and install the account's persistent hooks again.

        Returns warnings, one line each, about persistent hooks that could not be
        installed (they stay stored and listed, marked broken, until deleted).
        """
        async with self._lock:
            if self.session is not None:
                raise HookError(
                    f"already connected as {self.jid}: disconnect first to change account"
                )
            account = bare_jid(jid, "JID")
            if "@" not in account:
                raise HookError(f"{jid!r} is not an account JID: give it as user@domain")
            if not tls and not _is_loopback(host or account.split("@", 1)[1]):
                raise HookError(
                    "--no-tls sends the password in clear: it is only allowed with a server "
                    "on this machine (loopback); drop it to use TLS"
                )
            store = HookStore(account, self.data_dir)
            warnings = []
            try:
                records = store.hooks()  # a refused store is an error before we log in
            except StoreDamaged as exc:
                aside = store.set_aside()
                records = []
                warnings.append(
                    f"{exc.args[0].split(';')[0]}: it was moved to {aside}, untouched; no "
                    "persistent hook was installed. Repair that file and move it back (or "
                    "re-create the hooks)"
                )
            session = XmppSession(
                jid,
                password,
                on_item=self._on_item,
                host=host,
                port=port,
                tls=tls,
                direct_tls=direct_tls,
                ca_file=ca_file,
                on_restored=self._restore,
                on_state=lambda _state: self._changed(),
            )
            await session.start(timeout)
            self.session, self.store = session, store
            self.positions = PositionStore(account, store.data_dir)
            self.connected_since = time.time()
            try:
                self._ours = store.subscriptions()
            except StoreError as exc:
                log.warning("%s", exc)
            return warnings + await self._install_persistent(records)

    async def _install_persistent(self, records: list[dict[str, Any]]) -> list[str]:
        warnings = []
        hooks = []
        for record in records:
            try:
                hook = Hook.from_record(record)
            except (KeyError, TypeError, ValueError, HookError) as exc:
                warnings.append(f"a stored hook is unreadable ({exc}): {record!r}")
                continue
            if hook.id not in self.registry:
                hooks.append(hook)
        # Live items of these nodes wait until the items missed meanwhile have run.
        for hook in hooks:
            self._held.setdefault(hook.key, [])
        for hook in hooks:
            try:
                hook.func = self._load(hook)
            except HookError as exc:
                hook.load_error = str(exc)
            if hook.func is not None and not self.registry.for_node(*hook.key):
                try:
                    await self._listen(hook.service, hook.node, seed=False)
                except HookError as exc:
                    hook.load_error = str(exc)
            self._install(hook)
            if self.positions is not None:
                stored = self.positions.load(hook.id)
                if stored is not None:
                    self.runners[hook.id].set_position(ItemRef(stored[0], digest=stored[1]))
            if hook.load_error:
                warnings.append(
                    f"persistent {hook.describe()} is not running: {hook.load_error}"
                )
        for key in sorted({h.key for h in hooks}):
            await self._catch_up(*key)
        # Subscriptions we made for hooks that are gone (e.g. a crashed kernel's
        # temporary hooks): remove them now.
        for service, node in sorted(self._ours - self.registry.nodes()):
            await self._unlisten(service, node)
        return warnings

    async def disconnect(self) -> None:
        """Drop temporary hooks (and the subscriptions made for them only), stop every
        runner and close the session. Persistent hooks stay stored."""
        async with self._lock:
            session = self.session
            if session is None:
                return
            temporary_nodes = {h.key for h in self.registry if not h.persistent}
            persistent_nodes = {h.key for h in self.registry if h.persistent}
            if session.connected:
                for service, node in sorted(temporary_nodes - persistent_nodes):
                    try:
                        await asyncio.wait_for(self._unlisten(service, node), 5)
                    except (asyncio.TimeoutError, HookError) as exc:
                        log.warning("leaving %s/%s: %s", service, node, exc)
            for hook in list(self.registry):
                await self._uninstall(hook)
            self.save_positions()
            self.session, self.store, self.positions = None, None, None
            self._node_position.clear()
            self._held.clear()
            self.connected_since = None
            self._recent = RecentItems()
            self._ours = set()
            self._retired = [0, 0]
            await session.stop()
            self._changed()

    # ------------------------------------------------------------------ hooks

    def _require_session(self) -> XmppSession:
        session = self.session
        if session is None:
            raise HookError("not connected to an XMPP server: connect first (%hook connect JID)")
        if session.state == "reconnecting":
            raise HookError(
                "the session is reconnecting to the server: try again once %hook status "
                "says connected"
            )
        if not session.connected:
            raise HookError(session.last_error or f"the session is {session.state}: connect again")
        return session

    def _restore(self) -> None:
        """After a reconnection (called before any event of the new session): hold the
        live items, then make sure every node still sends its events and run what was
        published meanwhile, in order."""
        for key in self.registry.nodes():
            self._held.setdefault(key, [])
        asyncio.get_running_loop().create_task(self._restore_nodes())

    async def _restore_nodes(self) -> None:
        for service, node in sorted(self.registry.nodes()):
            try:
                await self._listen(service, node, seed=False)
            except HookError as exc:
                log.warning("after reconnecting, %s/%s: %s", service, node, exc)
            await self._catch_up(service, node)

    async def _catch_up(self, service: str, node: str) -> None:
        """Run, for each hook of the node, the stored items after the last one it got;
        then the live items held meanwhile. A hook whose last item is no longer on the
        node gets a "gap" trigger: what was published in between is lost."""
        key = (service, node)
        try:
            hooks = [
                h for h in self.registry.for_node(service, node)
                if h.catch_up and h.func is not None
                and self.runners[h.id].submitted_position is not None
            ]
            if not hooks or self.session is None or not self.session.connected:
                return
            try:
                items = await self.session.last_items(service, node, None)
            except RequestError as exc:
                log.warning("catching up on %s/%s: %s", service, node, exc)
                return
            keyed = [(item, ItemRef.of(item)) for item in items]
            now = time.time()
            for hook in hooks:
                runner = self.runners.get(hook.id)
                last = runner.submitted_position if runner is not None else None
                if last is None:
                    continue
                start = 0
                if last.id:
                    index = next(
                        (i for i in range(len(keyed) - 1, -1, -1) if keyed[i][1].id == last.id), None
                    )
                    if index is None:
                        runner.report_gap(last.id, len(keyed))
                    else:  # the same id with another payload was published again: run it
                        start = index + 1 if keyed[index][1].same_payload(last) else index
                for item, ref in keyed[start:]:
                    runner.submit(item, ref, item["publisher"] or None, now, "catch-up")
            for _item, ref in keyed:
                self._recent.seen(service, node, ref)
            if keyed:
                self._node_position[key] = keyed[-1][1]
        finally:
            for item, ref in self._held.pop(key, ()):
                self._dispatch(service, node, item, ref)

    async def create_hook(
        self,
        service: str | None,
        node: str,
        hook_type: str | HookType,
        arg: str,
        *,
        persistent: bool = False,
        catch_up: bool = True,
    ) -> Hook:
        """Check the hook's code, make sure the node's events arrive, install the hook
        and store it if persistent. On any error nothing is installed or stored."""
        async with self._lock:
            session = self._require_session()
            kind = HookType.parse(hook_type)
            if not node:
                raise HookError("a node is needed: give it with -n NODE")
            service = bare_jid(service, "service JID") if service else session.bare
            hook = Hook(
                service=service,
                node=node,
                type=kind,
                arg=normalize_arg(kind, arg),
                persistent=persistent,
                id=new_hook_id(lambda i: i in self.registry),
                catch_up=catch_up,
            )
            hook.func = self._load(hook)
            new_node = not self.registry.for_node(service, node)
            if new_node:
                await self._listen(service, node)
            self._install(hook)
            # Catch-up starts after the newest item the node had when the hook was made
            # (from its first item if it had none).
            position = self._node_position.get(hook.key)
            runner = self.runners[hook.id]
            runner.set_position(position if position is not None else ItemRef("", digest=""))
            if persistent:
                try:
                    self.store.add_hook(hook.to_record())  # type: ignore[union-attr]
                    if self.positions is not None and runner.position is not None:
                        self.positions.save(hook.id, (runner.position.id, runner.position.digest))
                except BaseException:
                    await self._uninstall(hook)
                    if new_node:
                        await self._unlisten(service, node)
                    raise
            log.info("created %s", hook.describe())
            return hook

    async def delete_hooks(
        self,
        service: str | None = None,
        node: str | None = None,
        hook_type: str | HookType | None = None,
        arg: str | None = None,
        *,
        hook_id: str | None = None,
    ) -> int:
        """Delete hooks as Libervia does: every hook on ``(service, node)``, narrowed
        by type and argument when given; or the one hook ``hook_id``. Returns how many."""
        async with self._lock:
            if hook_id:
                hook = self.registry.get(hook_id)
                doomed = [hook] if hook is not None else []
                if node and hook is not None and hook.node != node:
                    raise HookError(
                        f"hook {hook_id} is on node {hook.node!r}, not {node!r}: give --id alone"
                    )
            else:
                if not node:
                    raise HookError("give the node of the hooks to delete with -n NODE")
                if service:
                    service = bare_jid(service, "service JID")
                else:
                    service = self._require_session().bare
                kind = HookType.parse(hook_type) if hook_type else None
                doomed = self.registry.select(service, node, kind, arg or None)
            stored = {h.id for h in doomed if h.persistent}
            if stored and self.store is not None:
                self.store.remove_hooks(stored)  # fails before anything is removed
                for hook_id in stored:
                    self._unsaved_positions.pop(hook_id, None)
                    if self.positions is not None:
                        self.positions.remove(hook_id)
            for hook in doomed:
                await self._uninstall(hook)
            for key in {h.key for h in doomed}:
                if not self.registry.for_node(*key) and self.connected:
                    try:
                        await self._unlisten(*key)
                    except HookError as exc:
                        log.warning("%s", exc)
            return len(doomed)

    async def publish(
        self, service: str | None, node: str, payload: str, item_id: str | None = None
    ) -> str:
        """Publish an item (``payload``: one XML element, as text) from this account;
        handy to try hooks. Returns the item id."""
        from xml.etree.ElementTree import ParseError, fromstring

        session = self._require_session()
        if not node:
            raise HookError("a node is needed: give it with -n NODE")
        try:
            element = fromstring(payload)
        except ParseError as exc:
            raise HookError(
                f"the payload is not XML ({exc}): give one element, e.g. "
                "<entry xmlns='urn:example'>hi</entry>"
            ) from None
        service = bare_jid(service, "service JID") if service else session.bare
        try:
            return await session.publish(service, node, element, item_id)
        except RequestError as exc:
            raise HookError(str(exc)) from None

    async def nodes(self, service: str | None = None) -> list[tuple[str, str]]:
        """The nodes ``service`` offers (service discovery), as ``(node, name)``;
        your own PEP nodes by default."""
        session = self._require_session()
        service = bare_jid(service, "service JID") if service else session.bare
        try:
            return sorted(await session.list_nodes(service))
        except RequestError as exc:
            raise HookError(str(exc)) from None

    async def set_paused(self, hook_id: str, paused: bool) -> Hook:
        """Pause or resume a hook. A paused hook records the items it skips."""
        runner = self.runners.get(hook_id)
        if runner is None:
            raise HookError(f"no hook {hook_id!r}: %hook list shows the ids")
        runner.paused = paused
        self._changed()
        return runner.hook

    def _runner(self, hook_id: str) -> HookRunner:
        runner = self.runners.get(hook_id)
        if runner is None:
            raise HookError(f"no hook {hook_id!r}: %hook list shows the ids")
        return runner

    async def replay(
        self, hook_id: str, item_id: str | None = None, last: int | None = None
    ) -> list[Trigger]:
        """Run a hook again on items it saw: its last one, the item ``item_id`` (from
        its recent triggers, else from the node), or the node's ``last`` stored items.
        Each run is recorded as a trigger of kind "replay"."""
        runner = self._runner(hook_id)
        hook = runner.hook
        if last:
            items = await self._node_items(hook, last)
        elif item_id:
            seen = [t.payload for t in runner.triggers if t.item_id == item_id and t.payload is not None]
            items = seen[-1:] or [i for i in await self._node_items(hook, None) if i["id"] == item_id]
            if not items:
                raise HookError(f"item {item_id!r} is neither in hook {hook_id}'s recent triggers nor on its node")
        else:
            seen = [t.payload for t in runner.triggers if t.payload is not None and t.kind in ("live", "catch-up")]
            if not seen:
                raise HookError(
                    f"hook {hook_id} has no item to replay yet: use --item ID or --last N to "
                    "take items from the node"
                )
            items = seen[-1:]
        return [await runner.run_now(item, "replay", publisher=item["publisher"] or None) for item in items]

    async def _node_items(self, hook: Hook, last: int | None) -> list[Any]:
        session = self._require_session()
        try:
            return await session.last_items(hook.service, hook.node, last)
        except RequestError as exc:
            raise HookError(str(exc)) from None

    async def test(self, hook_id: str, payload: str, item_id: str | None = None) -> Trigger:
        """Run a hook on an item built here from ``payload`` (XML), without the network."""
        from xml.etree.ElementTree import ParseError, fromstring

        from slixmpp.plugins.xep_0060.stanza.pubsub_event import EventItem

        runner = self._runner(hook_id)
        try:
            element = fromstring(payload)
        except ParseError as exc:
            raise HookError(f"the payload is not XML ({exc}): give one element") from None
        item = EventItem()
        item["id"] = item_id or f"test-{int(time.time() * 1000)}"
        item["payload"] = element
        if self.jid:
            item["publisher"] = self.jid
        return await runner.run_now(item, "test")

    def hooks(self) -> list[Hook]:
        """Every installed hook, persistent first."""
        return list(self.registry)

    def list_hooks(self) -> list[dict[str, Any]]:
        """Every hook with its statistics and recent triggers (JSON-ready)."""
        return [self.runners[h.id].summary() for h in self.registry]

    def status(self) -> dict[str, Any]:
        session = self.session
        return {
            "state": self.state,
            "jid": self.jid,
            "server": (
                f"{session.host}:{session.port}" if session and session.host else None
            ),
            "tls": session.tls if session else None,
            "reconnects": session.reconnects if session else 0,
            "last_error": session.last_error if session else None,
            "connected_since": self.connected_since,
            "hooks": len(self.registry),
            "persistent": sum(1 for h in self.registry if h.persistent),
            "nodes": len(self.registry.nodes()),
            "events_received": session.events_received if session else 0,
            "triggers": self._retired[0] + sum(r.count for r in self.runners.values()),
            "errors": self._retired[1] + sum(r.errors for r in self.runners.values()),
            "store": str(self.store.path) if self.store else None,
        }

    def add_trigger_listener(self, listener: Callable[[HookRunner, Trigger], None]) -> None:
        """Call ``listener(runner, trigger)`` after every run of every hook (on the
        session's loop: keep it short)."""
        self._trigger_listeners.append(listener)
        for runner in self.runners.values():
            runner.add_listener(listener)

    def remove_trigger_listener(self, listener: Callable[[HookRunner, Trigger], None]) -> None:
        if listener in self._trigger_listeners:
            self._trigger_listeners.remove(listener)
        for runner in self.runners.values():
            runner.remove_listener(listener)

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` when hooks are added, removed or paused, or the session's
        state changes."""
        self._change_listeners.append(listener)

    def remove_change_listener(self, listener: Callable[[], None]) -> None:
        if listener in self._change_listeners:
            self._change_listeners.remove(listener)

    def _changed(self) -> None:
        for listener in list(self._change_listeners):
            try:
                listener()
            except Exception:  # noqa: BLE001
                log.exception("change listener failed")

    # ------------------------------------------------------------------ internals

    def _load(self, hook: Hook) -> Callable[..., Any]:
        """Load a hook's code; with ``strict_names``, python_code that reads names
        nobody defines (notebook variables, outside a notebook) is refused."""
        if self.strict_names and hook.type is HookType.PYTHON_CODE:
            names = missing_names(hook.arg, self.namespace)
            if names:
                raise HookLoadError(
                    f"the code uses {', '.join(names)}, which nothing defines here (notebook "
                    "variables?): define them in the code, or move the hook to a python_file"
                )
        return load_hook(hook, self.namespace)

    def _install(self, hook: Hook) -> None:
        self.registry.add(hook)
        runner = HookRunner(
            hook,
            lambda: (self, self.client),
            history=self.history,
            queue_size=self.queue_size,
            time_limit=self.time_limit,
            watchdog=self.watchdog,
            loader=self._load,
        )
        if hook.persistent and hook.catch_up:
            runner.add_listener(self._position_moved)
        for listener in self._trigger_listeners:
            runner.add_listener(listener)
        self.runners[hook.id] = runner
        runner.start()
        self._changed()

    async def _uninstall(self, hook: Hook) -> None:
        self.registry.remove(hook)
        runner = self.runners.pop(hook.id, None)
        if runner is not None:
            await runner.stop()
            self._retired[0] += runner.count
            self._retired[1] += runner.errors
        self._changed()

    def _is_pep(self, service: str) -> bool:
        return "@" in service

    async def _listen(self, service: str, node: str, *, seed: bool = True) -> None:
        """Make events of the node arrive, without firing hooks for old items."""
        session = self._require_session()
        pep = self._is_pep(service)
        # Remember the node's newest item: a copy the server re-sends on subscribe or
        # presence is then recognised as old, and fires nothing.
        try:
            for item in await session.last_items(service, node, 1) if seed else ():
                ref = ItemRef.of(item)
                self._recent.seen(service, node, ref)
                self._node_position[(service, node)] = ref
        except RequestError as exc:
            if exc.condition == "item-not-found" and not pep:
                raise HookError(
                    f"node {node!r} does not exist on {service}: create it first, or check "
                    "the name (%hook nodes lists a service's nodes)"
                ) from None
            if exc.condition == "timeout":
                raise HookError(f"{service} does not answer ({exc.what})") from None
            # PEP nodes appear at their first publish; other refusals surface below.
        if pep:
            await session.set_pep_interest(node, True)
            return
        try:
            if await session.subscription_exists(service, node):
                return
        except RequestError:
            pass  # not all services list subscriptions; subscribing tells
        try:
            await session.subscribe(service, node)
        except RequestError as exc:
            if exc.condition == "item-not-found":
                raise HookError(f"node {node!r} does not exist on {service}") from None
            raise HookError(
                f"{service} refused the subscription to {node!r} ({exc.condition}"
                f"{': ' + exc.text if exc.text else ''}): the node's access model may "
                "require an invitation, a roster group or the owner's approval"
            ) from None
        self._set_ours(service, node, True)

    async def _unlisten(self, service: str, node: str) -> None:
        """Stop the events of a node that no hook uses any more."""
        session = self.session
        self._recent.forget(service, node)
        self._node_position.pop((service, node), None)
        if session is None or not session.connected:
            return
        if self._is_pep(service):
            await session.set_pep_interest(node, False)
        elif (service, node) in self._ours:
            try:
                await session.unsubscribe(service, node)
            except RequestError as exc:
                if exc.condition not in ("item-not-found", "unexpected-request"):
                    raise HookError(str(exc)) from None
            self._set_ours(service, node, False)

    def _set_ours(self, service: str, node: str, ours: bool) -> None:
        if ours:
            self._ours.add((service, node))
        else:
            self._ours.discard((service, node))
        if self.store is not None:
            try:
                self.store.set_subscription(service, node, ours)
            except StoreError as exc:
                log.warning("%s", exc)

    def _on_item(self, service: str, node: str, item: Any) -> None:
        """The event path: one published item, from ``service`` (the sender)."""
        key = (service, node)
        held = self._held.get(key)
        if held is None:
            if not self.registry.for_node(service, node):
                return
            self._dispatch(service, node, item, ItemRef.of(item))
        else:
            held.append((item, ItemRef.of(item)))

    def _dispatch(self, service: str, node: str, item: Any, ref: ItemRef) -> None:
        hooks = self.registry.for_node(service, node)
        if not hooks or self._recent.seen(service, node, ref):
            return
        if ref.id:
            self._node_position[(service, node)] = ref
        else:
            ref = None
        received = time.time()
        publisher = item["publisher"] or None
        runners = self.runners
        for hook in hooks:
            runners[hook.id].submit(item, ref, publisher, received)

    # ------------------------------------------------------------------ positions

    def _position_moved(self, runner: HookRunner, _trigger: Trigger) -> None:
        if runner.position is None:
            return
        if not self._unsaved_positions:
            asyncio.get_running_loop().call_soon(self.save_positions)
        self._unsaved_positions[runner.hook.id] = runner.position

    def save_positions(self) -> None:
        """Write the positions of persistent hooks that moved (coalesced per loop turn;
        also called at disconnect and at exit)."""
        unsaved, self._unsaved_positions = self._unsaved_positions, {}
        positions = self.positions
        if positions is None:
            return
        for hook_id, position in unsaved.items():
            if hook_id in self.registry:
                try:
                    positions.save(hook_id, (position.id, position.digest))
                except OSError as exc:
                    log.warning("cannot save the position of hook %s: %s", hook_id, exc)
