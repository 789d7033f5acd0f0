"""The table's HTML, from plain data: no kernel, no widgets, no loop.

Everything from the network (ids, payloads, publishers, errors, the account's JID)
and every hook's text must reach the page as text: the markup these functions make is
parsed here and may hold only the table's own tags and attributes.
"""

from __future__ import annotations

import html
import logging
import sys
from html.parser import HTMLParser

import pytest
from slixmpp.plugins.xep_0060.stanza.pubsub_event import EventItem
from slixmpp.xmlstream import ET

from pubsub_hook_magic.hooks import Hook, HookType
from pubsub_hook_magic.logs import LogEntry
from pubsub_hook_magic.states import HookState, Outcome, SessionState, TriggerKind
from pubsub_hook_magic.summary import summarize
from pubsub_hook_magic.table import render
from pubsub_hook_magic.trigger import Trigger

EVIL = "<img src=x onerror=alert(1)>"
QUOTES = "' onmouseover='alert(3)' \" x=\""
EVIL_PAYLOAD = (
    "<p xmlns='urn:x' title='&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;'>"
    "&lt;img src=x onerror=alert(1)&gt;</p>"
)
TAGS = {"span", "div", "small", "b", "i", "table", "colgroup", "col", "thead", "tbody", "tr", "th", "td", "pre", "code"}
ATTRIBUTES = {"class", "title", "style"}
NOW = 1_700_000_000.0


class Markup(HTMLParser):
    """The tags, attributes and text of a piece of markup."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes.extend(attrs)

    def handle_data(self, data):
        self.text.append(data)


def assert_safe(markup: str) -> Markup:
    """Only the table's own tags and attributes; no style from the data."""
    parsed = Markup(markup)
    assert set(parsed.tags) <= TAGS, parsed.tags
    assert {name for name, _ in parsed.attributes} <= ATTRIBUTES, parsed.attributes
    for name, value in parsed.attributes:
        if name == "style":
            assert value is not None and value.startswith("width:"), value
    assert "<script" not in markup and "<img" not in markup
    return parsed


def summary(state: HookState = HookState.ACTIVE, **values):
    hook = Hook(
        service=values.pop("service", "pubsub.localhost"),
        node=values.pop("node", "news"),
        type=HookType.PYTHON_CODE,
        arg=values.pop("arg", "print(item)"),
        id=values.pop("id", "h1"),
        persistent=values.pop("persistent", False),
    )
    result = dict(summarize(hook, state=state))
    result.update(values)
    return result


def item(item_id: str, payload: str = "<entry xmlns='urn:t'>hello</entry>") -> EventItem:
    stanza = EventItem()
    stanza["id"] = item_id
    stanza["payload"] = ET.fromstring(payload)
    return stanza


def trigger(item_id: str | None = "a", outcome: Outcome = Outcome.OK, **values) -> Trigger:
    values.setdefault("payload", item(item_id or "x"))
    publisher = values.pop("publisher", "bob@localhost/pub")
    return Trigger(item_id, publisher, NOW - 5, duration=0.002, outcome=outcome, **values)


# ---------------------------------------------------------------------- escaping


def test_a_hostile_hook_is_shown_as_text_in_its_row():
    hostile = summary(id=EVIL, node=EVIL + QUOTES, service=QUOTES, arg=EVIL * 3, owner=EVIL)
    for markup, _cls in render.static_cells(hostile):
        assert_safe(markup)
    shown = "".join(Markup(m).text[0] for m, _ in render.static_cells(hostile))
    assert EVIL in shown  # the text a person reads is the id, as it is
    for state in HookState:
        assert_safe(render.stats_html({**hostile, "state": state, "load_error": EVIL}, NOW))


def test_hostile_triggers_are_shown_as_text_in_the_details():
    evil = trigger(
        EVIL,
        Outcome.ERROR,
        publisher=EVIL + QUOTES,
        error=f"ValueError: {EVIL}",
        traceback=f"Traceback (most recent call last):\n  {EVIL}\nValueError: {EVIL}",
        payload=item(EVIL, EVIL_PAYLOAD),
    )
    hostile = summary(id=EVIL, node=EVIL)
    panel = render.triggers_html(hostile, [evil, trigger("b")])
    detail = render.trigger_detail_html(evil)
    for markup in (panel, detail):
        assert_safe(markup)
        assert "&lt;img src=x onerror=alert(1)&gt;" in markup
    text = "".join(Markup(detail).text)
    assert "ValueError" in text and "Traceback" in text
    assert "urn:x" in text  # the payload, as XML text
    assert render.trigger_options([evil])[0][0].endswith(f"{EVIL} error")  # plain text for the dropdown


