"""One hook as ``%hook list -O json`` shows it: one schema, one builder.

Three kinds of hooks are listed, and all have the same keys (:class:`HookSummary`):

* an *installed* hook: its :class:`~.hooks.Hook` and its runner, whose public
  attributes give the statistics (``summarize(runner.hook, runner)``);
* a *stored* hook, read from the account's store without running it (``pubsub-hook
  list``): a :class:`~.hooks.Hook` with the state the caller found (``stored``,
  ``paused``, ``broken``) and its dead letters;
* a stored hook that *needs a newer version* of the package: only its store record.

The builder is pure: no IPython, no loop, no I/O. The statistics of a hook that does
not run are zeros and ``None``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol, TypedDict

from .hooks import Hook
from .states import HookState

__all__ = ["NEWER_LOAD_ERROR", "HookSummary", "needs_newer", "summarize"]

#: The load error shown for a stored hook written by a newer version.
NEWER_LOAD_ERROR = "written by a newer pubsub_hook_magic: upgrade it to run this hook here"


class HookSummary(TypedDict):
    """One hook, JSON-ready. Times are ``time.time()`` seconds, durations seconds."""

    id: str
    service: str
    node: str
    type: str
    arg: str
    persistent: bool
    created: float | None
    #: A :class:`~.states.HookState` value.
    state: str
    #: The process that runs it (a persistent hook in standby here).
    owner: str | None
    #: The notebook names a waiting ``python_code`` hook needs.
    waiting_for: list[str]
    #: Why its node does not deliver (state ``node deleted``, ``unsubscribed`` or
    #: ``pending``): what happened and what to do.
    node_problem: str | None
    #: Why the hook runs live items only (its node keeps no items: no catch-up), if so.
    live_only: str | None
    events: list[str]
    where: str | None
    #: Publications ``--where`` did not match.
    filtered: int
    load_error: str | None
    triggers: int
    errors: int
    dropped: int
    skipped: int
    gaps: int
    retry: int
    retry_delay: float
    #: The attempt of the item being retried (None: not retrying).
    attempt: int | None
    #: Dead letters (``%hook failed ID``), and how many older ones were dropped.
    failed: int
    failed_dropped: int
    reloads: int
    reload_error: str | None
    catch_up: bool
    paused: bool
    pending: int
    running_for: float | None
    last_trigger: dict[str, Any] | None
    last_error: dict[str, Any] | None
    last_duration: float | None
    mean_duration: float | None
    recent: list[dict[str, Any]]


class DeadLetterCount(Protocol):
    """What the summary reads of a hook's dead letters."""

    dropped: int

    def __len__(self) -> int: ...


def summarize(
    hook: Hook,
    runner: Any = None,
    *,
    state: HookState | None = None,
    dead_letters: DeadLetterCount | None = None,
    load_error: str | None = None,
    recent: bool = True,
) -> HookSummary:
    """The summary of ``hook``.

    With ``runner`` (a :class:`~.runner.HookRunner`), its public attributes give the
    state, the statistics and the dead letters; ``recent=False`` leaves out the recent
    triggers (the table's cheap refresh). Without, the hook does not run here: its
    ``state`` is the one given (default ``stored``), its statistics are zeros, and
    ``dead_letters`` (if given) counts its failed items.
    """
    if runner is None:
        return _summary(_hook_fields(hook), state or HookState.STORED, dead_letters, load_error)
    summary = _summary(
        _hook_fields(hook), state or runner.state, runner.dead_letters, load_error or hook.load_error
    )
    last, last_error = runner.last_trigger, runner.last_error
    running_since = runner.running_since
    summary.update(
        {
            "owner": runner.owner,
            "waiting_for": list(runner.waiting_for),
            "node_problem": problem.reason if (problem := runner.mode.node_problem) is not None else None,
            "live_only": runner.live_only,
            "filtered": runner.filtered,
            "triggers": runner.count,
            "errors": runner.errors,
            "dropped": runner.dropped,
            "skipped": runner.skipped,
            "gaps": runner.gaps,
            "attempt": runner.retry_attempt,
            "reloads": runner.reloads,
            "reload_error": runner.reload_error,
            "paused": runner.paused,
            "pending": runner.pending,
            "running_for": time.perf_counter() - running_since if running_since is not None else None,
            "last_trigger": last.as_dict() if last else None,
            "last_error": last_error.as_dict() if last_error else None,
            "last_duration": runner.last_duration,
            "mean_duration": runner.mean_duration,
            "recent": [t.as_dict() for t in runner.triggers] if recent else [],
        }
    )
    return summary


def needs_newer(record: Mapping[str, Any]) -> HookSummary:
    """A stored hook this version cannot read (its record is a newer format)."""
    fields = {
        "id": str(record.get("id", "?")),
        "service": str(record.get("service", "")),
        "node": str(record.get("node", "")),
        "type": str(record.get("type", "")),
        "arg": str(record.get("arg", "")),
        "persistent": True,
        "created": record.get("created"),
        "events": _strings(record.get("events"), ["publish"]),
        "where": record.get("where") or None,
        "retry": _number(record.get("retry"), int, 0),
        "retry_delay": _number(record.get("retry_delay"), float, 1.0),
        "catch_up": bool(record.get("catch_up", True)),
    }
    return _summary(fields, HookState.NEEDS_NEWER, None, NEWER_LOAD_ERROR)


def _hook_fields(hook: Hook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "service": hook.service,
        "node": hook.node,
        "type": hook.type.value,
        "arg": hook.arg,
        "persistent": hook.persistent,
        "created": hook.created,
        "events": list(hook.events),
        "where": hook.where,
        "retry": hook.retry,
        "retry_delay": hook.retry_delay,
        "catch_up": hook.catch_up,
    }


def _summary(
    fields: dict[str, Any], state: HookState, dead_letters: DeadLetterCount | None, load_error: str | None
) -> HookSummary:
    """The summary of a hook that has not run: ``fields`` (the hook's own), zeros."""
    return HookSummary(
        id=fields["id"],
        service=fields["service"],
        node=fields["node"],
        type=fields["type"],
        arg=fields["arg"],
        persistent=fields["persistent"],
        created=fields["created"],
        state=state.value,
        owner=None,
        waiting_for=[],
        node_problem=None,
        live_only=None,
        events=fields["events"],
        where=fields["where"],
        filtered=0,
        load_error=load_error,
        triggers=0,
        errors=0,
        dropped=0,
        skipped=0,
        gaps=0,
        retry=fields["retry"],
        retry_delay=fields["retry_delay"],
        attempt=None,
        failed=len(dead_letters) if dead_letters is not None else 0,
        failed_dropped=dead_letters.dropped if dead_letters is not None else 0,
        reloads=0,
        reload_error=None,
        catch_up=fields["catch_up"],
        paused=state is HookState.PAUSED,
        pending=0,
        running_for=None,
        last_trigger=None,
        last_error=None,
        last_duration=None,
        mean_duration=None,
        recent=[],
    )


def _strings(value: Any, default: list[str]) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) and value else default


def _number(value: Any, kind: type, default: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return kind(value)
