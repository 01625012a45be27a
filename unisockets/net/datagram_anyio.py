"""anyio adapters of datagram sockets: :class:`anyio.abc.UDPSocket` and ``ConnectedUDPSocket``.

They wrap any datagram socket with the calls of
:class:`~unisockets.net.DatagramSocket` (:class:`DatagramCalls`): the trio
node's (overlay or native), on anyio's trio backend like
:mod:`unisockets.net.anyio_adapters`, and the asyncio driver's
(:class:`unisockets.driver.datagrams.DatagramSocket`, what
``unisockets.aio.AioNode.socket(SOCK_DGRAM)`` gives) on anyio's asyncio
backend: the same objects on both backends. The socket's addresses are typed
attributes (:class:`anyio.abc.SocketAttribute`: ``family``,
``local_address``, ``local_port``, and for a connected socket
``remote_address`` and ``remote_port``). A closed socket raises
:class:`anyio.ClosedResourceError`, as anyio's own UDP sockets do.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn, Protocol

import anyio
import anyio.abc

__all__ = ["AnyioConnectedUDPSocket", "AnyioUDPSocket", "DatagramCalls"]

#: What ``receive`` asks for: any datagram whole (UDP's largest payload fits).
_RECEIVE_SIZE = 65536


@contextmanager
def _translate() -> Iterator[None]:
    """``EBADF`` (the socket is closed) → :class:`anyio.ClosedResourceError`."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.EBADF:
            raise anyio.ClosedResourceError from exc
        raise


class DatagramCalls(Protocol):
    """The calls the adapters use: those of every unisockets datagram socket.

    :class:`unisockets.net.DatagramSocket` (trio) and
    :class:`unisockets.driver.datagrams.DatagramSocket` (asyncio) both have them.
    """

    async def recvfrom(self, bufsize: int, /) -> tuple[bytes, tuple[str, int]]:
        """The next datagram and its sender."""
        ...

    async def recv(self, bufsize: int, /) -> bytes:
        """The next datagram's payload."""
        ...

    async def sendto(self, data: bytes, address: tuple[str, int], /) -> int:
        """Send one datagram to ``address``."""
        ...

    async def send(self, data: bytes, /) -> int:
        """Send one datagram to the connected peer."""
        ...

    def getsockname(self) -> tuple[str, int]:
        """The socket's address."""
        ...

    def getpeername(self) -> tuple[str, int]:
        """The connected peer's address."""
        ...

    async def aclose(self) -> None:
        """Close the socket."""
        ...


class _Attributes:
    socket: DatagramCalls

    @property
    def _raw_socket(self) -> NoReturn:
        raise TypeError("a unisockets datagram socket has no OS socket to expose")

    def _local_attributes(self) -> dict[Any, Callable[[], Any]]:
        sock = self.socket
        return {
            anyio.abc.SocketAttribute.family: lambda: socket.AF_INET,
            anyio.abc.SocketAttribute.local_address: sock.getsockname,
            anyio.abc.SocketAttribute.local_port: lambda: sock.getsockname()[1],
        }


class AnyioUDPSocket(_Attributes, anyio.abc.UDPSocket):
    """An :class:`anyio.abc.UDPSocket` over an (unconnected) datagram socket.

    Args:
        sock: the bound datagram socket (:class:`DatagramCalls`: trio's or
            asyncio's); closed with this object.
    """

    def __init__(self, sock: DatagramCalls) -> None:
        self.socket = sock

    async def receive(self) -> tuple[bytes, tuple[str, int]]:
        """The next datagram and its sender, ``(payload, (host, port))``.

        Raises:
            anyio.ClosedResourceError: the socket was closed.
        """
        with _translate():
            return await self.socket.recvfrom(_RECEIVE_SIZE)

    async def send(self, item: tuple[bytes, tuple[str, int]]) -> None:
        """Send ``(payload, (host, port))``.

        Raises:
            anyio.ClosedResourceError: the socket was closed.
            OSError: as :meth:`DatagramSocket.sendto` (``EMSGSIZE``, ``EINVAL``).
        """
        data, address = item
        with _translate():
            await self.socket.sendto(data, address)

    async def aclose(self) -> None:
        """Close the socket."""
        await self.socket.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """anyio typed attributes: family, local address and port."""
        return self._local_attributes()


class AnyioConnectedUDPSocket(_Attributes, anyio.abc.ConnectedUDPSocket):
    """An :class:`anyio.abc.ConnectedUDPSocket` over a connected datagram socket.

    Args:
        sock: the connected datagram socket (:class:`DatagramCalls`: trio's
            or asyncio's); closed with this object.
    """

    def __init__(self, sock: DatagramCalls) -> None:
        self.socket = sock

    async def receive(self) -> bytes:
        """The next datagram from the peer.

        Raises:
            anyio.ClosedResourceError: the socket was closed.
        """
        with _translate():
            return await self.socket.recv(_RECEIVE_SIZE)

    async def send(self, item: bytes) -> None:
        """Send one datagram to the peer.

        Raises:
            anyio.ClosedResourceError: the socket was closed.
            OSError: as :meth:`DatagramSocket.send`.
        """
        with _translate():
            await self.socket.send(item)

    async def aclose(self) -> None:
        """Close the socket."""
        await self.socket.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """anyio typed attributes: family, local and remote addresses and ports."""
        sock = self.socket
        return {
            **self._local_attributes(),
            anyio.abc.SocketAttribute.remote_address: sock.getpeername,
            anyio.abc.SocketAttribute.remote_port: lambda: sock.getpeername()[1],
        }