def test_a_hostile_header_is_shown_as_text():
    warning = LogEntry(NOW - 10, logging.WARNING, "WARNING", "slixmpp", f"{EVIL}\x1b[31m\nsecond line")
    for state, error in ((SessionState.CONNECTED, None), (SessionState.FAILED, EVIL), ("odd" + EVIL, None)):
        header = render.Header(state=state, jid=EVIL, error=error, hooks=1, warning=warning)
        markup = render.header_html(header, NOW)
        parsed = assert_safe(markup)
        assert "\x1b" not in markup and "\\x1b" in markup  # control characters shown, not sent
        assert "second line" not in "".join(parsed.text)  # one line; whole on hover
        assert "&lt;img" in markup


# ---------------------------------------------------------------------- what is shown


@pytest.mark.parametrize(
    ("state", "values", "cls", "detail"),
    [
        (HookState.ACTIVE, {}, "phm-ok", "active"),
        (HookState.CATCHING_UP, {}, "phm-info", "catching up: running what was published"),
        (HookState.PAUSED, {}, "phm-warn", "paused"),
        (HookState.RETRYING, {"attempt": 2, "retry": 3, "last_error": {"item_id": "i9", "error": "E: x"}},
         "phm-warn", "retrying item i9 (attempt 2 of 4): E: x"),
        (HookState.WAITING, {"waiting_for": ["db", "cfg"]}, "phm-warn", "waiting for db, cfg: its items run"),
        (HookState.STANDBY, {"owner": "kernel, pid 42"}, "phm-muted", "standby: run by kernel, pid 42"),
        (HookState.BROKEN, {"load_error": "SyntaxError: bad"}, "phm-err", "broken: SyntaxError: bad"),
        (HookState.STORED, {}, "", "stored"),
    ],
)
def test_each_state_shows_in_its_colour_with_why_on_hover(state, values, cls, detail):
    markup = render.stats_html(summary(state, **values), NOW)
    first = markup.split("</span>")[0]
    assert f"class='phm-c {cls}'" in first and first.endswith(f">{state}")
    assert f"title='{detail}" in first


def test_a_reloaded_hook_that_failed_warns_it_runs_the_previous_version():
    markup = render.stats_html(summary(reload_error="NameError: x"), NOW)
    assert "phm-warn" in markup and "⚠ active" in markup and "runs the previous version: NameError: x" in markup


def test_counts_errors_and_the_last_run():
    ran = trigger("a", Outcome.ERROR)
    s = summary(triggers=7, errors=2, skipped=3, dropped=1, mean_duration=0.004)
    markup = render.stats_html(s, NOW, ran)
    assert ">7 <small class='phm-muted'>+4</small>" in markup
    assert "7 run(s); 3 skipped (paused), 1 dropped (queue full)" in markup
    assert "phm-num phm-err' title='2 failed run(s)'>2<" in markup
    assert ">5 s ago<" in markup and "(error, 2.0 ms); mean 4.0 ms" in markup
    assert render.last_run([ran, trigger("b", Outcome.SKIPPED), trigger("c", Outcome.GAP)]) is ran


def test_an_empty_table_and_a_hook_without_triggers():
    s = summary()
    assert ">never<" in render.stats_html(s, NOW) and "no run yet" in render.stats_html(s, NOW)
    assert "No trigger yet." in render.triggers_html(s, [])
    assert render.trigger_detail_html(None) == ""
    assert render.trigger_options([]) == [] and render.default_pick([]) is None
    assert render.last_run([]) is None
    header = render.header_html(render.Header(state=SessionState.CONNECTED, jid="alice@localhost"), NOW)
    assert "0 hook(s), 0 trigger(s)" in header and "failed item" not in header
    assert render.NO_HOOK == "<i>No hook found.</i>"
    assert len(render.head_cells()) == 11


def test_the_picker_lists_newest_first_and_picks_the_last_error():
    triggers = [trigger("a"), trigger("b", Outcome.ERROR), trigger("c")]
    assert [i for _, i in render.trigger_options(triggers)] == [2, 1, 0]
    assert render.default_pick(triggers) == 1
    assert render.default_pick([trigger("a"), trigger("b")]) == 1


