"""The hooks in memory, indexed by node, with Libervia's selection rules for delete."""

from __future__ import annotations

import bisect
from typing import Iterable, Iterator

from .hooks import Hook, HookType, normalize_arg

__all__ = ["HookRegistry"]


class HookRegistry:
    """Every installed hook, by id and by ``(service, node)``.

    The per-node index holds tuples rebuilt on change, so the event path reads one
    dict entry and allocates nothing. Whether a node needs a subscription is derived
    from the index (is anything left on it?), never from a counter that could drift.

    Changed on the session's loop only. Iterating gives an immutable tuple rebuilt at
    each change, so reading the list from another thread never meets a dict that
    changes under it.
    """

    def __init__(self) -> None:
        self._by_id: dict[str, Hook] = {}
        self._by_node: dict[tuple[str, str], tuple[Hook, ...]] = {}
        self._ordered: tuple[Hook, ...] = ()

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, hook_id: object) -> bool:
        return hook_id in self._by_id

    def __iter__(self) -> Iterator[Hook]:
        """Persistent hooks first (as Libervia lists them), then by creation time."""
        return iter(self._ordered)

    @staticmethod
    def _order(hook: Hook) -> tuple[bool, float]:
        return (not hook.persistent, hook.created)

    def get(self, hook_id: str) -> Hook | None:
        return self._by_id.get(hook_id)

    def add(self, hook: Hook) -> None:
        if hook.id in self._by_id:
            raise ValueError(f"a hook with id {hook.id} is already registered")
        self._by_id[hook.id] = hook
        ordered = list(self._ordered)
        bisect.insort(ordered, hook, key=self._order)
        self._ordered = tuple(ordered)
        self._by_node[hook.key] = self._by_node.get(hook.key, ()) + (hook,)

    def remove(self, hook: Hook) -> None:
        """Remove one hook (no-op if it is not registered)."""
        if self._by_id.pop(hook.id, None) is None:
            return
        rest = tuple(h for h in self._by_node.get(hook.key, ()) if h is not hook)
        if rest:
            self._by_node[hook.key] = rest
        else:
            self._by_node.pop(hook.key, None)
        self._ordered = tuple(h for h in self._ordered if h is not hook)

    def for_node(self, service: str, node: str) -> tuple[Hook, ...]:
        """The hooks listening to exactly ``(service, node)`` (no prefix matching)."""
        return self._by_node.get((service, node), ())

    def nodes(self) -> set[tuple[str, str]]:
        return set(self._by_node)

    def select(
        self,
        service: str,
        node: str,
        hook_type: HookType | None = None,
        arg: str | None = None,
        events: tuple[str, ...] = (),
    ) -> list[Hook]:
        """The hooks Libervia's ``delete`` would remove: on ``(service, node)``, and of
        ``hook_type`` / with ``arg`` when given (empty or None matches all), and, our
        addition, that run for every event of ``events``. A ``python_file`` argument is
        made absolute before matching."""
        matched: Iterable[Hook] = self.for_node(service, node)
        if hook_type is not None:
            matched = [h for h in matched if h.type is hook_type]
        if arg:
            matched = [h for h in matched if h.arg == normalize_arg(h.type, arg)]
        if events:  # (ours: hooks that run for all of these events)
            matched = [h for h in matched if set(events) <= set(h.events)]
        return list(matched)
