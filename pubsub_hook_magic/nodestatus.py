"""Why a node does not deliver: deleted, our subscription removed, or pending approval.

One record per node (:class:`NodeProblem`), kept by :class:`NodeStatus`: set when the
server tells (a ``<delete/>`` notification, a ``<subscription/>`` notification, an
``item-not-found`` while catching up, a subscription check at reconnection that finds
none), cleared when the node delivers again. The hooks of the node read it for their
state (``node deleted``, ``unsubscribed``, ``pending``: see :class:`~.states.HookState`)
so that no hook shows ``active`` while its node cannot deliver. Each change is logged
once, as a warning (a problem) or at info level (resolved): the service's log tells
what happened, without a loop of warnings.

What is done about a problem (waiting for a deleted node to come back, subscribing
again on the user's word) is :mod:`.nodewatch`'s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple

from .states import HookState

__all__ = ["NodeProblem", "NodeStatus"]

log = logging.getLogger(__name__)

Key = tuple[str, str]


class NodeProblem(NamedTuple):
    """Why a node does not deliver, since when (``time.time()``)."""

    state: HookState
    #: What happened and what to do, in a sentence (shown by ``%hook list`` and ``status``).
    reason: str
    since: float


class NodeStatus(Mapping[Key, NodeProblem]):
    """The nodes that do not deliver, by ``(service, node)``.

    :param on_change: called with the node after each change (the engine's snapshot).
    """

    def __init__(self, on_change: Callable[[Key], None] = lambda _key: None):
        self._problems: dict[Key, NodeProblem] = {}
        self._on_change = on_change

    def __getitem__(self, key: Key) -> NodeProblem:
        return self._problems[key]

    def __iter__(self) -> Iterator[Key]:
        return iter(self._problems)

    def __len__(self) -> int:
        return len(self._problems)

    def set(self, key: Key, state: HookState, reason: str) -> bool:
        """Record the node's problem; whether it is a new one (a repeat of the same
        state keeps the first record, and is not logged again)."""
        current = self._problems.get(key)
        if current is not None and current.state is state:
            return False
        self._problems[key] = NodeProblem(state, reason, time.time())
        service, node = key
        log.warning("node %s on %s: %s", node, service, reason)
        self._on_change(key)
        return True

    def clear(self, key: Key, why: str = "") -> NodeProblem | None:
        """The node delivers again; returns the problem it had (None: it had none)."""
        problem = self._problems.pop(key, None)
        if problem is not None:
            service, node = key
            log.info("node %s on %s: %s%s", node, service, problem.state.value + " no more", f" ({why})" if why else "")
            self._on_change(key)
        return problem

    def reset(self) -> None:
        """Forget every problem (at disconnect: the next session finds out anew)."""
        self._problems.clear()
