"""Where each persistent hook is in its node, kept across processes: loaded at its
catch-up, journaled at every item it runs (one ``write``, see
:class:`.store.PositionStore`), so a restarted or killed process resumes where the
last one stopped, running again at most the item that was running."""

from __future__ import annotations

import logging

from .dedupe import ItemRef
from .runner import HookRunner
from .store import PositionStore, StoreError
from .trigger import Trigger

__all__ = ["PositionKeeper"]

log = logging.getLogger(__name__)


class PositionKeeper:
    """The positions of one engine's persistent hooks (``store`` None: disconnected)."""

    def __init__(self) -> None:
        self.store: PositionStore | None = None

    def load(self, runner: HookRunner) -> None:
        """Give a persistent hook the position its last process stored."""
        store = self.store
        if store is None:
            runner.restore(None, None)
            return
        present = store.load_ids(runner.hook.id) if runner.present is not None else None
        stored = store.load(runner.hook.id)
        positions = [ItemRef(item_id, digest=digest) for item_id, digest in stored] if stored is not None else None
        runner.restore(positions, present)

    def save_now(self, runner: HookRunner) -> None:
        """Store a new persistent hook's starting position (errors propagate)."""
        if self.store is not None and runner.ran:
            self.store.save(runner.hook.id, [(r.id, r.digest) for r in runner.ran])

    def moved(self, runner: HookRunner, trigger: Trigger) -> None:
        """A persistent hook ran (or skipped) an item: journal it at once, so a killed
        process runs again only the item that was running."""
        store = self.store
        if store is None or not runner.ran or trigger.retried:
            return  # (an attempt that will be retried has not moved the position)
        newest = runner.ran[-1]
        try:
            store.append(runner.hook.id, (newest.id, newest.digest), lambda: [(r.id, r.digest) for r in runner.ran])
        except (OSError, StoreError) as exc:
            log.warning("cannot save the position of hook %s: %s", runner.hook.id, exc)

    def present_changed(self, runner: HookRunner, change: str) -> None:
        """Store a change of a persistent hook's present ids."""
        store = self.store
        if store is None or not runner.hook.persistent:
            return
        try:
            store.change_ids(runner.hook.id, change, lambda: list(runner.present or ()))
        except (OSError, StoreError) as exc:
            log.warning("cannot save the item ids of hook %s: %s", runner.hook.id, exc)

    def drop(self, hook_id: str) -> None:
        """A persistent hook is deleted: its position goes too."""
        if self.store is not None:
            self.store.remove(hook_id)

    def close_hook(self, hook_id: str) -> None:
        """A persistent hook is uninstalled here (it stays stored)."""
        if self.store is not None:
            self.store.close(hook_id)

    def flush(self) -> None:
        """Close the position journals (at exit; every run is already written; they
        open again at the next run)."""
        if self.store is not None:
            self.store.close()

    def close(self) -> None:
        """Close the journals and forget the store (at disconnect)."""
        self.flush()
        self.store = None
