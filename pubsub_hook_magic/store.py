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
import copy
import errno
import fcntl
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

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


#: What ``open`` fails with when the process (EMFILE) or the system (ENFILE) has no
#: descriptor left.
_EXHAUSTED = (errno.EMFILE, errno.ENFILE)


def out_of_descriptors(what: str) -> StoreError:
    """The error when the process runs out of file descriptors: what to do."""
    soft = _soft_limit()
    return StoreError(
        f"{what}: too many open files (this process may open {soft} descriptors): raise the limit "
        f"before starting it (ulimit -n {max(4096, 2 * soft)}) or run fewer hooks in it"
    )


def _soft_limit() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


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


#: The key of the base file that names its journal (see :class:`HookStore`).
_TOKEN = "journal"


def _empty() -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "account": "", "hooks": [], "subscriptions": []}


class _State:
    """The store as last read: the base file's data, and the journal applied over it."""

    __slots__ = ("base", "hooks", "journal", "offset", "stale", "subscriptions", "token", "top", "torn")

    def __init__(self, base: tuple[int, int, int] | None, data: dict[str, Any]):
        self.base = base  # (inode, mtime, size) of the base file read; None: no file
        self.token = str(data.pop(_TOKEN, "") or "")
        self.hooks: dict[str, Any] = {}
        for record in data.pop("hooks"):
            self._put(record)
        self.subscriptions: dict[tuple[str, str], None] = dict.fromkeys(
            (str(s), str(n)) for s, n in data.pop("subscriptions", None) or ()
        )
        self.top = data  # version, account, and what a later version may add
        self.journal: int | None = None  # inode of the journal applied
        self.offset = 0  # bytes of it applied (complete lines)
        self.torn = False  # its end is a line cut by a crash
        self.stale = False  # its header names another base: it is ignored

    def _put(self, record: Any) -> None:
        key = record.get("id") if isinstance(record, dict) else None
        if not isinstance(key, str) or key in self.hooks:
            key = f"\0{len(self.hooks)}"  # (no id, or a second one: kept as it is, never changed)
        self.hooks[key] = record

    def apply(self, line: bytes, changed: set[str]) -> None:
        """Apply one journal line (a line that does not parse, cut by a crash, is skipped)."""
        try:
            op = json.loads(line)
        except ValueError:
            return
        if not isinstance(op, dict):
            return
        if "put" in op and isinstance(op["put"], dict) and isinstance(op["put"].get("id"), str):
            record = op["put"]
            self.hooks[record["id"]] = record  # (in place if it was there)
            changed.add(record["id"])
        elif "del" in op and isinstance(op["del"], list):
            for hook_id in op["del"]:
                if self.hooks.pop(str(hook_id), None) is not None:
                    changed.add(str(hook_id))
        elif "sub" in op and isinstance(op["sub"], list) and len(op["sub"]) == 2:
            key = (str(op["sub"][0]), str(op["sub"][1]))
            if op.get("ours"):
                self.subscriptions[key] = None
            else:
                self.subscriptions.pop(key, None)

    def data(self) -> dict[str, Any]:
        """The whole store as its base file holds it (a copy)."""
        return copy.deepcopy(self.top) | {
            "hooks": copy.deepcopy(list(self.hooks.values())),
            "subscriptions": [list(key) for key in self.subscriptions],
        }


