"""The one place that names an account's files in the store's directory.

The directory is :func:`default_data_dir` (``$PUBSUB_HOOK_DATA_DIR``, else Jupyter's
data directory) unless a caller gives one. For the account ``ACCOUNT`` (its bare JID,
URL-quoted but for ``@.-_``) and each persistent hook ``HOOK`` (URL-quoted) it holds:

* ``hooks-ACCOUNT.json``: the account's persistent hooks (:class:`.store.HookStore`),
  ``hooks-ACCOUNT.journal``, the changes since it was last written whole, and
  ``.hooks-ACCOUNT.lock``, the lock of its read-modify-writes;
* ``positions-ACCOUNT/``: the last items each hook ran (:class:`.store.PositionStore`):
  ``HOOK.json`` and its journal ``HOOK.journal``; for a hook that runs on retractions
  the ids still on the node, ``HOOK.ids`` and its journal ``HOOK.ids.journal``;
* ``failed-ACCOUNT/``: the dead letters (:mod:`.deadletters`), ``HOOK.jsonl``, and
  ``.lock`` for their read-modify-writes;
* ``owners-ACCOUNT/``: which process runs which hook (:mod:`.ownership`): ``hooks.locks``
  (a locked byte per hook run), ``HOOK.lock`` (who runs it), and
  ``service.lock`` held by the account's ``pubsub-hook run``;
* ``claims-ACCOUNT/``: ``PID-N.claim``, the nodes each live process has hooks on.

These names are the store's format on disk: changing one loses what older versions
wrote. Imports nothing from the rest of the package.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AccountFiles", "default_data_dir", "hook_file_name", "stored_accounts"]

_HOOKS_PREFIX = "hooks-"
_HOOKS_SUFFIX = ".json"


def default_data_dir() -> Path:
    """Where stores live: ``$PUBSUB_HOOK_DATA_DIR``, else Jupyter's data directory."""
    override = os.environ.get("PUBSUB_HOOK_DATA_DIR")
    if override:
        return Path(override).expanduser()
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "pubsub_hook_magic"


def _account_name(account: str) -> str:
    return urllib.parse.quote(account, safe="@.-_")


def hook_file_name(hook_id: str) -> str:
    """A hook id as the stem of its files (every character but letters, digits and
    ``_.-~`` quoted)."""
    return urllib.parse.quote(hook_id, safe="")


def stored_accounts(data_dir: Path | str | None = None) -> list[str]:
    """The accounts (bare JIDs) that have a hook store in ``data_dir``, sorted."""
    base = Path(data_dir) if data_dir is not None else default_data_dir()
    return sorted(
        urllib.parse.unquote(path.name[len(_HOOKS_PREFIX) : -len(_HOOKS_SUFFIX)])
        for path in base.glob(f"{_HOOKS_PREFIX}*{_HOOKS_SUFFIX}")
    )


@dataclass(frozen=True)
class AccountFiles:
    """The paths of one account's files (nothing is created or read here)."""

    account: str
    data_dir: Path

    @classmethod
    def of(cls, account: str, data_dir: Path | str | None = None) -> AccountFiles:
        """``account``'s files in ``data_dir`` (default: :func:`default_data_dir`)."""
        return cls(account, Path(data_dir) if data_dir is not None else default_data_dir())

    def _dir(self, kind: str) -> Path:
        return self.data_dir / f"{kind}-{_account_name(self.account)}"

    # ---- the hook store
    @property
    def hooks(self) -> Path:
        return self.data_dir / f"{_HOOKS_PREFIX}{_account_name(self.account)}{_HOOKS_SUFFIX}"

    @property
    def hooks_journal(self) -> Path:
        """The changes since ``hooks`` was last written whole (:class:`.store.HookStore`)."""
        return self.data_dir / f"{_HOOKS_PREFIX}{_account_name(self.account)}.journal"

    @property
    def hooks_lock(self) -> Path:
        return self.data_dir / f".{_HOOKS_PREFIX}{_account_name(self.account)}.lock"

    # ---- positions
    @property
    def positions_dir(self) -> Path:
        return self._dir("positions")

    def positions(self, hook_id: str) -> Path:
        return self.positions_dir / f"{hook_file_name(hook_id)}.json"

    def positions_journal(self, hook_id: str) -> Path:
        return self.positions_dir / f"{hook_file_name(hook_id)}.journal"

    def present_ids(self, hook_id: str) -> Path:
        return self.positions_dir / f"{hook_file_name(hook_id)}.ids"

    def present_ids_journal(self, hook_id: str) -> Path:
        return self.positions_dir / f"{hook_file_name(hook_id)}.ids.journal"

    def hook_position_files(self, hook_id: str) -> tuple[Path, ...]:
        """Every file of the hook in :attr:`positions_dir`."""
        return (
            self.positions(hook_id), self.positions_journal(hook_id),
            self.present_ids(hook_id), self.present_ids_journal(hook_id),
        )

    # ---- dead letters
    @property
    def dead_letters_dir(self) -> Path:
        return self._dir("failed")

    def dead_letters(self, hook_id: str) -> Path:
        return self.dead_letters_dir / f"{hook_file_name(hook_id)}.jsonl"

    @staticmethod
    def dead_letters_lock(path: Path) -> Path:
        """The lock beside the dead-letter file ``path``."""
        return path.parent / ".lock"

    # ---- ownership
    @property
    def owners_dir(self) -> Path:
        return self._dir("owners")

    def owner_lock(self, hook_id: str) -> Path:
        """Who runs the hook (text; the lock itself is a byte of :attr:`owner_locks`)."""
        return self.owners_dir / f"{hook_file_name(hook_id)}.lock"

    @property
    def owner_locks(self) -> Path:
        """The locks of the hooks run on this machine, a byte each (:mod:`.ownership`)."""
        return self.owners_dir / "hooks.locks"  # (no HOOK.lock can have this name)

    @property
    def service_lock(self) -> Path:
        return self.owners_dir / "service.lock"

    @property
    def claims_dir(self) -> Path:
        return self._dir("claims")

    def claim(self, pid: int, n: int) -> Path:
        return self.claims_dir / f"{pid}-{n}.claim"
