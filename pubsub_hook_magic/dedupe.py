"""Telling a new publication from a copy of one already seen.

Servers deliver some items more than once: Prosody sends a contact's PEP item to the
bare and to the full JID, ejabberd sends one's own PEP items twice, and both re-send a
node's last item on subscribe or on presence. An item is a copy when the same
``(service, node, item id)`` was seen recently with the same payload. A re-publication
under the same id with a new payload (``current`` in PEP nodes) is new, and fires.
"""

from __future__ import annotations

import collections
import hashlib
from typing import Any

from xml.etree.ElementTree import tostring

__all__ = ["RecentItems", "payload_digest"]


def payload_digest(item: Any) -> str:
    """A digest of an item's payload: the same for an event item and a retrieved item,
    and from one process to the next (positions are stored)."""
    children = list(item.xml)
    if not children:
        return ""
    return hashlib.blake2b(tostring(children[0]), digest_size=8).hexdigest()


class RecentItems:
    """The last ``size`` items seen per node, by id and payload digest."""

    def __init__(self, size: int = 512):
        self.size = size
        self._nodes: dict[tuple[str, str], collections.OrderedDict[str, str]] = {}

    def seen(self, service: str, node: str, item_id: str, digest: str) -> bool:
        """Record an item (its id and :func:`payload_digest`); True if it is a copy of
        one already recorded."""
        if not item_id:
            return False  # nothing to match it by
        recent = self._nodes.get((service, node))
        if recent is None:
            recent = self._nodes[(service, node)] = collections.OrderedDict()
        if recent.get(item_id) == digest:
            return True
        recent[item_id] = digest
        recent.move_to_end(item_id)
        if len(recent) > self.size:
            recent.popitem(last=False)
        return False

    def forget(self, service: str, node: str) -> None:
        self._nodes.pop((service, node), None)
