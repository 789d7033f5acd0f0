"""Persistent hooks on disk, one JSON file per account.

The file lives in ``$PUBSUB_HOOK_DATA_DIR`` or else in Jupyter's data directory
(``jupyter --data-dir``), under ``pubsub_hook_magic/``. Every change is a
read-modify-write under an exclusive ``flock`` (two kernels on one account lose no
update), written to a temporary file that replaces the old one atomically. Every file
written there has mode 0600 and the directory 0700: the store holds code that runs at
every ``connect``. Passwords are never stored.

The file says its format (``"version"``, an integer; absent means 1). A process that
meets a newer format than :data:`FORMAT_VERSION` runs none of its hooks and never writes
the file (:class:`StoreTooNew`): it cannot tell which hooks it would misread, and must
not downgrade what a newer install wrote. A hook record may also say the format it
needs (``"format"``): such a record is left out of :meth:`HookStore.hooks` (listed by
:meth:`HookStore.newer_hooks`) and kept as it is when the file is rewritten, so a later
version can add what only some hooks use without stopping the others.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable, Iterator

from .accountfiles import AccountFiles, default_data_dir
from .hooks import RECORD_FORMAT, HookError

__all__ = ["HookStore", "PositionStore", "StoreDamaged", "StoreError", "StoreTooNew", "default_data_dir"]

#: The newest store format this version reads and writes.
FORMAT_VERSION = 1


class StoreError(HookError):
    """The store cannot be read or written; the message says what to do."""


class StoreDamaged(StoreError):
    """The store file is not valid JSON of ours (truncated, edited by hand…)."""

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = path


class StoreTooNew(StoreError):
    """The store was written by a newer pubsub_hook_magic, in a format this one does not
    know: none of its hooks run here, and the file is never written.

    ``records``: its hook records as far as they can be read (to list them as needing a
    newer version); ``version``: the format the file says.
    """

    def __init__(self, path: Path, version: int, records: list[dict[str, Any]]):
        super().__init__(
            f"the hook store {path} was written by a newer pubsub_hook_magic (store format "
            f"{version}; this one reads format {FORMAT_VERSION}): its {len(records)} "
            "persistent hook(s) are not run and the file is left as it is; upgrade "
            "pubsub_hook_magic in this environment"
        )
        self.path = path
        self.version = version
        self.records = records


def _newer(record: Any) -> bool:
    """Whether a hook record says it needs a newer format than this version reads
    (:data:`~.hooks.RECORD_FORMAT`: python_function hooks, format 2, are read here)."""
    if not isinstance(record, dict) or "format" not in record:
        return False
    needs = record["format"]
    return not (type(needs) is int and needs <= max(FORMAT_VERSION, RECORD_FORMAT))


def make_private_dir(path: Path) -> None:
    """Create ``path`` (a directory of the data directory) and the data directory
    itself, mode 0700, as needed: what they hold runs at every connect."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.mkdir(mode=0o700, exist_ok=True)


