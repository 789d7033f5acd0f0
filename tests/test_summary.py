"""One summary schema for installed, stored and needs-newer hooks (no server, no kernel)."""

from __future__ import annotations

import json
import typing

from pubsub_hook_magic import formatting
from pubsub_hook_magic.deadletters import DeadLetters
from pubsub_hook_magic.hooks import Hook, HookType
from pubsub_hook_magic.runner import HookRunner, needs_newer_summary
from pubsub_hook_magic.states import HookState
from pubsub_hook_magic.summary import HookSummary, needs_newer, summarize

KEYS = set(typing.get_type_hints(HookSummary))


def make_hook(**kwargs) -> Hook:
    fields = {"service": "pubsub.example.org", "node": "news", "type": HookType.PYTHON_CODE, "arg": "pass", "id": "h1"}
    fields.update(kwargs)
    return Hook(**fields)


def record(**extra) -> dict:
    return {**make_hook(persistent=True).to_record(), **extra}


def test_the_three_kinds_have_the_same_keys():
    hook = make_hook(retry=2, retry_delay=0.5, events=("publish", "retract"))
    hook.func = lambda host, client, item: None
    installed = HookRunner(hook, lambda: (None, None)).summary()
    stored = summarize(Hook.from_record(record()))
    newer = needs_newer({"id": "n1", "service": "s", "node": "n", "type": "python_rust", "arg": "x", "format": 9})
    assert set(installed) == set(stored) == set(newer) == KEYS
    assert (installed["retry"], installed["retry_delay"], installed["events"]) == (2, 0.5, ["publish", "retract"])
    assert installed["state"] == HookState.ACTIVE and installed["recent"] == []


def test_the_runner_and_the_old_name_use_the_builder():
    assert needs_newer_summary({"id": "n1"}) == needs_newer({"id": "n1"})
    hook = make_hook()
    hook.func = lambda host, client, item: None
    runner = HookRunner(hook, lambda: (None, None))
    assert runner.summary(recent=False) == summarize(hook, runner, recent=False) | {
        "running_for": None
    }


def test_a_stored_hook_is_stored_or_paused_and_not_broken():
    stored = summarize(Hook.from_record(record()))
    assert (stored["state"], stored["paused"], stored["load_error"]) == ("stored", False, None)
    paused = summarize(Hook.from_record(record(paused=True)), state=HookState.PAUSED)
    assert (paused["state"], paused["paused"]) == ("paused", True)
    broken = summarize(Hook.from_record(record()), state=HookState.BROKEN, load_error="no such file")
    assert (broken["state"], broken["load_error"]) == ("broken", "no such file")
    assert "hook h1 is broken: no such file" in formatting.hooks_text([broken])


def test_a_stored_hook_counts_its_dead_letters(tmp_path):
    dead = DeadLetters(path=tmp_path / "h1.jsonl")
    summary = summarize(Hook.from_record(record()), dead_letters=dead)
    assert (summary["failed"], summary["failed_dropped"]) == (0, 0)

    class Letters:
        dropped = 3

        def __len__(self) -> int:
            return 2

    summary = summarize(Hook.from_record(record()), dead_letters=Letters())
    assert (summary["failed"], summary["failed_dropped"]) == (2, 3)
    assert "has 2 failed item(s) (3 older dropped)" in formatting.hooks_text([summary])


def test_a_needs_newer_record_keeps_what_it_can_read():
    newer = needs_newer({"id": "n1", "retry": 3, "retry_delay": "soon", "events": ["purge"], "where": "x"})
    assert newer["state"] == HookState.NEEDS_NEWER
    assert (newer["retry"], newer["retry_delay"], newer["events"], newer["where"]) == (3, 1.0, ["purge"], "x")
    assert newer["persistent"] and "newer pubsub_hook_magic" in (newer["load_error"] or "")
    assert needs_newer({})["id"] == "?"


def test_summaries_are_json_ready():
    hook = make_hook(where=".[@type='note']")
    json.dumps([summarize(hook), needs_newer({"id": "x"})])
