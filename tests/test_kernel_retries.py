"""Retries and dead letters in a real kernel, against a real Prosody: a failed run is
tried again, an item that still fails is kept (on disk for persistent hooks, across a
restart), and ``%hook retry`` runs it again once the code is fixed."""

from __future__ import annotations

import json
import re
import stat
import time

import pytest

from .conftest import connect_line

pytestmark = pytest.mark.kernel


def hooks_json(kernel):
    return json.loads(kernel.run("%hook list -O json").stdout)


def hook_id(created: str) -> str:
    return re.search(r"Created hook (\w+):", created).group(1)


def wait_for_summary(kernel, predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        summaries = hooks_json(kernel)
        if summaries and predicate(summaries[0]):
            return summaries[0]
        assert time.monotonic() < deadline, summaries
        time.sleep(0.1)


def test_a_hook_failing_twice_then_succeeding_ran_every_item_in_order(connected, publisher, node):
    connected.run("done = []; tries = {}")
    created = connected.run(
        f"%%hook create -s pubsub.localhost -n {node} --retry 3 --retry-delay 0.05\n"
        "tries[item['id']] = tries.get(item['id'], 0) + 1\n"
        "if item['id'] == 'flaky' and tries['flaky'] <= 2:\n"
        "    raise ConnectionError('the downstream API is down')\n"
        "done.append(item['id'])\n"
    ).stdout
    ids = ["a", "flaky", "b", "c"]
    for item_id in ids:
        publisher.publish(node, item_id=item_id)
    assert connected.wait_for("done", lambda v: len(v) == 4) == ids  # b and c waited for flaky
    time.sleep(0.2)
    assert connected.eval("tries") == {"a": 1, "flaky": 3, "b": 1, "c": 1}
    [summary] = hooks_json(connected)
    assert (summary["triggers"], summary["errors"], summary["failed"]) == (6, 2, 0)
    assert (summary["state"], summary["attempt"], summary["retry"], summary["retry_delay"]) == ("active", None, 3, 0.05)
    flaky = [(t["attempt"], t["outcome"]) for t in summary["recent"] if t["item_id"] == "flaky"]
    assert flaky == [(1, "error"), (2, "error"), (3, "ok")]  # each attempt is a trigger
    assert connected.run(f"%hook failed {hook_id(created)}").stdout.strip() == f"Hook {hook_id(created)} has no failed item."


def test_a_hook_waiting_to_retry_is_listed_as_retrying_and_deleting_it_cancels_cleanly(connected, publisher, node):
    created = connected.run(f"%hook create -s pubsub.localhost -n {node} --retry 2 --retry-delay 60 -t python_code 1/0").stdout
    publisher.publish(node, item_id="x")
    summary = wait_for_summary(connected, lambda s: s["state"] == "retrying")
    assert (summary["attempt"], summary["failed"]) == (2, 0)
    text = connected.run("%hook list -O text").stdout
    assert "retrying" in text and "is retrying item x: attempt 2 of 3" in text
    out = connected.run(f"%hook delete --id {hook_id(created)}", timeout=10).stdout
    assert "1 hook(s) have been deleted" in out


def test_dead_letters_of_a_persistent_hook_survive_a_restart_and_retry_runs_them_after_the_fix(
    kernel_factory, server, publisher, node, tmp_path, data_dir
):
    path = tmp_path / "sink.py"
    path.write_text("def hook(host, client, item):\n    raise RuntimeError('the database is down for ' + item['id'])\n")
    first = kernel_factory()
    first.run(connect_line(server))
    hid = hook_id(first.run(f"%hook create -s pubsub.localhost -n {node} -t python_file -P {path}").stdout)
    ids = [f"d{i}" for i in range(3)]
    for item_id in ids:
        publisher.publish(node, item_id=item_id)
    wait_for_summary(first, lambda s: s["failed"] == 3)
    lines = first.run(f"%hook failed {hid}").stdout.strip().splitlines()
    assert lines[0].split() == ["item", "attempts", "last", "failed", "error"]
    assert [line.split()[:2] for line in lines[1:]] == [[i, "1"] for i in ids]
    assert lines[1].endswith("RuntimeError: the database is down for d0")
    assert f"hook {hid} has 3 failed item(s): %hook failed {hid}" in first.run("%hook list -O text").stdout
    stored = data_dir / "failed-alice@localhost" / f"{hid}.jsonl"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    first.close()

    second = kernel_factory()  # a kernel restart
    second.run(connect_line(server))
    letters = json.loads(second.run(f"%hook failed {hid} -O json").stdout)
    assert [d["item_id"] for d in letters] == ids
    assert letters[0]["payload"] == '<entry xmlns="urn:test">hello</entry>'
    assert "raise RuntimeError" in letters[0]["traceback"] and letters[0]["attempts"] == 1
    path.write_text("def hook(host, client, item):\n    host.shell.user_ns.setdefault('ran', []).append(item['id'])\n")
    out = second.run(f"%hook retry {hid}").stdout
    assert "ran again: 3 succeeded (removed)." in out, out
    assert second.eval("ran") == ids  # each once more, in order
    [summary] = hooks_json(second)
    assert summary["failed"] == 0
    assert [t["kind"] for t in summary["recent"]][-3:] == ["retry"] * 3
    assert "no failed item" in second.run(f"%hook failed {hid}").stdout
    assert not stored.exists() or not stored.read_text().strip()
    publisher.publish(node, item_id="d3")  # and the fixed hook runs live items again
    assert second.wait_for("ran", lambda v: len(v) == 4)[-1] == "d3"
    second.run(f"%hook delete --id {hid}")
    assert not stored.exists()


def test_discard_drops_failed_items_and_the_bound_counts_what_overflows(connected, publisher, node):
    connected.run("%config HookMagics.dead_letters = 3")
    hid = hook_id(connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code raise ValueError(item['id'])").stdout)
    for i in range(5):
        publisher.publish(node, item_id=f"v{i}")
    summary = wait_for_summary(connected, lambda s: s["failed"] + s["failed_dropped"] == 5)
    assert (summary["failed"], summary["failed_dropped"]) == (3, 2)  # the oldest two dropped
    assert "3 failed item(s) (2 older dropped)" in connected.run("%hook list -O text").stdout
    out = connected.run(f"%hook retry {hid} --discard --item v3").stdout
    assert out.strip() == f"Discarded 1 failed item(s) of hook {hid}."
    assert [d["item_id"] for d in json.loads(connected.run(f"%hook failed {hid} -O json").stdout)] == ["v2", "v4"]
    out = connected.run(f"%hook retry {hid}").stdout  # still failing: they stay, one attempt more
    assert f"2 failed item(s) of hook {hid} ran again: 0 succeeded (removed), 2 failed again (kept; %hook failed {hid})" in out
    assert "ValueError: v2" in out
    assert [d["attempts"] for d in json.loads(connected.run(f"%hook failed {hid} -O json").stdout)] == [2, 2]
    assert connected.run(f"%hook retry {hid} --discard").stdout.strip() == f"Discarded 2 failed item(s) of hook {hid}."
    assert hooks_json(connected)[0]["failed"] == 0


@pytest.mark.parametrize(
    "line, message",
    [
        ("%hook create -n n --retry -1 -t python_code pass", "--retry must be a whole number of retries, 0 or more"),
        ("%hook create -n n --retry x -t python_code pass", "invalid int value: 'x'"),
        ("%hook create -n n --retry-delay -2 -t python_code pass", "--retry-delay must be a number of seconds"),
        ("%hook create -n n --retry-delay nan -t python_code pass", "--retry-delay must be a number of seconds"),
        ("%hook failed nope", "no hook 'nope'"),
        ("%hook failed", "the following arguments are required: id"),
        ("%hook retry nope --discard", "no hook 'nope'"),
        ("%config HookMagics.dead_letters = 0", "dead_letters must be at least 1"),
    ],
)
def test_bad_retry_input_is_a_one_line_usage_error(connected, line, message):
    assert message in connected.usage_error(line)


def test_retry_of_an_unknown_item_is_a_usage_error(connected, publisher, node):
    hid = hook_id(connected.run(f"%hook create -s pubsub.localhost -n {node} -t python_code 1/0").stdout)
    assert "'zz' is not among the hook's failed items" in connected.usage_error(f"%hook retry {hid} --item zz")
    assert connected.run(f"%hook retry {hid}").stdout.strip() == f"Hook {hid} has no failed item."