def check_private(path: Path, what: str) -> None:
    """Refuse a store file or directory that someone else could write (like ssh's
    StrictModes): the store holds code that runs at every connect."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from None
    if info.st_uid != os.getuid():
        raise StoreError(
            f"the hook store {what} {path} belongs to another user (uid {info.st_uid}): it "
            "holds code that runs at every connect; use a directory of your own "
            "(PUBSUB_HOOK_DATA_DIR)"
        )
    if info.st_mode & 0o022:
        fix = "chmod 700" if what == "directory" else "chmod 600"
        raise StoreError(
            f"the hook store {what} {path} is writable by other users (mode "
            f"{oct(info.st_mode & 0o777)}): it holds code that runs at every connect; "
            f"fix it with: {fix} {path}"
        )


def _empty() -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "account": "", "hooks": [], "subscriptions": []}


class HookStore:
    """The persistent hooks of one account (its bare JID)."""

    def __init__(self, account: str, data_dir: Path | str | None = None):
        self.account = account
        self.files = AccountFiles.of(account, data_dir)
        self.data_dir = self.files.data_dir
        self.path = self.files.hooks
        self._lock_path = self.files.hooks_lock

    # ------------------------------------------------------------------ reading

    def load(self) -> dict[str, Any]:
        """The stored data (hooks and the subscriptions we made); empty if no file."""
        check_private(self.data_dir, "directory")
        check_private(self.path, "file")
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return _empty() | {"account": self.account}
        except OSError as exc:
            raise StoreError(f"cannot read the hook store {self.path}: {exc.strerror}") from None
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a hook store")
            version = data.get("version", 1)
            if type(version) is not int or version < 1:
                raise ValueError(f"its format version is {version!r}")
            if version > FORMAT_VERSION:  # before any other check: its layout may differ
                hooks = data.get("hooks")
                records = [h for h in hooks if isinstance(h, dict)] if isinstance(hooks, list) else []
                raise StoreTooNew(self.path, version, records)
            if not isinstance(data.get("hooks"), list):
                raise ValueError("not a hook store")
        except ValueError as exc:
            raise StoreDamaged(
                f"the hook store {self.path} is damaged ({exc}); move it aside to start "
                "afresh, or repair it",
                self.path,
            ) from None
        data.setdefault("subscriptions", [])
        return data

    def hooks(self) -> list[dict[str, Any]]:
        """The hook records this version can run (see :meth:`newer_hooks`)."""
        return [h for h in self.load()["hooks"] if not _newer(h)]

    def newer_hooks(self) -> list[dict[str, Any]]:
        """The hook records that need a newer pubsub_hook_magic: not to be run here."""
        return [h for h in self.load()["hooks"] if _newer(h)]

    def set_aside(self) -> Path:
        """Move a damaged store file out of the way (kept, never overwritten); return
        where it went."""
        with self._locked():
            aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            n = 1
            while aside.exists():
                aside = aside.with_name(f"{aside.name}.{n}")
                n += 1
            os.replace(self.path, aside)
            return aside

    # ------------------------------------------------------------------ writing

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._ensure_dir()
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(
                f"cannot write to {self.data_dir}: {exc.strerror}; set PUBSUB_HOOK_DATA_DIR "
                "to a writable directory"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def update(self, change: Callable[[dict[str, Any]], Any]) -> Any:
        """Apply ``change(data)`` to the stored data under the lock, then save it."""
        with self._locked():
            data = self.load()  # a newer format raises StoreTooNew: nothing is written
            data["account"] = self.account
            data.setdefault("version", FORMAT_VERSION)
            result = change(data)
            self._write(data)
            return result

    def add_hook(self, record: dict[str, Any]) -> None:
        self.update(lambda data: data["hooks"].append(record))

    def replace_hook(self, record: dict[str, Any]) -> None:
        """Store ``record`` in place of the stored hook with its id (its code changed)."""

        def change(data: dict[str, Any]) -> None:
            data["hooks"] = [record if h.get("id") == record["id"] else h for h in data["hooks"]]

        self.update(change)

    def remove_hooks(self, ids: set[str]) -> int:
        def change(data: dict[str, Any]) -> int:
            before = len(data["hooks"])
            data["hooks"] = [h for h in data["hooks"] if h.get("id") not in ids]
            return before - len(data["hooks"])

        return self.update(change)

    def subscriptions(self) -> set[tuple[str, str]]:
        """The subscriptions this extension made (to remove with the last hook)."""
        return {(service, node) for service, node in self.load()["subscriptions"]}

    def set_paused(self, hook_id: str, paused: bool) -> None:
        """Store whether a hook is paused (every process of the account follows it)."""

        def change(data: dict[str, Any]) -> None:
            for record in data["hooks"]:
                if record.get("id") == hook_id:
                    if paused:
                        record["paused"] = True
                    else:
                        record.pop("paused", None)

        self.update(change)

    def request_retry(self, hook_id: str, item_id: str | None) -> None:
        """Ask the process that runs a hook to retry its failed items (see
        :mod:`.persistence`)."""

        def change(data: dict[str, Any]) -> None:
            for record in data["hooks"]:
                if record.get("id") == hook_id:
                    record["retry_request"] = {"at": time.time(), "item": item_id}

        self.update(change)

    def clear_retry_request(self, hook_id: str, request: Any) -> None:
        """The request was carried out (unless another came meanwhile)."""

        def change(data: dict[str, Any]) -> None:
            for record in data["hooks"]:
                if record.get("id") == hook_id and record.get("retry_request") == request:
                    del record["retry_request"]

        self.update(change)

    def set_subscription(self, service: str, node: str, ours: bool) -> None:
        def change(data: dict[str, Any]) -> None:
            subs = [s for s in data["subscriptions"] if tuple(s) != (service, node)]
            if ours:
                subs.append([service, node])
            data["subscriptions"] = subs

        self.update(change)

    def _ensure_dir(self) -> None:
        try:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the hook store directory {self.data_dir}: {exc.strerror}; "
                "set PUBSUB_HOOK_DATA_DIR to a writable directory"
            ) from None

    def _write(self, data: dict[str, Any]) -> None:
        try:
            write_atomically(self.path, json.dumps(data, indent=1, ensure_ascii=False), fsync=True)
        except OSError as exc:
            raise StoreError(
                f"cannot write to {self.data_dir}: {exc.strerror}; set PUBSUB_HOOK_DATA_DIR "
                "to a writable directory"
            ) from None


def write_atomically(path: Path, text: str, fsync: bool) -> None:
    """Replace ``path`` with ``text`` in one step, through a temporary file of mode 0600
    in the same directory (removed if anything fails)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:  # mkstemp: mode 0600
            file.write(text)
            if fsync:
                file.flush()
                os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

