"""Persistent hooks across processes: installing them, following the store, and
running each in exactly one process of the machine.

At ``connect`` the account's stored hooks are installed (:meth:`PersistentHooks.install`).
Each one then either runs here or stands by (see :mod:`.ownership` for the locks):

* the account's ``pubsub-hook run`` (the deployment) takes every hook it can load;
* a kernel leaves a hook to that service when one runs and can load it, and otherwise
  takes it if no other process runs it;
* a process that runs a hook keeps it until it lets go (exit, crash, disconnect);
  then a standby process takes it over within a second or two, first running what was
  published meanwhile, from the stored position.

While connected, a process follows the store (:meth:`PersistentHooks.tick`, twice a
second): a persistent hook created, deleted, paused or resumed in another process is
installed, removed, paused or resumed here too.

A persistent ``python_code`` hook whose code reads names the notebook does not define
yet waits for them (``waiting for NAME``): its items stay on the node and run, catch-up
first, after the first cell that defines them (:meth:`PersistentHooks.notebook_changed`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from .events import prepare
from .hooks import Hook, HookError, HookType, missing_names
from .ownership import KERNEL, SERVICE, Ownership
from .runner import HookRunner
from .store import HookStore, StoreError

if TYPE_CHECKING:
    from .manager import HookManager

__all__ = ["PersistentHooks", "KERNEL", "SERVICE", "TOOL"]

log = logging.getLogger(__name__)

#: A short-lived command (``pubsub-hook create``/``delete``): runs no persistent hook.
TOOL = "pubsub-hook"
#: Seconds between two looks at the store and at the hooks other processes run.
POLL = 0.5


class PersistentHooks:
    """The persistent hooks of one manager's session."""

    def __init__(self, manager: HookManager, role: str = KERNEL):
        self.manager = manager
        self.role = role
        self.ownership: Ownership | None = None
        self._store: HookStore | None = None
        self._seen: tuple[int, int, int] | None = None
        self._task: asyncio.Task[None] | None = None
        self._refused: frozenset[str] | None = None
        self._store_error: str | None = None
        #: The store's records as last read, by id (for retry requests).
        self._records: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ life cycle

    def start(self, store: HookStore) -> None:
        """Take this process's place among the account's processes (before login)."""
        ownership = Ownership(store.data_dir, store.account, self.role)
        if self.role == SERVICE:
            other = ownership.become_service()
            if other is not None:
                raise HookError(
                    f"another pubsub-hook run already runs the hooks of {store.account} "
                    f"on this machine ({other}): stop it first"
                )
        self.ownership, self._store = ownership, store

    def stop(self) -> None:
        """Stop following the store (at disconnect, before the hooks are removed)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def close(self) -> None:
        """Let every hook go, and the service and claim locks (after the hooks are
        removed)."""
        if self.ownership is not None:
            self.ownership.close()
        self.ownership = self._store = None
        self._seen = self._refused = None

    # ------------------------------------------------------------------ at connect

    async def install(self, records: list[dict[str, Any]]) -> list[str]:
        """Install the stored hooks; returns warnings, one line each."""
        manager = self.manager
        warnings: list[str] = []
        hooks = []
        self._seen = self._signature()
        for record in records:
            try:
                hook = Hook.from_record(record)
            except (KeyError, TypeError, ValueError, HookError) as exc:
                warnings.append(f"a stored hook is unreadable ({exc}): {record!r}")
                continue
            if hook.id not in manager.registry:
                hooks.append((hook, bool(record.get("paused"))))
        manager._bulk = True
        try:
            runners = [self._add(hook, paused) for hook, paused in hooks]
        finally:
            manager._bulk = False
        self.claim()
        running = {r.hook.key for r in runners if r.hook.func is not None}
        failed = await manager.catchup.resume(running)
        for runner in runners:
            hook = runner.hook
            if hook.func is not None and hook.key in failed:
                hook.load_error = str(failed[hook.key])
                hook.func = None
            if hook.load_error:
                warnings.append(f"persistent {hook.describe()} is not running: {hook.load_error}")
        # Subscriptions we made for hooks that are gone (e.g. a crashed kernel's
        # temporary hooks): remove them now.
        await manager.subscriptions.drop_unused(manager.registry.nodes())
        self._refuse()
        self._task = asyncio.get_running_loop().create_task(self._follow(), name="pubsub-hook-follow")
        manager._changed()
        return warnings

    def _add(self, hook: Hook, paused: bool) -> HookRunner:
        """Install a stored hook here, running or standing by."""
        manager = self.manager
        try:
            prepare(hook)
            hook.func = manager._load(hook)
        except HookError as exc:
            hook.load_error = str(exc)
        runner = manager._install(hook)
        runner.paused = paused
        if hook.func is not None:
            runner.waiting_for = self._waiting_names(hook)
            if not self._run_here(runner):
                self._stand_by(runner)
            else:
                runner.inactive = bool(runner.waiting_for)
                runner.position_unread = True  # read when its node catches up
        return runner

    def adopt(self, runner: HookRunner) -> None:
        """A persistent hook just created here: run it, or leave it to the service."""
        if not self._run_here(runner):
            self._stand_by(runner)

    # ------------------------------------------------------------------ who runs it

    def _run_here(self, runner: HookRunner) -> bool:
        """Whether this process runs the hook (taking its lock if so)."""
        ownership = self.ownership
        if ownership is None or self.role == TOOL or runner.hook.func is None:
            return False
        hook_id = runner.hook.id
        if ownership.owns(hook_id):
            return True
        if self.role == KERNEL:
            service = ownership.service()
            if service is not None and hook_id not in service[1]:
                return False  # the deployment takes it
        if ownership.try_own(hook_id):
            runner.owner = ownership.me
            return True
        return False

    def _stand_by(self, runner: HookRunner) -> None:
        runner.standby = runner.inactive = True
        runner.owner = self._owner_of(runner.hook.id)

    def _owner_of(self, hook_id: str) -> str | None:
        ownership = self.ownership
        if ownership is None:
            return None
        owner = ownership.owner(hook_id)
        if owner is None and self.role == KERNEL:
            service = ownership.service()
            if service is not None and hook_id not in service[1]:
                owner = service[0]
        return owner

    def _take_over(self, runner: HookRunner) -> None:
        """The process that ran the hook let go: run it here, from its stored position."""
        log.info("hook %s now runs here (%s)", runner.hook.id, self.ownership.me if self.ownership else "")
        runner.standby = False
        self.manager.catchup.load_positions(runner)
        if runner.waiting_for:
            return  # it starts when the notebook defines what it needs
        self.manager.catchup.restart(runner)

    def release(self, hook_id: str) -> None:
        if self.ownership is not None:
            self.ownership.release(hook_id)

    # ------------------------------------------------------------------ the notebook

    def _waiting_names(self, hook: Hook) -> tuple[str, ...]:
        """The notebook names a persistent python_code hook reads that are not defined
        yet (in a kernel; elsewhere such a hook does not load)."""
        if self.role != KERNEL or hook.type is not HookType.PYTHON_CODE or self.manager.strict_names:
            return ()
        return tuple(missing_names(hook.arg, self.manager.namespace))

    def notebook_changed(self) -> None:
        """After a cell ran: start the hooks whose names are now defined."""
        changed = False
        for runner in list(self.manager.runners.values()):
            if not runner.waiting_for:
                continue
            runner.waiting_for = self._waiting_names(runner.hook)
            if not runner.waiting_for:
                changed = True
                if not runner.standby:
                    log.info("hook %s: the notebook defines what it needs; it starts", runner.hook.id)
                    self.manager.catchup.restart(runner)
        if changed:
            self.manager._changed()

    # ------------------------------------------------------------------ following

    async def _follow(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(POLL)
            ticks += 1
            try:
                await self.tick(look_at_owners=ticks % 2 == 0)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - following must go on
                log.exception("following the hook store failed")

    async def tick(self, look_at_owners: bool = True) -> None:
        """Apply the store's changes, and take over the hooks other processes let go."""
        manager = self.manager
        changed = False
        signature = self._signature()
        if signature != self._seen:
            self._seen = signature
            changed = await self._apply_store()
        if look_at_owners and self.ownership is not None:
            for runner in list(manager.runners.values()):
                if not (runner.hook.persistent and runner.standby):
                    continue
                if manager.session is not None and manager.session.connected and self._run_here(runner):
                    self._take_over(runner)
                    changed = True
                else:
                    owner = self._owner_of(runner.hook.id)
                    if owner != runner.owner:
                        runner.owner = owner
                        changed = True
            self._refuse()
            self._carry_out_retries()
        if changed:
            manager._changed()

    def _carry_out_retries(self) -> None:
        """Retry the failed items of the hooks run here that another process asked for
        (``%hook retry`` of a hook in standby there)."""
        ownership, store = self.ownership, self._store
        if ownership is None or store is None:
            return
        for hook_id, record in self._records.items():
            request = record.get("retry_request")
            if not request or not ownership.owns(hook_id) or hook_id not in self.manager.runners:
                continue
            record.pop("retry_request", None)  # once: the store is cleared after the run
            item = request.get("item") if isinstance(request, dict) else None
            task = asyncio.get_running_loop().create_task(self._retry(hook_id, item, request))
            self.manager.catchup._tasks.add(task)
            task.add_done_callback(self.manager.catchup._tasks.discard)

    async def _retry(self, hook_id: str, item: str | None, request: Any) -> None:
        log.info("hook %s: retrying its failed items, as another process asked", hook_id)
        try:
            await self.manager.retry_failed(hook_id, item)
        except HookError as exc:
            log.warning("hook %s: retrying its failed items: %s", hook_id, exc)
        finally:
            if self._store is not None:
                try:
                    self._store.clear_retry_request(hook_id, request)
                except StoreError as exc:
                    log.warning("%s", exc)

    async def _apply_store(self) -> bool:
        """Install, remove, pause or resume what another process changed in the store."""
        manager = self.manager
        store = self._store
        if store is None:
            return False
        try:
            records = {str(r.get("id")): r for r in store.hooks() if isinstance(r, dict)}
        except StoreError as exc:
            if str(exc) != self._store_error:  # once, not twice a second
                log.warning("%s", exc)
            self._store_error = str(exc)
            return False
        self._store_error = None
        self._records = records
        here = {h.id: h for h in manager.registry if h.persistent}
        changed = False
        for hook_id in sorted(here.keys() - records.keys()):
            log.info("hook %s was deleted in another process: removed here", hook_id)
            manager.catchup.drop_position(hook_id)
            await manager._remove(here[hook_id])
            changed = True
        for hook_id, record in records.items():
            runner = manager.runners.get(hook_id)
            if runner is not None:
                paused = bool(record.get("paused"))
                if runner.paused != paused:
                    runner.paused = paused
                    changed = True
                continue
            try:
                hook = Hook.from_record(record)
            except (KeyError, TypeError, ValueError, HookError) as exc:
                log.warning("a stored hook is unreadable (%s): %r", exc, record)
                continue
            log.info("hook %s was created in another process: installed here", hook_id)
            new_node = not manager.registry.for_node(*hook.key)
            runner = self._add(hook, bool(record.get("paused")))
            changed = True
            if hook.func is None:
                continue
            if new_node:
                failed = await manager.subscriptions.ensure([hook.key])
                if hook.key in failed:
                    log.warning("hook %s: %s", hook_id, failed[hook.key])
            if not runner.standby and not runner.waiting_for:
                manager.catchup.restart(runner)
        return changed

    def _refuse(self) -> None:
        """(The service) tell kernels which stored hooks it cannot run."""
        if self.role != SERVICE or self.ownership is None:
            return
        refused = frozenset(
            r.hook.id for r in self.manager.runners.values() if r.hook.persistent and r.hook.func is None
        )
        if refused != self._refused:
            self._refused = refused
            self.ownership.refuse(refused)

    def _signature(self) -> tuple[int, int, int] | None:
        store = self._store
        if store is None:
            return None
        try:
            info = os.stat(store.path)
        except OSError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    # ------------------------------------------------------------------ claims

    def claim(self) -> None:
        """Say which nodes this process has hooks on (see :meth:`.Ownership.claim`;
        once at the end of a bulk install)."""
        if self.ownership is not None and not self.manager._bulk:
            try:
                self.ownership.claim(self.manager.registry.nodes())
            except OSError as exc:
                log.warning("cannot record the nodes this process uses: %s", exc)

    def claimed_elsewhere(self, key: tuple[str, str]) -> bool:
        return self.ownership is not None and self.ownership.claimed_elsewhere(key)
