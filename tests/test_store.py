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
