"""What code on other threads may read of the hooks: immutable snapshots.

The hooks, their runners and the session change on the session's loop only. Code on
the kernel's thread (the magics, completion, the table's buttons) never iterates those
objects: it reads the :class:`Snapshot` the loop publishes after every change (one
attribute, replaced whole, so a reader sees one consistent set of hooks), or asks the
loop for fresh figures through the magics' one doorway (``LoopThread.run``).

Publishing costs the same at the 10,000th hook as at the 10th: the loop hands over the
index's immutable tuple of runners as it is (no copy), and the views of the hooks
(:class:`HookView`) are built at the first read of :attr:`Snapshot.hooks`, once per
snapshot, under a lock, then kept: every reader of one snapshot sees the same tuple. A
view is made of plain attribute reads (no container of the loop is iterated), so
building it on a reader's thread is safe; it shows each hook's state as of that first
read, which may be fresher than the change that published the snapshot.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .states import HookState, SessionState

__all__ = ["HookView", "Snapshot"]


@dataclass(frozen=True, slots=True)
class HookView:
    """One hook as it was at the snapshot."""

    id: str
    service: str
    node: str
    type: str
    arg: str
    persistent: bool
    state: HookState
    #: The process that runs it, for a persistent hook ("kernel, pid 4243").
    owner: str | None = None
    #: The notebook cell that made it (see :mod:`.cells`).
    origin: str | None = None

    @classmethod
    def of(cls, runner: Any) -> HookView:
        hook = runner.hook
        return cls(
            hook.id, hook.service, hook.node, hook.type.value, hook.arg, hook.persistent,
            runner.state, runner.owner, hook.origin,
        )


_BUILD = threading.Lock()


class Snapshot:
    """The session's state and its hooks (persistent first), as of the last change.

    ``runners``: the index's tuple of runners (never changed in place); their views are
    made at the first read of :attr:`hooks` (see the module). ``hooks`` gives the
    views themselves instead (tests, :data:`EMPTY`)."""

    __slots__ = ("_by_id", "_hooks", "_runners", "jid", "state")

    EMPTY: ClassVar[Snapshot]

    def __init__(
        self,
        state: SessionState,
        jid: str | None,
        hooks: tuple[HookView, ...] | None = None,
        *,
        runners: Sequence[Any] = (),
    ):
        self.state = state
        self.jid = jid
        self._runners = runners
        self._hooks = hooks
        self._by_id: dict[str, HookView] | None = None

    @property
    def hooks(self) -> tuple[HookView, ...]:
        hooks = self._hooks
        if hooks is None:
            with _BUILD:
                hooks = self._hooks
                if hooks is None:
                    hooks = self._hooks = tuple(HookView.of(r) for r in self._runners)
                    self._runners = ()
        return hooks

    def hook(self, hook_id: str) -> HookView | None:
        by_id = self._by_id
        if by_id is None:
            by_id = self._by_id = {h.id: h for h in self.hooks}
        return by_id.get(hook_id)

    def __repr__(self) -> str:
        return f"Snapshot({self.state!r}, {self.jid!r}, {len(self.hooks)} hooks)"


Snapshot.EMPTY = Snapshot(SessionState.DISCONNECTED, None, ())
