"""The native node: the node API over the OS's TCP, without a signaling server.

What :func:`~unisockets.net.node.open_node` gives for ``signaling_url=None``
(docs/concepts.md, "Nodes"): the same methods as an overlay node, with OS
sockets underneath.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from .._nursery import open_owned_nursery
from ..protocol.planner import DEFAULT_BACKLOG, check_address, check_port
from ..protocol.socket_states import check_local_host
from .addresses import Address
from .base import Binding, Node, SocketOptionList
from .datagram import DatagramSocket
from .datagram_native import NativeDatagramSocket
from .listeners import NativeListener, wrap_native_stream
from .streams import SocketStream

__all__ = ["NativeNode"]


class NativeNode(Node):
    """The native fallback: the same API over the OS's TCP (no signaling server).

    Created by ``open_node(None)``. Streams and listeners it made are closed
    when the node closes, as with an overlay node.
    """

    def __init__(self, host: str, nursery: trio.Nursery) -> None:
        self._host = host
        self._nursery = nursery
        self._resources: set[trio.abc.AsyncResource] = set()

    @property
    def address(self) -> str:
        """The host address given to :func:`open_node` (default ``"127.0.0.1"``)."""
        return self._host

    async def bind(
        self, port: int, host: str = "", *, socket_options: SocketOptionList = ()
    ) -> Binding:
        """Bind an OS TCP socket on ``(address, port)``, with ``SO_REUSEADDR`` on.

        Args:
            port: 0..65535.
            host: ``""``, ``"0.0.0.0"``, ``"localhost"`` or :attr:`address`.

        Raises:
            OSError: from the OS, e.g. ``EADDRINUSE``; ``EINVAL`` for a bad
                port; ``EADDRNOTAVAIL`` for another ``host``.
        """
        check_port(port)
        check_local_host(check_address((host, port))[0], self.address)
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
        try:
            sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
            for level, optname, value in socket_options:
                sock.setsockopt(level, optname, value)
            await sock.bind((self._host, port))
        except BaseException:
            sock.close()
            raise
        return _NativeBinding(self, sock)

    async def connect(
        self, address: Address, *, socket_options: SocketOptionList = ()
    ) -> SocketStream:
        """Connect over OS TCP.

        Args:
            address: ``(host, port)``.
            socket_options: ``(level, optname, value)`` set on the OS socket
                before connecting.

        Raises:
            OSError: from the OS, e.g. ``ECONNREFUSED``; ``EINVAL`` for a bad address.
        """
        host, port = check_address(address)
        if host in ("", "0.0.0.0"):
            host = self._host
        # One literal IPv4 address: a plain socket connect reports the OS's
        # errno (trio.open_tcp_stream folds failures into one errno-less OSError).
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
        try:
            for level, optname, value in socket_options:
                sock.setsockopt(level, optname, value)
            await sock.connect((host, port))
        except BaseException:
            sock.close()
            raise
        return self._track(wrap_native_stream(trio.SocketStream(sock)))

    def _datagram_socket(self) -> DatagramSocket:
        """An OS UDP socket (:mod:`unisockets.net.datagram_native`), closed with the node."""
        sock = NativeDatagramSocket(self._host, self._resources.discard)
        self._resources.add(sock)
        return sock

    def _track(self, stream: SocketStream) -> SocketStream:
        self._resources.add(stream)
        stream.add_close_callback(lambda: self._resources.discard(stream))
        return stream

    async def _close(self) -> None:
        with trio.CancelScope(shield=True):
            for resource in list(self._resources):
                await trio.aclose_forcefully(resource)

    def __repr__(self) -> str:
        return f"<NativeNode {self._host}>"


class _NativeBinding(Binding):
    def __init__(self, node: NativeNode, sock: trio.socket.SocketType) -> None:
        self._node = node
        self.os_socket = sock
        host, port = sock.getsockname()[:2]
        self.address = (host, port)

    def listen(self, backlog: int = DEFAULT_BACKLOG) -> NativeListener:
        sock = self.os_socket
        assert sock is not None
        sock.listen(backlog)
        listener = NativeListener(trio.SocketListener(sock), self._node._track)
        self._node._resources.add(listener)
        return listener

    def close(self) -> None:
        if self.os_socket is not None:
            self.os_socket.close()


@asynccontextmanager
async def _open_native_node(host: str) -> AsyncIterator[NativeNode]:
    async with open_owned_nursery() as nursery:
        node = NativeNode(host, nursery)
        try:
            yield node
        finally:
            await node._close()
