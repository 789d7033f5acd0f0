"""The table's widgets without a kernel: rows follow the frames, own their widgets and
leave none behind; buttons hand their commands to the hub."""

from __future__ import annotations

import html
import re
import threading
import time

import pytest
from ipywidgets.widgets import widget

from pubsub_hook_magic.accounts import Accounts
from pubsub_hook_magic.loopthread import LoopThread
from pubsub_hook_magic.manager import HookManager
import logging

from pubsub_hook_magic.logs import LogEntry
from pubsub_hook_magic.states import HookState, Outcome, SessionState
from pubsub_hook_magic.table import TableHub, render
from pubsub_hook_magic.table.style import COLUMNS
from pubsub_hook_magic.table.widgets import Frame, HookTable

from .conftest import PASSWORDS
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

    def refresh(self, table):
        self.asked.append(("refresh",))
        table.render(table.last_frame)


def active() -> int:
    return len(widget._instances)  # noqa: SLF001 - the widget models alive (ipywidgets 8 has no public count)


HEADER = render.Header(state=SessionState.CONNECTED, jid="alice@localhost")


def frame(*summaries, now: float = NOW, header: render.Header = HEADER, **values) -> Frame:
    return Frame(now, header, {s["id"]: s for s in summaries}, **values)


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
    assert table.picked == 1 and "y" in table.trigger_detail.value
    table.replay_button.click()
    assert hub.asked[-1] == ("replay", "a", "y")
    row.details.click()  # again: hidden
    assert table.selected is None and table.detail_box.layout.display == "none"
    assert table.trigger_rows.children == ()
    table.close()
    row.pause.click()  # a closed table's button does nothing harmful


def test_trigger_rows_are_clicked_and_the_picked_one_is_highlighted():
    hub = FakeHub()
    table = HookTable(hub)
    s = summary(id="a", retry=2)
    table.render(frame(s))
    table.rows["a"].details.click()
    triggers = [
        trigger("x"),
        trigger("y", Outcome.ERROR, error="E: first", retried=True),
        trigger("y", Outcome.OK, attempt=2),
    ]
    table.render_details(s, triggers)
    rows = [r.box for r in table._trigger_rows[:3]]  # noqa: SLF001 - the panel's rows, newest first
    assert table.trigger_rows.children == tuple(rows)
    # Newest first; the last error is picked first, and highlighted.
    picked = [("phm-picked" in r._dom_classes) for r in rows]
    assert picked == [False, True, False] and table.picked == 1
    assert "#2 ok" in rows[0].children[0].value and "attempt 2 of 3" in rows[0].children[0].value
    assert "#1 error" in rows[1].children[0].value and "it failed and runs again" in rows[1].children[0].value
    assert "#" not in render.trigger_row_html(triggers[0], 2).split("phm-c")[5].split("</span>")[0]
    rows[2].children[1].click()  # a click on the oldest row (its overlaid button)
    assert table.picked == 0 and [("phm-picked" in r._dom_classes) for r in rows] == [False, False, True]
    assert "<code>x</code>" in table.trigger_detail.value
    # A new trigger: the rows shift, the pick stays on its trigger.
    table.render_details(s, [*triggers, trigger("z")])
    rows = [r.box for r in table._trigger_rows[:4]]  # noqa: SLF001
    assert [("phm-picked" in r._dom_classes) for r in rows] == [False, False, False, True]
    table.close()


def test_messages_expire_and_can_be_dismissed():
    table = HookTable(FakeHub())
    warning = LogEntry(NOW - 5, logging.WARNING, "WARNING", "pubsub_hook_magic.runner", "hook a failed on item i: E")
    header = render.Header(state=SessionState.CONNECTED, jid="alice@localhost", warning=warning,
                           hook_ids=frozenset({"a"}))
    table.render(frame(summary(id="a"), header=header))
    assert "failed on item i" in table.header.value and table.dismiss.layout.display is None
    table.show_message("hook a: 1 failed item(s) ran again")
    assert "ran again" in table.message.value and table.expiring(time.time())
    # Later, both are gone by themselves…
    later = time.time() + render.MESSAGE_SHOWN
    table.render(frame(summary(id="a"), now=later, header=header))
    assert table.message.value == "" and "⚠" not in table.header.value
    assert table.dismiss.layout.display == "none" and not table.expiring(later)
    # …or at once, by the dismiss button; a newer warning shows again.
    table.render(frame(summary(id="a"), header=header))
    table.show_message("said")
    table.dismiss.click()
    assert table.message.value == "" and "⚠" not in table.header.value and table.dismiss.layout.display == "none"
    newer = LogEntry(time.time() + 1, logging.WARNING, "WARNING", "slixmpp", "slow")
    table.render(frame(summary(id="a"), now=time.time() + 2, header=render.Header(state="connected", warning=newer)))
    assert "slow" in table.header.value
    # A warning about a hook that is gone (deleted) is not shown.
    table.render(frame(summary(id="b"), header=header.__class__(state="connected", warning=warning,
                                                               hook_ids=frozenset({"b"}))))
    assert "⚠" not in table.header.value
    table.close()


