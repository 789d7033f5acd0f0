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
question is ``<r/>`` and the answer ``<a h=…/>`` (:func:`ack`), without it an
XEP-0199 ping. Cost, measured with the fault proxy's byte counters over STARTTLS on
Prosody 0.12 and ejabberd 23.01 (``python -m benchmarks.resumption``; TCP/IP headers not
counted): one ``<r/>``/``<a/>`` round is 103 bytes on both (59 bytes of XML, 27 out and
32 in, and a 22-byte TLS 1.3 record each way), 514 rounds an hour, about 53 KB an hour;
a ping round is 262 bytes on Prosody and 276 on ejabberd, about 135-142 KB an hour.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any, NamedTuple

__all__ = ["PROBE_DEADLINE", "PROBE_INTERVAL", "SmCounters", "ack", "answers", "counters", "enable", "enabled"]

log = logging.getLogger(__name__)

#: Seconds between two probes of the link while the session is up.
PROBE_INTERVAL = 7.0
#: Seconds the server has to answer a probe before the stream is dropped as dead.
PROBE_DEADLINE = 5.0
#: slixmpp's plugin, and how many stanzas it sends before asking for an ack.
PLUGIN = "xep_0198"
WINDOW = 5
_probes = itertools.count(1)


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


async def ack(client: Any, deadline: float) -> bool:
    """Send ``<r/>``; True when the server's ``<a/>`` came within ``deadline`` seconds.

    The handler of ``<a/>`` is a slixmpp ``Waiter``, registered for this probe only:
    slixmpp matches every stanza against every handler, so a lasting one would cost
    something per item."""
    from slixmpp.plugins.xep_0198 import stanza
    from slixmpp.xmlstream.handler import Waiter
    from slixmpp.xmlstream.matcher import MatchXPath

    sm = _plugin(client)
    if sm is None:
        return True
    waiter = Waiter(f"xep_0198 probe {next(_probes)}", MatchXPath(stanza.Ack.tag_name()))
    client.register_handler(waiter)
    sm.request_ack()
    try:
        # (it removes itself; slixmpp annotates the timeout as int, any number of seconds works)
        return await waiter.wait(deadline) is not None  # type: ignore[arg-type]
    except asyncio.CancelledError:
        client.remove_handler(waiter.name)
        raise


async def answers(client: Any, deadline: float) -> bool:
    """Whether the server shows a sign of life within ``deadline`` seconds: an ``<a/>``
    for our ``<r/>`` when the stream has stream management, else an answer to an
    XEP-0199 ping (an error reply is an answer too)."""
    from slixmpp.exceptions import IqError, IqTimeout

    if enabled(client):
        return await ack(client, deadline)
    try:
        await client.plugin["xep_0199"].send_ping(client.boundjid.domain, timeout=deadline)
    except IqTimeout:
        return False
    except IqError:
        pass
    return True
