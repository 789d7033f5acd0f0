"""The host: the Python API of the package, over the session, the hooks and catch-up.

:class:`HookManager` is the object hooks receive as ``host`` and the Python API of the
package. Its methods are coroutines that run on the session's loop, so a plain script
uses it with ``asyncio.run``::

    async def main():
        host = HookManager()
        await host.connect("alice@example.org", password)
        await host.create_hook("pubsub.example.org", "news", "python_code", "print(item['id'])")
        await asyncio.Event().wait()

In a notebook the IPython magics drive the same object through a loop thread.

It is a façade; each concept lives in its own module:

* :mod:`.session`: the XMPP connection, its reconnections and requests;
* :mod:`.subscriptions`: which nodes must deliver, subscriptions and PEP interests;
* :mod:`.catchup`: the event path, what happens at connect and at reconnection
  (held live items, missed items fetched and run), positions;
* :mod:`.registry` and :mod:`.runner`: the hooks, and running each one's items;
* :mod:`.snapshot`: what other threads (magics, table, completion) may read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable

from .catchup import CatchUp, publisher_of
from .deadletters import DeadLetters
from .dedupe import ItemRef
from .events import Event, parse_events, prepare
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
from .peers import PeerWatch, machine_tag
from .persistence import KERNEL, TOOL, PersistentHooks
from .registry import HookRegistry
from .runner import HookRunner, Trigger, needs_newer_summary
from .session import RequestError, XmppSession, bare_jid
from .snapshot import HookView, Snapshot
from .states import Outcome, SessionState, TriggerKind
from .store import HookStore, PositionStore, StoreDamaged, StoreTooNew
from .subscriptions import Subscriptions, is_pep
from .watchdog import Watchdog

__all__ = ["HookManager"]

log = logging.getLogger(__name__)
logging.getLogger("pubsub_hook_magic").addHandler(logging.NullHandler())


def _is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (resolving names that need it)."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


@dataclass
class Totals:
    """Triggers and errors of the hooks deleted during the session."""

    triggers: int = 0
    errors: int = 0


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
    :param dead_letters: how many failed items each hook keeps (see :mod:`.deadletters`).
    :param role: what this process is to the account's other processes on the machine
        (see :mod:`.persistence`): ``"kernel"``, ``"pubsub-hook run"`` (the service,
        which runs every persistent hook it can load) or ``"pubsub-hook"`` (a short
        command, which runs none).
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
        dead_letters: int = 1000,
        role: str = KERNEL,
    ):
        self.namespace = namespace if namespace is not None else {}
        self.shell = shell
        self.kernel_loop = kernel_loop
        self.data_dir = data_dir
        self.history = history
        self.queue_size = queue_size
        self.time_limit = time_limit
        self.strict_names = strict_names
        self.dead_letters = dead_letters
        self.watchdog = Watchdog()
        self.registry = HookRegistry()
        self.runners: dict[str, HookRunner] = {}
        self.session: XmppSession | None = None
        self.store: HookStore | None = None
        self.connected_since: float | None = None
        self.subscriptions = Subscriptions(
            lambda: self.session, lambda: self.store, lambda key: self.persistent.claimed_elsewhere(key)
        )
        self.persistent = PersistentHooks(self, role)
        #: Other machines running this account's persistent hooks (see :mod:`.peers`).
        self.peers: PeerWatch | None = None
        self.catchup = CatchUp(
            self.registry, self.runners, self.subscriptions, lambda: self.session, self._changed
        )
        self._retired = Totals()
        self._lock = asyncio.Lock()
        self._trigger_listeners: list[Callable[[HookRunner, Trigger], None]] = []
        self._change_listeners: list[Callable[[], None]] = []
        self._snapshot = Snapshot.EMPTY
        #: Set while many hooks are installed at once: one snapshot at the end.
        self._bulk = False
        #: Stored hooks written by a newer version: listed, never run.
        self._newer: list[dict[str, Any]] = []

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
    def state(self) -> SessionState:
        return self.session.state if self.session is not None else SessionState.DISCONNECTED

    @property
    def positions(self) -> PositionStore | None:
        """Where persistent hooks' positions are stored (None when disconnected)."""
        return self.catchup.positions

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

        Every node is made to deliver at once; ``connect`` returns when they all do.
        The items published while away then run in the background, node by node (the
        hooks show ``catching up``), before the node's live items.

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
            self._newer = []
            try:
                records = store.hooks()  # a refused store is an error before we log in
                self._newer = store.newer_hooks()
                if self._newer:
                    warnings.append(
                        f"{len(self._newer)} persistent hook(s) need a newer pubsub_hook_magic "
                        "and do not run here: upgrade it in this environment"
                    )
            except StoreTooNew as exc:
                records, self._newer = [], exc.records
                warnings.append(str(exc))
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
                on_item=self.catchup.on_item,
                host=host,
                port=port,
                tls=tls,
                direct_tls=direct_tls,
                ca_file=ca_file,
                on_restored=self._restore,
                on_event=self.catchup.on_event,
                on_state=lambda _state: self._changed(),
            )
            self.persistent.start(store)  # a second service of the account stops here
            try:
                await session.start(timeout)
            except BaseException:
                self.persistent.close()
                raise
            self.session, self.store = session, store
            if self.persistent.role != TOOL:
                self.peers = PeerWatch(session.client, machine_tag(store.data_dir), lambda _w: self._changed())
            self.catchup.positions = PositionStore(account, store.data_dir)
            self.connected_since = time.time()
            self.subscriptions.load(store)
            return warnings + await self.persistent.install(records)

    def _restore(self) -> None:
        """After a reconnection (called before any event of the new session): hold the
        live items, make every node deliver again and catch up (see :mod:`.catchup`)."""
        self.catchup.resume_in_background(self.registry.nodes())

    async def disconnect(self) -> None:
        """Drop temporary hooks (and the subscriptions made for them only), stop every
        runner and close the session. Persistent hooks stay stored."""
        async with self._lock:
            session = self.session
            if session is None:
                return
            temporary_nodes = {h.key for h in self.registry if not h.persistent}
            persistent_nodes = {h.key for h in self.registry if h.persistent}
            self.persistent.stop()
            if session.connected:
                leaving = sorted(temporary_nodes - persistent_nodes)
                results = await asyncio.gather(
                    *(asyncio.wait_for(self.subscriptions.unlisten(*key), 5) for key in leaving),
                    return_exceptions=True,
                )
                for (service, node), result in zip(leaving, results):
                    if isinstance(result, (asyncio.TimeoutError, HookError)):
                        log.warning("leaving %s/%s: %s", service, node, result)
            for hook in list(self.registry):
                await self._uninstall(hook)
            self.catchup.reset()
            self.persistent.close()
            if self.peers is not None:
                self.peers.close()
                self.peers = None
            self.session, self.store = None, None
            self.connected_since = None
            self.subscriptions.clear()
            self._retired = Totals()
            await session.stop()
            self._changed()

    def _require_session(self) -> XmppSession:
        session = self.session
        if session is None:
            raise HookError("not connected to an XMPP server: connect first (%hook connect JID)")
        if session.state == SessionState.RECONNECTING:
            raise HookError(
                "the session is reconnecting to the server: try again once %hook status "
                "says connected"
            )
        if not session.connected:
            raise HookError(session.last_error or f"the session is {session.state}: connect again")
        return session

    # ------------------------------------------------------------------ hooks

    async def create_hook(
        self,
        service: str | None,
        node: str,
        hook_type: str | HookType,
        arg: str,
        *,
        persistent: bool = False,
        catch_up: bool = True,
        retry: int = 0,
        retry_delay: float = 1.0,
        events: str | list[str] | None = None,
        where: str | None = None,
        namespaces: list[str] | dict[str, str] | None = None,
    ) -> Hook:
        """Check the hook's code, make sure the node's events arrive, install the hook
        and store it if persistent. On any error nothing is installed or stored.

        A failed run is tried again ``retry`` times, after ``retry_delay`` seconds and
        twice as long each time (see :mod:`.runner`); an item that still fails goes to
        the hook's dead letters (:meth:`failed`).

        ``events`` ("publish,retract", or a list) are the PubSub events the hook runs
        for, publications by default; ``where`` an XPath expression that publications'
        payloads must match, with ``namespaces`` ("prefix=uri" strings or a dict) for
        its prefixes (see :mod:`.events`)."""
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
                retry=retry,
                retry_delay=retry_delay,
                events=events,  # type: ignore[arg-type]
                where=where or None,
                namespaces=namespaces,  # type: ignore[arg-type]
            )
            prepare(hook)
            hook.func = self._load(hook)
            new_node = not self.registry.for_node(service, node)
            if new_node:
                await self._listen_new(service, node)
            if set(hook.events) & {Event.RETRACT, Event.DELETE} and not is_pep(service):
                hook.notes.extend(await self.subscriptions.unsent_events(service, node, hook.events))
            runner = self._install(hook)
            # Catch-up starts after the newest item the node had when the hook was made
            # (from its first item if it had none).
            position = self.catchup.node_position.get(hook.key)
            runner.set_position(position if position is not None else ItemRef("", digest=""))
            if persistent:
                try:
                    self.store.add_hook(hook.to_record())  # type: ignore[union-attr]
                    self.catchup.save_position_now(runner)
                except BaseException:
                    await self._uninstall(hook)
                    if new_node:
                        await self._unlisten(service, node)
                    raise
                self.persistent.adopt(runner)
                self._changed()
            log.info("created %s", hook.describe())
            return hook

    async def _listen_new(self, service: str, node: str) -> None:
        """Make a node no hook used deliver: its newest item is read and its
        subscription checked at once, then the subscription made if needed (two round
        trips at most)."""
        if is_pep(service):
            await self.catchup.seed(service, node)
            await self.subscriptions.listen(service, node)
            return
        seeded, subscribed = await asyncio.gather(
            self.catchup.seed(service, node),
            self.subscriptions.is_subscribed(service, node),
            return_exceptions=True,
        )
        for result in (seeded, subscribed):
            if isinstance(result, BaseException):
                raise result
        await self.subscriptions.listen(service, node, subscribed=bool(subscribed))

    async def _unlisten(self, service: str, node: str) -> None:
        self.catchup.forget(service, node)
        await self.subscriptions.unlisten(service, node)

    async def delete_hooks(
        self,
        service: str | None = None,
        node: str | None = None,
        hook_type: str | HookType | None = None,
        arg: str | None = None,
        *,
        hook_id: str | None = None,
        events: str | None = None,
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
                wanted = tuple(e.value for e in parse_events(events)) if events else ()
                doomed = self.registry.select(service, node, kind, arg or None, wanted)
            stored = {h.id for h in doomed if h.persistent}
            if stored and self.store is not None:
                self.store.remove_hooks(stored)  # fails before anything is removed
                for hook_id in stored:
                    self.catchup.drop_position(hook_id)
                    self._drop_dead_letters(hook_id)
            for hook in doomed:
                await self._remove(hook)
            return len(doomed)

    async def _remove(self, hook: Hook) -> None:
        """Uninstall a hook, and stop its node's events if no hook is left on it."""
        await self._uninstall(hook)
        if not self.registry.for_node(*hook.key) and self.connected:
            try:
                await self._unlisten(*hook.key)
            except HookError as exc:
                log.warning("%s", exc)

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

    async def retract(self, service: str | None, node: str, item_id: str) -> None:
        """Retract an item (from your own PEP by default), notifying the node's
        subscribers: hooks on ``retract`` run."""
        session = self._require_session()
        if not node or not item_id:
            raise HookError("give the node (-n NODE) and the id of the item to retract")
        service = bare_jid(service, "service JID") if service else session.bare
        try:
            await session.retract(service, node, item_id)
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
        runner = self._runner(hook_id)
        if runner.hook.persistent and self.store is not None:
            # Stored: the process that runs it (maybe another) pauses it too.
            self.store.set_paused(hook_id, paused)
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
            seen = [t.payload for t in runner.triggers if t.payload is not None and t.kind in (TriggerKind.LIVE, TriggerKind.CATCH_UP)]
            if not seen:
                raise HookError(
                    f"hook {hook_id} has no item to replay yet: use --item ID or --last N to "
                    "take items from the node"
                )
            items = seen[-1:]
        return [await runner.run_now(item, TriggerKind.REPLAY, publisher=publisher_of(item)) for item in items]

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
        return await runner.run_now(item, TriggerKind.TEST)

    def hooks(self) -> list[Hook]:
        """Every installed hook, persistent first (safe from any thread)."""
        return list(self.registry)

    def list_hooks(self) -> list[dict[str, Any]]:
        """Every hook with its statistics and recent triggers (JSON-ready); stored
        hooks that need a newer version of the package are listed too, not run."""
        listed = [self.runners[h.id].summary() for h in self.registry]
        for record in self._newer:
            listed.append(needs_newer_summary(record))
        return listed

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
            "triggers": self._retired.triggers + sum(r.count for r in self.runners.values()),
            "errors": self._retired.errors + sum(r.errors for r in self.runners.values()),
            "store": str(self.store.path) if self.store else None,
            "warnings": sorted(self.peers.warnings.values()) if self.peers else [],
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

    def snapshot(self) -> Snapshot:
        """The hooks and the session's state as of the last change: safe to read from
        any thread (see :mod:`.snapshot`)."""
        return self._snapshot

    def _changed(self) -> None:
        """Something users see changed (on the session's loop): publish a new snapshot
        and tell the listeners (once at the end of a bulk change)."""
        if self._bulk:
            return
        runners = self.runners
        self._snapshot = Snapshot(
            self.state,
            self.jid,
            tuple(HookView.of(runners[h.id]) for h in self.registry if h.id in runners),
        )
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

    def _install(self, hook: Hook) -> HookRunner:
        self.registry.add(hook)
        runner = HookRunner(
            hook,
            lambda: (self, self.client),
            history=self.history,
            queue_size=self.queue_size,
            time_limit=self.time_limit,
            watchdog=self.watchdog,
            loader=self._load,
            dead_letters=self._dead_letters_for(hook),
        )
        if hook.persistent and hook.catch_up:
            runner.add_listener(self.catchup.position_moved)
        if hook.catch_up:
            runner.add_listener(self._caught_up)
        for listener in self._trigger_listeners:
            runner.add_listener(listener)
        if runner.lossless:
            runner.on_drained = self.catchup.restart
        self.runners[hook.id] = runner
        self.persistent.claim()  # before its node is subscribed: see Subscriptions.unlisten
        runner.start()
        self._changed()
        return runner

    def _caught_up(self, runner: HookRunner, trigger: Trigger) -> None:
        """The last missed item of a hook ran: it is no longer "catching up"."""
        if trigger.kind is TriggerKind.CATCH_UP and not runner.catch_up_left and not runner.held:
            self._changed()

    async def _uninstall(self, hook: Hook) -> None:
        self.registry.remove(hook)
        runner = self.runners.pop(hook.id, None)
        if runner is not None:
            await runner.stop()
            self._retired.triggers += runner.count
            self._retired.errors += runner.errors
        self.persistent.release(hook.id)
        if hook.persistent and self.catchup.positions is not None:
            self.catchup.positions.close(hook.id)
        self.persistent.claim()
        self._changed()

    async def stop_runners(self) -> None:
        """Stop every hook's runs (at exit): a run in progress is not counted as done;
        the session and the hooks stay as they are."""
        await asyncio.gather(*(runner.stop() for runner in list(self.runners.values())))

    def save_positions(self) -> None:
        """Write the positions of persistent hooks that moved (also called at exit)."""
        self.catchup.save_positions()

    # ---- dead letters
    # The items a hook could not run, after its retries (see :mod:`.deadletters`):
    # listed, run again or discarded here; kept in a file for persistent hooks.

    def _dead_letters_for(self, hook: Hook) -> DeadLetters:
        """A hook's dead letters as it is installed: in its file beside the positions
        for a persistent hook (what earlier sessions left is read), else in memory."""
        if hook.persistent and self.store is not None:
            return DeadLetters.for_hook(self.store.account, hook.id, self.store.data_dir, self.dead_letters)
        return DeadLetters(self.dead_letters)

    def _drop_dead_letters(self, hook_id: str) -> None:
        """A persistent hook is deleted: its dead letters go with it (the file too)."""
        runner = self.runners.get(hook_id)
        if runner is not None:
            runner.dead_letters.delete()
        elif self.store is not None:
            DeadLetters.for_hook(self.store.account, hook_id, self.store.data_dir).delete()

    def failed(self, hook_id: str) -> list[dict[str, Any]]:
        """The items hook ``hook_id`` could not run, oldest first (``%hook failed``):
        ``item_id``, ``publisher``, ``payload`` (XML text), ``error``, ``traceback``,
        ``attempts``, ``first_failed`` and ``last_failed`` (times), ``outcome``."""
        return [letter.as_dict() for letter in self._runner(hook_id).dead_letters.letters()]

    async def retry_failed(self, hook_id: str, item_id: str | None = None) -> list[Trigger]:
        """Run hook ``hook_id`` again on its failed items (those of item ``item_id``
        when given), in order, each once, recorded as triggers of kind "retry". Those
        that succeed are removed; the others stay, with one more attempt. A persistent
        hook that another process runs is retried there (asked through the store; the
        result is empty here)."""
        runner = self._runner(hook_id)
        hook = runner.hook
        if runner.standby and runner.owner and self.store is not None:
            # It runs in another process: ask that one, through the store.
            self.store.request_retry(hook_id, item_id)
            return []
        if hook.func is None:
            raise HookError(
                f"hook {hook_id} does not load ({hook.load_error}): fix its code, then retry"
            )
        letters = runner.dead_letters.letters(item_id)
        triggers: list[Trigger] = []
        done: set[int] = set()
        again = []
        try:
            for letter in letters:
                trigger = await runner.run_now(
                    letter.item(), TriggerKind.RETRY, letter.item_id, letter.publisher
                )
                triggers.append(trigger)
                if trigger.outcome == Outcome.OK:
                    done.add(letter.seq)
                else:
                    letter.failed_again(trigger)
                    again.append(letter)
        finally:  # what ran is settled even if the retry is interrupted
            runner.dead_letters.settle(done, again)
            self._changed()
        return triggers

    async def discard_failed(self, hook_id: str, item_id: str | None = None) -> int:
        """Drop hook ``hook_id``'s failed items (those of item ``item_id`` when given);
        returns how many."""
        runner = self._runner(hook_id)
        dead = runner.dead_letters
        count = dead.settle({letter.seq for letter in dead.letters(item_id)})
        self._changed()
        return count
