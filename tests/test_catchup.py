"""Where a hook resumes in a node's newest items (pure logic of catchup.resume_index)."""

from __future__ import annotations

from pubsub_hook_magic.catchup import resume_index
from pubsub_hook_magic.dedupe import ItemRef


def refs(*ids: str, payload: str = "p") -> list[ItemRef]:
    return [ItemRef(i, digest=f"{i}:{payload}") for i in ids]


def node(*ids: str, payload: str = "p") -> list[tuple[None, ItemRef]]:
    return [(None, ref) for ref in refs(*ids, payload=payload)]


def test_resumes_after_the_last_item_run():
    assert resume_index(node("a", "b", "c", "d"), refs("a", "b"), complete=False) == 2


def test_nothing_missed_resumes_past_the_end():
    assert resume_index(node("c", "d"), refs("c", "d"), complete=False) == 2


def test_a_retracted_last_item_resumes_after_the_newest_one_left():
    # the hook ran a, b, c; c was retracted while away; d was published
    assert resume_index(node("a", "b", "d"), refs("a", "b", "c"), complete=True) == 2


def test_none_of_the_items_run_is_there():
    assert resume_index(node("x", "y"), refs("a", "b"), complete=False) is None
    assert resume_index(node("x", "y"), refs("a", "b"), complete=True) is None


def test_an_item_published_again_with_another_payload_runs_again():
    keyed = node("a", "b") + [(None, ItemRef("c", digest="c:new"))]
    assert resume_index(keyed, refs("a", "b", "c"), complete=False) == 2


def test_a_hook_from_the_node_start_needs_the_whole_node():
    start = [ItemRef("", digest="")]
    assert resume_index(node("a", "b"), start, complete=True) == 0
    assert resume_index(node("a", "b"), start, complete=False) is None