def test_head_cells_and_row_cells_carry_their_column_class():
    table = HookTable(FakeHub())
    table.render(frame(summary(id="a")))
    heads = table.grid.children[: len(COLUMNS)]
    assert [f"phm-h-{c[0]}" in h._dom_classes for c, h in zip(COLUMNS, heads, strict=True)] == [True] * len(COLUMNS)
    row = table.rows["a"]
    assert [w._dom_classes[1] for w in row.cells] == ["phm-id", "phm-node", "phm-type", "phm-arg", "phm-lifetime"]
    assert "phm-stats" in row.stats._dom_classes and "phm-actions" in row.actions._dom_classes
    table.close()


def test_a_standby_row_shows_its_owners_runs():
    table = HookTable(FakeHub())
    s = summary(HookState.STANDBY, id="a", owner="pubsub-hook run, pid 7")
    table.render(frame(s))
    assert ">0<" in table.rows["a"].stats.value and ">never<" in table.rows["a"].stats.value
    owner = render.OwnerRuns(12, NOW - 70, "i12")
    table.render(frame(s, owner_runs={"a": owner}))
    stats = table.rows["a"].stats.value
    assert "phm-owners" in stats and ">12<" in stats and ">1 min ago<" in stats
    assert "12 item(s) run by pubsub-hook run, pid 7" in stats and "item i12" in stats
    table.close()


def test_several_accounts_each_have_a_group_row_above_their_hooks():
    before = active()
    table = HookTable(FakeHub())
    two = Frame(
        NOW, HEADER, {s["id"]: s for s in (summary(id="a"), summary(id="b"), summary(id="c"))},
        groups={"alice@localhost": "<b>alice</b>", "bob@localhost": "<b>bob</b>"},
        accounts={"a": "bob@localhost", "b": "alice@localhost", "c": "bob@localhost"},
    )
    table.render(two)
    children = table.grid.children[11:]
    assert children[0] is table.groups["alice@localhost"].cell
    assert children[1:9] == tuple(table.rows["b"].widgets)
    assert children[9] is table.groups["bob@localhost"].cell
    assert list(table.rows) == ["b", "a", "c"] and table.rows["a"].account == "bob@localhost"
    assert "phm-group" in children[0]._dom_classes and "of bob@localhost" in table.rows["a"].cells[0].value
    # bob's account removed: its group and rows go, and their widgets with them.
    alone = Frame(NOW, HEADER, {"b": summary(id="b")})
    table.render(alone)
    assert not table.groups and list(table.rows) == ["b"] and len(table.grid.children) == 11 + 8
    table.render(frame())
    table.close()
    assert active() == before


# ---------------------------------------------------------------------- pages and the filter box


def many(n: int, **values) -> list[dict]:
    return [summary(id=f"h{i:04d}", node=f"sensors/room{i}", **values) for i in range(n)]


def ids_shown(table: HookTable) -> list[str]:
    """The hooks in the grid, in order (read from the id cells' text)."""
    return [text(c.value) for c in table.grid.children if "phm-id" in c._dom_classes]


def count_text(table: HookTable) -> str:
    return text(table.count.value)


