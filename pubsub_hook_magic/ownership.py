"""Which process of this machine runs each persistent hook of an account.

Several processes may hold one account's persistent hooks at once: a notebook's kernel,
another notebook, the ``pubsub-hook run`` service. Each hook runs in one of them; the
others keep it in ``standby`` and say where it runs.

It rests on ``flock`` locks in the data directory, which the kernel drops when their
process dies, SIGKILL included (no heartbeat file for a crash to leave behind), and
which exclude two open files of one process too:

* ``owners-ACCOUNT/hooks.locks``: one byte per hook (at an offset hashed from its id),
  locked by the process that runs it, with Linux's open-file-description locks
  (``F_OFD_SETLK``: released when the process dies, and excluding two open files of
  one process, as ``flock``). One descriptor per process, whatever the number of hooks
  (a descriptor per hook stopped the 1,011th under the common limit of 1,024). A standby
  process tries the hook's byte now and then, and takes the hook over when the owner
  lets go. ``owners-ACCOUNT/HOOK.lock`` says who runs it ("pubsub-hook run, pid 4242"),
  written when the hook is taken and read only while its byte is locked. (Versions
  before issue 25 held a ``flock`` on ``HOOK.lock`` instead: run one version per account
  on a machine.)
* ``owners-ACCOUNT/service.lock``: held by the account's ``pubsub-hook run``, the
  deployment: while it runs, a kernel leaves to it the hooks it can load (its text
  lists those it cannot, which stay with a kernel).
* ``claims-ACCOUNT/PID-N.claim``: the nodes each live process has hooks on, so that a
  subscription, which belongs to the account, is only removed when no process of the
  machine still needs it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import itertools
import json
import os
import struct
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
        self._owned: set[str] = set()  # the hooks whose byte of hooks.locks we lock
        self._hooks_fd: int | None = None  # hooks.locks, opened at the first try
        self._service_fd: int | None = None
        self._claim_fd: int | None = None
        self._claim_path: Path | None = None
        self._claimed: frozenset[tuple[str, str]] | None = None
        self._claim_size = 0  # bytes of the claim file
        self._claim_lines = 0  # its journal lines after the whole list

    # ------------------------------------------------------------------ hooks

    def _path(self, hook_id: str) -> Path:
        return self.files.owner_lock(hook_id)

    def owns(self, hook_id: str) -> bool:
        return hook_id in self._owned

    def _hooks_lock(self) -> int:
        if self._hooks_fd is None:
            path = self.files.owner_locks
            try:
                self._hooks_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            except FileNotFoundError:
                make_private_dir(self.dir)
                self._hooks_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._hooks_fd

    def try_own(self, hook_id: str) -> bool:
        """Take the hook's lock if no process holds it; True if this process runs it."""
        if hook_id in self._owned:
            return True
        if not _range_lock(self._hooks_lock(), _offset(hook_id), fcntl.F_WRLCK):
            return False
        self._owned.add(hook_id)
        try:
            fd = os.open(self._path(hook_id), os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                _write(fd, self.me)
            finally:
                os.close(fd)
        except OSError:
            pass  # (only who runs it is not said)
        return True

    def release(self, hook_id: str) -> None:
        """Let another process run the hook (its lock is dropped)."""
        if hook_id in self._owned:
            self._owned.discard(hook_id)
            if self._hooks_fd is not None:
                _range_lock(self._hooks_fd, _offset(hook_id), fcntl.F_UNLCK)

    def owner(self, hook_id: str) -> str | None:
        """Who runs the hook ("kernel, pid 4243"); None when no process does."""
        if hook_id in self._owned:
            return self.me
        if not self.files.owner_locks.exists() or not _range_locked(self._hooks_lock(), _offset(hook_id)):
            return None
        with contextlib.suppress(OSError):
            return self._path(hook_id).read_text(encoding="utf-8").strip() or "another process"
        return "another process"

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
        """Say which nodes this process has hooks on. The claim file is a journal: the
        nodes added and removed since the last call are appended (``["+", SERVICE,
        NODE]`` or ``["-", ...]``, a line each, one write), and the file is written
        whole (one line, the list of nodes) only when its journal outgrows the list;
        so a hook more costs the same at the 10,000th as at the 10th."""
        nodes = frozenset(nodes)
        claimed = self._claimed
        if nodes == claimed:
            return
        if self._claim_fd is None:
            make_private_dir(self.claims_dir)
            self._claim_path = self.files.claim(os.getpid(), next(_claims))
            self._claim_fd = _try_lock(self._claim_path, self.claims_dir)
        fd = self._claim_fd
        if fd is not None:
            if claimed is None or self._claim_lines > 2 * len(nodes) + 64:
                text = json.dumps(sorted(nodes)) + "\n"
                _write(fd, text)
                self._claim_size, self._claim_lines = len(text.encode("utf-8")), 0
            else:
                lines = [json.dumps(["-", *key]) for key in claimed - nodes]
                lines += [json.dumps(["+", *key]) for key in nodes - claimed]
                data = "".join(line + "\n" for line in lines).encode("utf-8")
                os.pwrite(fd, data, self._claim_size)
                self._claim_size += len(data)
                self._claim_lines += len(lines)
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
                if key in _read_claim(path.read_text(encoding="utf-8")):
                    return True
        return False

    # ------------------------------------------------------------------ the end

    def close(self) -> None:
        """Drop every lock and claim of this process."""
        self._owned.clear()
        for fd in (self._hooks_fd, self._service_fd, self._claim_fd):
            if fd is not None:
                os.close(fd)
        if self._claim_path is not None:
            with contextlib.suppress(OSError):
                self._claim_path.unlink()
        self._hooks_fd = self._service_fd = self._claim_fd = None
        self._claim_path = self._claimed = None


def _read_claim(text: str) -> set[tuple[str, str]]:
    """The nodes a claim file names: its whole list, then its journal (a line cut
    while being written is skipped)."""
    nodes: set[tuple[str, str]] = set()
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, list) or not entry:
            continue
        if isinstance(entry[0], list):  # the whole list (the only line of older versions)
            nodes = {(str(s), str(n)) for s, n in entry}
        elif entry[0] == "+" and len(entry) == 3:
            nodes.add((str(entry[1]), str(entry[2])))
        elif entry[0] == "-" and len(entry) == 3:
            nodes.discard((str(entry[1]), str(entry[2])))
    return nodes


#: ``struct flock`` of Linux (l_type, l_whence, l_start, l_len, l_pid, padding).
_FLOCK = struct.Struct("hhqqixxxx")


def _offset(hook_id: str) -> int:
    """The byte of ``hooks.locks`` that stands for a hook (56 bits of a hash of its id:
    two ids of an account meet with a chance of about N^2 / 2^57)."""
    return int.from_bytes(hashlib.blake2b(hook_id.encode("utf-8"), digest_size=7).digest(), "big")


def _range_lock(fd: int, offset: int, kind: int) -> bool:
    """Lock (``F_WRLCK``) or unlock (``F_UNLCK``) one byte with an open-file-description
    lock; False if another open file holds it."""
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _FLOCK.pack(kind, os.SEEK_SET, offset, 1, 0))
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _range_locked(fd: int, offset: int) -> bool:
    """Whether another open file holds the byte's lock."""
    got = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0))
    return _FLOCK.unpack(got)[0] != fcntl.F_UNLCK


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

