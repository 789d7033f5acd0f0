"""A TCP proxy on loopback that puts a distance between a client and a server.

Standard library only (and the package's :class:`~pubsub_hook_magic.loopthread.LoopThread`);
not used by the product. It forwards ``127.0.0.1:port`` to a target and can:

* **delay** each direction by ``delay`` seconds: every chunk is queued with its arrival
  time and forwarded ``delay`` later, in order; chunks are not serialised (a burst
  arrives ``delay`` later as a burst), so a round trip through it costs ``2 * delay``
  and N requests sent at once cost one round trip, as on a real long link;
* **count** the bytes forwarded in each direction (:meth:`traffic`, :meth:`reset_traffic`,
  from any thread);
* **cut** every live connection at once (RST, as a dead network) and **block** new ones
  (:meth:`cut`, :meth:`block`, :meth:`unblock`), without stopping the server.

::

    with TcpProxy(server.host, server.port, delay=0.025) as proxy:   # 50 ms round trip
        ...connect to ("127.0.0.1", proxy.port)...
        proxy.reset_traffic()
        ...
        print(proxy.traffic().to_client, "bytes from the server")

It runs on its own loop thread, so the loops of the client and the server under test
are never slowed down by it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import struct
import threading
from typing import Any, NamedTuple

from ..loopthread import LoopThread

__all__ = ["TcpProxy", "Traffic"]

#: SO_LINGER on, 0 s: close() then sends RST instead of FIN (a connection that dies).
_LINGER_RST = struct.pack("ii", 1, 0)


class Traffic(NamedTuple):
    """Bytes forwarded since the last reset, per direction."""

    to_server: int  # client -> server
    to_client: int  # server -> client
    #: Client -> server flights: bytes from the client after bytes from the server
    #: (or first): how many times the client waited for an answer, i.e. round trips.
    flights: int = 0


_EOF = object()  # queued: the sender shut down its side (FIN): shut down the peer's
_CLOSE = object()  # queued: the sender's connection is gone: close the peer's


class _Pipe(asyncio.Protocol):
    """One side of a proxied connection: what it receives goes to the other side's
    transport ``delay`` seconds later, in order."""

    def __init__(self, proxy: TcpProxy, conn: _Conn, to_client: bool):
        self.proxy = proxy
        self.conn = conn
        self.to_client = to_client  # True on the server side: its data goes to the client
        self.transport: asyncio.Transport | None = None
        self.queue: collections.deque[tuple[float, Any]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None
        self.eof_forwarded = False

    @property
    def peer(self) -> _Pipe:
        return self.conn.server if self is self.conn.client else self.conn.client

    # -- the side this protocol reads

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self is self.conn.client:
            self.conn.accepted()

    def data_received(self, data: bytes) -> None:
        self._enqueue(data)

    def eof_received(self) -> bool:
        self._enqueue(_EOF)
        return True  # keep our write side open: the other direction may still flow

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.conn.aborted:
            self._enqueue(_CLOSE)  # what is on its way still arrives, then the peer closes
            self.peer.queue.clear()  # what was on its way to us has nowhere to go
        self.conn.lost(self)

    # -- flow control: a full write buffer on our transport pauses the peer's reads

    def pause_writing(self) -> None:
        peer = self.peer.transport
        if peer is not None and not peer.is_closing():
            peer.pause_reading()

    def resume_writing(self) -> None:
        peer = self.peer.transport
        if peer is not None and not peer.is_closing():
            peer.resume_reading()

    # -- forwarding

    def _enqueue(self, data: Any) -> None:
        self.queue.append((asyncio.get_running_loop().time() + self.proxy.delay, data))
        if self.timer is None:
            self.flush()

    def flush(self) -> None:
        """Forward every chunk that is due, in order; wake up again for the next one."""
        self.timer = None
        dest = self.peer.transport
        if dest is None:  # the server side is not connected yet: open_upstream calls again
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        queue = self.queue
        while queue and queue[0][0] <= now:
            data = queue.popleft()[1]
            if dest.is_closing():
                continue
            if data is _CLOSE:
                dest.close()
            elif data is _EOF:
                self.eof_forwarded = True
                if self.peer.eof_forwarded or not dest.can_write_eof():
                    dest.close()  # both directions are finished
                    if self.transport is not None:
                        self.transport.close()
                else:
                    dest.write_eof()
            else:
                # Counted first: whoever has received these bytes sees them counted.
                self.proxy.count(self.to_client, len(data))
                dest.write(data)
        if queue:
            self.timer = loop.call_at(queue[0][0], self.flush)

    def abort(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()
        transport = self.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            transport.abort()


class _Conn:
    """A client's connection and the proxy's connection to the target for it."""

    def __init__(self, proxy: TcpProxy):
        self.proxy = proxy
        self.client = _Pipe(proxy, self, to_client=False)
        self.server = _Pipe(proxy, self, to_client=True)
        self.aborted = False
        self._lost: set[_Pipe] = set()

    def accepted(self) -> None:
        if self.proxy.blocked:
            self.abort()
            return
        self.proxy.track(self, True)
        asyncio.get_running_loop().create_task(self._open_upstream())

    async def _open_upstream(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: self.server, *self.proxy.target)
        except OSError:
            self.abort()
            return
        if self.aborted:  # cut while connecting
            self.server.abort()
            return
        self.client.flush()  # what the client sent meanwhile (and its close), when due

    def lost(self, pipe: _Pipe) -> None:
        self._lost.add(pipe)
        if self.aborted or len(self._lost) == 2:
            self.proxy.track(self, False)

    def abort(self) -> None:
        self.aborted = True
        self.proxy.track(self, False)
        self.client.abort()
        self.server.abort()


class TcpProxy:
    """Forwards ``host:port`` (127.0.0.1, a free port by default) to ``target``.

    :param delay: seconds added to each direction (a round trip costs twice that);
        may be changed at any time (chunks already queued keep their due time).
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "tcp-proxy",
    ):
        if delay < 0:
            raise ValueError("delay must be >= 0")
        self.target = (target_host, target_port)
        self.delay = float(delay)
        self.blocked = False
        self._lock = threading.Lock()
        self._to_server = 0
        self._to_client = 0
        self._flights = 0
        self._last_to_client: bool | None = None
        self._conns: set[_Conn] = set()
        self.thread = LoopThread(name=name)
        try:
            self.server = self.thread.run(self._start(host, port), 10)
        except BaseException:
            self.thread.stop()
            raise
        self.host, self.port = self.server.sockets[0].getsockname()[:2]

    async def _start(self, host: str, port: int) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(self._accept, host, port)

    def _accept(self) -> asyncio.Protocol:
        return _Conn(self).client

    def track(self, conn: _Conn, open_: bool) -> None:
        """A connection opened (``open_``) or ended (the loop's thread)."""
        if open_:
            self._conns.add(conn)
        else:
            self._conns.discard(conn)

    # -- counters (any thread)

    def count(self, to_client: bool, n: int) -> None:
        """``n`` bytes forwarded (by a pipe, before it writes them)."""
        with self._lock:
            if to_client:
                self._to_client += n
            else:
                self._to_server += n
                if self._last_to_client is not False:
                    self._flights += 1
            self._last_to_client = to_client

    def traffic(self) -> Traffic:
        """Bytes forwarded in each direction since the start or the last reset."""
        with self._lock:
            return Traffic(self._to_server, self._to_client, self._flights)

    def reset_traffic(self) -> Traffic:
        """Zero the counters; returns their values just before (atomically)."""
        with self._lock:
            before = Traffic(self._to_server, self._to_client, self._flights)
            self._to_server = self._to_client = self._flights = 0
            self._last_to_client = None
            return before

    @property
    def connections(self) -> int:
        """Live proxied connections."""
        return len(self._conns)

    # -- faults (any thread but the proxy's own)

    def cut(self) -> None:
        """Drop every open connection at once (RST, what is queued is lost), as a dead
        network would."""

        async def cut() -> None:
            for conn in list(self._conns):
                conn.abort()

        self.thread.run(cut(), 10)

    def block(self) -> None:
        """Refuse new connections (accepted, then reset) and cut the live ones."""
        self.blocked = True
        self.cut()

    def unblock(self) -> None:
        self.blocked = False

    def close(self) -> None:
        """Cut every connection, stop listening and stop the loop thread."""
        if not self.thread.alive:
            return

        async def close() -> None:
            self.server.close()
            for conn in list(self._conns):
                conn.abort()

        try:
            self.thread.run(close(), 5)
        finally:
            self.thread.stop()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<TcpProxy {self.host}:{self.port} -> {self.target[0]}:{self.target[1]} "
                f"delay={self.delay:g}s{' blocked' if self.blocked else ''}>")
