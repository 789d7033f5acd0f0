"""Stream management (XEP-0198) of a session, and how a silent dead link is noticed.

Where the server offers it (Prosody's ``mod_smacks``, ejabberd's ``mod_stream_mgmt``),
the session enables slixmpp's ``xep_0198`` with resumption. What slixmpp 1.17 then does
(``plugins/xep_0198/stream_management.py``, ``xmlstream.py``), and what the session
builds on:

* Once enabled, a lost TCP connection no longer ends the session
  (``end_session_on_disconnect`` is False): ``disconnected`` fires, ``session_end`` does
  not. The session reconnects as usual; after authentication slixmpp sends
  ``<resume previd=… h=…/>`` before binding a resource.
* Resumed: slixmpp resends what the server had not acknowledged and fires
  ``session_resumed``, **not** ``session_start``. The server resends what we had not
  acknowledged. Nothing is lost or doubled (``handled`` / ``seq`` / ``last_ack``, see
  :func:`counters`), the subscriptions and presence are the old stream's: no login
  restore, no catch-up (the session does not call ``on_restored``; it counts a
  resumption).
* Not resumed (server restarted, the hibernated session timed out): slixmpp fires
  ``session_end`` (its counters start over), binds, and ``session_start`` follows: the
  session restores as after any lost login (presence, ``on_restored``: catch-up).

A silent dead link (no RST: a NAT that forgot us, a black-holed route) shows only as
silence. Every :data:`PROBE_INTERVAL` seconds the session asks the server for a sign of
life, and drops the stream when none comes within :data:`PROBE_DEADLINE` s, so such a
link is noticed within 12 s (at most interval + deadline). With stream management the
question is ``<r/>`` and the answer ``<a h=…/>`` (:class:`AckProbe`), without it an
XEP-0199 ping. Cost, measured with the fault proxy's byte counters on a plaintext
stream (``python -m benchmarks.resumption``; TCP/IP headers not counted): one
``<r/>``/``<a/>`` round is 59 bytes (27 out, 32 in), 514 rounds an hour, about 30 KB an
hour; a ping round is 218 bytes, about 112 KB an hour. Over TLS 1.3 each record adds
22 bytes (two records a round: about +23 KB an hour).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, NamedTuple

__all__ = ["PROBE_DEADLINE", "PROBE_INTERVAL", "AckProbe", "SmCounters", "counters", "enable", "enabled"]

log = logging.getLogger(__name__)

#: Seconds between two probes of the link while the session is up.
PROBE_INTERVAL = 7.0
#: Seconds the server has to answer a probe before the stream is dropped as dead.
PROBE_DEADLINE = 5.0
#: slixmpp's plugin, and how many stanzas it sends before asking for an ack.
PLUGIN = "xep_0198"
WINDOW = 5
_ACK_HANDLER = "pubsub_hook_magic sm ack"


class SmCounters(NamedTuple):
    """slixmpp's stream management counters (mod 2**32)."""

    #: Stanzas received and handled (what we acknowledge to the server).
    handled: int
    #: Stanzas sent.
    seq: int
    #: The last count of ours the server acknowledged.
    last_ack: int
    #: Sent, not yet acknowledged.
    unacked: int


def enable(client: Any) -> None:
    """Register slixmpp's xep_0198 with resumption on ``client`` (before connecting)."""
    client.register_plugin(PLUGIN, {"allow_resume": True, "window": WINDOW})


def _plugin(client: Any) -> Any:
    plugins: Any = client.plugin
    return plugins[PLUGIN] if plugins.enabled(PLUGIN) else None


def enabled(client: Any) -> bool:
    """Whether the client's current stream has stream management enabled."""
    return _plugin(client) is not None and "stream_management" in client.features


def counters(client: Any) -> SmCounters | None:
    sm = _plugin(client)
    if sm is None:
        return None
    return SmCounters(sm.handled, sm.seq, sm.last_ack, len(sm.unacked_queue))


class AckProbe:
    """``<r/>`` sent, ``<a/>`` awaited: :meth:`probe` tells whether the server answered
    within the deadline. Registers its handler of ``<a/>`` beside slixmpp's (every
    matching handler runs); :meth:`close` removes it."""

    def __init__(self, client: Any):
        from slixmpp.plugins.xep_0198 import stanza
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath

        self.client = client
        self._waiting: list[asyncio.Future[None]] = []
        client.register_handler(Callback(_ACK_HANDLER, MatchXPath(stanza.Ack.tag_name()), self._on_ack, instream=True))

    def _on_ack(self, _ack: Any) -> None:
        waiting, self._waiting = self._waiting, []
        for future in waiting:
            if not future.done():
                future.set_result(None)

    async def probe(self, deadline: float) -> bool:
        """Ask for an ack; True when one came within ``deadline`` seconds."""
        sm = _plugin(self.client)
        if sm is None:
            return True
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        sm.request_ack()
        try:
            await asyncio.wait_for(future, deadline)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.client.remove_handler(_ACK_HANDLER)
        self._on_ack(None)
