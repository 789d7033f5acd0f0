"""When a session tries again: the reconnection policy of :class:`~.session.XmppSession`.

A session that was up and is lost (server restart, network, a ping unanswered) tries
again 0.5 s later, then twice as long after each failed attempt, up to 30 s, each delay
stretched at random by up to 20 % (:class:`~.background.Backoff`), so that the
sessions of a restarted server do not all come back at once. slixmpp's own retry
delays (which grow to 300 s) are replaced by these. A session that never started is
not retried: its caller is told why. A refused password while reconnecting ends the
retries (``failed``).

The decisions are pure functions of the session's state (:func:`after_disconnect`,
:func:`after_reconnect_delay`), tested without a server; :class:`Reconnection` holds
the one pending attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import Enum
from typing import NamedTuple

from .background import Backoff
from .states import SessionState

__all__ = [
    "FIRST_DELAY",
    "JITTER",
    "MAX_DELAY",
    "AfterDelay",
    "Lost",
    "Reconnection",
    "after_disconnect",
    "after_reconnect_delay",
]

#: Seconds before the first attempt after a loss; each failure doubles it, up to MAX_DELAY.
FIRST_DELAY = 0.5
MAX_DELAY = 30.0
#: Each delay is stretched at random by up to this fraction (1.0 to 1.2 times).
JITTER = 0.2


class Lost(NamedTuple):
    """What a session does when its stream closes."""

    state: SessionState
    #: Schedule another attempt.
    reconnect: bool
    #: An established session was lost: say so (a warning), once per loss.
    announce: bool


def after_disconnect(state: SessionState) -> Lost:
    """The decision when the stream closes while the session is in ``state``."""
    if state == SessionState.CONNECTED:
        return Lost(SessionState.RECONNECTING, reconnect=True, announce=True)
    if state == SessionState.RECONNECTING:  # an attempt failed: the next one, later
        return Lost(SessionState.RECONNECTING, reconnect=True, announce=False)
    if state in (SessionState.STOPPING, SessionState.FAILED):
        return Lost(state, reconnect=False, announce=False)
    return Lost(SessionState.DISCONNECTED, reconnect=False, announce=False)


class AfterDelay(Enum):
    """What to do when slixmpp has tried every address once (its ``reconnect_delay``)."""

    #: Reconnecting: cancel slixmpp's attempt, ours comes after our own delay.
    RETRY_LATER = "retry later"
    #: Starting: the server is unreachable, tell the caller.
    FAIL_START = "fail start"
    #: Anything else: let slixmpp be.
    NOTHING = "nothing"


def after_reconnect_delay(state: SessionState, starting: bool) -> AfterDelay:
    """The decision when slixmpp would wait before trying the addresses again."""
    if state == SessionState.RECONNECTING:
        return AfterDelay.RETRY_LATER
    if starting:
        return AfterDelay.FAIL_START
    return AfterDelay.NOTHING


class Reconnection:
    """The one pending attempt of a session: :meth:`schedule` calls ``connect`` after
    the next delay of the backoff (replacing an attempt already scheduled),
    :meth:`succeeded` starts the delays over, :meth:`cancel` drops the attempt.

    Call on the session's loop."""

    __slots__ = ("_connect", "_timer", "backoff")

    def __init__(
        self,
        connect: Callable[[], None],
        *,
        first: float = FIRST_DELAY,
        limit: float = MAX_DELAY,
        jitter: float = JITTER,
    ):
        self._connect = connect
        self.backoff = Backoff(first, limit, jitter)
        self._timer: asyncio.TimerHandle | None = None

    @property
    def attempt(self) -> int:
        """Attempts scheduled since the last success."""
        return self.backoff.attempt

    @property
    def pending(self) -> bool:
        return self._timer is not None

    def schedule(self) -> float:
        """Schedule the next attempt; returns its delay in seconds."""
        delay = self.backoff.next_delay()
        self.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)
        return delay

    def succeeded(self) -> None:
        self.backoff.reset()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        self._connect()
