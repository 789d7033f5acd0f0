"""Several accounts in one process, as Libervia's profiles: one :class:`.HookManager`
per account, all on the one session loop, held by :class:`Accounts`.

Each account keeps its own session, store, positions, dead letters, ownership and
subscriptions (its manager's); one account's failure never delays another's hooks. What
is shared: the loop, the namespace the hooks' code runs in, and the hook ids (unique
across accounts, so that ``%hook pause ID`` needs no account).

A command names its account with ``-p/--profile ACCOUNT``: the bare JID, or its local
part when no other connected account has the same (:meth:`Accounts.resolve`). Without
it, the default account: the one made default (``%hook connect --default``), else the
preferred one when it is connected (``%config HookMagics.default_profile``), else the
first one connected.

Inside a hook, ``host`` is the hook's own account's manager and ``host.accounts`` these
accounts: ``host.accounts["bot@example.org"].client`` publishes as the bot.

Changed on the session's loop (the kernel's thread reads each manager's snapshot).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from .hooks import HookError

if TYPE_CHECKING:
    from .manager import HookManager

__all__ = ["Accounts"]

log = logging.getLogger(__name__)


class Accounts(Mapping[str, "HookManager"]):
    """The accounts of one process, by bare JID, in the order they were added."""

    def __init__(self) -> None:
        self._managers: dict[str, HookManager] = {}
        self._default: str | None = None
        self._preferred = ""
        self._listeners: list[Callable[[], None]] = []
        #: Every manager, the default first: replaced whole at each change, so that
        #: other threads (completion, the magics) read one consistent tuple.
        self._published: tuple[HookManager, ...] = ()

    # ------------------------------------------------------------------ the mapping

    def __getitem__(self, account: str) -> HookManager:
        return self._managers[account]

    def __iter__(self) -> Iterator[str]:
        return iter(self._managers)

    def __len__(self) -> int:
        return len(self._managers)

    def managers(self) -> list[HookManager]:
        """Every account's manager, the default first, then in the order added (safe
        from any thread: read from the tuple published at the last change)."""
        return list(self._published)

    def __repr__(self) -> str:
        return f"<Accounts {', '.join(self._managers) or '(none)'}; default {self.default}>"

    # ------------------------------------------------------------------ which account

    @property
    def default(self) -> str | None:
        """The account a command without ``-p`` is for: the one made default, else the
        preferred one if connected, else the first one added (None: no account)."""
        if self._default in self._managers:
            return self._default
        preferred = self._find(self._preferred) if self._preferred else None
        if preferred is not None:
            return preferred
        return next(iter(self._managers), None)

    def set_default(self, account: str) -> None:
        """Make ``account`` (connected: a JID or a local part) the default."""
        self._default = self.resolve(account).jid
        self._changed()

    @property
    def preferred(self) -> str:
        """The account preferred as default whenever it is connected ("": none)."""
        return self._preferred

    def prefer(self, profile: str | None) -> None:
        """Prefer ``profile`` (a bare JID or a local part, connected or not) as the
        default; the latest word wins over an earlier :meth:`set_default`."""
        self._preferred = (profile or "").strip()
        self._default = None
        self._changed()

    def _find(self, profile: str) -> str | None:
        """The one connected account ``profile`` names (exact, any case, or local
        part), else None."""
        if profile in self._managers:
            return profile
        lowered = profile.lower()
        for account in self._managers:
            if account.lower() == lowered:
                return account
        named = [a for a in self._managers if a.split("@", 1)[0].lower() == lowered]
        return named[0] if len(named) == 1 else None

    def resolve(self, profile: str | None = None) -> HookManager:
        """The manager of ``profile`` (a bare JID, or a local part that names one account
        only), or of the default account; a :class:`HookError` that says how to choose
        otherwise."""
        if not self._managers:
            raise HookError("not connected to an XMPP server: connect first (%hook connect JID)")
        if profile is None or profile == "":
            default = self.default
            assert default is not None
            return self._managers[default]
        wanted = profile.strip()
        found = self._find(wanted)
        if found is not None:
            return self._managers[found]
        lowered = wanted.lower()
        named = [a for a in self._managers if a.split("@", 1)[0].lower() == lowered]
        known = ", ".join(self._managers)
        if named:
            raise HookError(f"-p {profile}: several accounts are {profile} ({', '.join(named)}): give the whole JID")
        raise HookError(f"-p {profile}: no such account connected (connected: {known})")

    # ------------------------------------------------------------------ changes

    def add(self, manager: HookManager) -> None:
        """A connected account (its ``jid`` set)."""
        account = manager.jid
        if account is None:
            raise ValueError("a manager joins the accounts once connected")
        self._managers[account] = manager
        self._changed()

    def remove(self, account: str) -> HookManager | None:
        manager = self._managers.pop(account, None)
        if manager is not None:
            if self._default == account:
                self._default = None
            self._changed()
        return manager

    def hook_id_taken(self, hook_id: str) -> bool:
        """Whether any account has a hook of this id (ids are unique across accounts)."""
        return any(hook_id in manager.runners for manager in self._managers.values())

    def find_hook(self, hook_id: str) -> HookManager | None:
        """The account that has the hook ``hook_id``, if any."""
        for manager in self._managers.values():
            if hook_id in manager.runners:
                return manager
        return None

    def choose(self, profile: str | None = None, hook_id: str | None = None) -> HookManager | None:
        """The account a command is for (on the session's loop): ``profile``'s
        (:meth:`resolve`), else the one that has the hook ``hook_id``, else the
        default; None when no account is connected and no ``profile`` is given."""
        if profile:
            return self.resolve(profile)
        if hook_id:
            found = self.find_hook(hook_id)
            if found is not None:
                return found
        if not self._managers:
            return None
        return self.resolve()

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` when an account is added or removed, or the default changes."""
        self._listeners.append(listener)

    def remove_change_listener(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _changed(self) -> None:
        default = self.default
        self._published = tuple(sorted(self._managers.values(), key=lambda m: m.jid != default))
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                log.exception("accounts listener failed")
