"""Hooks tied to cells (:mod:`pubsub_hook_magic.cells`): the pure matching logic."""

from __future__ import annotations

from pubsub_hook_magic.cells import CellRun, Created, cell_key, definition, duplicate_of
from pubsub_hook_magic.hooks import Hook, HookType


def code_hook(code: str = "pass", node: str = "news", hook_id: str = "", **options) -> Hook:
    return Hook("pubsub.example.org", node, HookType.PYTHON_CODE, code, id=hook_id, **options)


def test_cell_key_prefers_the_front_ends_cell_id_then_the_text():
    assert cell_key("abc-1", "print(1)") == "cell:abc-1"
    text = cell_key(None, "print(1)")
    assert text is not None and text.startswith("text:") and text == cell_key("", "print(1)")
    assert cell_key(None, "print(2)") != text
    assert cell_key(None, "  \n") is None and cell_key(None, None) is None


def test_definition_ignores_id_and_time_but_not_code_node_or_options():
    a, b = code_hook(hook_id="a"), code_hook(hook_id="b")
    assert definition(a) == definition(b)
    assert definition(code_hook("x = 1")) != definition(a)
    assert definition(code_hook(node="sport")) != definition(a)
    assert definition(code_hook(retry=2)) != definition(a)
    assert definition(code_hook(persistent=True)) != definition(a)


def test_duplicate_of_finds_an_identical_installed_hook_only():
    installed = [code_hook("x = 1", hook_id="h1"), code_hook(hook_id="h2")]
    assert duplicate_of(code_hook(), installed).id == "h2"
    assert duplicate_of(code_hook("y = 2"), installed) is None
    assert duplicate_of(code_hook(hook_id="h2"), installed) is None  # itself


def test_a_rerun_keeps_an_unchanged_hook_and_claims_it():
    run = CellRun("cell:1", previous=[code_hook(hook_id="h1")])
    match = run.match(code_hook())
    assert (match.kind, match.hook.id) == ("kept", "h1")
    assert run.unclaimed() == []


def test_a_rerun_with_other_code_replaces_the_code_of_the_same_hook():
    run = CellRun("cell:1", previous=[code_hook("v = 1", hook_id="h1")])
    match = run.match(code_hook("v = 2"))
    assert (match.kind, match.hook.id) == ("code", "h1")


def test_a_rerun_with_another_node_replaces_the_hook_of_its_type():
    previous = [code_hook(hook_id="h1")]
    run = CellRun("cell:1", previous=previous)
    match = run.match(code_hook(node="sport"))
    assert match.kind == "new" and match.replaces.id == "h1"
    assert run.unclaimed() == []


def test_each_previous_hook_is_matched_once_in_order():
    previous = [code_hook("a = 1", hook_id="h1"), code_hook("a = 1", hook_id="h2")]
    run = CellRun("cell:1", previous=previous)
    assert run.match(code_hook("a = 1")).hook.id == "h1"
    assert run.match(code_hook("a = 1")).hook.id == "h2"
    assert run.match(code_hook("a = 1")).kind == "new"


def test_hooks_the_rerun_did_not_make_are_left_for_deletion():
    previous = [code_hook(hook_id="h1"), code_hook(node="sport", hook_id="h2", retry=1)]
    run = CellRun("cell:1", previous=previous)
    run.match(code_hook())
    assert [h.id for h in run.unclaimed()] == ["h2"]


def test_only_hooks_still_installed_are_matched():
    run = CellRun("cell:1", previous=[code_hook(hook_id="gone")])
    match = run.match(code_hook(), installed=lambda hook_id: hook_id != "gone")
    assert match.kind == "new" and match.replaces is None


def test_function_hooks_compare_by_source():
    def on_news(host, client, item):
        return item

    a = Hook("s", "n", HookType.PYTHON_FUNCTION, "on_news", id="f1", source="def on_news(h, c, i):\n    pass\n")
    b = Hook("s", "n", HookType.PYTHON_FUNCTION, "on_news", source="def on_news(h, c, i):\n    return 1\n")
    run = CellRun("cell:1", previous=[a])
    assert run.match(b).kind == "code"  # the body changed: same hook, new code
    live = Hook("s", "n", HookType.PYTHON_FUNCTION, "on_news", function=on_news)
    assert "return item" in definition(live)[-1]


def test_created_says_what_was_done():
    hook = code_hook(hook_id="h1")
    hook.notes.append("the node keeps no items")
    assert Created(hook).lines() == [f"Created {hook.describe()}.", "Note: the node keeps no items"]
    assert Created(hook, "kept").lines() == ["Kept hook h1 (the cell was run again; it is unchanged)."]
    assert Created(hook, "code").lines()[0].startswith("Replaced the code of hook h1")
    assert Created(hook, "replaced", "h0").lines()[0] == f"Replaced hook h0 with {hook.describe()} (the cell was run again)."
