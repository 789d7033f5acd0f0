"""Fault injection: a TCP proxy between the session and the server that can drop
every connection (a network failure) without stopping the server."""

from __future__ import annotations

import asyncio
import socket

from pubsub_hook_magic.loopthread import LoopThread


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; :meth:`cut` drops the connections,
    :meth:`block` refuses new ones until :meth:`unblock`."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.thread = LoopThread(name="tcp-proxy")
        self.blocked = False
        self._conns: set[asyncio.StreamWriter] = set()
        self.server = self.thread.run(self._start(), 10)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _start(self) -> asyncio.AbstractServer:
        return await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.blocked:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._conns.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._conns.difference_update((writer, up_writer))

    def cut(self) -> None:
        """Drop every open connection at once (RST), as a dead network would."""

        async def cut() -> None:
            for writer in list(self._conns):
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    except OSError:
                        pass
                writer.transport.abort()
            self._conns.clear()

        self.thread.run(cut(), 10)

    def block(self) -> None:
        self.blocked = True
        self.cut()

    def unblock(self) -> None:
        self.blocked = False

    def close(self) -> None:
        async def close() -> None:
            self.server.close()

        try:
            self.thread.run(close(), 5)
        finally:
            self.thread.stop()