def test_the_triggers_panel_is_newest_first():
    panel = render.triggers_html(summary(), [trigger("first"), trigger("second", kind=TriggerKind.REPLAY)])
    assert panel.index("second") < panel.index("first") and "replay at" in panel


def test_the_header_shows_a_recent_warning_only():
    warning = LogEntry(NOW - 10, logging.WARNING, "WARNING", "pubsub_hook_magic", "disk full")
    header = render.Header(state=SessionState.CONNECTED, jid="a@b", failed=2, errors=1, warning=warning)
    assert "⚠" in render.header_html(header, NOW) and "disk full (%hook log)" in render.header_html(header, NOW)
    assert "⚠" not in render.header_html(header, NOW + render.WARNING_SHOWN)
    assert "2 failed item(s)" in render.header_html(header, NOW)
    assert "<span class='phm-err'>1 error(s)</span>" in render.header_html(header, NOW)


def test_many_hooks_render_each_their_own_row():
    summaries = [summary(id=f"h{i}", node=f"node-{i}", triggers=i) for i in range(2000)]
    rows = [(render.static_cells(s), render.stats_html(s, NOW, trigger(f"i{i}"))) for i, s in enumerate(summaries)]
    assert len({cells[0][0] for cells, _ in rows}) == 2000
    assert ">1999<" in rows[-1][1]


def test_payload_text_is_the_payload_xml_cut():
    assert render.payload_text(None) == ""
    assert render.payload_text(object()) == ""  # never fails
    text = render.payload_text(item("a", "<entry xmlns='urn:t'>" + "x" * 500 + "</entry>"), 40)
    assert len(text) == 40 and text.startswith("<entry xmlns=\"urn:t\">") and text.endswith("…")


def test_rendering_needs_no_widgets():
    assert "ipywidgets" not in sys.modules or "pubsub_hook_magic.table.render" in sys.modules
    import pubsub_hook_magic.table.render as module

    assert "ipywidgets" not in module.__dict__ and "widgets" not in module.__dict__


# ---------------------------------------------------------------------- several accounts


def test_the_header_gives_each_accounts_state():
    accounts = (
        render.AccountLine(SessionState.CONNECTED, "alice@localhost", hooks=2),
        render.AccountLine(SessionState.RECONNECTING, "bob@localhost"),
        render.AccountLine(SessionState.FAILED, EVIL, EVIL),
    )
    header = render.Header(state=SessionState.CONNECTED, jid="alice@localhost", hooks=2, accounts=accounts)
    markup = render.header_html(header, NOW)
    parsed = assert_safe(markup)
    text = "".join(parsed.text)
    assert text.startswith("connected as alice@localhost · reconnecting bob@localhost… · failed ")
    assert f"failed {EVIL}: {EVIL} — 2 hook(s)" in text
    # One account (or none listed): the header as it always was.
    single = render.Header(state=SessionState.CONNECTED, jid="alice@localhost", accounts=accounts[:1])
    assert render.header_html(single, NOW) == render.header_html(
        render.Header(state=SessionState.CONNECTED, jid="alice@localhost"), NOW
    )


def test_an_accounts_group_row_says_its_state_and_hooks_as_text():
    for line in (
        render.AccountLine(SessionState.CONNECTED, "alice@localhost", hooks=3),
        render.AccountLine(SessionState.FAILED, EVIL + QUOTES, EVIL + QUOTES),
        render.AccountLine(SessionState.DISCONNECTED, "bob@localhost"),
    ):
        markup = render.group_html(line)
        text = "".join(assert_safe(markup).text)
        assert text.startswith(f"{line.jid} {line.state}")
        assert ("3 hook(s)" if line.hooks else "no hook") in text
    assert "phm-ok" in render.group_html(render.AccountLine(SessionState.CONNECTED, "a@b"))
    assert "phm-err" in render.group_html(render.AccountLine(SessionState.FAILED, "a@b", "gone"))


def test_a_hooks_id_says_its_account_on_hover():
    [(markup, _cls), *_] = render.static_cells(summary(id="h1"), EVIL)
    assert_safe(markup)
    assert f"title='hook h1 of {html.escape(EVIL, quote=True)}'" in markup
    assert render.static_cells(summary(id="h1"))[0][0] == render.cell("h1")  # one account: as before


