"""The loopback TCP proxy (pubsub_hook_magic.testing.proxy): delay, counters, cut, block.

Against a real TCP server on 127.0.0.1 that answers every chunk with the chunk twice
(so that the two directions carry different byte counts)."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from typing import Iterator

import pytest

from pubsub_hook_magic.testing.proxy import TcpProxy, Traffic

pytestmark = pytest.mark.timeout(60)


class _Doubler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data * 2)
        except ConnectionResetError:  # a cut
            pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def echo() -> Iterator[tuple[str, int]]:
    server = _Server(("127.0.0.1", 0), _Doubler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address
    server.shutdown()
    server.server_close()


def _connect(proxy: TcpProxy) -> socket.socket:
    sock = socket.create_connection((proxy.host, proxy.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError(f"closed after {len(out)} of {n} bytes")
        out += chunk
    return out


def _dead(sock: socket.socket) -> bool:
    """Whether the connection was dropped (reset or closed) by the other end."""
    try:
        sock.sendall(b"x")
        return sock.recv(10) == b""
    except OSError:  # ConnectionResetError, BrokenPipeError
        return True


def _refused(proxy: TcpProxy) -> bool:
    """Whether a new connection is reset (already during connect, or at once after)."""
    try:
        sock = _connect(proxy)
    except ConnectionResetError:
        return True
    with sock:
        return _dead(sock)


def _undoubled(data: bytes) -> bytes | None:
    """What the echo read, from what it sent back (each chunk twice), or None."""
    out = b""
    while data:
        for n in range(2, len(data) // 2 + 1, 2):
            if data[:n] == data[n : 2 * n]:
                out += data[:n]
                data = data[2 * n :]
                break
        else:
            return None
    return out


def test_a_round_trip_costs_twice_the_delay_and_chunks_are_not_serialised(echo):
    delay = 0.05
    with TcpProxy(*echo, delay=delay) as proxy, _connect(proxy) as sock:
        t0 = time.perf_counter()
        sock.sendall(b"ping")
        assert _recv_exactly(sock, 8) == b"pingping"
        rtt = time.perf_counter() - t0
        assert rtt >= 2 * delay
        assert rtt < 2 * delay + 0.1

        # 10 messages 10 ms apart: each answer comes 2 x delay after its question, in
        # order, so the last one ~0.09 + 0.1 s after the first send (a sleep per chunk
        # would make it >= 10 x 0.1 s).
        t0 = time.perf_counter()
        for i in range(10):
            sock.sendall(b"%02d" % i)
            time.sleep(0.01)
        got = _recv_exactly(sock, 40)
        elapsed = time.perf_counter() - t0
        # (the echo doubles each chunk it reads: on a loaded machine two sends may
        # arrive as one chunk, "0607" -> "06070607", still in order)
        assert _undoubled(got) == b"".join(b"%02d" % i for i in range(10)), got
        assert 2 * delay + 0.09 <= elapsed < 2 * delay + 0.09 + 0.2


def test_the_delay_can_be_changed_and_zero_adds_nothing(echo):
    with TcpProxy(*echo) as proxy, _connect(proxy) as sock:
        t0 = time.perf_counter()
        sock.sendall(b"a")
        _recv_exactly(sock, 2)
        assert time.perf_counter() - t0 < 0.05
        proxy.delay = 0.03
        t0 = time.perf_counter()
        sock.sendall(b"b")
        assert _recv_exactly(sock, 2) == b"bb"
        assert time.perf_counter() - t0 >= 0.06


def test_bytes_are_counted_per_direction_and_reset_from_another_thread(echo):
    with TcpProxy(*echo, delay=0.01) as proxy:
        with _connect(proxy) as sock:
            payload = bytes(range(256)) * 400  # 100 KiB: several chunks
            # Sent from a thread while this one reads: the echo (twice as much) would
            # fill the socket buffers and block a sendall that nobody reads behind.
            sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
            sender.start()
            assert _recv_exactly(sock, 2 * len(payload)) == payload * 2
            sender.join(10)
            assert proxy.traffic()[:2] == (len(payload), 2 * len(payload))

            assert proxy.reset_traffic()[:2] == (len(payload), 2 * len(payload))
            assert proxy.traffic() == Traffic(0, 0, 0)
            sock.sendall(b"abc")
            _recv_exactly(sock, 6)
            assert proxy.traffic() == Traffic(3, 6, flights=1)
        # A second connection adds to the same counters.
        with _connect(proxy) as sock:
            sock.sendall(b"12345")
            _recv_exactly(sock, 10)
        assert proxy.traffic()[:2] == (8, 16)


def test_flights_count_the_round_trips_a_client_waits_for(echo):
    with TcpProxy(*echo, delay=0.005) as proxy, _connect(proxy) as sock:
        sock.sendall(b"a")
        sock.sendall(b"b")  # the same flight: no answer came in between
        _recv_exactly(sock, 4)
        sock.sendall(b"c")  # after the answer: a second round trip
        _recv_exactly(sock, 2)
        assert proxy.traffic().flights == 2


def test_an_orderly_close_reaches_the_server_after_the_delay(echo):
    with TcpProxy(*echo, delay=0.02) as proxy:
        sock = _connect(proxy)
        sock.sendall(b"last")
        sock.shutdown(socket.SHUT_WR)  # the answer still comes back, then the close
        assert _recv_exactly(sock, 8) == b"lastlast"
        assert sock.recv(10) == b""
        sock.close()
        deadline = time.monotonic() + 5
        while proxy.connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proxy.connections == 0


def test_cut_drops_live_connections_and_new_ones_still_work(echo):
    with TcpProxy(*echo, delay=0.01) as proxy:
        a, b = _connect(proxy), _connect(proxy)
        for sock in (a, b):
            sock.sendall(b"hi")
            assert _recv_exactly(sock, 4) == b"hihi"
        assert proxy.connections == 2
        proxy.cut()
        assert proxy.connections == 0
        assert _dead(a) and _dead(b)
        with _connect(proxy) as c:
            c.sendall(b"again")
            assert _recv_exactly(c, 10) == b"againagain"
        a.close()
        b.close()


def test_block_refuses_new_connections_until_unblock(echo):
    with TcpProxy(*echo) as proxy:
        live = _connect(proxy)
        live.sendall(b"1")
        _recv_exactly(live, 2)
        proxy.block()
        assert _dead(live)  # block also cuts what is live
        assert _refused(proxy)  # accepted by the kernel, then reset
        assert proxy.connections == 0
        proxy.unblock()
        with _connect(proxy) as sock:
            sock.sendall(b"ok")
            assert _recv_exactly(sock, 4) == b"okok"
        live.close()


def test_a_target_that_refuses_resets_the_client():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with TcpProxy("127.0.0.1", port) as proxy:
        assert _refused(proxy)
