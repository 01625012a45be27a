"""Datagram sockets (``SOCK_DGRAM``): UDP's API on a node, overlay or native.

``sock = node.socket(unisockets.SOCK_DGRAM)`` gives a :class:`DatagramSocket`:
:class:`~unisockets.net.datagram_overlay.OverlayDatagramSocket` on a
unisockets network (datagrams on the unreliable, unordered data channel of
each peer link, docs/protocol.md, "Datagrams"), or
:class:`~unisockets.net.datagram_native.NativeDatagramSocket` over the OS's
UDP for ``open_node(None)``. Both have the calls and errnos of a Linux UDP
socket (udp(7)): message boundaries are kept, nothing is retransmitted, and
what does not fit a receive queue is dropped.

The calls are async, in the spirit of :mod:`trio.socket`; ``close`` is
synchronous (and ``aclose`` too exists), and ``with`` / ``async with`` close
the socket. :mod:`unisockets.net.datagram_anyio` wraps them as
:class:`anyio.abc.UDPSocket` and :class:`anyio.abc.ConnectedUDPSocket`.
"""

from __future__ import annotations

import socket as _stdlib_socket
from abc import abstractmethod
from typing import TYPE_CHECKING

import trio

from ..protocol.datagram import check_recv_size
from ..protocol.socket_options import BlockingMode, timeout_error
from ..protocol.socket_shapes import SocketContext
from .addresses import Address

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["SOCK_DGRAM", "DatagramSocket", "check_recv_size"]

SOCK_DGRAM = _stdlib_socket.SOCK_DGRAM


class DatagramSocket(SocketContext, BlockingMode, trio.abc.AsyncResource):
    """A UDP-like socket on a node (``AF_INET``, ``SOCK_DGRAM``); see the module docstring.

    Create it with :meth:`unisockets.net.Node.socket`.

    Attributes:
        family: always ``AF_INET``.
        type: always ``SOCK_DGRAM``.
    """

    family = _stdlib_socket.AF_INET
    type = SOCK_DGRAM

    @abstractmethod
    async def bind(self, address: Address) -> None:
        """Bind to ``(host, port)`` on this node (port 0: an ephemeral port).

        Raises:
            OSError: ``EADDRINUSE`` (a datagram socket has the port),
                ``EADDRNOTAVAIL`` (not this node's address), ``EINVAL``
                (already bound, bad address), ``EBADF`` (closed).
        """

    @abstractmethod
    async def connect(self, address: Address) -> None:
        """Set the default destination and only accept datagrams from it (udp(7)).

        Binds an ephemeral port first if the socket is not bound. May be
        called again to change the peer.

        Raises:
            OSError: ``EINVAL`` (bad address, port 0), ``EBADF`` (closed).
        """

    async def sendto(self, data: Buffer, address: Address) -> int:
        """Send one datagram to ``address``; binds an ephemeral port first if unbound.

        Datagrams may be lost and may arrive out of order; a datagram to an
        unreachable node or an unbound port is dropped silently, as with UDP.

        Returns:
            ``len(data)``.

        Raises:
            OSError: ``EMSGSIZE`` (over :attr:`max_payload`), ``EINVAL`` (bad
                address), ``EBADF`` (closed).
        """
        return await self._send(data, address)

    async def send(self, data: Buffer) -> int:
        """Send one datagram to the connected peer.

        Returns:
            ``len(data)``.

        Raises:
            OSError: ``EDESTADDRREQ`` (not connected), and as :meth:`sendto`.
        """
        return await self._send(data, None)

    @abstractmethod
    async def _send(self, data: Buffer, address: Address | None) -> int:
        """Send to ``address``, or to the connected peer for None."""

    async def recvfrom(self, bufsize: int) -> tuple[bytes, Address]:
        """Receive the next datagram, waiting for one (at most the socket's timeout).

        ``settimeout``/``setblocking`` work as in :mod:`socket` for the
        receiving calls (``recvfrom``, ``recv``); sending waits only while
        the channel's buffer is full.

        Args:
            bufsize: the most bytes to return; the rest of a longer datagram
                is lost (recv(2)).

        Returns:
            ``(payload, (host, port))`` of the sender.

        Raises:
            ValueError: negative ``bufsize``.
            OSError: ``EBADF`` (closed, also while waiting).
            BlockingIOError: timeout ``0`` and no datagram queued.
            TimeoutError: the timeout passed.
        """
        check_recv_size(bufsize)
        timeout = self._timeout
        if timeout is None:
            return await self._recvfrom(bufsize)
        got = self._recvfrom_nowait(bufsize)
        if got is None and timeout > 0:
            with trio.move_on_after(timeout):
                return await self._recvfrom(bufsize)
        if got is None:
            await trio.lowlevel.checkpoint()
            raise timeout_error(timeout, "recvfrom")
        await trio.lowlevel.cancel_shielded_checkpoint()
        return got

    @abstractmethod
    async def _recvfrom(self, bufsize: int) -> tuple[bytes, Address]:
        """The next datagram, waiting as long as needed."""

    @abstractmethod
    def _recvfrom_nowait(self, bufsize: int) -> tuple[bytes, Address] | None:
        """The next datagram if one is queued, else None (``EBADF`` once closed)."""

    async def recv(self, bufsize: int) -> bytes:
        """Receive the next datagram's payload (as :meth:`recvfrom`, without the sender)."""
        return (await self.recvfrom(bufsize))[0]

    @abstractmethod
    def getsockname(self) -> Address:
        """This socket's ``(host, port)``; ``("0.0.0.0", 0)`` before bind.

        Raises:
            OSError: ``EBADF`` when closed.
        """

    @abstractmethod
    def getpeername(self) -> Address:
        """The connected peer's ``(host, port)``.

        Raises:
            OSError: ``ENOTCONN`` when not connected, ``EBADF`` when closed.
        """

    @property
    @abstractmethod
    def max_payload(self) -> int:
        """The largest payload :meth:`sendto` takes, bytes (``EMSGSIZE`` beyond)."""

    @abstractmethod
    def close(self) -> None:
        """Close the socket and free its port at once; idempotent. Waiting calls raise ``EBADF``."""

    async def aclose(self) -> None:
        """Close the socket (as :meth:`close`); idempotent."""
        self.close()
        await trio.lowlevel.checkpoint()