def test_a_page_of_rows_reused_from_page_to_page():
    before = active()
    hub = FakeHub()
    table = HookTable(hub, page_size=50)
    hooks = many(120)
    table.render(frame(*hooks))
    assert ids_shown(table) == [f"h{i:04d}" for i in range(50)]
    assert len(table.grid.children) == 11 + 50 * 8 and len(table._pool) == 50  # noqa: SLF001 - the pool
    assert table.pager.layout.display is None
    assert count_text(table) == "showing 1\u201350 of 120" and text(table.page_text.value) == "page 1 of 3"
    assert table.prev_button.disabled and not table.next_button.disabled
    pool = list(table._pool)  # noqa: SLF001
    widgets_of_a_page = active()
    table.next_button.click()
    assert ids_shown(table) == [f"h{i:04d}" for i in range(50, 100)]
    assert count_text(table) == "showing 51\u2013100 of 120" and text(table.page_text.value) == "page 2 of 3"
    assert table._pool == pool and active() == widgets_of_a_page  # noqa: SLF001 - the same rows, other hooks
    assert set(table.rows) == {f"h{i:04d}" for i in range(50, 100)}
    assert f"phm-row-h0050" in table.rows["h0050"].actions._dom_classes
    assert "phm-row-h0000" not in table.rows["h0050"].actions._dom_classes
    table.next_button.click()
    assert ids_shown(table) == [f"h{i:04d}" for i in range(100, 120)] and table.next_button.disabled
    assert len(table.grid.children) == 11 + 20 * 8 and active() == widgets_of_a_page
    table.next_button.click()  # past the last page: nothing
    assert text(table.page_text.value) == "page 3 of 3"
    # A row's buttons act on the hook it shows now.
    table.rows["h0110"].delete.click()
    assert hub.asked[-1] == ("delete", "h0110")
    table.prev_button.click()
    table.prev_button.click()
    assert ids_shown(table)[0] == "h0000" and table.prev_button.disabled
    # Hooks deleted down to fewer than a page: the rows left over are closed.
    table.render(frame(*hooks[:3]))
    assert ids_shown(table) == ["h0000", "h0001", "h0002"] and len(table._pool) == 3  # noqa: SLF001
    assert table.pager.layout.display == "none"  # (a few hooks: no pager)
    table.render(frame())
    table.close()
    assert active() == before


def test_the_page_is_kept_in_bounds_when_hooks_go():
    table = HookTable(FakeHub(), page_size=10)
    table.render(frame(*many(35)))
    for _ in range(3):
        table.next_button.click()
    assert text(table.page_text.value) == "page 4 of 4" and ids_shown(table)[0] == "h0030"
    table.render(frame(*many(15)))
    assert text(table.page_text.value) == "page 2 of 2" and ids_shown(table) == [f"h{i:04d}" for i in range(10, 15)]
    table.close()


def test_the_filter_box_matches_node_service_state_type_argument_or_id():
    table = HookTable(FakeHub(), page_size=20)
    hooks = [
        *many(40),
        summary(id="p1", node="news", state=HookState.PAUSED, paused=True),
        summary(id="x1", node="feeds", service="pubsub.example.org", arg="notify(item)"),
    ]
    table.render(frame(*hooks))
    table.filter.value = "room1"  # room1, room10…room19
    assert ids_shown(table) == ["h0001", *(f"h{i:04d}" for i in range(10, 20))]
    assert count_text(table) == "showing 1\u201311 of 11 (filtered from 42)"
    table.filter.value = "state:paused"
    assert ids_shown(table) == ["p1"]
    table.filter.value = "paused"  # any field: the state too
    assert ids_shown(table) == ["p1"]
    table.filter.value = "EXAMPLE.org"  # the service, in any case
    assert ids_shown(table) == ["x1"]
    table.filter.value = "notify"  # the argument
    assert ids_shown(table) == ["x1"]
    table.filter.value = "type:code id:h003"  # every term: the type as shown, the id
    assert ids_shown(table) == [f"h{i:04d}" for i in range(30, 40)]
    table.filter.value = "node:nothing-like-it"
    assert ids_shown(table) == [] and table.message.value == render.NO_MATCH
    assert count_text(table) == "no hook matches (of 42)" and table.pager.layout.display is None
    # Cleared: every hook again, from the first page.
    table.next_button.click()
    table.filter.value = ""
    assert ids_shown(table)[0] == "h0000" and count_text(table) == "showing 1\u201320 of 42"
    # A filter narrowing to the second page's hooks starts at its first page.
    table.next_button.click()
    table.filter.value = "h00"
    assert text(table.page_text.value) == "page 1 of 2"
    table.close()


def test_the_filter_terms_and_prefixes():
    terms = render.filter_terms("State:Paused news a:b arg: ")
    assert terms == ((render.FILTER_KEYS.index("state"), "paused"), (None, "news"), (None, "a:b"))
    fields = render.search_fields("h1", "News", "pubsub.x", "python_code", "pass", None, "paused")
    assert render.matches(terms[:2], fields) and not render.matches(terms, fields)
    assert render.matches(render.filter_terms("type:code"), fields)
    assert render.matches(render.filter_terms("argument:pass"), fields)
    assert not render.matches(render.filter_terms("node:pubsub"), fields)


