"""Where the log records of the package and of slixmpp go in a notebook.

Both log through :mod:`logging` (``pubsub_hook_magic.*``, ``slixmpp.*``), mostly from
the session's thread. A record that meets no handler on its way to the root logger is
printed by Python's last resort (``logging.lastResort``) on stderr, and in a kernel
stderr is the cell that happens to have run last: "nothing is printed from the
background into your cells" would not hold.

:class:`RecentRecords` is a handler of our own, put on both loggers by the extension:
with it, a record always meets a handler, so the last resort never prints it, and it
keeps the last records for ``%hook log`` and the live table's header. The loggers still
propagate: a user who configures ``logging`` (``basicConfig``, handlers of their own on
the root logger or on ours) receives every record as before.
"""

from __future__ import annotations

import contextlib
import collections
import logging
import re
import threading
import time
from dataclasses import dataclass
from collections.abc import Callable

__all__ = ["LOGGERS", "LogEntry", "RecentRecords", "install", "printable", "uninstall"]

#: The loggers whose records are kept (and never printed by the last resort).
LOGGERS = ("pubsub_hook_magic", "slixmpp")

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters (terminal escapes…) shown as ``\\xNN``: a
    record may quote what a server or a publisher sent."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One record, as text."""

    created: float
    level: int
    level_name: str
    logger: str
    message: str

    def line(self) -> str:
        """``12:01:03 WARNING pubsub_hook_magic.runner: message`` (escaped)."""
        when = time.strftime("%H:%M:%S", time.localtime(self.created))
        return printable(f"{when} {self.level_name} {self.logger}: {self.message}")


class RecentRecords(logging.Handler):
    """Keeps the last ``capacity`` records; tells listeners of each new one."""

    def __init__(self, capacity: int = 200):
        super().__init__(level=logging.NOTSET)
        self.records: collections.deque[LogEntry] = collections.deque(maxlen=capacity)
        self._listeners: list[Callable[[LogEntry], None]] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[0] is not None:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            entry = LogEntry(record.created, record.levelno, record.levelname, record.name, message)
        except Exception:
            return
        with self._guard:
            self.records.append(entry)
            listeners = list(self._listeners)
        for listener in listeners:
            with contextlib.suppress(Exception):
                listener(entry)

    def recent(self, count: int | None = None, level: int = logging.NOTSET) -> list[LogEntry]:
        """The last ``count`` records at ``level`` or above, oldest first."""
        with self._guard:
            entries = [e for e in self.records if e.level >= level]
        return entries[-count:] if count else entries

    def last(self, level: int = logging.WARNING) -> LogEntry | None:
        with self._guard:
            return next((e for e in reversed(self.records) if e.level >= level), None)

    def add_listener(self, listener: Callable[[LogEntry], None]) -> None:
        with self._guard:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[LogEntry], None]) -> None:
        with self._guard:
            if listener in self._listeners:
                self._listeners.remove(listener)


_HANDLER: RecentRecords | None = None
_INSTALL = threading.Lock()


def install() -> RecentRecords:
    """Put the one :class:`RecentRecords` on the package's and slixmpp's loggers (once
    per process) and return it."""
    global _HANDLER
    with _INSTALL:
        if _HANDLER is None:
            _HANDLER = RecentRecords()
        for name in LOGGERS:
            logger = logging.getLogger(name)
            if _HANDLER not in logger.handlers:
                logger.addHandler(_HANDLER)
        return _HANDLER


def uninstall() -> None:
    """Take the handler off the loggers again (``%unload_ext``)."""
    with _INSTALL:
        if _HANDLER is not None:
            for name in LOGGERS:
                logging.getLogger(name).removeHandler(_HANDLER)
