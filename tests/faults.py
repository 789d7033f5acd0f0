"""Fault injection: a TCP proxy between the session and the server that can drop
every connection (a network failure) without stopping the server.

The proxy is :class:`pubsub_hook_magic.testing.proxy.TcpProxy` (also used, with a delay,
to put the server at a distance): :meth:`~TcpProxy.cut` drops the connections,
:meth:`~TcpProxy.block` refuses new ones until :meth:`~TcpProxy.unblock`.
"""

from __future__ import annotations

from pubsub_hook_magic.testing.proxy import TcpProxy, Traffic

__all__ = ["TcpProxy", "Traffic"]
