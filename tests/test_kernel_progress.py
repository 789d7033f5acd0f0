"""A connect of many persistent hooks shows a progress bar while they catch up, in a
real kernel against the private Prosody."""

from __future__ import annotations

import time

import pytest

from .conftest import connect_line

pytestmark = pytest.mark.kernel


def comm_states(kernel) -> list[dict]:
    return [m["content"]["data"].get("state", {}) for m in kernel.iopub if m["msg_type"] == "comm_msg"]


def test_connect_shows_the_catch_up_progress_until_every_hook_caught_up(connected, server, publisher):
    nodes = [f"many{time.monotonic_ns()}-{i}" for i in range(24)]
    connected.run("release = True")
    for node in nodes:
        publisher.create_node(node)
        # (a run waits until the test says: the catch-up outlasts connect's own wait)
        connected.run(
            f"%%hook create -s pubsub.localhost -n {node} -P\n"
            "import asyncio\nwhile not release:\n    await asyncio.sleep(0.05)\n"
        )
    connected.run("%hook disconnect")
    for node in nodes:  # missed while away: each hook has one item to catch up
        publisher.publish(node, item_id="missed")
    connected.iopub.clear()
    connected.run("release = False")
    out = connected.run(connect_line(server))
    assert "24 persistent hook(s) installed" in out.stdout, out.stdout
    widgets = [d for d in out.data if "application/vnd.jupyter.widget-view+json" in d]
    assert widgets, (out.stdout, out.data)  # the bar (an HBox of a progress bar and its line)
    connected.run("release = True")  # now the hooks catch up
    deadline = time.monotonic() + 60
    while not any(s.get("bar_style") == "success" for s in comm_states(connected)):
        assert time.monotonic() < deadline, comm_states(connected)
        connected.drain_iopub(0.5)
    assert any(str(s.get("value", "")).startswith("caught up: 24 persistent hook(s)") for s in comm_states(connected))
