"""The engine: the session loop's side of one account's hooks.

It owns the one index of installed hooks (:class:`.HookIndex`, id -> runner, and by
node), the live path (:mod:`.live`), catch-up (:mod:`.catchup`), positions
(:mod:`.positions`), the background tasks (:class:`.TaskSet`) and the snapshot that
other threads read (:mod:`.snapshot`). Its public methods are the API the façade
(:class:`.HookManager`) and the cross-process coordinator (:mod:`.persistence`) call;
neither reaches into the other. Every install and removal happens under
:attr:`Engine.lock`, whoever asks for it.

Everything here runs on the session's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .background import TaskSet
from .catchup import CatchUp
from .deadletters import DeadLetters
from .hooks import Hook, HookError, HookLoadError, load_hook, missing_names
from .live import LivePath
from .nodeinfo import create_notes, read_config
from .nodestatus import NodeStatus
from .nodewatch import NodeWatch
from .positions import PositionKeeper
from .registry import HookIndex
from .runner import HookRunner
from .xmpp_session import XmppSession
from .snapshot import HookView, Snapshot
from .states import HookState, Outcome, SessionState, TriggerKind
from .store import HookStore
from .subscriptions import SubscriptionPending, Subscriptions
from .trigger import Trigger
from .watchdog import Watchdog

__all__ = ["Engine", "EngineConfig", "Totals"]

log = logging.getLogger(__name__)

Listener = Callable[[HookRunner, Trigger], None]


@dataclass
class Totals:
    """Triggers and errors of the hooks deleted during the session."""

    triggers: int = 0
    errors: int = 0


@dataclass(frozen=True)
class EngineConfig:
    """How the engine runs hooks (see :class:`.HookManager`'s parameters)."""

    history: int = 50
    queue_size: int = 1000
    time_limit: float | None = 60.0
    strict_names: bool = False
    dead_letters: int = 1000


class Engine:
    """Installed hooks and what feeds them, for one account (see the module)."""

    def __init__(
        self,
        config: EngineConfig,
        namespace: dict[str, Any],
        call_args: Callable[[], tuple[Any, Any]],
        session: Callable[[], XmppSession | None],
        store: Callable[[], HookStore | None],
        subscriptions: Subscriptions,
        describe: Callable[[], tuple[SessionState, str | None]],
    ):
        self.config = config
        self.namespace = namespace
        self._call_args = call_args
        self._session = session
        self._store = store
        self._describe = describe
        self.subscriptions = subscriptions
        self.watchdog = Watchdog()
        self.index: HookIndex[HookRunner] = HookIndex()
        self.tasks = TaskSet()
        self.live = LivePath(self.index, self.changed, lambda *event: self.nodewatch.on_node_event(*event), session)
        self.positions = PositionKeeper()
        self.catchup = CatchUp(
            self.index, self.live, self.positions, subscriptions, session, self.tasks, self.changed,
            on_problem=lambda key, exc: self.nodewatch.problem(key, exc),
        )
        #: Nodes that do not deliver (deleted, unsubscribed, pending), and what is done.
        self.node_status = NodeStatus(lambda _key: self.changed())
        self.nodewatch = NodeWatch(
            self.index, self.node_status, self.live, self.catchup, subscriptions, self.positions, session, self.tasks
        )
        #: Held by every install and removal (a user's create or delete, the store's).
        self.lock = asyncio.Lock()
        self.retired = Totals()
        #: Called after the set of installed hooks changed (the coordinator's claims).
        self.on_installed: list[Callable[[], None]] = []
        self._trigger_listeners: list[Listener] = []
        self._change_listeners: list[Callable[[], None]] = []
        self._snapshot = Snapshot.EMPTY
        self._bulk = 0

    # ------------------------------------------------------------------ hooks

    def runner(self, hook_id: str) -> HookRunner:
        runner = self.index.get(hook_id)
        if runner is None:
            raise HookError(f"no hook {hook_id!r}: %hook list shows the ids")
        return runner

    def load(self, hook: Hook) -> Callable[..., Any]:
        """Load a hook's code; with ``strict_names``, code run in the shared namespace
        (python_code, a function hook's stored source) that reads names nobody defines
        (notebook variables, outside a notebook) is refused."""
        code = hook.code if hook.function is None else None  # a live function has its own globals
        if self.config.strict_names and code is not None:
            names = missing_names(code, self.namespace)
            if names:
                raise HookLoadError(
                    f"the code uses {', '.join(names)}, which nothing defines here (notebook "
                    "variables?): define them in the code, or move the hook to a python_file"
                )
        return load_hook(hook, self.namespace)

    def install(self, hook: Hook) -> HookRunner:
        """Make a runner for ``hook`` and index it (under :attr:`lock`)."""
        config = self.config
        runner = HookRunner(
            hook,
            self._call_args,
            history=config.history,
            queue_size=config.queue_size,
            time_limit=config.time_limit,
            watchdog=self.watchdog,
            loader=self.load,
            dead_letters=self.dead_letters_for(hook),
            held_nodes=self.live.held,
            node_problems=self.node_status,
            live_only=self.live.live_only,
        )
        if hook.persistent and hook.catch_up:
            runner.add_listener(self.positions.moved)
        if hook.persistent:
            runner.on_present_change = self.positions.present_changed
        if hook.catch_up:
            runner.add_listener(self._caught_up)
        for listener in self._trigger_listeners:
            runner.add_listener(listener)
        if runner.lossless:
            runner.on_drained = self.catchup.restart
        self.index.add(runner)
        self._installed()  # before its node is subscribed: see Subscriptions.unlisten
        runner.start()
        self.changed()
        return runner

    def _caught_up(self, runner: HookRunner, trigger: Trigger) -> None:
        """The last missed item of a hook ran: it is no longer "catching up"."""
        if trigger.kind is TriggerKind.CATCH_UP and not runner.catch_up_left and not runner.held:
            self.changed()

    async def uninstall(self, hook: Hook) -> None:
        """Stop and unindex a hook's runner (it stays stored if persistent)."""
        runner = self.index.remove(hook.id)
        if runner is not None:
            await runner.stop()
            self.retired.triggers += runner.count
            self.retired.errors += runner.errors
        if hook.persistent:
            self.positions.close_hook(hook.id)
        self._installed()
        self.changed()

    async def remove(self, hook: Hook) -> None:
        """Uninstall a hook, and stop its node's events if no hook is left on it."""
        await self.uninstall(hook)
        session = self._session()
        if not self.index.for_node(*hook.key) and session is not None and session.connected:
            try:
                await self.unlisten(*hook.key)
            except HookError as exc:
                log.warning("%s", exc)

    async def listen_new(self, service: str, node: str, pep: bool) -> list[str]:
        """Make a node no hook used deliver: its newest item is read and its
        subscription checked at once, then the subscription made if needed (two round
        trips at most). Returns notes for the user (a subscription waiting for the
        owner's approval: the node's hooks are then ``pending``)."""
        session = self._session()
        if pep:
            await self.live.seed(session, service, node)
            await self.subscriptions.listen(service, node)
            return []
        seeded, subscribed, config = await asyncio.gather(
            self.live.seed(session, service, node),
            self.subscriptions.is_subscribed(service, node),
            read_config(session, service, node),  # (what it means for hooks: :mod:`.nodeinfo`)
            return_exceptions=True,
        )
        notes = create_notes(service, node, config if isinstance(config, dict) else {}, self.live.live_only)
        for result in (seeded, subscribed):
            if isinstance(result, BaseException):
                raise result
        try:
            await self.subscriptions.listen(service, node, subscribed=bool(subscribed))
        except SubscriptionPending as exc:
            self.node_status.set((service, node), HookState.PENDING, str(exc))
            return [str(exc), *notes]
        return notes

    async def unlisten(self, service: str, node: str) -> None:
        self.live.forget(service, node)
        self.nodewatch.forget((service, node))
        await self.subscriptions.unlisten(service, node)

    def _installed(self) -> None:
        if not self._bulk:
            for callback in self.on_installed:
                callback()

    async def stop_runners(self) -> None:
        """Stop every hook's runs (at exit): a run in progress is not counted as done."""
        await asyncio.gather(*(runner.stop() for runner in self.index.ordered()))

    def reset(self) -> None:
        """After every hook is uninstalled (at disconnect)."""
        self.catchup.reset()
        self.nodewatch.reset()
        self.retired = Totals()

    # ------------------------------------------------------------------ what others see

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Many hooks installed at once: one snapshot and one claim at the end."""
        self._bulk += 1
        try:
            yield
        finally:
            self._bulk -= 1
        if not self._bulk:
            self._installed()
            self.changed()

    def changed(self) -> None:
        """Something users see changed (on the session's loop): publish a new snapshot
        and tell the listeners (once at the end of a bulk change)."""
        if self._bulk:
            return
        state, jid = self._describe()
        self._snapshot = Snapshot(state, jid, tuple(HookView.of(r) for r in self.index.ordered()))
        for listener in list(self._change_listeners):
            try:
                listener()
            except Exception:
                log.exception("change listener failed")

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def add_trigger_listener(self, listener: Listener) -> None:
        self._trigger_listeners.append(listener)
        for runner in self.index.ordered():
            runner.add_listener(listener)

    def remove_trigger_listener(self, listener: Listener) -> None:
        if listener in self._trigger_listeners:
            self._trigger_listeners.remove(listener)
        for runner in self.index.ordered():
            runner.remove_listener(listener)

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        self._change_listeners.append(listener)

    def remove_change_listener(self, listener: Callable[[], None]) -> None:
        if listener in self._change_listeners:
            self._change_listeners.remove(listener)

    # ------------------------------------------------------------------ dead letters
    # The items a hook could not run, after its retries (see :mod:`.deadletters`).

    def dead_letters_for(self, hook: Hook) -> DeadLetters:
        """A hook's dead letters as it is installed: in its file beside the positions
        for a persistent hook (what earlier sessions left is read), else in memory."""
        store = self._store()
        if hook.persistent and store is not None:
            return DeadLetters.for_hook(store.account, hook.id, store.data_dir, self.config.dead_letters)
        return DeadLetters(self.config.dead_letters)

    def drop_dead_letters(self, hook_id: str) -> None:
        """A persistent hook is deleted: its dead letters go with it (the file too)."""
        runner = self.index.get(hook_id)
        store = self._store()
        if runner is not None:
            runner.dead_letters.delete()
        elif store is not None:
            DeadLetters.for_hook(store.account, hook_id, store.data_dir).delete()

    async def retry_failed(self, hook_id: str, item_id: str | None = None) -> list[Trigger]:
        """See :meth:`.HookManager.retry_failed`."""
        runner = self.runner(hook_id)
        hook = runner.hook
        store = self._store()
        if runner.standby and runner.owner and store is not None:
            store.request_retry(hook_id, item_id)  # it runs in another process: ask that one
            return []
        if hook.func is None:
            raise HookError(f"hook {hook_id} does not load ({hook.load_error}): fix its code, then retry")
        triggers: list[Trigger] = []
        done: set[int] = set()
        again = []
        try:
            for letter in runner.dead_letters.letters(item_id):
                trigger = await runner.run_now(letter.item(), TriggerKind.RETRY, letter.item_id, letter.publisher)
                triggers.append(trigger)
                if trigger.outcome == Outcome.OK:
                    done.add(letter.seq)
                else:
                    letter.failed_again(trigger)
                    again.append(letter)
        finally:  # what ran is settled even if the retry is interrupted
            runner.dead_letters.settle(done, again)
            self.changed()
        return triggers

    def discard_failed(self, hook_id: str, item_id: str | None = None) -> int:
        dead = self.runner(hook_id).dead_letters
        count = dead.settle({letter.seq for letter in dead.letters(item_id)})
        self.changed()
        return count
