"""What is done when a node stops delivering: deleted, unsubscribed by its owner, pending.

The problems themselves are recorded in :class:`~.nodestatus.NodeStatus` (the hooks'
state reads them); :class:`NodeWatch` learns of them and acts:

* **Deleted** (a ``<delete/>`` notification, or ``item-not-found`` when the node is made
  to deliver or caught up): the node's held live items run (they were published before
  the deletion), the hooks' positions go back to "the node's first item" (the new node's
  items are all new), our subscription is forgotten (it went with the node), and the node
  is *held* while it is away. It is looked for again 2 s, 4 s… then every 60 s (one
  disco#info request each: about 60 an hour); when it is back (found, a live item of it
  arrives, e.g. a PEP node re-created by a publish, or ``%hook node create``), the
  hooks subscribe again and catch up on the new node: every item, live and missed,
  exactly once. The subscription is made again whatever the service says of it: Prosody
  0.12 lists a deleted node's subscriptions as those of the node created again, which
  has none.
* **Unsubscribed** (a ``<subscription subscription='none'/>`` notification, ejabberd;
  or, at reconnection, a subscription of ours found missing, Prosody does not notify):
  nothing subscribes again behind the owner's back; :meth:`NodeWatch.retry` does, on the
  user's word (``%hook resume ID``).
* **Pending** (authorize access model): the hooks wait; a ``subscribed`` notification
  (the owner approved) resumes them.

Prosody 0.12 notifies neither a removed subscription nor an approval, and a resumed
stream (XEP-0198) checks nothing: every :data:`AUDIT_INTERVAL` seconds the
subscriptions we made are checked (:meth:`NodeWatch.audit`: one request per service,
or one per node where the service does not answer that one), so that no hook shows
``active`` for long while its node cannot deliver.

Everything here runs on the session's loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .background import Backoff, TaskSet
from .catchup import CatchUp
from .dedupe import ItemRef
from .hooks import HookError
from .live import LivePath
from .nodestatus import NodeStatus
from .positions import PositionKeeper
from .registry import HookIndex
from .runner import HookRunner
from .xmpp_session import RequestError, XmppSession
from .states import HookState
from .subscriptions import NodeGone, SubscriptionPending, SubscriptionRemoved, Subscriptions, is_pep, pending_note

__all__ = ["AUDIT_INTERVAL", "LOOK_AGAIN_FIRST", "LOOK_AGAIN_LIMIT", "NodeWatch"]

log = logging.getLogger(__name__)

Key = tuple[str, str]

#: Seconds before a deleted node is first looked for again; doubling up to the limit.
LOOK_AGAIN_FIRST = 2.0
LOOK_AGAIN_LIMIT = 60.0
#: Seconds between two checks of the subscriptions we made (see the module).
AUDIT_INTERVAL = 300.0
#: Where a hook starts on a node created again: its first item.
FROM_THE_START = ItemRef("", digest="")

_DELETED = "deleted{how}: its hooks run again, from the new node's first item, once it is created again"
_UNSUBSCRIBED = (
    "the node's owner (or the service) removed the subscription{how}: nothing arrives; "
    "%hook resume ID subscribes again"
)


class NodeWatch:
    """Node problems of one engine's hooks, and what is done about them (see the module)."""

    def __init__(
        self,
        index: HookIndex[HookRunner],
        status: NodeStatus,
        live: LivePath,
        catchup: CatchUp,
        subscriptions: Subscriptions,
        positions: PositionKeeper,
        session: Callable[[], XmppSession | None],
        tasks: TaskSet,
    ):
        self.index = index
        self.status = status
        self.live = live
        self.catchup = catchup
        self.subscriptions = subscriptions
        self.positions = positions
        self._session = session
        self._tasks = tasks
        #: The task looking for each deleted node.
        self._looking: dict[Key, asyncio.Task[Any]] = {}

    def reset(self) -> None:
        """At disconnect (the tasks are cancelled with the engine's)."""
        self._looking.clear()
        self.status.reset()

    def forget(self, key: Key) -> None:
        """No hook is on the node any more."""
        self.status.clear(key, "no hook on it")
        task = self._looking.pop(key, None)
        if task is not None:
            task.cancel()
        self.live.stop_watching(key)

    # ------------------------------------------------------------------ what the server says

    def problem(self, key: Key, exc: HookError) -> bool:
        """A failure to make the node deliver or to read it: whether it is a node
        problem (then recorded and acted upon: no need to warn or retry)."""
        if isinstance(exc, NodeGone):
            if is_pep(key[0]):
                return False  # a PEP node appears at its first publish: nothing to say
            self.deleted(key, "")
        elif isinstance(exc, SubscriptionRemoved):
            self.status.set(key, HookState.UNSUBSCRIBED, str(exc))
        elif isinstance(exc, SubscriptionPending):
            self.status.set(key, HookState.PENDING, str(exc))
        else:
            return False
        return True

    def on_node_event(self, service: str, node: str, kind: str, element: Any) -> None:
        """A notification about the node itself (from the live path): ``delete``,
        ``subscription`` (ours changed), or ``back`` (a live item of a deleted node)."""
        key = (service, node)
        if not self.index.for_node(service, node):
            return
        if kind == "delete":
            self.deleted(key, " by its owner")
        elif kind == "back":
            self._tasks.start(self.back(key), name=f"pubsub-hook-node-back {node}")
        elif kind == "subscription":
            self._subscription_changed(key, element)

    def _subscription_changed(self, key: Key, element: Any) -> None:
        session = self._session()
        jid = element["jid"]
        if session is None or (jid and jid.bare != session.bare):
            return  # (another JID's subscription: an owner's notification)
        state = element["subscription"]
        problem = self.status.get(key)
        if state == "none":
            self.status.set(key, HookState.UNSUBSCRIBED, _UNSUBSCRIBED.format(how=" (notified)"))
        elif state == "pending":
            self.status.set(key, HookState.PENDING, pending_note(*key))
        elif state == "subscribed" and problem is not None and problem.state is not HookState.NODE_DELETED:
            self.status.clear(key, "subscribed")
            self._tasks.start(self._resume(key), name=f"pubsub-hook-resubscribed {key[1]}")

    # ------------------------------------------------------------------ deleted nodes

    def deleted(self, key: Key, how: str) -> None:
        """The node is gone: its hooks say so and it is looked for until it is back."""
        if not self.index.for_node(*key):
            return
        if self.status.set(key, HookState.NODE_DELETED, _DELETED.format(how=how)):
            self.live.release(key)  # (published before the deletion: they run)
            self.live.forget(*key)
            self.subscriptions.forget(*key)
            for runner in self.index.for_node(*key):
                runner.set_position(FROM_THE_START)
                if runner.hook.persistent:
                    self.positions.save_now(runner)
        self.live.watch_for_return(key)
        looking = self._looking.get(key)
        if looking is None or looking.done():
            self._looking[key] = self._tasks.start(self._look_for(key), name=f"pubsub-hook-look-for {key[1]}")

    async def _look_for(self, key: Key) -> None:
        """Look for a deleted node now and then, until it is back (or no longer
        deleted, or the session ends: the next one looks again)."""
        delays = Backoff(LOOK_AGAIN_FIRST, LOOK_AGAIN_LIMIT)
        while True:
            await delays.wait()
            problem = self.status.get(key)
            session = self._session()
            if problem is None or problem.state is not HookState.NODE_DELETED or not self.index.for_node(*key):
                return
            if session is None or not session.connected:
                return
            try:
                exists = await session.node_exists(*key)
            except RequestError as exc:
                log.debug("looking for %s/%s: %s", *key, exc)
                continue
            if exists:
                if self._looking.get(key) is asyncio.current_task():
                    del self._looking[key]
                await self.back(key)
                return

    async def back(self, key: Key) -> None:
        """The node exists again: its hooks subscribe and catch up on it."""
        problem = self.status.get(key)
        if problem is None or problem.state is not HookState.NODE_DELETED:
            return
        self.status.clear(key, "created again")
        self.live.stop_watching(key)
        if not is_pep(key[0]):
            # Subscribe whatever the service says: Prosody 0.12 still lists the deleted
            # node's subscriptions as the new node's, which has no subscriber.
            try:
                await self.subscriptions.subscribe(*key)
            except HookError as exc:
                if not self.problem(key, exc):
                    log.warning("%s/%s: %s", *key, exc)
                return
        await self._resume(key)

    async def _resume(self, key: Key) -> None:
        failed = await self.catchup.resume([key])
        for (service, node), exc in failed.items():
            log.warning("%s/%s: %s", service, node, exc)

    # ------------------------------------------------------------------ the audit

    def start_audit(self, interval: float = AUDIT_INTERVAL) -> None:
        """Check our subscriptions every ``interval`` seconds while connected (ends
        with the engine's tasks, at disconnect)."""
        self._tasks.start(self._audit_forever(interval), name="pubsub-hook-audit")

    async def _audit_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            session = self._session()
            if session is None or not session.connected:
                continue
            try:
                await self.audit()
            except HookError as exc:
                log.debug("checking subscriptions: %s", exc)
            except Exception:  # a bug of ours must not end the audit
                log.exception("checking subscriptions failed")

    async def audit(self) -> None:
        """Check the subscriptions we made for the nodes with hooks and no known
        problem: one found missing is ``unsubscribed``, one waiting ``pending``; one
        approved meanwhile resumes its hooks."""
        by_service: dict[str, list[str]] = {}
        for service, node in self.index.nodes():
            if not is_pep(service) and (service, node) in self.subscriptions.ours:
                by_service.setdefault(service, []).append(node)
        for service, nodes in sorted(by_service.items()):
            states = await self.subscriptions.states(service, nodes)
            for node, state in states.items():
                key = (service, node)
                problem = self.status.get(key)
                if problem is not None and problem.state is HookState.NODE_DELETED:
                    continue
                if state is None and problem is None:
                    self.status.set(key, HookState.UNSUBSCRIBED, _UNSUBSCRIBED.format(how=" (found missing)"))
                elif state == "pending" and problem is None:
                    self.status.set(key, HookState.PENDING, pending_note(*key))
                elif state == "subscribed" and problem is not None and problem.state is HookState.PENDING:
                    self.status.clear(key, "approved")
                    await self._resume(key)

    # ------------------------------------------------------------------ the user's word

    async def retry(self, key: Key) -> str:
        """``%hook resume``: subscribe again to a node whose subscription was removed
        or is pending, or look for a deleted node now. Returns what was done; raises
        HookError when the node still cannot deliver."""
        problem = self.status.get(key)
        if problem is None:
            return ""
        service, node = key
        session = self._session()
        if session is None or not session.connected:
            raise HookError("not connected: the hook resumes when the session is back")
        if problem.state is HookState.NODE_DELETED:
            if not await session.node_exists(service, node):
                raise HookError(
                    f"node {node!r} on {service} still does not exist: its hooks run again once it is "
                    f"created (by its owner, or with %hook node create -s {service} -n {node} if you may)"
                )
            await self.back(key)
            return f"node {node!r} is back: its hooks run its items"
        try:
            await self.subscriptions.subscribe(service, node)
        except SubscriptionPending as exc:
            self.status.set(key, HookState.PENDING, str(exc))
            raise
        except NodeGone:
            self.deleted(key, "")
            raise
        self.status.clear(key, "subscribed again")
        await self._resume(key)
        return f"subscribed again to {node!r} on {service}"

