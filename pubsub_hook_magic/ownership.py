"""Which process of this machine runs each persistent hook of an account.

Several processes may hold one account's persistent hooks at once: a notebook's kernel,
another notebook, the ``pubsub-hook run`` service. Each hook runs in one of them; the
others keep it in ``standby`` and say where it runs.

It rests on ``flock`` locks in the data directory, which the kernel drops when their
process dies, SIGKILL included (no heartbeat file for a crash to leave behind), and
which exclude two open files of one process too:

* ``owners-ACCOUNT/HOOK.lock``: held by the process that runs the hook; its text says
  who ("pubsub-hook run, pid 4242"). A standby process tries it now and then, and takes
  the hook over when the owner lets go.
* ``owners-ACCOUNT/service.lock``: held by the account's ``pubsub-hook run``, the
  deployment: while it runs, a kernel leaves to it the hooks it can load (its text
  lists those it cannot, which stay with a kernel).
* ``claims-ACCOUNT/PID-N.claim``: the nodes each live process has hooks on, so that a
  subscription, which belongs to the account, is only removed when no process of the
  machine still needs it.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
from pathlib import Path
from collections.abc import Iterable

from .accountfiles import AccountFiles
from .store import make_private_dir

__all__ = ["KERNEL", "SERVICE", "Ownership"]

#: The roles a process plays, as shown in "owner".
KERNEL = "kernel"
SERVICE = "pubsub-hook run"

_claims = itertools.count(1)


class Ownership:
    """The locks of one process (``role``) for one account's hooks."""

    def __init__(self, data_dir: Path, account: str, role: str = KERNEL):
        self.files = AccountFiles.of(account, data_dir)
        self.dir = self.files.owners_dir
        self.claims_dir = self.files.claims_dir
        self.role = role
        self.me = f"{role}, pid {os.getpid()}"
        self._owned: dict[str, int] = {}  # hook id -> fd holding its lock
        self._service_fd: int | None = None
        self._claim_fd: int | None = None
        self._claim_path: Path | None = None
        self._claimed: frozenset[tuple[str, str]] | None = None

    # ------------------------------------------------------------------ hooks

    def _path(self, hook_id: str) -> Path:
        return self.files.owner_lock(hook_id)

    def owns(self, hook_id: str) -> bool:
        return hook_id in self._owned

    def try_own(self, hook_id: str) -> bool:
        """Take the hook's lock if no process holds it; True if this process runs it."""
        if hook_id in self._owned:
            return True
        fd = _try_lock(self._path(hook_id), self.dir)
        if fd is None:
            return False
        _write(fd, self.me)
        self._owned[hook_id] = fd
        return True

    def release(self, hook_id: str) -> None:
        """Let another process run the hook (its lock is dropped)."""
        fd = self._owned.pop(hook_id, None)
        if fd is not None:
            os.close(fd)

    def owner(self, hook_id: str) -> str | None:
        """Who runs the hook ("kernel, pid 4243"); None when no process does."""
        if hook_id in self._owned:
            return self.me
        path = self._path(hook_id)
        fd = _try_lock(path, self.dir, create=False)
        if fd is not None:  # free: nobody runs it
            os.close(fd)
            return None
        with contextlib.suppress(OSError):
            return path.read_text(encoding="utf-8").strip() or "another process"
        return None

    # ------------------------------------------------------------------ the service

    def become_service(self) -> str | None:
        """Hold the service lock; returns who holds it instead, if another does."""
        path = self.files.service_lock
        fd = _try_lock(path, self.dir)
        if fd is None:
            with contextlib.suppress(OSError):
                return json.loads(path.read_text(encoding="utf-8")).get("owner") or "another process"
            return "another process"
        self._service_fd = fd
        self.refuse(())
        return None

    def refuse(self, hook_ids: Iterable[str]) -> None:
        """(The service) say which hooks it cannot load: kernels keep those."""
        if self._service_fd is not None:
            _write(self._service_fd, json.dumps({"owner": self.me, "refuses": sorted(hook_ids)}))

    def service(self) -> tuple[str, frozenset[str]] | None:
        """The account's running service, as (who, the hooks it refuses), or None."""
        if self._service_fd is not None:
            return None  # we are the service
        path = self.files.service_lock
        fd = _try_lock(path, self.dir, create=False)
        if fd is not None:
            os.close(fd)
            return None
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return (str(data.get("owner") or SERVICE), frozenset(data.get("refuses") or ()))
        except (OSError, ValueError, AttributeError):
            return (SERVICE, frozenset())  # being written: it refuses nothing yet

    # ------------------------------------------------------------------ claims on nodes

    def claim(self, nodes: Iterable[tuple[str, str]]) -> None:
        """Say which nodes this process has hooks on (rewritten only when it changes)."""
        nodes = frozenset(nodes)
        if nodes == self._claimed:
            return
        if self._claim_fd is None:
            make_private_dir(self.claims_dir)
            self._claim_path = self.files.claim(os.getpid(), next(_claims))
            self._claim_fd = _try_lock(self._claim_path, self.claims_dir)
        if self._claim_fd is not None:
            _write(self._claim_fd, json.dumps(sorted(nodes)))
        self._claimed = nodes

    def claimed_elsewhere(self, key: tuple[str, str]) -> bool:
        """Whether another live process of the machine has a hook on the node; stale
        claims (of dead processes) are removed on the way."""
        try:
            paths = list(self.claims_dir.glob("*.claim"))
        except OSError:
            return False
        for path in paths:
            if path == self._claim_path:
                continue
            fd = _try_lock(path, self.claims_dir, create=False)
            if fd is not None:  # its process is gone
                with contextlib.suppress(OSError):
                    path.unlink()
                os.close(fd)
                continue
            with contextlib.suppress(OSError, ValueError, TypeError):
                if list(key) in json.loads(path.read_text(encoding="utf-8")):
                    return True
        return False

    # ------------------------------------------------------------------ the end

    def close(self) -> None:
        """Drop every lock and claim of this process."""
        for hook_id in list(self._owned):
            self.release(hook_id)
        for fd in (self._service_fd, self._claim_fd):
            if fd is not None:
                os.close(fd)
        if self._claim_path is not None:
            with contextlib.suppress(OSError):
                self._claim_path.unlink()
        self._service_fd = self._claim_fd = None
        self._claim_path = self._claimed = None


def _try_lock(path: Path, directory: Path, *, create: bool = True) -> int | None:
    """An fd holding an exclusive flock on ``path``, or None if another holds it (or,
    without ``create``, if it does not exist)."""
    flags = os.O_RDWR | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        if not create:
            return None
        make_private_dir(directory)
        fd = os.open(path, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _write(fd: int, text: str) -> None:
    data = text.encode("utf-8")
    os.pwrite(fd, data, 0)
    if os.fstat(fd).st_size > len(data):  # (truncating costs about 1 ms: only if needed)
        os.ftruncate(fd, len(data))