def test_group_rows_of_several_accounts_with_pages():
    alice, bob, carol = "alice@localhost", "bob@localhost", "carol@localhost"
    hooks = [summary(id=f"a{i:02d}") for i in range(60)] + [summary(id=f"b{i:02d}") for i in range(10)]
    accounts = {s["id"]: (alice if s["id"].startswith("a") else bob) for s in hooks}
    groups = {alice: "<b>alice</b>", bob: "<b>bob</b>", carol: "<b>carol</b>"}
    table = HookTable(FakeHub(), page_size=50)
    table.render(Frame(NOW, HEADER, {s["id"]: s for s in hooks}, groups=groups, accounts=accounts))

    def grid() -> list[str]:
        out = []
        for c in table.grid.children[11:]:
            if "phm-group" in c._dom_classes:
                out.append(f"[{text(c.value)}]")
            elif "phm-id" in c._dom_classes:
                out.append(text(c.value))
        return out

    assert grid() == ["[alice]", *(f"a{i:02d}" for i in range(50))]
    table.next_button.click()
    # The page goes on with alice's hooks (under her group row again), then bob's; carol
    # has no hook: her group row where hers would be.
    assert grid() == ["[alice]", *(f"a{i:02d}" for i in range(50, 60)), "[bob]",
                      *(f"b{i:02d}" for i in range(10)), "[carol]"]
    assert table.rows["b00"].account == bob and "of bob@localhost" in table.rows["b00"].cells[0].value
    table.filter.value = "b0"
    assert grid() == ["[alice]", "[bob]", *(f"b{i:02d}" for i in range(10)), "[carol]"]
    table.close()


# ---------------------------------------------------------------------- a real hub, two accounts


def text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]*>", "", markup))


def wait_for(hub: TableHub, table: HookTable, predicate, what: str, timeout: float = 10.0):
    """Wait until ``predicate(table)`` holds (read under the hub's lock)."""
    deadline = time.monotonic() + timeout
    while True:
        with hub.lock:
            if predicate(table):
                return
        if time.monotonic() > deadline:
            with hub.lock:
                shown = text(table.header.value), list(table.rows), list(table.groups), text(table.message.value)
            raise AssertionError(f"{what}: the table shows {shown}")
        time.sleep(0.02)


@pytest.fixture
def two_accounts(server, tmp_path):
    """alice and bob, each a HookManager connected to the test Prosody, in one Accounts."""
    thread = LoopThread()
    accounts = Accounts()
    managers = []
    try:
        for user in ("alice", "bob"):
            manager = HookManager({}, data_dir=str(tmp_path / user))
            managers.append(manager)
            login = manager.connect(f"{user}@localhost", PASSWORDS[user], host=server.host, port=server.port, tls=False)
            thread.run(login, 30)
            thread.call(accounts.add, manager)
        yield thread, accounts, managers
    finally:
        for manager in managers:
            thread.run(manager.disconnect(), 30)
        thread.stop()


@pytest.mark.timeout(90)
def test_one_table_shows_every_account_and_acts_on_each_rows_own(two_accounts, publisher, node):
    thread, accounts, (alice, bob) = two_accounts
    other = f"{node}-bob"
    publisher.create_node(other)
    a = thread.run(alice.create_hook("pubsub.localhost", node, "python_code", "pass"), 30).id
    b = thread.run(bob.create_hook("pubsub.localhost", other, "python_code", "pass"), 30).id
    before = active()
    hub = TableHub(accounts, thread, interval=0.05)
    try:
        table = hub.new_table()
        wait_for(hub, table, lambda t: set(t.rows) == {a, b}, "both accounts' hooks")
        with hub.lock:
            header = text(table.header.value)
            assert header.startswith("connected as alice@localhost · connected as bob@localhost — 2 hook(s)")
            assert list(table.groups) == ["alice@localhost", "bob@localhost"]  # the default first
            assert table.rows[a].account == "alice@localhost" and table.rows[b].account == "bob@localhost"
            children = table.grid.children[11:]
            groups = table.groups
            assert children[0] is groups["alice@localhost"].cell and children[9] is groups["bob@localhost"].cell
            assert children[1] is table.rows[a].cells[0] and children[10] is table.rows[b].cells[0]
            assert text(table.groups["bob@localhost"].cell.value) == "bob@localhost connected 1 hook(s)"

        # A trigger of the second account's hook shows in its row.
        publisher.publish(other, "for bob")
        wait_for(hub, table, lambda t: ">1<" in t.rows[b].stats.value, "bob's trigger")

        # Buttons act on the row's own account.
        table.rows[b].pause.click()
        wait_for(hub, table, lambda t: t.rows[b].paused, "bob's hook paused")
        assert thread.call(lambda: (bob.runners[b].paused, alice.runners[a].paused)) == (True, False)
        table.rows[a].delete.click()
        wait_for(hub, table, lambda t: a not in t.rows, "alice's hook deleted")
        assert thread.call(lambda: (a in alice.runners, b in bob.runners)) == (False, True)
        with hub.lock:
            assert text(table.groups["alice@localhost"].cell.value) == "alice@localhost connected no hook"

        # An account removed: its rows and group go; one account left looks as it always did.
        thread.call(accounts.remove, "bob@localhost")
        wait_for(hub, table, lambda t: not t.rows and not t.groups, "bob's account removed")
        with hub.lock:
            assert text(table.header.value).startswith("connected as alice@localhost — 0 hook(s)")
            assert table.message.value == "<i>No hook found.</i>" and len(table.grid.children) == 11
        # Added again: followed again.
        thread.call(accounts.add, bob)
        wait_for(hub, table, lambda t: set(t.rows) == {b} and set(t.groups) == {"alice@localhost", "bob@localhost"},
                 "bob's account back")
        table.rows[b].pause.click()  # resumed
        wait_for(hub, table, lambda t: not t.rows[b].paused, "bob's hook resumed")
        publisher.publish(other, "for bob, again")
        wait_for(hub, table, lambda t: ">2<" in t.rows[b].stats.value, "bob's second trigger")
    finally:
        hub.close()
    assert active() == before


