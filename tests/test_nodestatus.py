"""The record of nodes that do not deliver (pure logic of nodestatus.NodeStatus)."""

from __future__ import annotations

import logging

from pubsub_hook_magic.admission import HookMode
from pubsub_hook_magic.nodestatus import NodeStatus
from pubsub_hook_magic.states import HookState

KEY = ("pubsub.localhost", "news")


def test_a_problem_is_logged_once_and_kept_from_its_first_report(caplog):
    changes = []
    status = NodeStatus(changes.append)
    with caplog.at_level(logging.INFO, logger="pubsub_hook_magic.nodestatus"):
        assert status.set(KEY, HookState.NODE_DELETED, "deleted by its owner")
        first = status[KEY]
        assert not status.set(KEY, HookState.NODE_DELETED, "deleted")  # a copy: nothing new
        assert status[KEY] == first
        assert status.set(KEY, HookState.UNSUBSCRIBED, "removed")  # another problem: new
        assert status.clear(KEY, "subscribed again") is not None
        assert status.clear(KEY) is None
    assert changes == [KEY, KEY, KEY]
    levels = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in levels] == [logging.WARNING, logging.WARNING, logging.INFO]
    assert "news on pubsub.localhost: deleted by its owner" in levels[0][1]


def test_a_hooks_mode_reads_its_nodes_problem_live():
    status = NodeStatus()
    mode = HookMode(KEY, node_problems=status)  # (an empty status is still the one read)
    assert mode.node_problem is None
    status.set(KEY, HookState.PENDING, "waits for approval")
    assert mode.node_problem is not None and mode.node_problem.state is HookState.PENDING
    status.reset()
    assert mode.node_problem is None
