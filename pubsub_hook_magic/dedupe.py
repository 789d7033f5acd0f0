"""Telling a new publication from a copy of one already seen.

Servers deliver some items more than once: Prosody sends a contact's PEP item to the
bare and to the full JID, ejabberd sends one's own PEP items twice, and both re-send a
node's last item on subscribe or on presence. An item is a copy when the same
``(service, node, item id)`` was seen recently with the same payload. A re-publication
under the same id with a new payload (``current`` in PEP nodes) is new, and fires.

Two measures of "the same payload", for two uses:

* :func:`payload_fingerprint`, about 1 us per item: compares items within this process
  (duplicates, catch-up after a reconnection). Computed for every item.
* :func:`payload_digest`, about 3 us per item: the same from one process to the next,
  for the positions stored on disk (each persistent hook's item). An :class:`ItemRef`
  computes it only when it is asked for. Positions stored before issue 25 hold
  :func:`legacy_digest` (ElementTree's serialisation, about 15 us), still understood.
"""

from __future__ import annotations

import collections
import hashlib
import time
from typing import Any
from xml.etree.ElementTree import tostring

__all__ = ["ItemRef", "RecentItems", "legacy_digest", "payload_digest", "payload_fingerprint"]

#: Recorded in place of a payload fingerprint for a retracted id.
_RETRACTED: object = object()


def _payload(item: Any) -> Any:
    """The payload element of an ``<item/>`` (its first child), or None."""
    for child in item.xml:
        return child
    return None


def _parts(payload: Any) -> list[tuple[Any, ...]]:
    """The payload's elements in document order, each with its tag, number of children
    (which fixes the tree's shape), attributes, text and tail (but for the payload's own
    tail, which lies outside it)."""
    parts: list[tuple[Any, ...]] = [
        (el.tag, len(el), tuple(el.attrib.items()) if el.attrib else (), el.text, el.tail)
        for el in payload.iter()
    ]
    parts[0] = parts[0][:4]
    return parts


#: The digests of this version start so; an older version's (:func:`legacy_digest`)
#: are 16 hex digits, read back from positions stored before.
DIGEST_PREFIX = "2:"


def payload_digest(item: Any) -> str:
    """A digest of an item's payload: the same for an event item and a retrieved item,
    and from one process to the next (positions are stored). About 3 us: the payload's
    :func:`_parts` (what the fingerprint hashes), in their ``repr`` (the same in every
    process, unlike ``hash``), through blake2b."""
    payload = _payload(item)
    if payload is None:
        return ""
    text = repr(_parts(payload)).encode("utf-8", "surrogatepass")
    return DIGEST_PREFIX + hashlib.blake2b(text, digest_size=8).hexdigest()


def legacy_digest(item: Any) -> str:
    """The digest positions stored by versions before issue 25 hold (the payload
    serialised by ElementTree, about 15 us): compared only with those."""
    payload = _payload(item)
    if payload is None:
        return ""
    # (tostring() includes the element's tail: whitespace after it, outside the payload)
    return hashlib.blake2b(tostring(payload).rstrip(), digest_size=8).hexdigest()


def _is_legacy(digest: str | None) -> bool:
    return bool(digest) and not digest.startswith(DIGEST_PREFIX)  # type: ignore[union-attr]


def payload_fingerprint(item: Any) -> int:
    """A cheap hash of an item's payload (its :func:`_parts`), comparable within this
    process only."""
    payload = _payload(item)
    if payload is None:
        return 0
    return hash(tuple(_parts(payload)))


class ItemRef:
    """An item as a position in its node: its id, its fingerprint and, on first use,
    its payload digest.

    Most items never need the digest (only stored positions do), so the item is kept
    until then and the digest computed once. A reference read back from the store
    has a digest and no fingerprint."""

    __slots__ = ("_digest", "_item", "fingerprint", "id")

    def __init__(self, item_id: str, item: Any = None, *, fingerprint: int | None = None, digest: str | None = None):
        self.id = item_id
        self.fingerprint = fingerprint
        self._item = item
        self._digest = digest

    @classmethod
    def of(cls, item: Any) -> ItemRef:
        """The reference of a received or retrieved item."""
        return cls(item.xml.get("id") or "", item, fingerprint=payload_fingerprint(item))  # (item["id"])

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = payload_digest(self._item) if self._item is not None else ""
            self._item = None
        return self._digest

    def same_payload(self, other: ItemRef) -> bool:
        """Whether both carry the same payload (fingerprints when both have one). A
        digest an older version stored is compared with the other's item in its way;
        when that item is no longer kept, they differ (the item runs again, once)."""
        if self.fingerprint is not None and other.fingerprint is not None:
            return self.fingerprint == other.fingerprint
        mine, theirs = self.stored_digest, other.stored_digest
        if _is_legacy(mine) != _is_legacy(theirs):
            return mine == other.legacy_digest() if _is_legacy(mine) else theirs == self.legacy_digest()
        return self.digest == other.digest

    @property
    def stored_digest(self) -> str | None:
        """The digest if computed or read back (None: not yet)."""
        return self._digest

    def legacy_digest(self) -> str | None:
        """The item's digest as versions before issue 25 stored it (None: the item is
        no longer kept, or never was)."""
        return legacy_digest(self._item) if self._item is not None else None

    def __repr__(self) -> str:
        return f"ItemRef({self.id!r})"


class RecentItems:
    """The last ``size`` items seen per node, by id and payload fingerprint."""

    def __init__(self, size: int = 512):
        self.size = size
        self._nodes: dict[tuple[str, str], collections.OrderedDict[str, int | None]] = {}
        self._node_events: dict[tuple[str, str, str], float] = {}

    def seen(self, service: str, node: str, ref: ItemRef) -> bool:
        """Record an item; True if it is a copy of one already recorded."""
        item_id = ref.id
        if not item_id:
            return False  # nothing to match it by
        recent = self._nodes.get((service, node))
        if recent is None:
            recent = self._nodes[(service, node)] = collections.OrderedDict()
        if recent.get(item_id, ()) == ref.fingerprint:
            return True
        recent[item_id] = ref.fingerprint
        recent.move_to_end(item_id)
        if len(recent) > self.size:
            recent.popitem(last=False)
        return False

    def retracted(self, service: str, node: str, item_id: str) -> bool:
        """Record a retraction; True if it is a copy of one already recorded (and no
        publication of that id came since). A later publication of the id, even with
        the same payload, is then new."""
        recent = self._nodes.get((service, node))
        if recent is None:
            recent = self._nodes[(service, node)] = collections.OrderedDict()
        if recent.get(item_id, None) is _RETRACTED:
            return True
        recent[item_id] = _RETRACTED  # type: ignore[assignment]
        recent.move_to_end(item_id)
        if len(recent) > self.size:
            recent.popitem(last=False)
        return False

    def node_event(self, service: str, node: str, kind: str, window: float = 2.0) -> bool:
        """Record a purge or a delete of the node; True if the same was recorded less
        than ``window`` seconds ago (servers send some events to the bare and the full
        JID). The node's items are forgotten: a publication after it is new."""
        key = (service, node, kind)
        now = time.monotonic()
        last = self._node_events.get(key)
        self._node_events[key] = now
        if last is not None and now - last < window:
            return True
        self._nodes.pop((service, node), None)
        return False

    def forget(self, service: str, node: str) -> None:
        self._nodes.pop((service, node), None)
