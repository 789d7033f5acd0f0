"""The host: the Python API of the package, a façade over the engine and the session.

:class:`HookManager` is the object hooks receive as ``host`` and the Python API of the
package. Its methods are coroutines that run on the session's loop, so a plain script
uses it with ``asyncio.run``::

    async def main():
        host = HookManager()
        await host.connect("alice@example.org", password)
        await host.create_hook("pubsub.example.org", "news", "python_code", "print(item['id'])")
        await asyncio.Event().wait()

In a notebook the IPython magics drive the same object through a loop thread
(:mod:`.loopthread`).

It is a façade; each concept lives in its own module:

* :mod:`.xmpp_session`: the XMPP connection, its reconnections and requests;
* :mod:`.subscriptions`: which nodes must deliver, subscriptions and PEP interests;
* :mod:`.engine`: the installed hooks (:mod:`.registry`, one index), their runners
  (:mod:`.runner`, :mod:`.admission`), the live path (:mod:`.live`), catch-up
  (:mod:`.catchup`), positions (:mod:`.positions`);
* :mod:`.persistence`: persistent hooks across the account's processes;
* :mod:`.snapshot`: what other threads (magics, table, completion) may read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .dedupe import ItemRef
from .engine import Engine, EngineConfig
from .events import Event, parse_events, prepare
from .execution import call_on_loop
from .cells import CellRun, Created, duplicate_of
from .hooks import Hook, HookError, HookType, function_name, function_source, new_hook_id, normalize_arg
from .peers import PeerWatch, machine_tag
from .persistence import KERNEL, TOOL, PersistentHooks, read_store
from .registry import HookIndex, is_pattern
from .actions import OneOffRuns
from .runner import HookRunner, needs_newer_summary
from .xmpp_session import RequestError, XmppSession, bare_jid
from .snapshot import Snapshot
from .states import SessionState
from .store import HookStore, PositionStore
from .subscriptions import Subscriptions, is_pep
from .summary import HookSummary
from .trigger import Trigger

if TYPE_CHECKING:
    from .accounts import Accounts

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


def _source_if_any(func: Callable[..., Any]) -> str | None:
    """A temporary function hook's source where it can be taken (to compare
    definitions and name what it reads), else None: it need not be stored."""
    try:
        return function_source(func)
    except HookError:
        return None


class HookManager(OneOffRuns):
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
    :param accounts: the process's accounts (:class:`.Accounts`) this one is among,
        ``host.accounts`` inside hooks (None: a single account).
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
        accounts: Accounts | None = None,
    ):
        self.namespace = namespace if namespace is not None else {}
        self.shell = shell
        self.kernel_loop = kernel_loop
        self.data_dir = data_dir
        #: The process's accounts, when it has several (see :mod:`.accounts`).
        self.accounts = accounts
        self.config = EngineConfig(history, queue_size, time_limit, strict_names, dead_letters)
        self.session: XmppSession | None = None
        self.store: HookStore | None = None
        self.connected_since: float | None = None
        self.subscriptions = Subscriptions(
            lambda: self.session, lambda: self.store, lambda key: self.persistent.claimed_elsewhere(key)
        )
        self.engine = Engine(
            self.config, self.namespace, lambda: (self, self.client), lambda: self.session,
            lambda: self.store, self.subscriptions, lambda: (self.state, self.jid),
        )
        self.persistent = PersistentHooks(self.engine, lambda: self.session, role)
        #: Other machines running this account's persistent hooks (see :mod:`.peers`).
        self.peers: PeerWatch | None = None
        #: Stored hooks written by a newer version: listed, never run.
        self._newer: list[dict[str, Any]] = []

    # The engine's parts, by their former names (read-only).
    @property
    def runners(self) -> HookIndex[HookRunner]:
        """The installed hooks' runners by id (read on the session's loop only)."""
        return self.engine.index


    def _hook_id_taken(self, hook_id: str) -> bool:
        """Ids are unique in the process, across its accounts (``%hook pause ID``)."""
        if hook_id in self.engine.index:
            return True
        return self.accounts is not None and self.accounts.hook_id_taken(hook_id)

    def configure(self, **options: Any) -> None:
        """Change how hooks installed from now on run: ``history``, ``queue_size``,
        ``time_limit``, ``strict_names``, ``dead_letters`` (see the class)."""
        self.config = self.engine.config = dataclasses.replace(self.config, **options)

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
        return call_on_loop(self.kernel_loop, func, *args)

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
        return self.engine.positions.store

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

        A ``failed`` session of the same account (its password changed, another client
        took its resource) logs in again with ``password``, without a ``disconnect``:
        the installed hooks stay and go on running (catch-up as after a reconnection);
        the other options stay the session's.
        """
        async with self.engine.lock:
            account = bare_jid(jid, "JID")
            session = self.session
            if session is not None:
                if session.state != SessionState.FAILED:
                    raise HookError(f"already connected as {self.jid}: disconnect first to change account")
                if session.bare != account:
                    raise HookError(
                        f"the session of {session.bare} failed, and it is another account: "
                        f"disconnect first to log in as {account}"
                    )
                await session.reconnect(password, timeout)
                return []
            if "@" not in account:
                raise HookError(f"{jid!r} is not an account JID: give it as user@domain")
            if not tls and not _is_loopback(host or account.split("@", 1)[1]):
                raise HookError(
                    "--no-tls sends the password in clear: it is only allowed with a server "
                    "on this machine (loopback); drop it to use TLS"
                )
            store = HookStore(account, self.data_dir)
            records, self._newer, warnings = read_store(store)
            session = XmppSession(
                jid, password, on_item=self.engine.live.on_item, host=host, port=port, tls=tls,
                direct_tls=direct_tls, ca_file=ca_file, on_restored=self._restore,
                on_event=self.engine.live.on_event, on_state=lambda _state: self.engine.changed(),
            )
            self.persistent.start(store)  # a second service of the account stops here
            try:
                await session.start(timeout)
            except BaseException:
                self.persistent.close()
                raise
            self.session, self.store = session, store
            if self.accounts is not None:  # before its hooks run: they may look for it
                self.accounts.add(self)
            if self.persistent.role != TOOL:
                self.peers = PeerWatch(session.client, machine_tag(store.data_dir), lambda _w: self.engine.changed())
            self.engine.positions.store = PositionStore(account, store.data_dir)
            self.connected_since = time.time()
            self.subscriptions.load(store)
            self.engine.nodewatch.start_audit()
            return warnings + await self.persistent.install(records)

    def _restore(self) -> None:
        """After a reconnection (called before any event of the new session): hold the
        live items, make every node deliver again and catch up (see :mod:`.catchup`)."""
        self.engine.catchup.resume_in_background(self.engine.index.nodes())

    async def disconnect(self) -> None:
        """Drop temporary hooks (and the subscriptions made for them only), stop every
        runner and close the session. Persistent hooks stay stored."""
        engine = self.engine
        async with engine.lock:
            session = self.session
            if session is None:
                return
            hooks = engine.index.hooks()
            temporary_nodes = {h.key for h in hooks if not h.persistent}
            persistent_nodes = {h.key for h in hooks if h.persistent}
            self.persistent.stop()
            if session.connected:
                leaving = sorted(temporary_nodes - persistent_nodes)
                results = await asyncio.gather(
                    *(asyncio.wait_for(self.subscriptions.unlisten(*key), 5) for key in leaving),
                    return_exceptions=True,
                )
                for (service, node), result in zip(leaving, results, strict=True):
                    if isinstance(result, (TimeoutError, HookError)):
                        log.warning("leaving %s/%s: %s", service, node, result)
            for hook in hooks:
                await engine.uninstall(hook)
            engine.reset()
            self.persistent.close()
            if self.peers is not None:
                self.peers.close()
                self.peers = None
            self.session, self.store = None, None
            if self.accounts is not None and self.accounts.get(session.bare) is self:
                self.accounts.remove(session.bare)
            self.connected_since = None
            self.subscriptions.clear()
            await session.stop()
            engine.changed()

    # ------------------------------------------------------------------ hooks

    async def create_hook(
        self,
        service: str | None,
        node: str,
        hook_type: str | HookType,
        arg: str = "",
        *,
        persistent: bool = False,
        catch_up: bool = True,
        retry: int = 0,
        retry_delay: float = 1.0,
        events: str | list[str] | None = None,
        where: str | None = None,
        namespaces: list[str] | dict[str, str] | None = None,
        func: Callable[..., Any] | None = None,
        origin: str | None = None,
        again: bool = True,
    ) -> Hook:
        """Check the hook's code, make sure the node's events arrive, install the hook
        and store it if persistent. On any error nothing is installed or stored.

        A failed run is tried again ``retry`` times, after ``retry_delay`` seconds and
        twice as long each time (see :mod:`.runner`); an item that still fails goes to
        the hook's dead letters (:meth:`failed`).

        ``events`` ("publish,retract", or a list) are the PubSub events the hook runs
        for, publications by default; ``where`` an XPath expression that publications'
        payloads must match, with ``namespaces`` ("prefix=uri" strings or a dict) for
        its prefixes (see :mod:`.events`).

        A ``python_function`` hook runs ``func`` itself, sync or ``async def``, called
        as ``func(host, client, item)``; ``arg`` (default: the function's name) is the
        name it is listed by. A persistent one stores the function's source
        (:func:`.hooks.function_source`: a function defined with def at the top level of
        a cell or script), defined again from it after a restart. ``origin``: the
        notebook cell that makes the hook (see :mod:`.cells`), stored with it.

        ``again=False`` refuses a hook identical to an installed one, with its id (what
        ``%hook create``, the Python API and ``pubsub-hook create`` do); see
        :meth:`place_hook` for a notebook cell's hooks."""
        made = await self.place_hook(
            service, node, hook_type, arg, persistent=persistent, catch_up=catch_up, retry=retry,
            retry_delay=retry_delay, events=events, where=where, namespaces=namespaces, func=func,
            origin=origin, again=again,
        )
        return made.hook

    async def place_hook(
        self,
        service: str | None,
        node: str,
        hook_type: str | HookType,
        arg: str = "",
        *,
        persistent: bool = False,
        func: Callable[..., Any] | None = None,
        origin: str | None = None,
        again: bool = False,
        cell: CellRun | None = None,
        **options: Any,
    ) -> Created:
        """:meth:`create_hook` for a front end: ``cell`` is the notebook cell being run
        (see :mod:`.cells`): run again, its previous hooks are kept (same definition),
        get the new code in place (same id, positions, history), or are replaced; an
        identical hook installed already is refused unless ``again``. Returns what was
        done."""
        unknown = sorted(set(options) - {"catch_up", "retry", "retry_delay", "events", "where", "namespaces"})
        if unknown:
            raise HookError(f"unknown option(s) of create: {', '.join(unknown)}")
        engine = self.engine
        async with engine.lock:
            hook = self._new_hook(service, node, hook_type, arg, persistent, func, origin, options)
            replaced = None
            if cell is not None:
                hook.origin = cell.key
                match = cell.match(hook, lambda hook_id: engine.index.get(hook_id) is not None)
                if match.kind == "kept":
                    return Created(match.hook, "kept")
                if match.kind == "code":
                    return Created(self._replace_code(match.hook.id, hook), "code")
                replaced = match.replaces
            if not again:
                self._refuse_duplicate(hook)
            if replaced is not None:
                await self._remove([replaced])
            await self._install_new(hook)
            if replaced is not None:
                return Created(hook, "replaced", replaced.id)
            return Created(hook)

    def _new_hook(
        self,
        service: str | None,
        node: str,
        hook_type: str | HookType,
        arg: str,
        persistent: bool,
        func: Callable[..., Any] | None,
        origin: str | None,
        options: dict[str, Any],
    ) -> Hook:
        """A new hook, checked and loaded, not installed (under the engine's lock)."""
        engine = self.engine
        session = self._require_session()
        kind = HookType.parse(hook_type)
        if not node:
            raise HookError("a node is needed: give it with -n NODE")
        service = bare_jid(service, "service JID") if service else session.bare
        source = None
        if kind is HookType.PYTHON_FUNCTION:
            if func is None:
                raise HookError("a python_function hook needs the function: pass func=...")
            arg = arg or function_name(func)
            source = function_source(func, self.namespace) if persistent else _source_if_any(func)
        elif func is not None:
            raise HookError(f"func= is for python_function hooks, not {kind}: give type python_function")
        where = options.pop("where", None)
        hook = Hook(
            service=service, node=node, type=kind, arg=normalize_arg(kind, arg), persistent=persistent,
            id=new_hook_id(self._hook_id_taken), where=where or None, source=source, function=func,
            origin=origin, **options,
        )
        prepare(hook)
        hook.func = engine.load(hook)
        return hook

    def _refuse_duplicate(self, hook: Hook) -> None:
        same = duplicate_of(hook, self.engine.index.select(*hook.key))
        if same is not None:
            raise HookError(
                f"hook {same.id} already does this ({same.type} on node {same.node!r} of {same.service}): "
                "an identical hook would run every item twice; give --again (again=True in Python) "
                "to add it anyway"
            )

    def _replace_code(self, hook_id: str, new: Hook) -> Hook:
        """Hook ``hook_id`` runs ``new``'s code from now on (a cell run again)."""
        runner = self.engine.runner(hook_id)
        runner.replace_code(new)
        if runner.hook.persistent and self.store is not None:
            self.store.replace_hook(runner.hook.to_record())
        log.info("replaced the code of %s", runner.hook.describe())
        self.engine.changed()
        return runner.hook

    async def _install_new(self, hook: Hook) -> None:
        """Make sure the node's events arrive, install the hook, store it if
        persistent (under the engine's lock)."""
        engine = self.engine
        service, node = hook.key
        new_node = not engine.index.for_node(service, node)
        if new_node:
            hook.notes.extend(await engine.listen_new(service, node, is_pep(service)))
            if is_pep(service) and hook.key not in engine.live.node_position:
                hook.notes.extend(await self._pep_node_note(service, node))
        if set(hook.events) & {Event.RETRACT, Event.DELETE} and not is_pep(service):
            hook.notes.extend(await self.subscriptions.unsent_events(service, node, hook.events))
        runner = engine.install(hook)
        # Catch-up starts after the newest item the node had when the hook was made
        # (from its first item if it had none).
        position = engine.live.node_position.get(hook.key)
        runner.set_position(position if position is not None else ItemRef("", digest=""))
        if hook.persistent:
            await self._store_new(runner, new_node)
        log.info("created %s", hook.describe())

    async def _pep_node_note(self, service: str, node: str) -> list[str]:
        """A hook on a PEP node that holds no item: say so if the node does not exist
        yet (a forgotten ``-s SERVICE``, or a node nobody published to)."""
        session = self.session
        if session is None:
            return []
        try:
            if await session.node_exists(service, node):
                return []
        except RequestError:
            return []  # (the account does not say: nothing to note)
        whose = "your PEP" if service == session.bare else f"the PEP of {service}"
        return [
            f"{whose} has no node {node!r} yet: the hook runs once something publishes to it "
            f"(a node of a PubSub service needs -s SERVICE)"
        ]

    async def _store_new(self, runner: HookRunner, new_node: bool) -> None:
        """Store a new persistent hook and its starting position (or undo its install),
        then run it here or leave it to the account's service."""
        hook = runner.hook
        try:
            self.store.add_hook(hook.to_record())  # type: ignore[union-attr]
            self.engine.positions.save_now(runner)
        except BaseException:
            await self.engine.uninstall(hook)
            if new_node:
                await self.engine.unlisten(*hook.key)
            raise
        self.persistent.adopt(runner)
        self.engine.changed()

    async def delete_hooks(
        self,
        service: str | None = None,
        node: str | None = None,
        hook_type: str | HookType | None = None,
        arg: str | None = None,
        *,
        hook_id: str | None = None,
        events: str | None = None,
        every: bool = False,
    ) -> int:
        """Delete hooks as Libervia does: every hook on ``(service, node)``, narrowed
        by type and argument when given; or the one hook ``hook_id``. Returns how many.

        Ours: ``node`` (and ``service``) may be a shell-style pattern (``sensors/*``);
        ``every=True`` without a node: every hook of the account (of ``service`` when
        given), narrowed the same way. One store write for all of them."""
        engine = self.engine
        async with engine.lock:
            if hook_id:
                found = engine.index.get(hook_id)
                hook = found.hook if found is not None else None
                doomed = [hook] if hook is not None else []
                if node and hook is not None and hook.node != node:
                    raise HookError(
                        f"hook {hook_id} is on node {hook.node!r}, not {node!r}: give --id alone"
                    )
            else:
                if not node and not every:
                    raise HookError("give the node of the hooks to delete with -n NODE (or a pattern, -n 'news/*')")
                if every and not node:
                    node, service = "*", service or "*"
                if service and is_pattern(service):
                    pass  # matched against the services of the installed hooks
                else:
                    service = bare_jid(service, "service JID") if service else self._require_session().bare
                kind = HookType.parse(hook_type) if hook_type else None
                wanted = tuple(e.value for e in parse_events(events)) if events else ()
                doomed = engine.index.select(service, node or "*", kind, arg or None, wanted)
            await self._remove(doomed)
            return len(doomed)

    async def _remove(self, doomed: list[Hook]) -> None:
        """Remove hooks, from the store too (under the engine's lock)."""
        engine = self.engine
        stored = {h.id for h in doomed if h.persistent}
        if stored and self.store is not None:
            self.store.remove_hooks(stored)  # fails before anything is removed
            for hook_id in stored:
                engine.positions.drop(hook_id)
                engine.drop_dead_letters(hook_id)
        for hook in doomed:
            await engine.remove(hook)

    async def set_paused(self, hook_id: str, paused: bool) -> Hook:
        """Pause or resume a hook. A paused hook records the items it skips."""
        runner = self.engine.runner(hook_id)
        if runner.hook.persistent and self.store is not None:
            # Stored: the process that runs it (maybe another) pauses it too.
            self.store.set_paused(hook_id, paused)
        runner.mode.set_paused(paused)
        self.engine.changed()
        return runner.hook

    async def resume(self, hook_id: str) -> list[str]:
        """Resume a hook: a paused one runs again; where its node's subscription was
        removed (``unsubscribed``) or waits for approval (``pending``) it subscribes
        again, on your word; a deleted node (``node deleted``) is looked for now.
        Returns what was done, a line each; a HookError when the node still cannot
        deliver (the hook stays as it was)."""
        runner = self.engine.runner(hook_id)
        done = []
        if runner.paused:
            await self.set_paused(hook_id, False)
            done.append(f"Resumed hook {hook_id}.")
        if runner.mode.node_problem is not None:
            done.append(await self.engine.nodewatch.retry(runner.hook.key) + f": hook {hook_id} runs again.")
        return done or [f"Hook {hook_id} was neither paused nor kept from its node: it runs."]

    def hooks(self) -> list[Hook]:
        """Every installed hook, persistent first (safe from any thread)."""
        return list(self.engine.index.hooks())

    def list_hooks(self) -> list[HookSummary]:
        """Every hook with its statistics and recent triggers (JSON-ready); stored
        hooks that need a newer version of the package are listed too, not run."""
        listed = [runner.summary() for runner in self.engine.index.ordered()]
        for record in self._newer:
            listed.append(needs_newer_summary(record))
        return listed

    def status(self) -> dict[str, Any]:
        """The session's state and totals (``%hook status``)."""
        session = self.session
        index, retired = self.engine.index, self.engine.retired
        return {
            "state": self.state,
            "jid": self.jid,
            "server": (
                f"{session.host}:{session.port}" if session and session.host else None
            ),
            "tls": session.tls if session else None,
            "reconnects": session.reconnects if session else 0,
            "resumptions": session.resumptions if session else 0,
            "last_error": session.last_error if session else None,
            "connected_since": self.connected_since,
            "hooks": len(index),
            "persistent": sum(1 for h in index.hooks() if h.persistent),
            "nodes": len(index.nodes()),
            "events_received": session.events_received if session else 0,
            "triggers": retired.triggers + sum(r.count for r in index.ordered()),
            "errors": retired.errors + sum(r.errors for r in index.ordered()),
            "store": str(self.store.path) if self.store else None,
            "warnings": sorted(self.peers.warnings.values()) if self.peers else [],
            "node_problems": [
                {"service": service, "node": node, "state": problem.state.value, "reason": problem.reason,
                 "since": problem.since}
                for (service, node), problem in sorted(self.engine.node_status.items())
            ],
            "live_only": [
                {"service": service, "node": node, "reason": reason}
                for (service, node), reason in sorted(self.engine.live.live_only.items())
            ],
        }

    def add_trigger_listener(self, listener: Callable[[HookRunner, Trigger], None]) -> None:
        """Call ``listener(runner, trigger)`` after every run of every hook (on the
        session's loop: keep it short)."""
        self.engine.add_trigger_listener(listener)

    def remove_trigger_listener(self, listener: Callable[[HookRunner, Trigger], None]) -> None:
        self.engine.remove_trigger_listener(listener)

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` when hooks are added, removed or paused, or the session's
        state changes."""
        self.engine.add_change_listener(listener)

    def remove_change_listener(self, listener: Callable[[], None]) -> None:
        self.engine.remove_change_listener(listener)

    def snapshot(self) -> Snapshot:
        """The hooks and the session's state as of the last change: safe to read from
        any thread (see :mod:`.snapshot`)."""
        return self.engine.snapshot()

    async def stop_runners(self) -> None:
        """Stop every hook's runs (at exit): a run in progress is not counted as done;
        the session and the hooks stay as they are."""
        await self.engine.stop_runners()

    def notebook_changed(self) -> None:
        """After a cell ran (on the session's loop): start the persistent hooks whose
        notebook names are now defined."""
        self.persistent.notebook_changed()

    def save_positions(self) -> None:
        """Write the positions of persistent hooks that moved (also called at exit)."""
        self.engine.positions.flush()

    # ---- dead letters
    # The items a hook could not run, after its retries (see :mod:`.deadletters`):
    # listed, run again or discarded here; kept in a file for persistent hooks.

    def failed(self, hook_id: str) -> list[dict[str, Any]]:
        """The items hook ``hook_id`` could not run, oldest first (``%hook failed``):
        ``item_id``, ``publisher``, ``payload`` (XML text), ``error``, ``traceback``,
        ``attempts``, ``first_failed`` and ``last_failed`` (times), ``outcome``."""
        return [letter.as_dict() for letter in self.engine.runner(hook_id).dead_letters.letters()]

    async def retry_failed(self, hook_id: str, item_id: str | None = None) -> list[Trigger]:
        """Run hook ``hook_id`` again on its failed items (those of item ``item_id``
        when given), in order, each once, recorded as triggers of kind "retry". Those
        that succeed are removed; the others stay, with one more attempt. A persistent
        hook that another process runs is retried there (asked through the store; the
        result is empty here)."""
        return await self.engine.retry_failed(hook_id, item_id)

    async def discard_failed(self, hook_id: str, item_id: str | None = None) -> int:
        """Drop hook ``hook_id``'s failed items (those of item ``item_id`` when given);
        returns how many."""
        return self.engine.discard_failed(hook_id, item_id)
