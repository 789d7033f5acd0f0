"""The fixed vocabularies, listed once: session states, hook states, trigger outcomes
and trigger kinds.

They are ``StrEnum`` members, so they print, compare and serialise (``-O json``) as
the plain words users see.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["HookState", "Outcome", "SessionState", "TriggerKind"]


class SessionState(StrEnum):
    """Where the XMPP session is (``%hook status``)."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    #: Gave up (e.g. the password stopped working while reconnecting): see ``last_error``.
    FAILED = "failed"
    STOPPING = "stopping"


class HookState(StrEnum):
    """What a hook is doing (the ``state`` of ``%hook list``)."""

    ACTIVE = "active"
    #: Running what was published while the session was away, before live items.
    CATCHING_UP = "catching up"
    PAUSED = "paused"
    #: Persistent, and run by another process of the machine (``owner`` says which).
    STANDBY = "standby"
    #: A persistent ``python_code`` hook whose code reads notebook names not defined
    #: yet (``waiting_for``): its items wait on the node until a cell defines them.
    WAITING = "waiting"
    #: A run failed and is tried again after a delay; the hook's later items wait.
    RETRYING = "retrying"
    #: Its code does not load (``load_error`` says why); it stays listed until deleted.
    BROKEN = "broken"
    #: Stored by a newer version of the package, in a form this one cannot read: not run.
    NEEDS_NEWER = "needs a newer version"
    #: Stored and loadable, but not installed in this process (``pubsub-hook list``).
    STORED = "stored"
    #: Its node was deleted (``node_problem`` says when): it runs again, from the new
    #: node's first item, once the node is created again.
    NODE_DELETED = "node deleted"
    #: The node's owner (or the service) removed the account's subscription: nothing
    #: arrives; ``%hook resume ID`` subscribes again.
    UNSUBSCRIBED = "unsubscribed"
    #: The subscription waits for the node owner's approval (authorize access model).
    PENDING = "pending"


class Outcome(StrEnum):
    """How one trigger ended."""

    PENDING = "pending"
    OK = "ok"
    ERROR = "error"
    #: Ran past the hook's time limit and was stopped.
    TIMEOUT = "timeout"
    #: The hook's queue was full: the item was not run.
    DROPPED = "dropped"
    #: The hook was paused: the item was not run.
    SKIPPED = "skipped"
    #: The node no longer holds the items the hook ran last: some were missed.
    GAP = "gap"


class TriggerKind(StrEnum):
    """Why a hook ran."""

    LIVE = "live"
    CATCH_UP = "catch-up"
    REPLAY = "replay"
    TEST = "test"
    #: A dead letter run again (``%hook retry``).
    RETRY = "retry"
