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


# ---------------------------------------------------------------- the format version


def test_the_store_says_its_format(tmp_path):
    from pubsub_hook_magic.store import FORMAT_VERSION

    store = HookStore("alice@localhost", tmp_path)
    store.add_hook(record(1))
    assert json.loads(store.path.read_text())["version"] == FORMAT_VERSION == 1


def test_a_store_without_a_version_reads_as_format_1_and_gains_it(tmp_path):
    store = HookStore("alice@localhost", tmp_path)
    store._ensure_dir()
    store.path.write_text(json.dumps({"account": "alice@localhost", "hooks": [record(1)]}))
    os.chmod(store.path, 0o600)
    assert [h["id"] for h in store.hooks()] == ["h1"]
    store.add_hook(record(2))
    assert json.loads(store.path.read_text())["version"] == 1


def _newer_store(store, version=2):
    store._ensure_dir()
    text = json.dumps(
        {"version": version, "account": "alice@localhost", "hooks": [record(1), record(2)],
         "subscriptions": [["pubsub.localhost", "n"]], "something_new": {"x": 1}}
    )
    store.path.write_text(text)
    os.chmod(store.path, 0o600)
    return text


def test_a_newer_format_runs_nothing_and_is_never_written(tmp_path):
    from pubsub_hook_magic.store import StoreTooNew

    store = HookStore("alice@localhost", tmp_path)
    text = _newer_store(store)
    with pytest.raises(StoreTooNew) as caught:
        store.hooks()
    exc = caught.value
    message = str(exc)
    assert "\n" not in message and "newer pubsub_hook_magic" in message
    assert "upgrade pubsub_hook_magic" in message and str(store.path) in message
    assert "store format 2" in message and "2 persistent hook(s) are not run" in message
    assert exc.version == 2 and [r["id"] for r in exc.records] == ["h1", "h2"]  # to list them
    assert isinstance(exc, StoreError)  # what connect and the CLI report in one line
    for write in (
        lambda: store.add_hook(record(3)),
        lambda: store.remove_hooks({"h1"}),
        lambda: store.set_subscription("pubsub.localhost", "n", False),
    ):
        with pytest.raises(StoreTooNew):
            write()
    with pytest.raises(StoreTooNew):
        store.subscriptions()
    with pytest.raises(StoreTooNew):
        store.newer_hooks()
    assert store.path.read_text() == text  # not overwritten, not downgraded
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [store.path.name]


def test_a_newer_format_is_recognised_whatever_else_changed(tmp_path):
    """A newer file may be laid out differently: it is "too new", never "damaged"
    (a damaged store is moved aside, which would hide it from the newer install)."""
    from pubsub_hook_magic.store import StoreTooNew

    store = HookStore("alice@localhost", tmp_path)
    store._ensure_dir()
    for layout in ({"version": 3, "hooks": {"h1": {}}}, {"version": 7}):
        store.path.write_text(json.dumps(layout))
        os.chmod(store.path, 0o600)
        with pytest.raises(StoreTooNew) as caught:
            store.hooks()
        assert caught.value.records == [] and caught.value.version == layout["version"]


@pytest.mark.parametrize("version", ["2", 1.5, 0, None, True])
def test_a_version_that_is_not_a_format_number_is_damage(tmp_path, version):
    from pubsub_hook_magic.store import StoreDamaged

    store = HookStore("alice@localhost", tmp_path)
    store._ensure_dir()
    store.path.write_text(json.dumps({"version": version, "hooks": []}))
    os.chmod(store.path, 0o600)
    with pytest.raises(StoreDamaged, match="format version"):
        store.hooks()


def test_hooks_that_need_a_newer_format_are_told_apart_and_kept(tmp_path):
    """A record that says it needs a newer format is not run (the others are), and an
    older process that rewrites the file keeps it as it was."""
    store = HookStore("alice@localhost", tmp_path)
    store.add_hook(record(1))
    future = record(2) | {"format": 3, "type": "a_type_of_the_future", "extra": [1, 2]}
    odd = record(3) | {"format": "2.1"}
    store.update(lambda data: data["hooks"].extend([future, odd]))
    assert [h["id"] for h in store.hooks()] == ["h1"]
    assert store.newer_hooks() == [future, odd]
    store.add_hook(record(4) | {"format": 1})
    store.add_hook(record(5) | {"format": 2})  # python_function hooks: read by this version
    assert [h["id"] for h in store.hooks()] == ["h1", "h4", "h5"]
    on_disk = json.loads(store.path.read_text())
    assert on_disk["version"] == 1 and future in on_disk["hooks"] and odd in on_disk["hooks"]
    assert store.remove_hooks({"h2"}) == 1  # deleting one by id works
    assert store.newer_hooks() == [odd]


def test_connect_lists_the_hooks_of_a_newer_store_and_runs_none(server, tmp_path):
    """A store written by a newer version: connect warns, lists its hooks as needing a
    newer version, runs none of them, and leaves the file as it is."""
    import json

    from pubsub_hook_magic.loopthread import LoopThread
    from pubsub_hook_magic.manager import HookManager
    from pubsub_hook_magic.store import HookStore

    from .conftest import PASSWORDS

    store = HookStore("alice@localhost", tmp_path)
    store.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    record = {"id": "future1", "service": "pubsub.localhost", "node": "n", "type": "python_code", "arg": "pass"}
    text = json.dumps({"version": 99, "account": "alice@localhost", "hooks": [record], "subscriptions": []})
    store.path.write_text(text)
    store.path.chmod(0o600)
    thread = LoopThread()
    manager = HookManager({}, data_dir=str(tmp_path))
    try:
        warnings = thread.run(manager.connect("alice@localhost", PASSWORDS["alice"], host=server.host, port=server.port, tls=False), 30)
        assert any("newer pubsub_hook_magic" in w and "upgrade" in w for w in warnings), warnings

        async def listed():
            return manager.list_hooks()

        (hook,) = thread.run(listed(), 5)
        assert hook["id"] == "future1" and hook["state"] == "needs a newer version"
        assert not manager.runners
    finally:
        thread.run(manager.disconnect(), 30)
        thread.stop()
    assert store.path.read_text() == text
