"""How far a connect got with its persistent hooks: caught up, or still catching up.

A connect installs the stored hooks at once and catches up on their nodes in the
background (:mod:`.catchup`); with hundreds of hooks that takes seconds. This module
counts, from a published :class:`~.snapshot.Snapshot` (safe from any thread), how many
of the hooks are past their catch-up, for the notebook's progress bar and the service's
log (:class:`CatchUpProgress`). Pure: no IPython, no widgets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .snapshot import Snapshot
from .states import HookState

__all__ = ["CatchUpProgress", "Progress", "progress_of"]

#: Below this many persistent hooks a connect shows no progress (it is over at once).
SHOW_FROM = 20


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` persistent hooks are past their catch-up."""

    done: int
    total: int

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    def line(self, seconds: float) -> str:
        """One line for a person: "catching up: 120 of 1000 hooks (3.1 s)"."""
        if self.finished:
            return f"caught up: {self.total} persistent hook(s) in {seconds:.1f} s"
        return f"catching up: {self.done} of {self.total} persistent hooks ({seconds:.1f} s)"


def progress_of(snapshot: Snapshot) -> Progress:
    """How many persistent hooks of ``snapshot`` are no longer catching up."""
    persistent = [h for h in snapshot.hooks if h.persistent]
    left = sum(1 for h in persistent if h.state == HookState.CATCHING_UP)
    return Progress(len(persistent) - left, len(persistent))


class CatchUpProgress:
    """Follows a manager's snapshots after a connect and reports the progress to
    ``report`` at most every ``interval`` seconds, then once when every hook caught up
    (and then stops). Call :meth:`changed` on each change (a change listener, on the
    session's loop)."""

    def __init__(
        self, snapshot: Callable[[], Snapshot], report: Callable[[Progress, float], None], interval: float = 1.0
    ):
        self._snapshot = snapshot
        self._report = report
        self.interval = interval
        self._start = time.monotonic()
        self._last: float | None = None  # when it last reported
        self.done = False

    def changed(self) -> None:
        if self.done:
            return
        progress = progress_of(self._snapshot())
        now = time.monotonic()
        if progress.finished:
            self.done = True
        elif self._last is not None and now - self._last < self.interval:
            return
        self._last = now
        self._report(progress, now - self._start)
