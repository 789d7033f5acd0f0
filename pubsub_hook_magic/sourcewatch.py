"""Reloading a hook's code when its file is edited on disk (``python_file`` and
``python`` module hooks): a broken edit keeps the previous version running."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from .hooks import Hook, HookError, source_path

__all__ = ["SourceWatch"]

log = logging.getLogger(__name__)

#: Seconds between two checks of a hook's file for edits while items keep coming (the
#: first item after a pause is always checked).
CHECK_EVERY = 1.0


class SourceWatch:
    """The file a hook's code comes from, checked for edits before a run."""

    __slots__ = ("_checked", "_mtime", "hook", "loader", "path", "reload_error", "reloads")

    def __init__(self, hook: Hook, loader: Callable[[Hook], Callable[..., Any]] | None):
        self.hook = hook
        self.loader = loader
        #: The file (None: nothing to watch).
        self.path = source_path(hook) if loader is not None else None
        self._mtime = _mtime(self.path)
        self._checked: float | None = time.perf_counter()  # None: check at the next run
        #: Why the last edit could not be loaded (the previous version keeps running).
        self.reload_error: str | None = None
        self.reloads = 0

    def check_next_run(self) -> None:
        """Check at the next run whatever the time (idle, or the file may have just
        been edited)."""
        self._checked = None

    def before_run(self) -> None:
        """At most once a second while items keep coming: reload if the file changed."""
        if self.path is None:
            return
        checked, now = self._checked, time.perf_counter()
        if checked is None or now - checked >= CHECK_EVERY:
            self._checked = now
            self._check()

    def _check(self) -> None:
        mtime = _mtime(self.path)
        if mtime == self._mtime:
            return
        self._mtime = mtime
        if mtime is None:
            self.reload_error = f"{self.path} is gone; the loaded version keeps running"
            return
        assert self.loader is not None
        try:
            self.hook.func = self.loader(self.hook)
        except HookError as exc:
            edited = time.strftime("%H:%M", time.localtime(mtime / 1e9))
            # Shown as "runs the previous version: the edit at 12:01 does not load: …"
            self.reload_error = f"the edit at {edited} does not load: {exc}"
            log.warning("hook %s runs the previous version: %s", self.hook.id, self.reload_error)
        else:
            self.reload_error = None
            self.reloads += 1
            log.info("hook %s reloaded from %s", self.hook.id, self.path)


def _mtime(path: str | None) -> int | None:
    if path is None:
        return None
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
