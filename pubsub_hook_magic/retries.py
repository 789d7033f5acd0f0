"""A hook's ``--retry N``: which failed runs are tried again, after how long, and
the dead letter an item becomes once its last attempt failed."""

from __future__ import annotations

import logging
import time

from .background import backoff
from .deadletters import DeadLetter, DeadLetters
from .execution import cancelling
from .hooks import MAX_RETRY_DELAY, Hook
from .states import Outcome, TriggerKind
from .trigger import Trigger

__all__ = ["Retries"]

log = logging.getLogger(__name__)


class Retries:
    """The retries of one hook's queued items (replays, tests and retries of dead
    letters are one-off runs: never retried)."""

    __slots__ = ("_first_failed", "attempt", "dead_letters", "hook")

    def __init__(self, hook: Hook, dead_letters: DeadLetters):
        self.hook = hook
        self.dead_letters = dead_letters
        #: The attempt of the item being retried (None: not retrying).
        self.attempt: int | None = None
        self._first_failed: float | None = None

    def settle(self, trigger: Trigger) -> bool:
        """After a run of a queued item: whether it is tried again; a failure without
        retries left goes to the dead letters (before the position moves past it)."""
        if trigger.kind not in (TriggerKind.LIVE, TriggerKind.CATCH_UP):
            return False
        if trigger.outcome not in (Outcome.ERROR, Outcome.TIMEOUT):
            self.attempt = None
            return False
        if trigger.attempt == 1:
            self._first_failed = time.time()
        if trigger.attempt <= self.hook.retry and not cancelling():
            self.attempt = trigger.attempt + 1
            return True
        self.attempt = None
        try:
            self.dead_letters.add(DeadLetter.of(trigger, trigger.attempt, self._first_failed))
        except Exception:  # never stop the hook for its bookkeeping
            log.exception("hook %s: cannot keep the failed item %s", self.hook.id, trigger.item_id)
        return False

    def delay(self, failed: Trigger) -> float:
        """Seconds before the next attempt: ``retry_delay``, doubling, at most 5 min."""
        return backoff(self.hook.retry_delay, failed.attempt, MAX_RETRY_DELAY)

    def stopped(self) -> None:
        """The runner stopped while an item waited for its next attempt."""
        self.attempt = None
