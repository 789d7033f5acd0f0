"""The items a hook could not run: its dead letters.

An item whose run still fails after the hook's retries (``--retry N``; with the
default of 0, every failed item) is kept here with what went wrong: the item (its id,
publisher and payload as XML text), the error and its traceback, how many attempts
were made, and when it first and last failed. ``%hook failed ID`` lists them,
``%hook retry ID`` runs them again (once the code is fixed) and removes those that
succeed, ``%hook retry ID --discard`` drops them.

Temporary hooks keep theirs in memory. A persistent hook keeps them in a file beside
the positions, ``failed-ACCOUNT/HOOK.jsonl`` in the store's directory (mode 0600, its
directory 0700), so they survive restarts: one JSON object per line, oldest first,
appended at each failure and rewritten atomically when letters are retried or
discarded. A line ``{"dropped": N}`` says how many older letters the bound pushed out.

They are bounded (``limit``, 1000 by default): past it the oldest are dropped and
counted (:attr:`DeadLetters.dropped`). Writes take an exclusive ``flock`` and re-read
a file another process changed first, so ``pubsub-hook failed`` and ``retry --discard``
may work on the file while a kernel appends to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from collections.abc import Collection, Iterable, Iterator

from .hooks import HookError
from .accountfiles import AccountFiles
from .store import make_private_dir, write_atomically
from .trigger import payload_text

__all__ = ["DeadLetter", "DeadLetters", "dead_letters_dir"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DeadLetter:
    """One item a hook could not run, and why."""

    item_id: str | None
    publisher: str | None
    payload: str | None  # the item's payload, as XML text
    error: str | None  # "ValueError: message"
    traceback: str | None
    attempts: int
    first_failed: float  # wall-clock times
    last_failed: float
    outcome: str = "error"  # "error" or "timeout" (of the last attempt)
    seq: int = 0  # unique among the hook's dead letters, in order of arrival

    @classmethod
    def of(cls, trigger: Any, attempts: int, first_failed: float | None = None) -> DeadLetter:
        """The dead letter of a failed ``trigger`` (see :class:`.runner.Trigger`)."""
        now = time.time()
        return cls(
            item_id=trigger.item_id,
            publisher=trigger.publisher,
            payload=payload_text(trigger.payload),
            error=trigger.error,
            traceback=trigger.traceback,
            attempts=attempts,
            first_failed=first_failed if first_failed is not None else now,
            last_failed=now,
            outcome=str(trigger.outcome),
        )

    def failed_again(self, trigger: Any) -> None:
        """Another attempt (``%hook retry``) failed: record it."""
        self.attempts += 1
        self.last_failed = time.time()
        self.error, self.traceback, self.outcome = trigger.error, trigger.traceback, str(trigger.outcome)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeadLetter:
        return cls(
            item_id=_opt_str(data.get("item_id")),
            publisher=_opt_str(data.get("publisher")),
            payload=_opt_str(data.get("payload")),
            error=_opt_str(data.get("error")),
            traceback=_opt_str(data.get("traceback")),
            attempts=int(data.get("attempts") or 1),
            first_failed=float(data.get("first_failed") or 0.0),
            last_failed=float(data.get("last_failed") or 0.0),
            outcome=str(data.get("outcome") or "error"),
            seq=int(data.get("seq") or 0),
        )

    def item(self) -> Any:
        """The item rebuilt as an ``<item/>`` stanza, to run the hook on it again."""
        from slixmpp.plugins.xep_0060.stanza.pubsub_event import EventItem
        from slixmpp.xmlstream import ET

        item = EventItem()
        if self.item_id:
            item["id"] = self.item_id
        if self.payload:
            item["payload"] = ET.fromstring(self.payload)
        if self.publisher:
            item["publisher"] = self.publisher
        return item


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def dead_letters_dir(account: str, data_dir: Path | str | None = None) -> Path:
    """Where an account's persistent hooks keep their dead letters: beside the
    positions (:class:`.store.PositionStore`)."""
    return AccountFiles.of(account, data_dir).dead_letters_dir


class DeadLetters:
    """The dead letters of one hook: in memory, and in ``path`` when given.

    :param limit: how many are kept; past it the oldest are dropped and counted.
    :param path: the hook's file (persistent hooks); read at once if it exists.
    """

    def __init__(self, limit: int = 1000, path: Path | None = None):
        self.limit = max(1, int(limit))
        self.path = path
        self._letters: list[DeadLetter] = []
        #: How many older letters the bound pushed out.
        self.dropped = 0
        self._next_seq = 1
        self._file_lines = 0  # letters in the file (it may hold a few past the limit)
        self._signature: tuple[int, int, int] | None = None  # the file as last read or written
        if path is not None:
            self._refresh()

    @classmethod
    def for_hook(
        cls, account: str, hook_id: str, data_dir: Path | str | None = None, limit: int = 1000
    ) -> DeadLetters:
        """The file-backed dead letters of the persistent hook ``hook_id``."""
        return cls(limit, AccountFiles.of(account, data_dir).dead_letters(hook_id))

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        self._refresh()
        return len(self._letters)

    def letters(self, item_id: str | None = None) -> list[DeadLetter]:
        """The dead letters, oldest first; only those of item ``item_id`` when given (a
        :class:`HookError` if there is none)."""
        self._refresh()
        if item_id is None:
            return list(self._letters)
        chosen = [letter for letter in self._letters if letter.item_id == item_id]
        if not chosen:
            raise HookError(f"item {item_id!r} is not among the hook's failed items: list them with failed ID")
        return chosen

    # ------------------------------------------------------------------ changing

    def add(self, letter: DeadLetter) -> None:
        """Keep ``letter`` (the oldest letter goes if the bound is reached)."""
        with self._locked():
            letter.seq = self._next_seq
            self._next_seq += 1
            self._letters.append(letter)
            excess = len(self._letters) - self.limit
            if excess > 0:
                del self._letters[:excess]
                self.dropped += excess
            if self.path is None:
                return
            if self._file_lines + 1 > self.limit + max(16, self.limit // 4):
                self._rewrite()  # compact: the file keeps only what is kept in memory
            else:
                self._append(letter)

    def settle(self, done: Collection[int] = (), changed: Iterable[DeadLetter] = ()) -> int:
        """Remove the letters whose ``seq`` is in ``done`` and store the new state of
        those in ``changed`` (retried and failed again), in one atomic write. Returns
        how many were removed."""
        changed_by_seq = {letter.seq: letter for letter in changed}
        with self._locked():
            before = len(self._letters)
            self._letters = [
                changed_by_seq.get(letter.seq, letter) for letter in self._letters if letter.seq not in done
            ]
            removed = before - len(self._letters)
            if self.path is not None and (removed or changed_by_seq):
                self._rewrite()
            return removed

    def delete(self) -> None:
        """Forget every letter and remove the file (the hook is deleted)."""
        self._letters.clear()
        self.dropped = 0
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self._signature = None
            self._file_lines = 0

    # ------------------------------------------------------------------ the file

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive, across processes, for a read-modify-write of the file."""
        if self.path is None:
            yield
            return
        try:
            make_private_dir(self.path.parent)
            fd = os.open(AccountFiles.dead_letters_lock(self.path), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:  # the write fails too, and says so; memory keeps them
            log.warning("cannot lock the dead letters in %s: %s", self.path.parent, exc.strerror)
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._refresh()
            yield
        finally:
            os.close(fd)  # releases the lock

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            info = self.path.stat()  # type: ignore[union-attr]
        except FileNotFoundError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def _refresh(self) -> None:
        """Read the file again if another process (or a restart) changed it."""
        if self.path is None:
            return
        signature = self._stat()
        if signature == self._signature:
            return
        letters: list[DeadLetter] = []
        dropped = 0
        try:
            text = self.path.read_text(encoding="utf-8") if signature is not None else ""
        except OSError as exc:
            log.warning("cannot read the dead letters in %s: %s", self.path, exc.strerror)
            return
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if "dropped" in data and "item_id" not in data:
                    dropped = int(data["dropped"])
                else:
                    letters.append(DeadLetter.from_dict(data))
            except (ValueError, TypeError, AttributeError):
                # e.g. a line cut short by a crash: skipped, the others are kept
                log.warning("%s, line %d: not a dead letter, skipped", self.path, number)
        self._file_lines = len(letters)
        excess = len(letters) - self.limit
        if excess > 0:
            del letters[:excess]
            dropped += excess
        seq = 0
        for letter in letters:  # numbered in order even if the file was edited
            seq = letter.seq = max(letter.seq, seq + 1)
        self._letters, self.dropped = letters, dropped
        self._next_seq = seq + 1
        self._signature = signature

    def _append(self, letter: DeadLetter) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # type: ignore[arg-type]
            try:
                os.write(fd, (json.dumps(letter.as_dict(), ensure_ascii=False) + "\n").encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("cannot store a dead letter in %s: %s (kept in memory)", self.path, exc.strerror)
            return
        self._file_lines += 1
        self._signature = self._stat()

    def _rewrite(self) -> None:
        lines = [json.dumps({"dropped": self.dropped})] if self.dropped else []
        lines += [json.dumps(letter.as_dict(), ensure_ascii=False) for letter in self._letters]
        try:
            if lines:
                write_atomically(self.path, "".join(line + "\n" for line in lines), fsync=False)  # type: ignore[arg-type]
            else:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()  # type: ignore[union-attr]
        except OSError as exc:
            log.warning("cannot store the dead letters in %s: %s (kept in memory)", self.path, exc.strerror)
            return
        self._file_lines = len(self._letters)
        self._signature = self._stat()
