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
yet (or a ``python_function`` hook defined again from its stored source) waits for
them (``waiting for NAME``): its items stay on the node and run, catch-up first,
after the first cell that defines them (:meth:`PersistentHooks.notebook_changed`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .engine import Engine
from .events import prepare
from .hooks import Hook, HookError, missing_names
from .ownership import KERNEL, SERVICE, Ownership
from .runner import HookRunner
from .xmpp_session import XmppSession
from .store import HookStore, StoreDamaged, StoreError, StoreTooNew

__all__ = ["KERNEL", "SERVICE", "TOOL", "PersistentHooks", "read_store"]

log = logging.getLogger(__name__)

#: A short-lived command (``pubsub-hook create``/``delete``): runs no persistent hook.
TOOL = "pubsub-hook"
#: Seconds between two looks at the store and at the hooks other processes run.
POLL = 0.5


class PersistentHooks:
    """The persistent hooks of one engine's session (through the engine's public API)."""

    def __init__(self, engine: Engine, session: Callable[[], XmppSession | None], role: str = KERNEL):
        self.engine = engine
        self._session = session
        self.role = role
        engine.on_installed.append(self.claim)
        self.ownership: Ownership | None = None
        self._store: HookStore | None = None
        self._task: asyncio.Task[None] | None = None
        self._refused: frozenset[str] | None = None
        self._store_error: str | None = None
        #: The stored records that ask for a retry, by id (see :meth:`_carry_out_retries`).
        self._retry_requests: dict[str, dict[str, Any]] = {}

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
        self._refused = None
        self._retry_requests = {}

    # ------------------------------------------------------------------ at connect

    async def install(self, records: list[dict[str, Any]]) -> list[str]:
        """Install the stored hooks; returns warnings, one line each."""
        engine = self.engine
        warnings: list[str] = []
        hooks = []
        for record in records:
            try:
                hook = Hook.from_record(record)
            except (KeyError, TypeError, ValueError, HookError) as exc:
                warnings.append(f"a stored hook is unreadable ({exc}): {record!r}")
                continue
            if hook.id not in engine.index:
                hooks.append((hook, bool(record.get("paused"))))
        with engine.bulk():
            runners = [self._add(hook, paused) for hook, paused in hooks]
        running = {r.hook.key for r in runners if r.hook.func is not None}
        failed = await engine.catchup.resume(running)
        for runner in runners:
            hook = runner.hook
            if hook.func is not None and hook.key in failed:
                hook.load_error = str(failed[hook.key])
                hook.func = None
            if hook.load_error:
                warnings.append(f"persistent {hook.describe()} is not running: {hook.load_error}")
        # Subscriptions we made for hooks that are gone (e.g. a crashed kernel's
        # temporary hooks): remove them now.
        await engine.subscriptions.drop_unused(engine.index.nodes())
        self._refuse()
        self._task = asyncio.get_running_loop().create_task(self._follow(), name="pubsub-hook-follow")
        engine.changed()
        return warnings

    def _add(self, hook: Hook, paused: bool) -> HookRunner:
        """Install a stored hook here, running or standing by."""
        try:
            prepare(hook)
            hook.func = self.engine.load(hook)
        except HookError as exc:
            hook.load_error = str(exc)
        runner = self.engine.install(hook)
        runner.mode.set_paused(paused)
        if hook.func is not None:
            runner.mode.wait_for(self._waiting_names(hook))
            if not self._run_here(runner):
                self._stand_by(runner)
            else:
                runner.mode.read_position_later()  # read when its node catches up
        elif self._owner_of(hook.id) is not None:
            # It does not load here, but another process runs it: take none of its
            # items (they would only fail here).
            self._stand_by(runner)
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
            runner.mode.run_here(ownership.me)
            return True
        return False

    def _stand_by(self, runner: HookRunner) -> None:
        runner.mode.stand_by(self._owner_of(runner.hook.id))

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
        runner.mode.run_here()
        self.engine.positions.load(runner)
        if runner.waiting_for:
            return  # it starts when the notebook defines what it needs
        self.engine.catchup.restart(runner)

    def release(self, hook_id: str) -> None:
        if self.ownership is not None:
            self.ownership.release(hook_id)

    # ------------------------------------------------------------------ the notebook

    def _waiting_names(self, hook: Hook) -> tuple[str, ...]:
        """The notebook names a persistent hook's code reads that are not defined yet:
        python_code, or a function hook defined again from its stored source (in a
        kernel; elsewhere such a hook does not load)."""
        code = hook.code if hook.function is None else None  # a live function: its own globals
        if self.role != KERNEL or code is None or self.engine.config.strict_names:
            return ()
        return tuple(missing_names(code, self.engine.namespace))

    def notebook_changed(self) -> None:
        """After a cell ran: start the hooks whose names are now defined."""
        changed = False
        for runner in self.engine.index.ordered():
            if not runner.waiting_for:
                continue
            runner.mode.wait_for(self._waiting_names(runner.hook))
            if not runner.waiting_for:
                changed = True
                if not runner.standby:
                    log.info("hook %s: the notebook defines what it needs; it starts", runner.hook.id)
                    self.engine.catchup.restart(runner)
        if changed:
            self.engine.changed()

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
            except Exception:
                log.exception("following the hook store failed")

    async def tick(self, look_at_owners: bool = True) -> None:
        """Apply the store's changes, and take over the hooks other processes let go."""
        engine = self.engine
        changed = False
        if self._store is not None:
            async with engine.lock:  # installs and removals, as a user's create and delete
                changed = await self._apply_store()
        if look_at_owners and self.ownership is not None:
            session = self._session()
            for runner in engine.index.ordered():
                if not (runner.hook.persistent and runner.standby):
                    continue
                if session is not None and session.connected and self._run_here(runner):
                    self._take_over(runner)
                    changed = True
                elif runner.mode.set_owner(self._owner_of(runner.hook.id)):
                    changed = True
            self._refuse()
            self._carry_out_retries()
        if changed:
            engine.changed()

    def _carry_out_retries(self) -> None:
        """Retry the failed items of the hooks run here that another process asked for
        (``%hook retry`` of a hook in standby there)."""
        ownership, store = self.ownership, self._store
        if ownership is None or store is None:
            return
        for hook_id, record in list(self._retry_requests.items()):
            request = record.get("retry_request")
            if not request or not ownership.owns(hook_id) or hook_id not in self.engine.index:
                continue
            del self._retry_requests[hook_id]  # once: the store is cleared after the run
            item = request.get("item") if isinstance(request, dict) else None
            self.engine.tasks.start(self._retry(hook_id, item, request), name=f"pubsub-hook-retry {hook_id}")

    async def _retry(self, hook_id: str, item: str | None, request: Any) -> None:
        log.info("hook %s: retrying its failed items, as another process asked", hook_id)
        try:
            await self.engine.retry_failed(hook_id, item)
        except HookError as exc:
            log.warning("hook %s: retrying its failed items: %s", hook_id, exc)
        finally:
            if self._store is not None:
                try:
                    self._store.clear_retry_request(hook_id, request)
                except StoreError as exc:
                    log.warning("%s", exc)

    def _new_code(self, runner: HookRunner, record: dict[str, Any]) -> bool:
        """Run the code another process stored for a hook installed here (its cell was
        run again with other code): same hook, new code. A version that does not load
        leaves the previous one running, with the reason logged."""
        hook = runner.hook
        if record.get("arg") == hook.arg and record.get("source") == hook.source:
            return False
        try:
            new = Hook.from_record(record)
            prepare(new)
            new.func = self.engine.load(new)
        except (KeyError, TypeError, ValueError, HookError) as exc:
            log.warning("hook %s: the code stored by another process does not load, the previous version runs: %s",
                        hook.id, exc)
            return False
        runner.replace_code(new)
        log.info("hook %s: its code was changed in another process (a cell run again): the new code runs here",
                 hook.id)
        return True

    async def _apply_store(self) -> bool:
        """Install, remove, pause or resume what another process changed in the store.

        Only the records changed since the last look are applied (the store reads
        only what was appended to its journal: :meth:`.HookStore.take_changes`), so a
        change costs the same whatever the number of hooks; this process's own changes
        come back too, and change nothing. Every record is compared only when the
        store's base file was written again (now and then)."""
        engine = self.engine
        store = self._store
        if store is None:
            return False
        try:
            changes = store.take_changes()
            if changes is None:
                stored = {str(r.get("id")): r for r in store.hooks() if isinstance(r, dict)}
                self._retry_requests = {}
                gone = {h.id for h in engine.index.hooks() if h.persistent} - stored.keys()
                changes = {**dict.fromkeys(gone), **stored}
        except StoreError as exc:
            if str(exc) != self._store_error:  # once, not twice a second
                log.warning("%s", exc)
            self._store_error = str(exc)
            return False
        self._store_error = None
        changed = False
        for hook_id in sorted(k for k, r in changes.items() if r is None):
            self._retry_requests.pop(hook_id, None)
            runner = engine.index.get(hook_id)
            if runner is None or not runner.hook.persistent:
                continue
            log.info("hook %s was deleted in another process: removed here", hook_id)
            engine.positions.drop(hook_id)
            await engine.remove(runner.hook)
            changed = True
        for hook_id, record in changes.items():
            if record is None:
                continue
            if record.get("retry_request"):
                self._retry_requests[hook_id] = record
            else:
                self._retry_requests.pop(hook_id, None)
            runner = engine.index.get(hook_id)
            if runner is not None:
                if runner.mode.set_paused(bool(record.get("paused"))):
                    changed = True
                if self._new_code(runner, record):
                    changed = True
                continue
            try:
                hook = Hook.from_record(record)
            except (KeyError, TypeError, ValueError, HookError) as exc:
                log.warning("a stored hook is unreadable (%s): %r", exc, record)
                continue
            log.info("hook %s was created in another process: installed here", hook_id)
            new_node = not engine.index.for_node(*hook.key)
            runner = self._add(hook, bool(record.get("paused")))
            changed = True
            if hook.func is None:
                continue
            if new_node:
                failed = await engine.subscriptions.ensure([hook.key])
                if hook.key in failed:
                    log.warning("hook %s: %s", hook_id, failed[hook.key])
            if not runner.standby and not runner.waiting_for:
                engine.catchup.restart(runner)
        return changed

    def _refuse(self) -> None:
        """(The service) tell kernels which stored hooks it cannot run."""
        if self.role != SERVICE or self.ownership is None:
            return
        refused = frozenset(
            r.hook.id for r in self.engine.index.ordered() if r.hook.persistent and r.hook.func is None
        )
        if refused != self._refused:
            self._refused = refused
            self.ownership.refuse(refused)

    # ------------------------------------------------------------------ claims

    def claim(self) -> None:
        """Say which nodes this process has hooks on (see :meth:`.Ownership.claim`;
        once at the end of a bulk install)."""
        if self.ownership is not None:
            try:
                self.ownership.claim(self.engine.index.nodes())
            except OSError as exc:
                log.warning("cannot record the nodes this process uses: %s", exc)

    def claimed_elsewhere(self, key: tuple[str, str]) -> bool:
        return self.ownership is not None and self.ownership.claimed_elsewhere(key)


def read_store(store: HookStore) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """The account's stored hooks, read before login (a refused store is an error
    then): ``(records, those of a newer version, warnings)``. A damaged store is set
    aside; hooks of a newer version are only listed."""
    warnings = []
    newer: list[dict[str, Any]] = []
    try:
        records = store.hooks()
        newer = store.newer_hooks()
        if newer:
            warnings.append(
                f"{len(newer)} persistent hook(s) need a newer pubsub_hook_magic "
                "and do not run here: upgrade it in this environment"
            )
    except StoreTooNew as exc:
        records, newer = [], exc.records
        warnings.append(str(exc))
    except StoreDamaged as exc:
        aside = store.set_aside()
        records = []
        warnings.append(
            f"{exc.args[0].split(';')[0]}: it was moved to {aside}, untouched; no "
            "persistent hook was installed. Repair that file and move it back (or "
            "re-create the hooks)"
        )
    return records, newer, warnings
