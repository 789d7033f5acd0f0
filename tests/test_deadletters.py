"""Dead letters: the items a hook could not run, in memory and in a file (no server)."""

import json
import stat
import time

import pytest

from pubsub_hook_magic.deadletters import DeadLetter, DeadLetters, dead_letters_dir, payload_text
from pubsub_hook_magic.hooks import HookError
from pubsub_hook_magic.runner import Trigger
from pubsub_hook_magic.states import Outcome


def letter(item_id, error="ValueError: no", attempts=1):
    now = time.time()
    return DeadLetter(item_id, "bob@localhost", f'<n xmlns="urn:t">{item_id}</n>', error, "Traceback…", attempts, now, now)


def ids(dead):
    return [d.item_id for d in dead.letters()]


def test_in_memory_letters_are_bounded_and_count_what_overflows():
    dead = DeadLetters(limit=3)
    for i in range(5):
        dead.add(letter(f"i{i}"))
    assert ids(dead) == ["i2", "i3", "i4"]
    assert (len(dead), dead.dropped) == (3, 2)
    assert [d.seq for d in dead.letters()] == [3, 4, 5]


def test_a_file_keeps_them_across_instances_with_private_modes(tmp_path):
    dead = DeadLetters.for_hook("alice@localhost", "h1", tmp_path)
    dead.add(letter("a"))
    dead.add(letter("b"))
    path = dead.path
    assert path == dead_letters_dir("alice@localhost", tmp_path) / "h1.jsonl"
    assert path.parent.name == "failed-alice@localhost"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [json.loads(line)["item_id"] for line in path.read_text().splitlines()] == ["a", "b"]
    again = DeadLetters.for_hook("alice@localhost", "h1", tmp_path)
    assert ids(again) == ["a", "b"]
    assert again.letters()[0].payload == '<n xmlns="urn:t">a</n>'
    again.add(letter("c"))
    assert ids(again)[-1] == "c" and again.letters()[-1].seq == 3


def test_settle_removes_and_updates_in_one_write_and_another_instance_sees_it(tmp_path):
    kernel = DeadLetters.for_hook("alice@localhost", "h1", tmp_path)
    for i in "abc":
        kernel.add(letter(i))
    cli = DeadLetters.for_hook("alice@localhost", "h1", tmp_path)  # e.g. pubsub-hook retry --discard
    [b] = cli.letters("b")
    b.attempts = 5
    assert cli.settle({cli.letters("a")[0].seq}, [b]) == 1
    assert ids(kernel) == ["b", "c"]  # re-read: the file changed
    assert kernel.letters("b")[0].attempts == 5
    kernel.add(letter("d"))
    assert ids(cli) == ["b", "c", "d"]
    assert cli.settle({d.seq for d in cli.letters()}) == 3
    assert not cli.path.exists() and len(kernel) == 0


def test_an_unknown_item_is_a_one_line_error():
    dead = DeadLetters()
    dead.add(letter("a"))
    with pytest.raises(HookError, match="'zz' is not among the hook's failed items"):
        dead.letters("zz")


def test_the_file_is_compacted_past_the_bound_and_the_overflow_survives(tmp_path):
    dead = DeadLetters.for_hook("alice@localhost", "h1", tmp_path, limit=4)
    for i in range(40):
        dead.add(letter(f"i{i}"))
    assert ids(dead) == ["i36", "i37", "i38", "i39"] and dead.dropped == 36
    lines = dead.path.read_text().splitlines()
    assert len(lines) <= 1 + 4 + 16  # the overflow line, the kept letters, some slack
    again = DeadLetters.for_hook("alice@localhost", "h1", tmp_path, limit=4)
    assert ids(again) == ids(dead) and again.dropped == 36


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path):
    dead = DeadLetters.for_hook("alice@localhost", "h1", tmp_path)
    dead.add(letter("a"))
    with dead.path.open("a") as file:
        file.write('{"item_id": "b", "err')
    assert ids(DeadLetters.for_hook("alice@localhost", "h1", tmp_path)) == ["a"]


def test_delete_removes_the_file(tmp_path):
    dead = DeadLetters.for_hook("alice@localhost", "h1", tmp_path)
    dead.add(letter("a"))
    dead.delete()
    assert not dead.path.exists() and len(dead) == 0


def test_a_letter_is_made_from_a_trigger_and_rebuilds_its_item():
    from slixmpp.plugins.xep_0060.stanza.pubsub_event import EventItem
    from slixmpp.xmlstream import ET

    item = EventItem()
    item["id"] = "x1"
    item["payload"] = ET.fromstring('<entry xmlns="urn:test">héllo &amp; &lt;b&gt;</entry>')
    trigger = Trigger("x1", "bob@localhost", time.time(), payload=item, outcome=Outcome.TIMEOUT, error="too slow")
    dead = DeadLetter.of(trigger, attempts=3, first_failed=100.0)
    assert (dead.item_id, dead.attempts, dead.first_failed, dead.outcome) == ("x1", 3, 100.0, "timeout")
    assert dead.last_failed > 100.0
    back = DeadLetter.from_dict(json.loads(json.dumps(dead.as_dict())))
    rebuilt = back.item()
    assert rebuilt["id"] == "x1" and rebuilt["publisher"] == "bob@localhost"
    assert rebuilt["payload"].tag == "{urn:test}entry" and rebuilt["payload"].text == "héllo & <b>"
    assert payload_text({"id": "no payload"}) is None