def test_the_owners_runs_are_read_from_its_position_files(tmp_path):
    from pubsub_hook_magic.store import PositionStore

    owner = PositionStore("alice@localhost", tmp_path)  # the process that runs the hook
    reader = PositionStore("alice@localhost", tmp_path)  # the one that stands by
    assert reader.activity("h1") == (0, None, None)
    owner.save("h1", [("", "")])  # created: from the node's start
    assert reader.activity("h1")[0] == 0
    for n in range(5):
        owner.append("h1", (f"i{n}", "d"), lambda: [])
    runs, last, item_id = reader.activity("h1")
    assert (runs, item_id) == (5, "i4") and last is not None
    owner.save("h1", [("i4", "d")])  # folded: the count is kept in the file
    owner.append("h1", ("i5", "d"), lambda: [])
    assert reader.activity("h1")[:3:2] == (6, "i5")
    owner.close()


@pytest.mark.timeout(120)
def test_a_flush_gathers_the_page_only_and_the_header_sums_every_hook(two_accounts, publisher, node):
    thread, accounts, (alice, bob) = two_accounts
    other = f"{node}-bob"
    publisher.create_node(other)
    ours = [thread.run(alice.create_hook("pubsub.localhost", node, "python_code", f"x = {i}"), 30).id
            for i in range(45)]
    theirs = thread.run(bob.create_hook("pubsub.localhost", other, "python_code", "pass"), 30).id
    hub = TableHub(accounts, thread, interval=0.05, page_size=20)
    gathered: list[int] = []
    frame_of = hub._frame  # noqa: SLF001 - recorded: how many hooks each flush gathers

    def recording(hooks, wanted):
        made = frame_of(hooks, wanted)
        gathered.append(len(made.summaries))
        return made

    hub._frame = recording  # noqa: SLF001
    try:
        table = hub.new_table()
        wait_for(hub, table, lambda t: list(t.rows) == ours[:20], "alice's first page")
        with hub.lock:
            assert text(table.header.value).startswith(
                "connected as alice@localhost · connected as bob@localhost — 46 hook(s)")
            assert text(table.count.value) == "showing 1\u201320 of 46" and text(table.page_text.value) == "page 1 of 3"
        publisher.publish(node, "for alice")  # every hook of alice runs once
        wait_for(hub, table, lambda t: "45 trigger(s)" in text(t.header.value), "the header's sums")
        wait_for(hub, table, lambda t: all(">1<" in r.stats.value for r in t.rows.values()), "the page's runs")
        table.next_button.click()
        table.next_button.click()
        wait_for(hub, table, lambda t: list(t.rows) == [*ours[40:], theirs], "the last page, bob's hook")
        with hub.lock:
            groups = [text(c.value).split()[0] for c in table.grid.children if "phm-group" in c._dom_classes]
            assert groups == ["alice@localhost", "bob@localhost"]
        table.filter.value = f"node:{other}"
        wait_for(hub, table, lambda t: list(t.rows) == [theirs], "the filter: bob's node")
        table.rows[theirs].pause.click()  # the button of a filtered row acts on its hook
        wait_for(hub, table, lambda t: t.rows[theirs].paused, "bob's hook paused")
        assert thread.call(lambda: bob.runners[theirs].paused)
        table.filter.value = "state:paused"
        wait_for(hub, table, lambda t: list(t.rows) == [theirs], "the paused hook, by its state")
        assert gathered and max(gathered) <= 20, gathered  # never the 46 hooks' summaries
    finally:
        hub.close()