class HookStore:
    """The persistent hooks of one account (its bare JID).

    **A base file and a journal.** ``hooks-ACCOUNT.json`` (the base, in the format
    older versions read) is rewritten whole only now and then; each change is one line
    appended to ``hooks-ACCOUNT.journal`` (``{"put": RECORD}``, ``{"del": [IDS]}``,
    ``{"sub": [SERVICE, NODE], "ours": BOOL}``), one ``write`` then an fsync under the
    exclusive lock, as durable and as atomic as the base's rewrite was (a line cut by a
    crash is skipped, and the next writer starts a new line). Reading applies the
    journal over the base; when the journal grows past the base's size (and
    :data:`COMPACT_AFTER`), it is folded into a new base, written atomically, and
    removed. So a change costs the same at the 10,000th hook as at the 10th.

    The journal's first line names the base it applies to (``{"journal": TOKEN}``, the
    base holding the same ``"journal"``); a journal naming another base (the base was
    rewritten by a version before issue 25, which knows no journal, or restored from
    elsewhere) is stale and ignored, then replaced by the next change.

    **Reading is incremental.** The store keeps what it read (:class:`_State`) and, at
    each read, reads again only what was appended to the journal since; the base is read
    again only when it was replaced. :meth:`take_changes` says which records changed
    since its last call (the coordinator's follower applies only those).
    """

    #: Journal bytes never compacted below, whatever the base's size.
    COMPACT_AFTER = 64 * 1024

    def __init__(self, account: str, data_dir: Path | str | None = None):
        self.account = account
        self.files = AccountFiles.of(account, data_dir)
        self.data_dir = self.files.data_dir
        self.path = self.files.hooks
        self.journal_path = self.files.hooks_journal
        self._lock_path = self.files.hooks_lock
        self._state: _State | None = None
        self._changed: set[str] = set()  # record keys changed since take_changes
        self._all_changed = True  # the base was read again since take_changes

    # ------------------------------------------------------------------ reading

    def _read_base(self) -> tuple[tuple[int, int, int] | None, dict[str, Any]]:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None, _empty() | {"account": self.account}
        except OSError as exc:
            raise _os_error(exc, f"cannot read the hook store {self.path}") from None
        try:
            info = os.fstat(fd)
            with os.fdopen(fd, "rb", closefd=False) as file:
                raw = file.read()
        except OSError as exc:
            raise _os_error(exc, f"cannot read the hook store {self.path}") from None
        finally:
            os.close(fd)
        try:
            data = json.loads(raw.decode("utf-8"))
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
            subscriptions = data.get("subscriptions") or []
            if not all(isinstance(s, list) and len(s) == 2 for s in subscriptions):
                raise ValueError("its subscriptions are not [service, node] pairs")
        except ValueError as exc:  # (UnicodeDecodeError too)
            raise StoreDamaged(
                f"the hook store {self.path} is damaged ({exc}); move it aside to start "
                "afresh, or repair it",
                self.path,
            ) from None
        return (info.st_ino, info.st_mtime_ns, info.st_size), data

    def _refresh(self) -> _State:
        """The store now: the base read again if it was replaced, then what was
        appended to the journal since the last read."""
        check_private(self.data_dir, "directory")
        check_private(self.path, "file")
        state = self._state
        try:
            info = os.stat(self.path)
            base = (info.st_ino, info.st_mtime_ns, info.st_size)
        except FileNotFoundError:
            base = None
        except OSError as exc:
            raise _os_error(exc, f"cannot read the hook store {self.path}") from None
        if state is None or base != state.base:
            state = self._fresh()
        if not self._read_journal(state):  # replaced under what was applied: read all again
            state = self._fresh()
            self._read_journal(state)
        self._state = state
        return state

    def _fresh(self) -> _State:
        self._state = None  # (until the journal is read too)
        self._all_changed = True
        return _State(*self._read_base())

    def _read_journal(self, state: _State) -> bool:
        """Apply what was appended to the journal since ``state`` read it; False when
        it was replaced under lines already applied (read the base again)."""
        try:
            fd = os.open(self.journal_path, os.O_RDONLY)
        except FileNotFoundError:
            if state.offset and not state.stale:
                return False
            state.journal, state.offset, state.torn, state.stale = None, 0, False, False
            return True
        except OSError as exc:
            raise _os_error(exc, f"cannot read the hook store's journal {self.journal_path}") from None
        try:
            info = os.fstat(fd)
            if state.journal != info.st_ino or info.st_size < state.offset:
                if state.offset and not state.stale:
                    return False
                state.journal, state.offset, state.stale = info.st_ino, 0, False
            if state.stale or info.st_size == state.offset:
                return True
            os.lseek(fd, state.offset, os.SEEK_SET)
            with os.fdopen(fd, "rb", closefd=False) as file:
                tail = file.read()
        except OSError as exc:
            raise _os_error(exc, f"cannot read the hook store's journal {self.journal_path}") from None
        finally:
            os.close(fd)
        end = tail.rfind(b"\n") + 1
        lines = tail[:end].splitlines()
        if state.offset == 0 and lines:
            header = lines.pop(0)
            try:
                token = json.loads(header).get("journal")
            except (ValueError, AttributeError):
                token = None
            if token != state.token:
                state.stale = True  # (of another base: ignored, replaced at the next change)
                return True
        for line in lines:
            state.apply(line, self._changed)
        state.offset += end
        state.torn = end < len(tail)
        return True

    def load(self) -> dict[str, Any]:
        """The stored data (hooks and the subscriptions we made); empty if no file.
        A copy: changing it changes nothing stored."""
        return self._refresh().data()

    def hooks(self) -> list[dict[str, Any]]:
        """The hook records this version can run (see :meth:`newer_hooks`)."""
        return [copy.deepcopy(h) for h in self._refresh().hooks.values() if not _newer(h)]

    def newer_hooks(self) -> list[dict[str, Any]]:
        """The hook records that need a newer pubsub_hook_magic: not to be run here."""
        return [copy.deepcopy(h) for h in self._refresh().hooks.values() if _newer(h)]

    def subscriptions(self) -> set[tuple[str, str]]:
        """The subscriptions this extension made (to remove with the last hook)."""
        return set(self._refresh().subscriptions)

    def take_changes(self) -> dict[str, dict[str, Any] | None] | None:
        """The hook records changed since the last call, by id (None: removed, or one
        a newer version needs), whoever changed them; None when the base file was read
        again (anything may have changed: compare every record, :meth:`hooks`)."""
        state = self._refresh()
        everything, changed = self._all_changed, self._changed
        self._all_changed, self._changed = False, set()
        if everything:
            return None
        out: dict[str, dict[str, Any] | None] = {}
        for key in changed:
            record = state.hooks.get(key)
            out[key] = copy.deepcopy(record) if isinstance(record, dict) and not _newer(record) else None
        return out

    def set_aside(self) -> Path:
        """Move a damaged store file out of the way (kept, never overwritten); return
        where it went (its journal goes beside it, ``.journal`` added)."""
        with self._locked():
            aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            n = 1
            while aside.exists():
                aside = aside.with_name(f"{aside.name}.{n}")
                n += 1
            os.replace(self.path, aside)
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.journal_path, aside.with_name(aside.name + ".journal"))
            self._state = None
            return aside

    # ------------------------------------------------------------------ writing

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._ensure_dir()
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            if exc.errno in _EXHAUSTED:
                raise out_of_descriptors(f"cannot lock the hook store {self.path}") from None
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
        """Apply ``change(data)`` to the whole stored data under the lock, then write
        it whole (a new base; the journal folded in). For changes the methods below do
        not cover: they cost one journal line each."""
        with self._locked():
            data = self._refresh().data()  # a newer format raises StoreTooNew: nothing is written
            data["account"] = self.account
            data.setdefault("version", FORMAT_VERSION)
            result = change(data)
            self._write(data)
            return result

    def _journal(self, ops: Callable[[_State], list[dict[str, Any]]]) -> Any:
        """Under the lock: ``ops(state)`` says the journal lines of a change (none: no
        change); they are appended in one ``write``, fsynced, and applied."""
        with self._locked():
            state = self._refresh()
            lines = ops(state)
            if not lines:
                return
            if state.base is None or "version" not in state.top:
                # (the base file says which accounts have a store, and its format)
                self._write(state.data() | {"account": self.account, "version": FORMAT_VERSION}, folded=True)
                state = self._refresh()
            text = "".join(json.dumps(op, ensure_ascii=False) + "\n" for op in lines)
            if state.torn:
                text = "\n" + text  # (after a line cut by a crash: a line of its own)
            fresh = state.journal is None or state.stale
            if fresh:
                text = json.dumps({_TOKEN: state.token}) + "\n" + text
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if fresh else 0)
            try:
                fd = os.open(self.journal_path, flags, 0o600)
                try:
                    os.write(fd, text.encode("utf-8"))
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise _os_error(exc, f"cannot write to {self.data_dir}", writing=True) from None
            self._read_journal(state)
            size = state.base[2] if state.base is not None else 0
            if state.offset > max(self.COMPACT_AFTER, size):
                self._write(state.data(), folded=True)

    def compact(self) -> None:
        """Fold the journal into the base now (it is done by itself as it grows)."""
        with self._locked():
            state = self._refresh()
            if state.journal is not None:
                self._write(state.data(), folded=True)

    def add_hook(self, record: dict[str, Any]) -> None:
        self._journal(lambda _state: [{"put": record}])

    def replace_hook(self, record: dict[str, Any]) -> None:
        """Store ``record`` in place of the stored hook with its id (its code changed)."""
        self._journal(lambda state: [{"put": record}] if isinstance(state.hooks.get(record["id"]), dict) else [])

    def remove_hooks(self, ids: set[str]) -> int:
        found: list[str] = []

        def ops(state: _State) -> list[dict[str, Any]]:
            found[:] = [i for i in ids if isinstance(state.hooks.get(i), dict)]
            return [{"del": sorted(found)}] if found else []

        self._journal(ops)
        return len(found)

    def _change(self, hook_id: str, change: Callable[[dict[str, Any]], bool]) -> None:
        """Journal the stored hook ``hook_id`` as ``change(copy)`` made it (if it says
        it changed something)."""

        def ops(state: _State) -> list[dict[str, Any]]:
            record = state.hooks.get(hook_id)
            if not isinstance(record, dict):
                return []
            record = copy.deepcopy(record)
            return [{"put": record}] if change(record) else []

        self._journal(ops)

    def set_paused(self, hook_id: str, paused: bool) -> None:
        """Store whether a hook is paused (every process of the account follows it)."""

        def change(record: dict[str, Any]) -> bool:
            if bool(record.get("paused")) == paused:
                return False
            if paused:
                record["paused"] = True
            else:
                record.pop("paused", None)
            return True

        self._change(hook_id, change)

    def request_retry(self, hook_id: str, item_id: str | None) -> None:
        """Ask the process that runs a hook to retry its failed items (see
        :mod:`.persistence`)."""

        def change(record: dict[str, Any]) -> bool:
            record["retry_request"] = {"at": time.time(), "item": item_id}
            return True

        self._change(hook_id, change)

    def clear_retry_request(self, hook_id: str, request: Any) -> None:
        """The request was carried out (unless another came meanwhile)."""

        def change(record: dict[str, Any]) -> bool:
            if record.get("retry_request") != request:
                return False
            del record["retry_request"]
            return True

        self._change(hook_id, change)

    def set_subscription(self, service: str, node: str, ours: bool) -> None:
        def ops(state: _State) -> list[dict[str, Any]]:
            if ((service, node) in state.subscriptions) == ours:
                return []
            return [{"sub": [service, node], "ours": ours}]

        self._journal(ops)

    def _ensure_dir(self) -> None:
        try:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the hook store directory {self.data_dir}: {exc.strerror}; "
                "set PUBSUB_HOOK_DATA_DIR to a writable directory"
            ) from None

    def _write(self, data: dict[str, Any], folded: bool = False) -> None:
        """(Under the lock.) Write ``data`` as the new base, with a new journal token,
        and remove the journal (folded in; ``folded``: nothing else changed)."""
        data = dict(data)
        data.pop(_TOKEN, None)
        token = secrets.token_hex(8)
        try:
            write_atomically(self.path, json.dumps(data | {_TOKEN: token}, indent=1, ensure_ascii=False), fsync=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.journal_path)
        except OSError as exc:
            raise _os_error(exc, f"cannot write to {self.data_dir}", writing=True) from None
        everything = self._all_changed
        self._state = None
        self._refresh()
        if folded:
            self._all_changed = everything


