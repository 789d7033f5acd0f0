"""The reconnection policy of a session, without a server (xmpp_reconnect)."""

from __future__ import annotations

import asyncio

import pytest

from pubsub_hook_magic import background
from pubsub_hook_magic.states import SessionState
from pubsub_hook_magic.xmpp_reconnect import (
    AfterDelay,
    Lost,
    Reconnection,
    after_disconnect,
    after_reconnect_delay,
)

S = SessionState


@pytest.mark.parametrize(
    ("state", "decision"),
    [
        (S.CONNECTED, Lost(S.RECONNECTING, reconnect=True, announce=True)),
        (S.RECONNECTING, Lost(S.RECONNECTING, reconnect=True, announce=False)),
        (S.STOPPING, Lost(S.STOPPING, reconnect=False, announce=False)),
        (S.FAILED, Lost(S.FAILED, reconnect=False, announce=False)),
        (S.CONNECTING, Lost(S.DISCONNECTED, reconnect=False, announce=False)),
        (S.DISCONNECTED, Lost(S.DISCONNECTED, reconnect=False, announce=False)),
    ],
)
def test_a_closed_stream_is_retried_only_after_the_session_was_up(state, decision):
    assert after_disconnect(state) == decision


@pytest.mark.parametrize(
    ("state", "starting", "action"),
    [
        (S.RECONNECTING, False, AfterDelay.RETRY_LATER),
        (S.CONNECTING, True, AfterDelay.FAIL_START),
        (S.CONNECTING, False, AfterDelay.NOTHING),
        (S.CONNECTED, False, AfterDelay.NOTHING),
    ],
)
def test_slixmpps_own_retry_delay_is_replaced_or_ends_the_start(state, starting, action):
    assert after_reconnect_delay(state, starting) is action


def test_delays_double_from_half_a_second_to_thirty(monkeypatch):
    monkeypatch.setattr(background.random, "uniform", lambda a, b: a)
    delays = []

    async def main():
        reconnection = Reconnection(lambda: None)
        for _ in range(9):
            delays.append(reconnection.schedule())
        reconnection.cancel()
        reconnection.succeeded()
        delays.append(reconnection.schedule())
        reconnection.cancel()

    asyncio.run(main())
    assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 0.5]


def test_delays_are_stretched_by_up_to_a_fifth():
    async def main():
        reconnection = Reconnection(lambda: None)
        out = [reconnection.schedule() for _ in range(200)]
        reconnection.cancel()
        return out

    delays = asyncio.run(main())
    assert all(30 <= d <= 36 for d in delays[10:])
    assert len(set(delays[10:])) > 1  # spread, not the same for everyone
    assert 0.5 <= delays[0] <= 0.6


def test_one_attempt_is_pending_at_most_and_cancel_drops_it():
    calls = []

    async def main():
        reconnection = Reconnection(lambda: calls.append(reconnection.attempt), first=0.001, jitter=0)
        reconnection.schedule()
        reconnection.schedule()  # replaces the first
        assert reconnection.pending
        while not calls:  # (the test's timeout bounds it)
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)  # (and no second call)
        assert calls == [2] and not reconnection.pending
        reconnection.schedule()
        reconnection.cancel()
        await asyncio.sleep(0.05)
        assert calls == [2] and not reconnection.pending

    asyncio.run(main())


def test_a_conflict_message_says_who_took_the_jid_and_what_to_do():
    from pubsub_hook_magic.xmpp_reconnect import conflict_message

    explicit = conflict_message("bob@localhost/res", explicit=True)
    assert explicit.startswith("another client logged in as bob@localhost/res")
    assert "another resource" in explicit and "stop the other client" in explicit
    assert "does not reconnect by itself" in explicit
    chosen = conflict_message("bob@localhost/pubsub-hook-1a2b3c4d", explicit=False)
    assert "the resource this session had chosen" in chosen and "connect again" in chosen
