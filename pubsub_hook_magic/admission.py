"""A hook's mode: what decides whether an item offered to it is queued, parked or
left on the node. Owned by its runner (``runner.mode``), changed through these
methods only; the derived states (``inactive``, ``held``) are computed, never copied.

* *parked*: the hook restarts from its position (taken over, its notebook names now
  defined, its full queue drained); its live items are kept, to follow the missed ones;
* *standby*: another process of the machine runs this persistent hook (``owner``);
* *waiting*: its code reads notebook names that are not defined yet;
* *overflowed*: a persistent hook's queue was full; it fetches from the node once
  drained;
* *paused*: it records what it skips;
* *held*: its node is catching up (the live path holds the node's items);
* *node problem*: its node does not deliver (deleted, unsubscribed, pending approval:
  :mod:`.nodestatus`).
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .dedupe import ItemRef

if TYPE_CHECKING:
    from .nodestatus import NodeProblem

__all__ = ["HookMode", "Parked", "ParkedEvent"]


class Parked(NamedTuple):
    """A live publication kept while its hook restarts."""

    item: Any
    ref: ItemRef | None
    publisher: str | None
    received: float


class ParkedEvent(NamedTuple):
    """A live retraction, purge or delete kept while its hook restarts."""

    element: Any
    event_id: str
    received: float
    kind: str


class HookMode:
    """The mode flags of one hook (see the module's docstring)."""

    __slots__ = (
        "_held_nodes", "_key", "_node_problems", "_overflowed", "_owner", "_parked", "_position_unread", "_standby",
        "_waiting_for", "closed", "paused",
    )

    def __init__(
        self,
        key: tuple[str, str],
        held_nodes: Container[tuple[str, str]] = (),
        node_problems: Mapping[tuple[str, str], NodeProblem] | None = None,
    ):
        self._key = key
        self._held_nodes = held_nodes
        self._node_problems: Mapping[tuple[str, str], NodeProblem] = {} if node_problems is None else node_problems
        self._parked: list[Parked | ParkedEvent] | None = None
        self._owner: str | None = None
        self._waiting_for: tuple[str, ...] = ()
        self._position_unread = False
        self._standby = self._overflowed = False
        #: Paused: runs nothing, records what it skips (read-only outside; see set_paused).
        self.paused = False
        #: Parked or inactive: the hot path's one test (kept by :meth:`_update`).
        self.closed = False

    def _update(self) -> None:
        self.closed = self._parked is not None or self.inactive

    # ---- parking
    @property
    def parking(self) -> bool:
        return self._parked is not None

    def park(self) -> None:
        """From now on keep the live items, until :meth:`unpark`."""
        self._parked = []
        self._update()

    def keep(self, entry: Parked | ParkedEvent) -> None:
        """Park ``entry`` if parking (else, inactive, the hook does not take it)."""
        if self._parked is not None:
            self._parked.append(entry)

    def unpark(self) -> list[Parked | ParkedEvent]:
        """Stop parking; return what was parked, in order."""
        parked, self._parked = self._parked or [], None
        self._update()
        return parked

    # ---- who runs it
    @property
    def owner(self) -> str | None:
        """The process that runs it, for a persistent hook ("kernel, pid 4243")."""
        return self._owner

    @property
    def standby(self) -> bool:
        return self._standby

    def stand_by(self, owner: str | None) -> None:
        self._standby, self._owner = True, owner
        self._update()

    def run_here(self, owner: str | None = None) -> None:
        """This process runs the hook (``owner``: this process, as others see it)."""
        self._standby = False
        if owner is not None:
            self._owner = owner
        self._update()

    def set_owner(self, owner: str | None) -> bool:
        """Who runs the hook now; whether that changed."""
        changed, self._owner = owner != self._owner, owner
        return changed

    # ---- the notebook
    @property
    def waiting_for(self) -> tuple[str, ...]:
        """Names the hook's code reads that the notebook does not define yet."""
        return self._waiting_for

    def wait_for(self, names: tuple[str, ...]) -> bool:
        """The names it still waits for; whether that changed."""
        names = tuple(names)
        changed, self._waiting_for = names != self._waiting_for, names
        self._update()
        return changed

    # ---- pause, overflow
    def set_paused(self, paused: bool) -> bool:
        """Pause or resume; whether that changed anything."""
        changed, self.paused = paused != self.paused, paused
        return changed

    @property
    def overflowed(self) -> bool:
        return self._overflowed

    def overflow(self) -> None:
        self._overflowed = True
        self._update()

    def drained(self) -> bool:
        """The queue has drained; whether the hook had overflowed (and must restart)."""
        was, self._overflowed = self._overflowed, False
        self._update()
        return was

    # ---- positions
    @property
    def position_unread(self) -> bool:
        """A persistent hook's stored position is still to be read (at its catch-up)."""
        return self._position_unread

    def read_position_later(self) -> None:
        self._position_unread = True

    def position_read(self) -> None:
        self._position_unread = False

    # ---- derived
    @property
    def inactive(self) -> bool:
        """Takes no item: standby, waiting for notebook names, or overflowed."""
        return self._standby or bool(self._waiting_for) or self._overflowed

    @property
    def node_problem(self) -> NodeProblem | None:
        """Why the hook's node does not deliver (deleted, unsubscribed, pending), if so
        (see :mod:`.nodestatus`)."""
        return self._node_problems.get(self._key)

    @property
    def held(self) -> bool:
        """The hook's node is catching up: its live items wait (see :mod:`.live`)."""
        return self._key in self._held_nodes
