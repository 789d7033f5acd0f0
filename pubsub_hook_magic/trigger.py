"""A trigger: the record of one run of a hook for one item (or of one item it had
to drop, skip or report missing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .dedupe import ItemRef
from .states import Outcome, TriggerKind

__all__ = ["Trigger", "payload_text"]


@dataclass(slots=True)
class Trigger:
    """One run of a hook for one item (or one item it had to drop)."""

    item_id: str | None
    publisher: str | None
    received: float  # wall-clock time the item arrived
    started: float | None = None  # wall-clock time the hook started
    duration: float | None = None  # seconds
    outcome: Outcome = Outcome.PENDING
    error: str | None = None  # "ValueError: message"
    traceback: str | None = None
    payload: Any = None  # the item stanza (for display and replay; not in as_dict)
    ref: ItemRef | None = None  # the item as a position in its node (None: no id)
    kind: TriggerKind = TriggerKind.LIVE
    #: 1 for the first run of an item, 2 for its first retry (``--retry``)…
    attempt: int = 1
    #: This attempt failed and the item is tried again (after a delay).
    retried: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "publisher": self.publisher,
            "received": self.received,
            "started": self.started,
            "duration": self.duration,
            "outcome": self.outcome,
            "error": self.error,
            "traceback": self.traceback,
            "kind": self.kind,
            "attempt": self.attempt,
        }


def payload_text(item: Any) -> str | None:
    """The payload of an item stanza (its first child element) as XML text, with its
    namespace and no ``ns0:`` prefixes; None for an item without one, or anything that
    is not a stanza (for display and dead letters: never fails)."""
    try:
        children = list(item.xml)
    except (AttributeError, TypeError):
        return None
    if not children:
        return None
    from slixmpp.xmlstream import tostring

    return str(tostring(children[0]))
