"""Persistent hooks on disk, one JSON file per account.

The file lives in ``$PUBSUB_HOOK_DATA_DIR`` or else in Jupyter's data directory
(``jupyter --data-dir``), under ``pubsub_hook_magic/``. Every change is a
read-modify-write under an exclusive ``flock`` (two kernels on one account lose no
update), written to a temporary file that replaces the old one atomically. Every file
written there has mode 0600 and the directory 0700: the store holds code that runs at
every ``connect``. Passwords are never stored.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Iterator

from .hooks import HookError

__all__ = ["HookStore", "StoreError", "default_data_dir"]

FORMAT_VERSION = 1


class StoreError(HookError):
    """The store cannot be read or written; the message says what to do."""


def default_data_dir() -> Path:
    """Where stores live: ``$PUBSUB_HOOK_DATA_DIR``, else Jupyter's data directory."""
    override = os.environ.get("PUBSUB_HOOK_DATA_DIR")
    if override:
        return Path(override).expanduser()
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "pubsub_hook_magic"


def _empty() -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "account": "", "hooks": [], "subscriptions": []}


class HookStore:
    """The persistent hooks of one account (its bare JID)."""

    def __init__(self, account: str, data_dir: Path | str | None = None):
        self.account = account
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        name = urllib.parse.quote(account, safe="@.-_")
        self.path = self.data_dir / f"hooks-{name}.json"
        self._lock_path = self.data_dir / f".hooks-{name}.lock"

    # ------------------------------------------------------------------ reading

    def load(self) -> dict[str, Any]:
        """The stored data (hooks and the subscriptions we made); empty if no file."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return _empty() | {"account": self.account}
        except OSError as exc:
            raise StoreError(f"cannot read the hook store {self.path}: {exc.strerror}") from None
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or not isinstance(data.get("hooks"), list):
                raise ValueError("not a hook store")
        except ValueError as exc:
            raise StoreError(
                f"the hook store {self.path} is damaged ({exc}); move it aside to start "
                "afresh, or repair it"
            ) from None
        data.setdefault("subscriptions", [])
        return data

    def hooks(self) -> list[dict[str, Any]]:
        return list(self.load()["hooks"])

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
            data = self.load()
            data["account"] = self.account
            result = change(data)
            self._write(data)
            return result

    def add_hook(self, record: dict[str, Any]) -> None:
        self.update(lambda data: data["hooks"].append(record))

    def remove_hooks(self, ids: set[str]) -> int:
        def change(data: dict[str, Any]) -> int:
            before = len(data["hooks"])
            data["hooks"] = [h for h in data["hooks"] if h.get("id") not in ids]
            return before - len(data["hooks"])

        return self.update(change)

    def subscriptions(self) -> set[tuple[str, str]]:
        """The subscriptions this extension made (to remove with the last hook)."""
        return {tuple(s) for s in self.load()["subscriptions"]}  # type: ignore[misc]

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
        text = json.dumps(data, indent=1, ensure_ascii=False)
        try:
            fd, tmp = tempfile.mkstemp(dir=self.data_dir, prefix=".hooks-", suffix=".tmp")
        except OSError as exc:
            raise StoreError(
                f"cannot write to {self.data_dir}: {exc.strerror}; set PUBSUB_HOOK_DATA_DIR "
                "to a writable directory"
            ) from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:  # mkstemp: mode 0600
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