def _os_error(exc: OSError, what: str, writing: bool = False) -> StoreError:
    if exc.errno in _EXHAUSTED:
        return out_of_descriptors(what)
    if writing:
        return StoreError(f"{what}: {exc.strerror}; set PUBSUB_HOOK_DATA_DIR to a writable directory")
    return StoreError(f"{what}: {exc.strerror}")


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
    :class:`PositionStore`): one ``write`` per line, no fsync. Its descriptor is opened
    on demand and closed when the store keeps too many open (:data:`PositionStore.OPEN`).

    ``lines`` counts what was written since it was last emptied (kept across closes):
    once :data:`PositionStore.FOLD_AFTER` lines were written the caller folds (writes the
    whole state) and calls :meth:`clear`."""

    __slots__ = ("fd", "lines", "path")

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None
        self.lines = 0

    def open(self) -> int:
        if self.fd is None:
            try:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            except FileNotFoundError:
                make_private_dir(self.path.parent)
                self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return self.fd

    def clear(self) -> None:
        """Empty it (its lines are folded into the file)."""
        self.lines = 0
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
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
        except OSError as exc:
            if exc.errno in _EXHAUSTED:
                raise out_of_descriptors(f"cannot read {path}") from None
            return []


class PositionStore:
    """The last items each persistent hook ran: a small file per hook, and a journal.

    Each run appends one line to the hook's journal (``HOOK.journal``: one ``write``,
    no fsync): a killed process loses nothing the operating system already has, so
    after a crash only the item that was running runs again. At most :data:`OPEN`
    journals are open at once (the least recently written is closed, and opened again
    at its next line): thousands of hooks hold no descriptor each. Now and then the journal
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
    #: Journals kept open at most (the least recently written is closed first).
    OPEN = 64

    def __init__(self, account: str, data_dir: Path | str | None = None):
        self.files = AccountFiles.of(account, data_dir)
        self.dir = self.files.positions_dir
        self._journals: dict[str, _Journal] = {}  # hook id -> its positions' journal
        self._ids_journals: dict[str, _Journal] = {}  # hook id -> its present ids' journal
        self._open: OrderedDict[_Journal, None] = OrderedDict()  # those with a descriptor, oldest first

    def open_journals(self) -> int:
        """How many journals hold a descriptor now (at most :data:`OPEN`)."""
        return len(self._open)

    def _append(self, journal: _Journal, line: str) -> bool:
        """One ``write`` of ``line`` to ``journal``; False (nothing written) when it is
        due to be folded. Out of descriptors, every open journal is closed and the
        write tried once more before it is an error (:func:`out_of_descriptors`)."""
        if journal.lines >= self.FOLD_AFTER:
            return False
        if journal.fd is None:
            while len(self._open) >= self.OPEN:
                self._open.popitem(last=False)[0].close()
            try:
                journal.open()
            except OSError as exc:
                if exc.errno not in _EXHAUSTED:
                    raise
                self._close_open()
                try:
                    journal.open()
                except OSError as again:
                    if again.errno in _EXHAUSTED:
                        raise out_of_descriptors(f"cannot open {journal.path}") from None
                    raise
            self._open[journal] = None
        else:
            self._open.move_to_end(journal)
        os.write(journal.open(), (line + "\n").encode("utf-8"))
        journal.lines += 1
        return True

    def _close_open(self) -> None:
        while self._open:
            self._open.popitem(last=False)[0].close()

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
        if not self._append(journal, json.dumps(list(newest))):
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
        if not self._append(journal, change.replace("\n", " ")):
            self.save_ids(hook_id, ids())

    def close(self, hook_id: str | None = None) -> None:
        """Close the journals of one hook (of every hook with None)."""
        for journals in (self._journals, self._ids_journals):
            for key in [hook_id] if hook_id is not None else list(journals):
                journal = journals.pop(key, None)
                if journal is not None:
                    self._open.pop(journal, None)
                    journal.close()

    def remove(self, hook_id: str) -> None:
        self.close(hook_id)
        for path in self.files.hook_position_files(hook_id):
            with contextlib.suppress(OSError):
                path.unlink()