class _Journal:
    """An append-only file of lines beside the file it is folded into (see
    :class:`PositionStore`): opened on the first line, one ``write`` per line, no fsync.

    :meth:`append` writes nothing and returns False once :data:`PositionStore.FOLD_AFTER`
    lines were written: the caller then folds (writes the whole state) and calls
    :meth:`clear`."""

    __slots__ = ("fd", "lines", "path")

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None
        self.lines = 0  # written since it was opened or cleared

    def append(self, line: str, limit: int) -> bool:
        if self.fd is None:
            make_private_dir(self.path.parent)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if self.lines >= limit:
            return False
        os.write(self.fd, (line + "\n").encode("utf-8"))
        self.lines += 1
        return True

    def clear(self) -> None:
        """Empty it (its lines are folded into the file)."""
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            self.lines = 0
        else:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    @staticmethod
    def read(path: Path) -> list[str]:
        """Its lines (none if there is no journal)."""
        try:
            return path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []


class PositionStore:
    """The last items each persistent hook ran: a small file per hook, and a journal.

    Each run appends one line to the hook's journal (``HOOK.journal``: one ``write``,
    no fsync): a killed process loses nothing the operating system already has, so
    after a crash only the item that was running runs again. Now and then the journal
    is folded into ``HOOK.json`` (the last :data:`KEEP` items, written atomically) and
    emptied.

    A hook that runs on retractions also keeps the ids it saw that should still be on
    the node ("present"): ``HOOK.ids`` holds them, ``HOOK.ids.journal`` the changes since
    (``+ID``, ``-ID``, or ``*`` for all gone), folded in the same way. The file names
    are :class:`.accountfiles.AccountFiles`'.
    """

    #: How many of the last items are kept (see ``runner.RECENT_POSITIONS``).
    KEEP = 16
    #: Journal lines written before it is folded into the file.
    FOLD_AFTER = 512

    def __init__(self, account: str, data_dir: Path | str | None = None):
        self.files = AccountFiles.of(account, data_dir)
        self.dir = self.files.positions_dir
        self._journals: dict[str, _Journal] = {}  # hook id -> its positions' journal
        self._ids_journals: dict[str, _Journal] = {}  # hook id -> its present ids' journal

    def _path(self, hook_id: str) -> Path:
        return self.files.positions(hook_id)

    def _journal_path(self, hook_id: str) -> Path:
        return self.files.positions_journal(hook_id)

    def _journal(self, journals: dict[str, _Journal], hook_id: str, path: Path) -> _Journal:
        journal = journals.get(hook_id)
        if journal is None:
            journal = journals[hook_id] = _Journal(path)
        return journal

    def load(self, hook_id: str) -> list[tuple[str, str]] | None:
        """The last items the hook ran, oldest first, as ``(item id, payload digest)``;
        ``[("", "")]`` means "from the node's start". A file of an older version holds
        only the last item."""
        recent: list[tuple[str, str]] = []
        try:
            data = json.loads(self._path(hook_id).read_text(encoding="utf-8"))
            stored = data.get("recent") or [[data["id"], data["digest"]]]
            recent = [(str(item_id), str(digest)) for item_id, digest in stored]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        for line in _Journal.read(self._journal_path(hook_id)):
            try:
                item_id, digest = json.loads(line)
            except (ValueError, TypeError):
                continue  # a line cut by a crash
            recent.append((str(item_id), str(digest)))
        return recent[-self.KEEP:] or None

    def save(self, hook_id: str, positions: list[tuple[str, str]]) -> None:
        """Store the last items the hook ran, oldest first (the newest also as ``id``
        and ``digest``, which older versions read); the journal is emptied."""
        make_private_dir(self.dir)
        positions = positions[-self.KEEP:]
        newest = positions[-1]
        record = {
            "id": newest[0], "digest": newest[1], "recent": [list(p) for p in positions],
            # Items run so far (the file's and the journal's being folded): read by the
            # live table of a process that stands by (activity()).
            "runs": self._folded_runs(hook_id) + len(_Journal.read(self._journal_path(hook_id))),
        }
        write_atomically(self._path(hook_id), json.dumps(record), fsync=False)
        self._journal(self._journals, hook_id, self._journal_path(hook_id)).clear()

    def _folded_runs(self, hook_id: str) -> int:
        try:
            runs = json.loads(self._path(hook_id).read_text(encoding="utf-8")).get("runs", 0)
        except (OSError, ValueError, AttributeError):
            return 0
        return runs if isinstance(runs, int) and not isinstance(runs, bool) else 0

    def files_of(self, hook_id: str) -> tuple[Path, Path]:
        """The hook's position file and its journal (what :meth:`activity` reads)."""
        return self._path(hook_id), self._journal_path(hook_id)

    def activity(self, hook_id: str) -> tuple[int, float | None, str | None]:
        """What the process running the hook wrote of it, read from the files: ``(items
        run, when the last was written, its id)``; ``(0, None, None)`` for none. Runs
        are counted since the hook's first fold with a count (a file of an older
        version counts from then)."""
        runs = self._folded_runs(hook_id)
        item_id: str | None = None
        last: float | None = None
        for path in self.files_of(hook_id):
            with contextlib.suppress(OSError):
                last = max(last or 0.0, path.stat().st_mtime)
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
            item_id = str(json.loads(self._path(hook_id).read_text(encoding="utf-8"))["id"]) or None
        lines = _Journal.read(self._journal_path(hook_id))
        for line in reversed(lines):
            with contextlib.suppress(ValueError, TypeError):
                item_id = str(json.loads(line)[0]) or item_id
                break
        return runs + len(lines), last, item_id

    def append(
        self, hook_id: str, newest: tuple[str, str], recent: Callable[[], list[tuple[str, str]]]
    ) -> None:
        """Record that the hook ran ``newest``; ``recent()`` gives its last items, oldest
        first, when the journal is folded into the file."""
        journal = self._journal(self._journals, hook_id, self._journal_path(hook_id))
        if not journal.append(json.dumps(list(newest)), self.FOLD_AFTER):
            self.save(hook_id, recent())

    # ---- the present ids of a hook that runs on retractions

    def load_ids(self, hook_id: str) -> list[str]:
        try:
            ids = dict.fromkeys(json.loads(self.files.present_ids(hook_id).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            ids = {}
        for line in _Journal.read(self.files.present_ids_journal(hook_id)):
            if line == "*":
                ids.clear()
            elif line[:1] == "+":
                ids[line[1:]] = None
            elif line[:1] == "-":
                ids.pop(line[1:], None)
        return [str(i) for i in ids]

    def save_ids(self, hook_id: str, ids: Iterable[str]) -> None:
        make_private_dir(self.dir)
        write_atomically(self.files.present_ids(hook_id), json.dumps(list(ids)), fsync=False)
        self._journal(self._ids_journals, hook_id, self.files.present_ids_journal(hook_id)).clear()

    def change_ids(self, hook_id: str, change: str, ids: Callable[[], Iterable[str]]) -> None:
        """Journal one change of the present ids (``ids()`` gives them all, to fold)."""
        journal = self._journal(self._ids_journals, hook_id, self.files.present_ids_journal(hook_id))
        if not journal.append(change.replace("\n", " "), self.FOLD_AFTER):
            self.save_ids(hook_id, ids())

    def close(self, hook_id: str | None = None) -> None:
        """Close the journals of one hook (of every hook with None)."""
        for journals in (self._journals, self._ids_journals):
            for key in [hook_id] if hook_id is not None else list(journals):
                journal = journals.pop(key, None)
                if journal is not None:
                    journal.close()

    def remove(self, hook_id: str) -> None:
        self.close(hook_id)
        for path in self.files.hook_position_files(hook_id):
            with contextlib.suppress(OSError):
                path.unlink()
