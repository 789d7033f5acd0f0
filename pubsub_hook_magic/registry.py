"""The one index of installed hooks: id -> runner, and by node; Libervia's selection
rules for delete."""

from __future__ import annotations

import fnmatch

import bisect
from collections.abc import Iterator, Mapping
from typing import Generic, Protocol, TypeVar

from .hooks import Hook, HookType, normalize_arg

__all__ = ["HookIndex", "HookRegistry", "Installed"]

Key = tuple[str, str]


class Installed(Protocol):
    """What the index holds: anything that carries its hook (a runner)."""

    @property
    def hook(self) -> Hook: ...


R = TypeVar("R", bound=Installed)


class HookIndex(Mapping[str, R], Generic[R]):
    """Every installed hook's runner, by hook id and by ``(service, node)``.

    A read-only mapping of hook id to runner (iterated persistent first, as Libervia
    lists them, then by creation time). The per-node index holds tuples rebuilt on
    change, so the event path reads one dict entry and allocates nothing. Whether a
    node needs a subscription is derived from the index (is anything left on it?),
    never from a counter that could drift.

    Changed on the session's loop only (:meth:`add`, :meth:`remove`). :meth:`ordered`
    and :meth:`hooks` return immutable tuples, so reading them from another thread
    never meets a dict that changes under it. A change copies the tuple of runners
    (C speed, no Python loop over the hooks); :meth:`hooks` is made from it when read,
    and kept with the tuple it was made from (so a reader on another thread never keeps
    an older one).
    """

    def __init__(self) -> None:
        self._by_id: dict[str, R] = {}
        self._by_node: dict[Key, tuple[R, ...]] = {}
        self._ordered: tuple[R, ...] = ()
        self._hooks: tuple[tuple[R, ...], tuple[Hook, ...]] = ((), ())  # (made from, hooks)

    # ---- the mapping
    def __getitem__(self, hook_id: str) -> R:
        return self._by_id[hook_id]

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, hook_id: object) -> bool:
        return hook_id in self._by_id

    def __iter__(self) -> Iterator[str]:
        return iter([entry.hook.id for entry in self._ordered])

    # ---- changes
    @staticmethod
    def _order(entry: R) -> tuple[bool, float]:
        return (not entry.hook.persistent, entry.hook.created)

    def add(self, entry: R) -> None:
        hook = entry.hook
        if hook.id in self._by_id:
            raise ValueError(f"a hook with id {hook.id} is already registered")
        self._by_id[hook.id] = entry
        ordered = list(self._ordered)
        bisect.insort(ordered, entry, key=self._order)
        self._set_order(tuple(ordered))
        self._by_node[hook.key] = (*self._by_node.get(hook.key, ()), entry)

    def remove(self, hook_id: str) -> R | None:
        """Remove one hook's runner and return it (None if it is not installed)."""
        entry = self._by_id.pop(hook_id, None)
        if entry is None:
            return None
        key = entry.hook.key
        rest = tuple(e for e in self._by_node.get(key, ()) if e is not entry)
        if rest:
            self._by_node[key] = rest
        else:
            self._by_node.pop(key, None)
        ordered = self._ordered
        at = bisect.bisect_left(ordered, self._order(entry), key=self._order)
        while ordered[at] is not entry:  # (hooks created at the same instant)
            at += 1
        self._set_order(ordered[:at] + ordered[at + 1 :])
        return entry

    def _set_order(self, ordered: tuple[R, ...]) -> None:
        self._ordered = ordered

    # ---- reading
    def ordered(self) -> tuple[R, ...]:
        """The runners, persistent hooks first, then by creation time."""
        return self._ordered

    def hooks(self) -> tuple[Hook, ...]:
        """The hooks, in the same order."""
        ordered = self._ordered
        made_from, hooks = self._hooks
        if made_from is not ordered:
            hooks = tuple(e.hook for e in ordered)
            self._hooks = (ordered, hooks)
        return hooks

    def for_node(self, service: str, node: str) -> tuple[R, ...]:
        """The runners of the hooks on exactly ``(service, node)`` (no prefix matching)."""
        return self._by_node.get((service, node), ())

    def nodes(self) -> set[Key]:
        return set(self._by_node)

    def select(
        self,
        service: str,
        node: str,
        hook_type: HookType | None = None,
        arg: str | None = None,
        events: tuple[str, ...] = (),
    ) -> list[Hook]:
        """The hooks Libervia's ``delete`` would remove: on ``(service, node)`` (ours:
        either may be a shell-style pattern, ``sensors/*``, see :func:`is_pattern`), and of
        ``hook_type`` / with ``arg`` when given (empty or None matches all), and, our
        addition, that run for every event of ``events``. A ``python_file`` argument is
        made absolute before matching."""
        if is_pattern(node) or is_pattern(service):
            keys = [k for k in self._by_node if fnmatch.fnmatchcase(k[0], service) and fnmatch.fnmatchcase(k[1], node)]
            matched = [e.hook for key in sorted(keys) for e in self._by_node[key]]
        else:
            matched = [e.hook for e in self.for_node(service, node)]
        if hook_type is not None:
            matched = [h for h in matched if h.type is hook_type]
        if arg:
            matched = [h for h in matched if h.arg == normalize_arg(h.type, arg)]
        if events:  # (ours: hooks that run for all of these events)
            matched = [h for h in matched if set(events) <= set(h.events)]
        return matched


def is_pattern(text: str) -> bool:
    """Whether a node or service given to ``delete`` is a shell-style pattern
    (``*``, ``?`` or ``[...]``, as :mod:`fnmatch` reads them) rather than a name."""
    return any(c in text for c in "*?[")


#: The former name.
HookRegistry = HookIndex
