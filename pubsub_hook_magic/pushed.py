"""Catching up from the item the server pushed, instead of reading it again.

ejabberd sends a node's last item on subscribe and on every available presence
(``send_last_published_item``, ``on_sub_and_presence`` by default): at a connect it
arrives before the node's catch-up starts, and waits among the node's held live items
(:meth:`.LivePath.hold`). Reading the node's newest items again would fetch that
payload a second time, the costliest part of a catch-up where one item was missed
(ejabberd 23.01, 100 nodes, one item of 1 KB missed on each: 3.84x the missed bytes
before, 3.11x with this; ``benchmarks/catchup_bytes.py``). The pushed item also proves
the node's subscription, which is then not asked for (:meth:`.Subscriptions.ensure`,
:attr:`.LivePath.delivering`): 2.86x.

So, when the only thing held for a node is one item ``P`` (:func:`resume_from_pushed`):

* every hook's newest item run is ``P`` (same payload): nothing was missed, nothing
  is read;
* else, when the hooks all resume from one item ``R``: the ids of the node's newest
  two items (service discovery, limited by XEP-0059: ids only) and ``R`` itself are
  asked together; if the node ends ``R, P``, the ordinary decision is taken on those
  two (``R``'s payload compared with the one run): usually only ``P`` was missed, and
  it runs from the pushed copy. ``R`` is read for that comparison: its ids alone
  cannot show that ``R`` was published again, under its id, while away;
* anything else (more missed, another order, a service that lists every id as
  Prosody 0.12 does) is left to the ordinary catch-up (:mod:`.catchup`), which reads
  the newest items.

The decision is the ordinary one (:func:`.catchup.resume_index`, payloads compared),
on what the server said; a node with nothing held (Prosody's service nodes) costs
nothing here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .dedupe import ItemRef
from .live import HeldEvent, HeldItem

if TYPE_CHECKING:
    from .runner import HookRunner
    from .xmpp_session import XmppSession

__all__ = ["resume_from_pushed"]

Keyed = list[tuple[Any, ItemRef]]
Starts = dict["HookRunner", int]


async def resume_from_pushed(
    session: XmppSession,
    service: str,
    node: str,
    runners: Sequence[HookRunner],
    held: Sequence[HeldItem | HeldEvent] | None,
) -> tuple[Keyed, Starts] | None:
    """``(items, where each hook resumes)`` as :meth:`.CatchUp._fetch` returns them,
    found from the one item held for the node; None when that does not tell (the
    ordinary catch-up then reads the node)."""
    from .catchup import resume_index

    if not held or len(held) != 1 or not isinstance(held[0], HeldItem):
        return None
    pushed = held[0]
    if not pushed.ref.id or not pushed.ref.fingerprint or not runners:
        return None
    newest = {_newest(runner) for runner in runners}
    if newest == {pushed.ref.id}:  # nothing was missed (or that item, published again)
        keyed: Keyed = [(pushed.item, pushed.ref)]
        return keyed, _starts(keyed, runners, resume_index)
    newest.discard(pushed.ref.id)
    if len(newest) != 1 or "" in newest:
        return None
    (before,) = newest
    ids, items = await asyncio.gather(
        session.newest_item_ids(service, node, 2), session.items_by_id(service, node, [before])
    )
    if ids != [before, pushed.ref.id] or len(items) != 1:
        return None
    keyed = [(items[0], ItemRef.of(items[0])), (pushed.item, pushed.ref)]
    starts = _starts(keyed, runners, resume_index)
    return (keyed, starts) if len(starts) == len(runners) else None


def _newest(runner: HookRunner) -> str:
    return next((r.id for r in reversed(runner.submitted) if r.id), "")


def _starts(keyed: Keyed, runners: Sequence[HookRunner], resume_index: Any) -> Starts:
    starts: Starts = {}
    for runner in runners:
        start = resume_index(keyed, list(runner.submitted), False)
        if start is not None:
            starts[runner] = start
    return starts
