"""What a node's configuration means for its hooks: does it keep its items (catch-up
reads them), do its notifications carry them?

**A node that keeps no items** (``pubsub#persist_items = false``). Prosody 0.12 then
refuses every read of the node's items (the newest N, by id, service discovery) with
``feature-not-implemented``; ejabberd keeps the node's last item and returns it. Where
the items cannot be read, catch-up is impossible, and the node is *live-only* for the
session (:class:`LiveOnly`): its live items are released at once instead of waiting
for a catch-up that cannot come, each catch-up records one ``gap`` trigger per hook
saying what was lost and why (not a loop of retries), the log says it once per session,
and the hooks' summaries show it (``live_only``, ``%hook list``). A later read that
works (the owner changed the configuration) makes the node an ordinary one again.

**A node that does not deliver payloads** (``pubsub#deliver_payloads = false``): its
notifications are ``<item id/>`` alone, completed by :mod:`.payloads` (one extra
request per item, batched per node).

The configuration form is readable by the node's owner only (both servers refuse it to
others with ``forbidden``, and Prosody's disco#info meta-data has neither field):
it is read (:func:`read_config`) when a hook is made on a node, where it can, and
:func:`create_notes` says what follows, in the notes ``create`` prints.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .xmpp_requests import RequestError

if TYPE_CHECKING:
    from .runner import HookRunner
    from .xmpp_session import XmppSession

__all__ = ["KEEPS_NO_ITEMS", "LiveOnly", "create_notes", "is_off", "read_config", "report_live_only"]

log = logging.getLogger(__name__)

Key = tuple[str, str]

#: The error condition of a read of the items of a node that keeps none (Prosody 0.12).
KEEPS_NO_ITEMS = "feature-not-implemented"


def is_off(value: Any) -> bool:
    """Whether a boolean field of a data form is off (``False``, ``"0"``, ``"false"``)."""
    return value is False or str(value).strip().lower() in ("0", "false")


class LiveOnly(Mapping[Key, str]):
    """The nodes whose items cannot be read back, by ``(service, node)``, with why (what
    a hook's summary shows as ``live_only``)."""

    def __init__(self) -> None:
        self._nodes: dict[Key, str] = {}

    def __getitem__(self, key: Key) -> str:
        return self._nodes[key]

    def __iter__(self) -> Iterator[Key]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def refused(self, service: str, node: str, exc: RequestError) -> bool:
        """A read of the node's items failed with ``exc``: whether that says the node
        keeps no items (then it is live-only, logged the first time in the session)."""
        if exc.condition != KEEPS_NO_ITEMS:
            return False
        key = (service, node)
        if key not in self._nodes:
            self._nodes[key] = (
                f"catch-up impossible: node {node!r} keeps no items (pubsub#persist_items is off), "
                "so what is published while disconnected is lost"
            )
            log.warning(
                "node %s on %s keeps no items (%s): its hooks run live items only; what is published "
                "while disconnected is lost (a gap at each reconnection)", node, service, exc,
            )
        return True

    def readable(self, service: str, node: str) -> None:
        """The node's items were read: it is an ordinary node (again)."""
        if self._nodes.pop((service, node), None) is not None:
            log.info("node %s on %s keeps its items again: its hooks catch up again", node, service)

    def reset(self) -> None:
        """Forget (at disconnect: the next session finds out anew)."""
        self._nodes.clear()


def report_live_only(runners: Iterable[HookRunner], reason: str) -> None:
    """A catch-up found the node keeps no items: each hook that catches up records one
    ``gap`` trigger saying so (what was published while away is lost)."""
    for runner in runners:
        if runner.hook.catch_up and not runner.inactive:
            newest = next((r.id for r in reversed(runner.submitted) if r.id), "")
            runner.report_gap(newest, 0, reason=f"{reason}; this hook runs the live items only")


async def read_config(session: XmppSession | None, service: str, node: str) -> dict[str, Any]:
    """The node's configuration form as ``{var: value}``; empty where it cannot be read
    (only its owner may)."""
    if session is None:
        return {}
    try:
        return await session.node_config(service, node)
    except RequestError:
        return {}


def create_notes(service: str, node: str, config: Mapping[str, Any], live_only: Mapping[Key, str]) -> list[str]:
    """What the user should know of a node a hook is made on, from its configuration
    (:func:`read_config`) and what :class:`LiveOnly` found: it keeps no items, it does
    not deliver payloads."""
    notes = []
    if (service, node) in live_only:
        notes.append(
            f"node {node!r} keeps no items (pubsub#persist_items is off): this hook runs live "
            "items only; what is published while disconnected is lost (a gap is recorded at "
            "each reconnection)"
        )
    elif is_off(config.get("pubsub#persist_items", True)):
        notes.append(
            f"node {node!r} is configured not to persist items (pubsub#persist_items is off), "
            "and its service returns only its last one: after a disconnection, older items "
            "missed are lost (recorded as a gap)"
        )
    if is_off(config.get("pubsub#deliver_payloads", True)):
        notes.append(
            f"node {node!r} does not deliver payloads (pubsub#deliver_payloads is off): each item "
            "is fetched by id before the hook runs (one extra request per item, batched per node)"
        )
    return notes
