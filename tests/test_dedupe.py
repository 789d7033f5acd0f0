"""Telling items apart: fingerprints, digests, references and the recent-items window."""

from xml.etree import ElementTree as ET

import pytest
from slixmpp.plugins.xep_0060.stanza import EventItem, Item

from pubsub_hook_magic.dedupe import (
    DIGEST_PREFIX,
    ItemRef,
    RecentItems,
    legacy_digest,
    payload_digest,
    payload_fingerprint,
)

EVENT_NS = "http://jabber.org/protocol/pubsub#event"
PUBSUB_NS = "http://jabber.org/protocol/pubsub"


def event_item(payload: str, item_id: str = "a") -> EventItem:
    """An item as it comes in a notification."""
    return EventItem(xml=ET.fromstring(f"<item xmlns='{EVENT_NS}' id='{item_id}'>{payload}</item>"))


def retrieved_item(payload: str, item_id: str = "a") -> Item:
    """The same item as a retrieval of the node's items returns it."""
    return Item(xml=ET.fromstring(f"<item xmlns='{PUBSUB_NS}' id='{item_id}'>{payload}</item>"))


PAYLOAD = "<x xmlns='urn:t' v='1'>hi<y k='2'/>tail<z/></x>"


def test_an_event_item_and_the_retrieved_item_have_the_same_fingerprint_and_digest():
    event, retrieved = event_item(PAYLOAD), retrieved_item(PAYLOAD)
    assert payload_fingerprint(event) == payload_fingerprint(retrieved)
    assert payload_digest(event) == payload_digest(retrieved) != ""


@pytest.mark.parametrize(
    "changed",
    [
        "<x xmlns='urn:t' v='2'>hi<y k='2'/>tail<z/></x>",  # an attribute value
        "<x xmlns='urn:t' v='1' w='0'>hi<y k='2'/>tail<z/></x>",  # one attribute more
        "<x xmlns='urn:t' v='1'>ho<y k='2'/>tail<z/></x>",  # text
        "<x xmlns='urn:t' v='1'>hi<y k='2'/>other<z/></x>",  # a child's tail
        "<x xmlns='urn:t' v='1'>hi<y k='2'><z/></y>tail</x>",  # the same elements, nested
        "<x xmlns='urn:other' v='1'>hi<y k='2'/>tail<z/></x>",  # the namespace
        "<x xmlns='urn:t' v='1'>hi<y k='2'/>tail</x>",  # one child less
    ],
)
def test_any_change_of_the_payload_changes_fingerprint_and_digest(changed):
    assert payload_fingerprint(event_item(changed)) != payload_fingerprint(event_item(PAYLOAD))
    assert payload_digest(event_item(changed)) != payload_digest(event_item(PAYLOAD))


def test_whitespace_around_the_payload_is_not_part_of_it():
    spaced = event_item(f"\n  {PAYLOAD}\n")
    assert payload_fingerprint(spaced) == payload_fingerprint(event_item(PAYLOAD))
    assert payload_digest(spaced) == payload_digest(event_item(PAYLOAD))


def test_an_item_without_payload():
    assert payload_fingerprint(event_item("")) == 0
    assert payload_digest(event_item("")) == ""


def test_a_reference_computes_the_digest_once_and_then_lets_the_item_go():
    item = event_item(PAYLOAD, "i-1")
    ref = ItemRef.of(item)
    assert ref.id == "i-1" and ref.fingerprint == payload_fingerprint(item)
    assert ref._item is item  # nothing computed yet
    assert ref.digest == payload_digest(item)
    assert ref._item is None
    item.xml[0].set("v", "changed")  # what happens to the item afterwards does not matter
    assert ref.digest == payload_digest(event_item(PAYLOAD))


def test_references_compare_by_fingerprint_and_with_a_stored_one_by_digest():
    live = ItemRef.of(event_item(PAYLOAD))
    assert live.same_payload(ItemRef.of(retrieved_item(PAYLOAD)))
    assert not live.same_payload(ItemRef.of(retrieved_item("<x xmlns='urn:t'/>")))
    stored = ItemRef("a", digest=payload_digest(event_item(PAYLOAD)))  # read back from disk
    assert stored.same_payload(ItemRef.of(retrieved_item(PAYLOAD)))
    assert not stored.same_payload(ItemRef.of(retrieved_item("<x xmlns='urn:t'/>")))


def test_recent_items_tell_copies_from_republications():
    recent = RecentItems(size=3)
    first = ItemRef.of(event_item(PAYLOAD, "a"))
    assert not recent.seen("svc", "n", first)
    assert recent.seen("svc", "n", ItemRef.of(retrieved_item(PAYLOAD, "a")))  # a copy
    assert not recent.seen("svc", "other", ItemRef.of(event_item(PAYLOAD, "a")))  # another node
    republished = ItemRef.of(event_item("<x xmlns='urn:t' v='new'/>", "a"))
    assert not recent.seen("svc", "n", republished)  # the same id, a new payload: it fires
    assert recent.seen("svc", "n", ItemRef.of(event_item("<x xmlns='urn:t' v='new'/>", "a")))
    assert not recent.seen("svc", "n", ItemRef.of(event_item("", "")))  # no id: never a copy
    assert not recent.seen("svc", "n", ItemRef.of(event_item("", "")))


def test_recent_items_keep_a_bounded_window_per_node():
    recent = RecentItems(size=3)
    for i in range(4):
        assert not recent.seen("svc", "n", ItemRef.of(event_item(PAYLOAD, f"i{i}")))
    assert recent.seen("svc", "n", ItemRef.of(event_item(PAYLOAD, "i3")))
    assert not recent.seen("svc", "n", ItemRef.of(event_item(PAYLOAD, "i0")))  # forgotten
    recent.forget("svc", "n")
    assert not recent.seen("svc", "n", ItemRef.of(event_item(PAYLOAD, "i3")))


def test_a_position_stored_by_an_older_version_still_matches_its_item():
    """Digests stored before issue 25 (ElementTree's serialisation) are compared with
    a retrieved item in their way: the hook resumes after it, not at it."""
    old = ItemRef("a", digest=legacy_digest(event_item(PAYLOAD)))
    assert payload_digest(event_item(PAYLOAD)).startswith(DIGEST_PREFIX)
    assert old.stored_digest != payload_digest(event_item(PAYLOAD))
    assert old.same_payload(ItemRef.of(retrieved_item(PAYLOAD)))
    assert ItemRef.of(retrieved_item(PAYLOAD)).same_payload(old)
    assert not old.same_payload(ItemRef.of(retrieved_item("<x xmlns='urn:t'/>")))
    assert old.same_payload(ItemRef("a", digest=old.digest))  # two stored the old way
    assert not old.same_payload(ItemRef("a", digest=payload_digest(event_item(PAYLOAD))))  # no item: runs again


def test_the_digest_does_not_depend_on_the_process():
    """It is stored: hash randomisation must not change it."""
    import subprocess
    import sys

    code = (
        "from tests.test_dedupe import event_item, PAYLOAD; "
        "from pubsub_hook_magic.dedupe import payload_digest; print(payload_digest(event_item(PAYLOAD)))"
    )
    digests = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**__import__("os").environ, "PYTHONHASHSEED": seed}).stdout.strip()
        for seed in ("1", "2")
    }
    assert digests == {payload_digest(event_item(PAYLOAD))}
