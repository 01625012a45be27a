"""Datagram sockets of the native node: OS UDP sockets behind :class:`DatagramSocket`'s API.

What ``open_node(None).socket(SOCK_DGRAM)`` gives: a :mod:`trio.socket` UDP
socket, with the same calls and errnos as an overlay datagram socket
(:mod:`unisockets.net.datagram`). The OS decides the errnos (``EMSGSIZE``,
``EADDRINUSE``, ``EDESTADDRREQ``, ``ENOTCONN``, ``EBADF``); addresses are
checked first as on the overlay, ``""``/``"0.0.0.0"`` name the node's host,
and a socket that sends or connects unbound is bound to an ephemeral port of
the node's host first (the OS would bind ``0.0.0.0``).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import trio

from ..protocol.datagram import MAX_PAYLOAD
from ..protocol.planner import ANY_HOSTS
from ..protocol.socket_states import check_local_host
from .addresses import Address, check_address, oserror
from .datagram import DatagramSocket

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["NativeDatagramSocket"]


@contextmanager
def _closed_is_ebadf(call: str) -> Iterator[None]:
    """trio raises ClosedResourceError in a call the socket's close interrupted: EBADF."""
    try:
        yield
    except trio.ClosedResourceError:
        raise oserror(errno.EBADF, f"{call}: the socket was closed") from None


class NativeDatagramSocket(DatagramSocket):
    """An OS UDP socket with :class:`~unisockets.net.datagram.DatagramSocket`'s API.

    Args:
        host: the native node's address (what ``""`` and ``"0.0.0.0"`` mean).
        on_close: called once when the socket closes (the node forgets it).
    """

    def __init__(
        self, host: str, on_close: Callable[[NativeDatagramSocket], object] | None = None
    ) -> None:
        self._host = host
        self._os_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock = trio.socket.from_stdlib_socket(self._os_socket)
        self._max_payload = MAX_PAYLOAD
        self._on_close = on_close
        self._connected = False
        self._bound = False

    @property
    def max_payload(self) -> int:
        """UDP's largest payload over IPv4, 65,507 bytes (the OS raises ``EMSGSIZE`` beyond)."""
        return self._max_payload

    async def bind(self, address: Address) -> None:
        """Bind the OS socket (see :meth:`DatagramSocket.bind`)."""
        host, port = check_address(address)
        check_local_host(host, self._host)
        with _closed_is_ebadf("bind"):
            await self._sock.bind((self._host, port))
        self._bound = True

    async def connect(self, address: Address) -> None:
        """Connect the OS socket (see :meth:`DatagramSocket.connect`)."""
        with _closed_is_ebadf("connect"):
            destination = self._resolve(address)
            await self._autobind()
            await self._sock.connect(destination)
            self._connected = True

    async def _send(self, data: Buffer, address: Address | None) -> int:
        if memoryview(data).nbytes > self._max_payload:  # checked before binding, as overlay
            raise oserror(errno.EMSGSIZE, f"over the datagram limit of {self._max_payload}")
        if address is None and not self._connected and self._sock.fileno() != -1:
            # Linux binds a port before it finds there is no destination; the overlay does not.
            raise oserror(errno.EDESTADDRREQ, "the socket is not connected")
        with _closed_is_ebadf("send"):
            if address is None:
                return await self._sock.send(data)
            destination = self._resolve(address)
            await self._autobind()
            return await self._sock.sendto(data, destination)

    async def _recvfrom(self, bufsize: int) -> tuple[bytes, Address]:
        with _closed_is_ebadf("recvfrom"):
            data, (host, port) = await self._sock.recvfrom(bufsize)
        return data, (host, port)

    def _recvfrom_nowait(self, bufsize: int) -> tuple[bytes, Address] | None:
        try:  # the OS socket is non-blocking (trio's)
            data, (host, port) = self._os_socket.recvfrom(bufsize)
        except BlockingIOError:
            return None
        return data, (host, port)

    def getsockname(self) -> Address:
        """The OS socket's address (see :meth:`DatagramSocket.getsockname`)."""
        host, port = self._sock.getsockname()[:2]
        return host, port

    def getpeername(self) -> Address:
        """The OS socket's peer (see :meth:`DatagramSocket.getpeername`)."""
        host, port = self._sock.getpeername()[:2]
        return host, port

    def close(self) -> None:
        """Close the OS socket; idempotent."""
        if self._sock.fileno() != -1:
            self._sock.close()
            if self._on_close is not None:
                self._on_close(self)

    async def _autobind(self) -> None:
        """Bind an ephemeral port on the node's host (the OS would take 0.0.0.0)."""
        if not self._bound:  # a flag: no getsockname() system call per datagram
            await self._sock.bind((self._host, 0))
            self._bound = True

    def _resolve(self, address: Address) -> Address:
        host, port = check_address(address)
        if port == 0:
            raise oserror(errno.EINVAL, "port 0 is not a destination")
        return (self._host if host in ANY_HOSTS else host, port)

    def __repr__(self) -> str:
        state = "closed" if self._sock.fileno() == -1 else repr(self._sock.getsockname())
        return f"<unisockets.NativeDatagramSocket {state}>"
