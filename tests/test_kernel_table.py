"""The live table, seen as a front end sees it: the widget messages on iopub."""

from __future__ import annotations

import json
import re
import time

import pytest

pytestmark = pytest.mark.kernel


class Widgets:
    """The widget models a front end would hold, rebuilt from iopub messages."""

    def __init__(self, messages):
        self.models: dict[str, dict] = {}
        self.updates: list[tuple[float, str, dict]] = []
        self.closed: set[str] = set()
        self.feed(messages)

    def feed(self, messages):
        for msg in messages:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "comm_open":
                self.models[content["comm_id"]] = dict(content["data"]["state"])
            elif kind == "comm_msg" and content["data"].get("method") == "update":
                state = content["data"]["state"]
                self.models.setdefault(content["comm_id"], {}).update(state)
                self.updates.append((time.monotonic(), content["comm_id"], state))
            elif kind == "comm_close":
                self.closed.add(content["comm_id"])
        return self

    def with_class(self, cls: str) -> list[str]:
        return [
            mid
            for mid, state in self.models.items()
            if cls in state.get("_dom_classes", ()) and mid not in self.closed
        ]

    def value(self, mid: str) -> str:
        return self.models[mid].get("value", "")


def click(kernel, model_id: str) -> None:
    """Send the message a browser sends when a Button is clicked."""
    msg = kernel.kc.session.msg(
        "comm_msg", {"comm_id": model_id, "data": {"method": "custom", "content": {"event": "click"}}}
    )
    kernel.kc.shell_channel.send(msg)


def hook_ids(kernel) -> list[str]:
    return [h["id"] for h in json.loads(kernel.run("%hook list -O json").stdout)]


def settle(kernel, seconds=0.8) -> Widgets:
    kernel.drain_iopub(seconds)
    return Widgets(kernel.iopub)


def test_table_is_a_widget_with_a_text_fallback(connected, node):
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code pass")
    result = connected.run("%hook list")
    [bundle] = result.data
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert node in bundle["text/plain"] and "python_code" in bundle["text/plain"]
    text = connected.run("%hook list -O text")
    assert node in text.stdout and not text.data  # forced text: no widget


def test_table_follows_triggers_errors_pause_and_delete(connected, publisher, node):
    connected.run(
        f"%%hook create -s pubsub.localhost -n {node}\n"
        "if item['id'] == 'bad':\n    raise RuntimeError('bad item')\n"
    )
    [hook_id] = hook_ids(connected)
    connected.run("%hook list")
    for item_id in ("a", "bad", "b"):
        publisher.publish(node, item_id=item_id)
    w = settle(connected)
    [stats] = w.with_class("phm-stats")
    assert "phm-ok' title='active'>active<" in w.value(stats)  # the theme's success colour
    assert ">3<" in w.value(stats)  # triggers
    assert "phm-err' title='1 failed run(s)'>1<" in w.value(stats)  # one error, in the error colour
    [header] = w.with_class("phm-header")
    assert "connected" in w.value(header) and "1 error(s)" in w.value(header)

    [pause] = w.with_class("phm-pause")
    click(connected, pause)
    w = settle(connected)
    assert "paused" in w.value(stats)
    assert w.models[pause]["icon"] == "play" and w.models[pause]["tooltip"].startswith("resume")
    publisher.publish(node, item_id="while-paused")
    w = settle(connected)
    assert "1 skipped" in w.value(stats)
    [summary] = json.loads(connected.run("%hook list -O json").stdout)
    assert summary["paused"] and summary["skipped"] == 1 and summary["triggers"] == 3

    [delete] = w.with_class("phm-delete")
    click(connected, delete)
    w = settle(connected)
    assert hook_ids(connected) == []
    assert stats in w.closed and delete in w.closed
    [message] = w.with_class("phm-message")
    assert "No hook found" in w.value(message)


def test_rows_appear_in_every_displayed_table(connected, node):
    connected.run("%hook list")
    connected.run("%hook list")
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code pass")
    w = settle(connected)
    assert len(w.with_class("phm-grid")) == 2
    assert len(w.with_class("phm-stats")) == 2  # one row in each table
    connected.run(f"%hook delete -s pubsub.localhost -n {node}")
    w = settle(connected)
    assert w.with_class("phm-stats") == []


