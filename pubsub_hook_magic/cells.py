"""Hooks tied to the notebook cell that made them: running a cell again replaces its
hooks instead of adding more.

A hook made while a cell runs (``%hook create``, ``%%hook create``, the ``@xmpp.hook``
decorator, ``xmpp.create``) records the cell as its ``origin``: the cell's id where the
front end sends one (JupyterLab, Notebook 7, VS Code), else a digest of the cell's text.
Persistent hooks store it, so a stable cell id ties them across kernel restarts.

When a cell runs again, each create it makes is matched with the hooks its previous run
made (:meth:`CellRun.match`):

* the same definition: the hook is **kept** (same id, nothing changes);
* the same hook with other code (the code of ``python_code``, the body of a function):
  its code is **replaced** in place: same id, positions, history and triggers kept;
* otherwise a new hook is made, and the previous hook of the cell it stands for (on
  the same node, else the first of its type) is **replaced** by it (deleted at once:
  the old version never runs again).

At the end of a run that succeeded, the cell's previous hooks no create matched are
deleted: the cell no longer makes them (a failed run deletes nothing).

Outside a re-run, creating a hook identical to an installed one is refused with the
existing hook's id (:func:`duplicate_of`) unless asked for again: two identical hooks run
every item twice, which is never what a re-run cell meant.

Pure logic (no IPython, no loop): the hooks are read and changed by the caller
(:class:`~.client.HookClient`).
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CellRun", "Created", "Match", "cell_key", "code_identity", "definition", "duplicate_of"]


def cell_key(cell_id: str | None, raw_cell: str | None) -> str | None:
    """The origin recorded on hooks a cell makes: ``cell:ID``, else ``text:DIGEST`` of
    the cell's text (front ends that send no cell id); None for an empty cell."""
    if cell_id:
        return f"cell:{cell_id}"
    if raw_cell and raw_cell.strip():
        return "text:" + hashlib.sha1(raw_cell.encode("utf-8", "replace")).hexdigest()[:16]
    return None


def code_identity(hook: Any) -> str:
    """What a hook runs, as text to compare: the code of ``python_code``, a function's
    source, the module or file of the others."""
    kind = str(getattr(hook.type, "value", hook.type))
    if kind == "python_function":
        source = getattr(hook, "source", None)
        if source:
            return source
        function = getattr(hook, "function", None)
        try:
            return inspect.getsource(function) if function is not None else hook.arg
        except (OSError, TypeError):
            return f"{hook.arg}@{id(function)}"
    return str(hook.arg)


def _slot(hook: Any) -> tuple[Any, ...]:
    """What makes a hook the same hook whatever its code: where it listens, its type,
    its name (a function's, a module's, a file's), its options."""
    kind = str(getattr(hook.type, "value", hook.type))
    name = "" if kind == "python_code" else str(hook.arg)
    return (
        hook.service,
        hook.node,
        kind,
        name,
        bool(hook.persistent),
        bool(hook.catch_up),
        int(hook.retry),
        float(hook.retry_delay),
        tuple(hook.events),
        hook.where or None,
        tuple(sorted((hook.namespaces or {}).items())),
    )


def definition(hook: Any) -> tuple[Any, ...]:
    """Everything that defines a hook (not its id, state or history): two hooks with
    equal definitions do the same for every item."""
    return (*_slot(hook), code_identity(hook))


def duplicate_of(new: Any, installed: Iterable[Any]) -> Any | None:
    """The installed hook with ``new``'s definition, if any."""
    wanted = definition(new)
    return next((h for h in installed if h.id != new.id and definition(h) == wanted), None)


@dataclass(frozen=True)
class Match:
    """What a create in a re-run cell does with the cell's previous hooks.

    ``kind``: ``"new"`` (nothing matched; ``replaces`` may name a previous hook of the
    cell on the same node, to delete), ``"kept"`` (``hook`` is unchanged) or ``"code"``
    (``hook`` gets the new code in place)."""

    kind: str
    hook: Any = None
    replaces: Any = None


@dataclass(frozen=True)
class Created:
    """What a create did: ``outcome`` is ``"created"``, ``"kept"`` (the cell was run
    again, nothing changed), ``"code"`` (run again, the code replaced in place) or
    ``"replaced"`` (run again: a new hook instead of ``replaced``, deleted)."""

    hook: Any
    outcome: str = "created"
    #: The id of the hook this one replaced (``"replaced"``).
    replaced: str | None = None

    def lines(self) -> list[str]:
        """What to tell the user, a line each (the hook's notes last)."""
        hook = self.hook
        if self.outcome == "kept":
            first = f"Kept hook {hook.id} (the cell was run again; it is unchanged)."
        elif self.outcome == "code":
            first = (
                f"Replaced the code of hook {hook.id} (the cell was run again; its positions "
                "and history are kept)."
            )
        elif self.outcome == "replaced":
            first = f"Replaced hook {self.replaced} with {hook.describe()} (the cell was run again)."
        else:
            first = f"Created {hook.describe()}."
        notes = [] if self.outcome == "kept" else [f"Note: {note}" for note in hook.notes]
        return [first, *notes]


@dataclass
class CellRun:
    """One run of one cell: the hooks its previous run made, and those matched so far."""

    key: str
    #: The hooks that carried this cell's origin when the run started (None: not read
    #: yet; read at the first create, or at the end of the run).
    previous: list[Any] | None = None
    #: Ids of hooks this run made or kept (never deleted at its end).
    claimed: set[str] = field(default_factory=set)

    def match(self, new: Any, installed: Callable[[str], bool] = lambda _id: True) -> Match:
        """Match the hook a create asks for (``new``, not installed) with the previous
        hooks of the cell that are still ``installed`` (by id, in the creating
        account); the matched one is claimed."""
        previous = [h for h in (self.previous or []) if h.id not in self.claimed and installed(h.id)]
        wanted, slot = definition(new), _slot(new)
        for hook in previous:
            if definition(hook) == wanted:
                self.claimed.add(hook.id)
                return Match("kept", hook)
        for hook in previous:
            if _slot(hook) == slot:
                self.claimed.add(hook.id)
                return Match("code", hook)
        # The hook this one stands for: on the same node, else the first of its type
        # (a cell's hooks in order: its node or options were edited).
        replaced = next((h for h in previous if h.key == new.key), None) or next(
            (h for h in previous if h.type == new.type), None
        )
        if replaced is not None:
            self.claimed.add(replaced.id)  # (deleted now, by the caller)
        return Match("new", replaces=replaced)

    def claim(self, hook_id: str) -> None:
        self.claimed.add(hook_id)

    def unclaimed(self) -> list[Any]:
        """The previous hooks of the cell this run did not make again."""
        return [h for h in (self.previous or []) if h.id not in self.claimed]
