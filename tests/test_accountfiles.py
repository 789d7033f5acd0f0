"""The account's file names are the store's format on disk: pinned here."""

from __future__ import annotations

from pubsub_hook_magic.accountfiles import AccountFiles, default_data_dir, hook_file_name, stored_accounts
from pubsub_hook_magic.deadletters import DeadLetters, dead_letters_dir
from pubsub_hook_magic.store import HookStore, PositionStore


def test_every_file_name_of_an_account(tmp_path):
    f = AccountFiles.of("a b@localhost", tmp_path)
    names = {
        "hooks": f.hooks, "hooks_lock": f.hooks_lock,
        "positions": f.positions("h/1"), "journal": f.positions_journal("h/1"),
        "ids": f.present_ids("h/1"), "ids_journal": f.present_ids_journal("h/1"),
        "dead": f.dead_letters("h/1"), "dead_lock": AccountFiles.dead_letters_lock(f.dead_letters("h/1")),
        "owner": f.owner_lock("h/1"), "service": f.service_lock, "claim": f.claim(12, 3),
    }
    assert {k: str(p.relative_to(tmp_path)) for k, p in names.items()} == {
        "hooks": "hooks-a%20b@localhost.json",
        "hooks_lock": ".hooks-a%20b@localhost.lock",
        "positions": "positions-a%20b@localhost/h%2F1.json",
        "journal": "positions-a%20b@localhost/h%2F1.journal",
        "ids": "positions-a%20b@localhost/h%2F1.ids",
        "ids_journal": "positions-a%20b@localhost/h%2F1.ids.journal",
        "dead": "failed-a%20b@localhost/h%2F1.jsonl",
        "dead_lock": "failed-a%20b@localhost/.lock",
        "owner": "owners-a%20b@localhost/h%2F1.lock",
        "service": "owners-a%20b@localhost/service.lock",
        "claim": "claims-a%20b@localhost/12-3.claim",
    }
    assert hook_file_name("x.y_z-~") == "x.y_z-~"


def test_the_stores_use_these_names(tmp_path):
    f = AccountFiles.of("alice@localhost", tmp_path)
    store = HookStore("alice@localhost", tmp_path)
    assert store.path == f.hooks
    positions = PositionStore("alice@localhost", tmp_path)
    positions.append("h1", ("i1", "d1"), lambda: [("i1", "d1")])
    positions.change_ids("h1", "+i1", lambda: ["i1"])
    assert f.positions_journal("h1").exists() and f.present_ids_journal("h1").exists()
    positions.remove("h1")
    assert not any(p.exists() for p in f.hook_position_files("h1"))
    assert DeadLetters.for_hook("alice@localhost", "h1", tmp_path).path == f.dead_letters("h1")
    assert dead_letters_dir("alice@localhost", tmp_path) == f.dead_letters_dir


def test_stored_accounts_and_the_default_dir(tmp_path, monkeypatch):
    for account in ("bob@localhost", "a b@localhost"):
        AccountFiles.of(account, tmp_path).hooks.write_text("{}")
    (tmp_path / "hooks-bob@localhost.json.damaged-20260101-000000").write_text("")
    assert stored_accounts(tmp_path) == ["a b@localhost", "bob@localhost"]
    monkeypatch.setenv("PUBSUB_HOOK_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    assert stored_accounts() == ["a b@localhost", "bob@localhost"]


def test_both_journals_fold_into_their_files_and_read_back(tmp_path):
    store = PositionStore("alice@localhost", tmp_path)
    store.FOLD_AFTER = 3
    ran: list[tuple[str, str]] = []
    present: dict[str, None] = {}
    for i in range(10):
        ran.append((f"i{i}", f"d{i}"))
        store.append("h1", ran[-1], lambda: list(ran))
        present[f"i{i}"] = None
        store.change_ids("h1", f"+i{i}", lambda: list(present))
        if i == 6:
            present.clear()
            store.change_ids("h1", "*", lambda: list(present))
    store.close()
    again = PositionStore("alice@localhost", tmp_path)
    assert again.load("h1") == ran[-PositionStore.KEEP:]
    assert again.load_ids("h1") == ["i7", "i8", "i9"]
    files = AccountFiles.of("alice@localhost", tmp_path)
    assert len(files.positions_journal("h1").read_text().splitlines()) <= 3
    assert len(files.present_ids_journal("h1").read_text().splitlines()) <= 3
