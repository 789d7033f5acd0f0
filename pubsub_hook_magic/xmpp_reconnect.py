"""When a session tries again: the reconnection policy of :class:`~.session.XmppSession`.

A session that was up and is lost (server restart, network, a ping unanswered) tries
again 0.5 s later, then twice as long after each failed attempt, up to 30 s, each delay
stretched at random by up to 20 % (:class:`~.background.Backoff`), so that the
sessions of a restarted server do not all come back at once. slixmpp's own retry
delays (which grow to 300 s) are replaced by these. A session that never started is
not retried: its caller is told why. A refused password while reconnecting ends the
retries (``failed``). An attempt that connects but does not get a session within
:data:`ATTEMPT_TIMEOUT` seconds (a link that swallows everything) is dropped, and the
next one follows the backoff.

A failed session is not dead: ``HookManager.connect`` (``%hook connect``) of the same
account logs it in again (with a new password) without a ``disconnect``, and its hooks,
temporary and persistent, go on running (catch-up as after any reconnection).

**Resource conflict.** When another client logs in with the session's full JID, the
server ends our stream with the stream error ``conflict``. Reconnecting would kick
that client, which would reconnect and kick us, forever (44 connections in 30 s between
two sessions before this rule). So a conflict never reconnects: the session goes
``failed`` with :func:`conflict_message` as its ``last_error``. With an explicit
resource (``bob@localhost/res``) the fix is the user's: another resource, or stop the
other client. With the resource the session chose at random, a conflict means that
another client took that very resource on purpose (a copy of this session's JID), and
choosing another one would only start the same fight over again with that client:
the session fails too, and says so; ``%hook connect`` again takes the stream back.

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
    "ATTEMPT_TIMEOUT",
    "FIRST_DELAY",
    "JITTER",
    "MAX_DELAY",
    "AfterDelay",
    "Lost",
    "Reconnection",
    "after_disconnect",
    "after_reconnect_delay",
    "conflict_message",
]

#: Seconds before the first attempt after a loss; each failure doubles it, up to MAX_DELAY.
FIRST_DELAY = 0.5
MAX_DELAY = 30.0
#: Each delay is stretched at random by up to this fraction (1.0 to 1.2 times).
JITTER = 0.2
#: Seconds a reconnection attempt may take from its TCP connect to the session.
ATTEMPT_TIMEOUT = 15.0


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


def conflict_message(full_jid: str, explicit: bool) -> str:
    """The session's ``last_error`` after the stream error ``conflict`` (see above)."""
    if explicit:
        return (
            f"another client logged in as {full_jid}, and the server closed this session for it: "
            "connect with another resource (user@domain/other), or stop the other client; "
            "this session does not reconnect by itself (it would only kick the other client out)"
        )
    return (
        f"another client logged in as {full_jid}, the resource this session had chosen, and the "
        "server closed this session for it: this session does not reconnect by itself (the two "
        "would kick each other out); stop the other client, or connect again to take the stream back"
    )


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
