"""Other machines running the same account's persistent hooks.

On one machine, OS locks give each persistent hook one owner (:mod:`.ownership`). Across
machines (a notebook on a laptop, ``pubsub-hook run`` on a server) they cannot: there,
a session that runs persistent hooks says so in its service discovery features
(:data:`FEATURE`, with a tag of its machine and data directory), and looks at the other
resources of its account as they come online. One that runs persistent hooks from
another machine (or another store) is reported: "alice@example.org/laptop also runs
persistent hooks: items may run twice".
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .background import TaskSet

__all__ = ["FEATURE", "PeerWatch", "machine_tag"]

log = logging.getLogger(__name__)

#: Advertised by a session that runs persistent hooks.
FEATURE = "urn:xmpp:pubsub-hook-magic:persistent:0"
_TAG = FEATURE + "#"


def machine_tag(data_dir: Path) -> str:
    """Names this machine and store: processes with the same tag share OS locks."""
    machine = ""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with contextlib.suppress(OSError):
            machine = Path(path).read_text().strip()
            break
    text = f"{socket.gethostname()}|{machine}|{Path(data_dir).resolve()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class PeerWatch:
    """Advertises that this session runs persistent hooks, and warns about others.

    :param on_warning: called with each new warning (on the session's loop).
    """

    def __init__(self, client: Any, tag: str, on_warning: Callable[[str], None]):
        self.client = client
        self.tag = tag
        self.on_warning = on_warning
        #: Warnings about other resources, by their full JID.
        self.warnings: dict[str, str] = {}
        self._tasks = TaskSet()  # the resources being asked about
        disco = client.plugin["xep_0030"]
        disco.add_feature(FEATURE)
        disco.add_feature(_TAG + tag)
        client.add_event_handler("presence_available", self._on_presence)
        client.add_event_handler("presence_unavailable", self._on_gone)

    def close(self) -> None:
        client = self.client
        client.del_event_handler("presence_available", self._on_presence)
        client.del_event_handler("presence_unavailable", self._on_gone)
        disco = client.plugin["xep_0030"]
        with contextlib.suppress(Exception):
            disco.del_feature(feature=FEATURE)
            disco.del_feature(feature=_TAG + self.tag)
        self._tasks.cancel_all()

    def _on_presence(self, presence: Any) -> None:
        sender = presence["from"]
        me = self.client.boundjid
        if sender.bare != me.bare or sender.full == me.full:
            return
        self._tasks.start(self._look_at(sender.full))

    def _on_gone(self, presence: Any) -> None:
        self.warnings.pop(presence["from"].full, None)

    async def _look_at(self, full_jid: str) -> None:
        try:
            info = await self.client.plugin["xep_0030"].get_info(jid=full_jid, timeout=15)
        except Exception:  # a resource that does not answer runs no hooks of ours
            return
        features = set(info["disco_info"]["features"])
        if FEATURE not in features or _TAG + self.tag in features:
            return  # none, or on this machine and store: the OS locks keep one owner
        if full_jid not in self.warnings:
            warning = f"{full_jid} also runs persistent hooks: items may run twice"
            self.warnings[full_jid] = warning
            log.warning("%s", warning)
            self.on_warning(warning)
