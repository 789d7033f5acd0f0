"""The table's widgets without a kernel: rows follow the frames, own their widgets and
leave none behind; buttons hand their commands to the hub."""

from __future__ import annotations

import threading

from ipywidgets.widgets import widget

from pubsub_hook_magic.states import HookState
from pubsub_hook_magic.table.widgets import Frame, HookTable

from .test_table_render import NOW, summary, trigger


class FakeHub:
    """What a table asks of its hub, recorded; "the loop" is the calling thread."""

    def __init__(self):
        self.lock = threading.RLock()
        self.asked: list[tuple] = []

    def on_loop(self, func, *args):
        func(*args)

    def mark(self, hook_id=None):
        self.asked.append(("mark", hook_id))

    def set_paused(self, table, hook_id, paused):
        self.asked.append(("paused", hook_id, paused))

    def delete(self, table, hook_id):
        self.asked.append(("delete", hook_id))

    def retry_failed(self, table, hook_id):
        self.asked.append(("retry", hook_id))

    def replay(self, table, hook_id, trigger):
        self.asked.append(("replay", hook_id, trigger.item_id))


def active() -> int:
    return len(widget._instances)  # noqa: SLF001 - the widget models alive (ipywidgets 8 has no public count)


def frame(*summaries) -> Frame:
    return Frame(NOW, "<b>header</b>", {s["id"]: s for s in summaries})


def test_rows_follow_the_frames_and_leave_no_widget_behind():
    before = active()
    table = HookTable(FakeHub())
    table.render(frame())
    assert table.message.value == "<i>No hook found.</i>" and len(table.grid.children) == 11
    empty = active()
    table.render(frame(summary(id="a"), summary(id="b", paused=True, state=HookState.PAUSED)))
    assert list(table.rows) == ["a", "b"] and len(table.grid.children) == 11 + 2 * 8  # stats span 4 columns
    assert table.message.value == "" and table.rows["b"].pause.icon == "play"
    table.render(frame(summary(id="b"), summary(id="a", failed=2)))
    assert list(table.rows) == ["b", "a"] and table.rows["a"].failed.description == "2"
    table.render(frame())
    assert active() == empty
    table.close()
    assert active() == before


def test_buttons_ask_the_hub_and_the_details_show_on_the_loop():
    hub = FakeHub()
    table = HookTable(hub)
    table.render(frame(summary(id="a")))
    row = table.rows["a"]
    row.pause.click()
    row.delete.click()
    row.failed.click()
    row.details.click()
    assert hub.asked == [("paused", "a", True), ("delete", "a"), ("retry", "a"), ("mark", "a")]
    assert table.selected == "a" and table.detail_box.layout.display is None
    table.render_details(summary(id="a"), [trigger("x"), trigger("y")])
    assert table.trigger_pick.value == 1 and "y" in table.trigger_detail.value
    table.replay_button.click()
    assert hub.asked[-1] == ("replay", "a", "y")
    row.details.click()  # again: hidden
    assert table.selected is None and table.detail_box.layout.display == "none"
    table.close()
    row.pause.click()  # a closed table's button does nothing harmful