def test_a_burst_sends_a_bounded_number_of_updates(connected, publisher, node):
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code pass")
    connected.run("%hook list")
    settle(connected)
    before = len(Widgets(connected.iopub).updates)
    start = time.monotonic()
    publisher.publish_many(node, 1000, service="pubsub.localhost")
    connected.wait_for(
        "get_ipython()._pubsub_hook_magics.manager.runners and "
        "list(get_ipython()._pubsub_hook_magics.manager.runners.values())[0].count",
        lambda v: v == 1000,
        timeout=60,
    )
    elapsed = time.monotonic() - start
    w = settle(connected, 1.0)
    sent = len(w.updates) - before
    # At most one flush per 0.3 s, each sending the header and the row: ~7 a second.
    bound = 2 * (elapsed + 1.0) / 0.3 + 4
    assert sent <= bound, (sent, elapsed)
    [stats] = w.with_class("phm-stats")
    assert ">1000<" in w.value(stats)


def test_hostile_ids_and_payloads_reach_the_page_escaped(connected, publisher, node):
    evil = "<img src=x onerror=alert(1)>"
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code raise ValueError(item['id'])")
    connected.run("%hook list")
    w = settle(connected, 0.3)
    [details] = w.with_class("phm-details")
    click(connected, details)
    publisher.publish(
        node,
        item_id=evil,
        payload="<p xmlns='urn:x' title='&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;'>&lt;img src=x onerror=alert(1)&gt;</p>",
    )
    w = settle(connected)
    [panel] = w.with_class("phm-triggers-panel")
    [detail] = w.with_class("phm-trigger-detail")
    shown = w.value(panel) + w.value(detail)
    assert "&lt;img src=x onerror=alert(1)&gt;" in shown  # the id and the error quoting it
    assert "<img" not in shown and "<script" not in shown
    assert "ValueError" in w.value(detail) and "Traceback" in w.value(detail)
    for mid, state in w.models.items():
        if "value" in state and isinstance(state["value"], str) and state.get("_model_name") in ("HTMLModel",):
            assert "<img" not in state["value"] and "<script" not in state["value"], state["value"]


def test_deleted_rows_leave_no_widget_behind(connected, node):
    connected.run("%hook list")
    count = "len(__import__('ipywidgets').widgets.widget.Widget._active_widgets)"
    settle(connected, 0.5)
    baseline = connected.eval(count)
    for i in range(10):
        connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code x = {i}")
    settle(connected, 0.5)
    assert connected.eval(count) > baseline
    connected.run(f"%hook delete -s pubsub.localhost -n {node}")
    settle(connected, 0.5)
    assert connected.eval(count) == baseline


def test_a_trigger_can_be_replayed_from_the_table(connected, publisher, node):
    connected.run("got = []")
    connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code got.append(item['id'])")
    connected.run("%hook list")
    w = settle(connected, 0.3)
    [details] = w.with_class("phm-details")
    click(connected, details)
    publisher.publish(node, item_id="again")
    connected.wait_for("got", lambda v: v == ["again"])
    w = settle(connected)
    [replay] = w.with_class("phm-replay")
    click(connected, replay)
    assert connected.wait_for("got", lambda v: len(v) == 2) == ["again", "again"]
    [summary] = json.loads(connected.run("%hook list -O json").stdout)
    assert [t["kind"] for t in summary["recent"]] == ["live", "replay"]


def test_a_table_shows_a_page_of_rows_and_pages_through_the_rest(connected, node):
    connected.run("%config HookMagics.table_page_size = 5")
    for i in range(12):
        connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code x = {i}")
    ids = hook_ids(connected)
    result = connected.run("%hook list")
    [bundle] = result.data
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert all(i in bundle["text/plain"] for i in ids)  # (12 hooks: the text fallback lists them all)
    w = settle(connected)
    assert len(w.with_class("phm-stats")) == 5  # the widgets of one page, not of 12 rows
    shown = lambda w: [re.sub(r"<[^>]*>", "", w.value(m)) for m in w.with_class("phm-id")]  # noqa: E731
    assert shown(w) == ids[:5]
    [count] = w.with_class("phm-count")
    assert "showing 1\u20135 of 12" in w.value(count)
    [forward] = w.with_class("phm-next")
    click(connected, forward)
    w = settle(connected)
    assert len(w.with_class("phm-stats")) == 5 and sorted(shown(w)) == sorted(ids[5:10])
    [filter_box] = w.with_class("phm-filter")
    msg = connected.kc.session.msg(
        "comm_msg", {"comm_id": filter_box, "data": {"method": "update", "state": {"value": f"id:{ids[11]}"},
                                                      "buffer_paths": []}}
    )
    connected.kc.shell_channel.send(msg)
    w = settle(connected)
    assert ids[11] in "".join(shown(w)) and "filtered from 12" in w.value(count)
    text = connected.run("%hook list -O text").stdout
    assert all(i in text for i in ids)