def test_the_state_hover_says_why_a_node_does_not_deliver_or_runs_live_only():
    deleted = summary(HookState.NODE_DELETED, node_problem="deleted by its owner: …")
    assert render.state_detail(deleted) == "node deleted: deleted by its owner: …"
    live = summary(live_only="node 'n' keeps no items")
    assert render.state_detail(live) == "active, live items only: node 'n' keeps no items"
    assert render.state_detail(summary()) == "active"


def test_a_hooks_tags_say_its_events_where_and_retry_escaped():
    s = summary(events=["publish", "retract"], where=EVIL, filtered=3, retry=2, retry_delay=0.5)
    markup = render.arg_cell(s)
    parsed = assert_safe(markup)
    assert [t for t in parsed.text if t] == ["+retract", "where 3", "retry 2", "print(item)"]
    assert f"--where {html.escape(EVIL, quote=True)}: runs on the publications it matches; 3 filtered out" in markup
    assert "up to 2 time(s), first after 500 ms" in markup
    assert render.arg_cell(summary()) == render.cell("print(item)")  # a plain hook: no tag
    assert [t for t, _ in render.hook_tags(summary(events=["retract"]))] == ["retract"]


def test_the_node_cell_cuts_the_service_first_and_is_whole_on_hover():
    markup = render.node_cell(summary(node=EVIL, service=QUOTES))
    parsed = assert_safe(markup)
    assert parsed.text[0] == EVIL and parsed.text[1] == f"\xa0@ {QUOTES}"
    assert "phm-split" in markup and markup.count("title=") == 3


def test_a_retried_run_is_marked_with_its_attempt_and_the_publisher_shown():
    first = trigger("y", Outcome.ERROR, error="E: x", retried=True)
    second = trigger("y", Outcome.OK, attempt=2, publisher=EVIL)
    assert "#1 error: E: x" in render.trigger_row_html(first, 3)
    assert "attempt 1 of 4; it failed and runs again" in render.trigger_row_html(first, 3)
    row = render.trigger_row_html(second, 3)
    assert_safe(row)
    assert "#2 ok" in row and html.escape(EVIL) in row
    assert "the server did not say" in render.trigger_row_html(trigger("z", publisher=None))
    assert "(attempt 2)" in render.trigger_detail_html(second)


# ---------------------------------------------------------------------- the listings at thousands of hooks


def test_json_of_many_hooks_is_one_hook_per_line_and_the_same_json():
    import json

    from pubsub_hook_magic import formatting

    few = [summary(id=f"h{i}", node=EVIL) for i in range(3)]
    assert formatting.hooks_json(few) == json.dumps(few, indent=2, ensure_ascii=False)  # indented, for people
    lots = [summary(id=f"h{i}", node=f"n{i} é", arg="a\nb") for i in range(formatting.JSON_INDENTED_UP_TO + 1)]
    text = formatting.hooks_json(lots)
    assert json.loads(text) == lots
    lines = text.splitlines()
    assert lines[0] == "[" and lines[-1] == "]" and len(lines) == len(lots) + 2  # one hook per line
    assert "n0 é" in lines[1]  # not \\u-escaped
    assert formatting.hooks_json([]) == "[]"


def test_the_text_listing_of_many_hooks_wraps_its_notes_as_textwrap_does():
    import textwrap

    from pubsub_hook_magic import formatting

    hooks = [summary(id=f"h{i:04d}", node=f"sensors/building-{i}/floor-{i % 7}/room-{i % 13}/temperature",
                     service="pubsub.a-rather-long-service-name.example.org", arg="x = 1  " * 20)
             for i in range(300)]
    text = formatting.hooks_text(hooks)
    lines = text.splitlines()
    assert len(lines) > 301 and all(len(line) <= formatting.WIDTH for line in lines)
    note = next(n for n in lines[301:] if n.startswith("hook h0007"))
    whole = f"hook h0007 is on node {hooks[7]['node']} of {hooks[7]['service']}, and runs: " + " ".join(
        hooks[7]["arg"].split())
    at = lines.index(note)
    assert lines[at : at + len(textwrap.wrap(whole, 100, subsequent_indent="    "))] == textwrap.wrap(
        whole, 100, subsequent_indent="    ", break_on_hyphens=False)
