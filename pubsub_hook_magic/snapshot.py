"""What code on other threads may read of the hooks: immutable snapshots.

The hooks, their runners and the session change on the session's loop only. Code on
the kernel's thread (the magics, completion, the table's buttons) never iterates those
objects: it reads the :class:`Snapshot` the loop publishes after every change (one
attribute, replaced whole, so a reader sees one consistent state), or asks the loop
for fresh figures through the magics' one doorway (``LoopThread.run``).
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The session's state and its hooks (persistent first), as of the last change."""

    state: SessionState
    jid: str | None
    hooks: tuple[HookView, ...]

    EMPTY: ClassVar[Snapshot]

    def hook(self, hook_id: str) -> HookView | None:
        return next((h for h in self.hooks if h.id == hook_id), None)


Snapshot.EMPTY = Snapshot(SessionState.DISCONNECTED, None, ())
