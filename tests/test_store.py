"""The persistent store: atomic, locked, private files."""

import json
import os
import stat
import threading

import pytest

from pubsub_hook_magic.store import HookStore, StoreError


def record(i):
    return {"id": f"h{i}", "service": "s", "node": "n", "type": "python_code", "arg": "x", "created": 1.0}


def test_files_are_private_and_round_trip(tmp_path):
    store = HookStore("alice@localhost", tmp_path / "d")
    store.add_hook(record(1))
    store.set_subscription("pubsub.localhost", "news", True)
    assert [h["id"] for h in HookStore("alice@localhost", tmp_path / "d").hooks()] == ["h1"]
    assert store.subscriptions() == {("pubsub.localhost", "news")}
    assert stat.S_IMODE(os.stat(tmp_path / "d").st_mode) == 0o700
    for path in (tmp_path / "d").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert "password" not in store.path.read_text()


def test_accounts_do_not_share_a_file(tmp_path):
    HookStore("alice@localhost", tmp_path).add_hook(record(1))
    assert HookStore("bob@localhost", tmp_path).hooks() == []


def test_concurrent_writers_lose_nothing(tmp_path):
    def add(start):
        store = HookStore("alice@localhost", tmp_path)
        for i in range(start, start + 25):
            store.add_hook(record(i))

    threads = [threading.Thread(target=add, args=(n * 100,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(HookStore("alice@localhost", tmp_path).hooks()) == 100


def test_damaged_store_is_a_clear_error_and_not_overwritten(tmp_path):
    store = HookStore("alice@localhost", tmp_path)
    store.path.write_text('{"hooks": [')
    with pytest.raises(StoreError, match="damaged"):
        store.hooks()
    with pytest.raises(StoreError):
        store.add_hook(record(1))
    assert store.path.read_text() == '{"hooks": ['


def test_remove_hooks_counts(tmp_path):
    store = HookStore("alice@localhost", tmp_path)
    for i in range(3):
        store.add_hook(record(i))
    assert store.remove_hooks({"h0", "h2", "zz"}) == 2
    assert [h["id"] for h in json.loads(store.path.read_text())["hooks"]] == ["h1"]


def _add_many(args):
    data_dir, start = args
    store = HookStore("alice@localhost", data_dir)
    for i in range(start, start + 20):
        store.add_hook(record(i))


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_add_many, [(str(tmp_path), 0), (str(tmp_path), 1000)])
    assert len(HookStore("alice@localhost", tmp_path).hooks()) == 40


def test_a_store_others_can_write_is_refused(tmp_path):
    store = HookStore("alice@localhost", tmp_path / "d")
    store.add_hook(record(1))
    os.chmod(store.path, 0o666)
    with pytest.raises(StoreError, match=r"writable by other users .*chmod 600"):
        store.hooks()
    os.chmod(store.path, 0o600)
    os.chmod(tmp_path / "d", 0o777)
    with pytest.raises(StoreError, match=r"directory .* writable by other users .*chmod 700"):
        store.hooks()


def test_an_unwritable_data_dir_is_a_clear_error(tmp_path):
    store = HookStore("alice@localhost", "/proc/pubsub-hook-test")
    with pytest.raises(StoreError, match="PUBSUB_HOOK_DATA_DIR"):
        store.add_hook(record(1))


def test_a_damaged_store_is_set_aside_untouched(tmp_path):
    store = HookStore("alice@localhost", tmp_path)
    store.path.write_text('{"hooks": [{"id": "h1", "ser')
    aside = store.set_aside()
    assert aside.read_text() == '{"hooks": [{"id": "h1", "ser'
    assert not store.path.exists() and store.hooks() == []


def test_positions_round_trip(tmp_path):
    from pubsub_hook_magic.store import PositionStore

    positions = PositionStore("alice@localhost", tmp_path)
    assert positions.load("h1") is None
    positions.save("h1", [("item-6", "0123"), ("item-7", "abcd")])
    assert PositionStore("alice@localhost", tmp_path).load("h1") == [("item-6", "0123"), ("item-7", "abcd")]
    assert stat.S_IMODE(os.stat(positions._path("h1")).st_mode) == 0o600
    positions.remove("h1")
    assert positions.load("h1") is None


def test_positions_of_the_previous_format_read_as_the_last_item(tmp_path):
    """A position file written before the last 16 items were kept holds one item."""
    from pubsub_hook_magic.store import PositionStore

    positions = PositionStore("alice@localhost", tmp_path)
    positions.save("h1", [("x", "y")])
    positions._path("h1").write_text('{"id": "item-7", "digest": "abcd"}')
    assert positions.load("h1") == [("item-7", "abcd")]
