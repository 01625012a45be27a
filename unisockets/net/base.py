"""The node API common to overlay and native nodes: :class:`Node` and :class:`Binding`.

What a program holds from :func:`~unisockets.net.node.open_node` is a
:class:`Node`: an :class:`~unisockets.net.overlay.OverlayNode` on a unisockets
network or a :class:`~unisockets.net.native.NativeNode` over the OS's TCP,
with the same methods (docs/concepts.md, "Nodes").
"""

from __future__ import annotations

import errno
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Generator, Sequence
from socket import SocketKind
from typing import TYPE_CHECKING, Any, Literal, overload

import trio

from ..protocol.planner import DEFAULT_BACKLOG, check_backlog, check_port
from .addresses import Address, oserror
from .listeners import NativeListener, OverlayListener
from .streams import SocketStream

if TYPE_CHECKING:
    from .datagram import DatagramSocket
    from .sockets import Socket

#: ``(level, optname, value)`` triples for an OS socket (``Node.bind``, ``Node.connect``).
SocketOptionList = Sequence[tuple[int, int, int]]

__all__ = ["Binding", "Node", "SocketOptionList"]


class Node(ABC):
    """The API common to overlay and native nodes (docs/concepts.md, "Nodes")."""

    @property
    @abstractmethod
    def address(self) -> str:
        """This node's IPv4 address, e.g. ``"10.0.0.1"`` (overlay) or ``"127.0.0.1"`` (native)."""

    @abstractmethod
    async def bind(
        self, port: int, host: str = "", *, socket_options: SocketOptionList = ()
    ) -> Binding:
        """Claim ``port`` on this node's address (``0``: any free port).

        Args:
            port: 0..65535.
            host: ``""``, ``"0.0.0.0"``, ``"localhost"`` or this node's
                address; on an overlay node also any address that is no other
                node's id, such as ``"127.0.0.1"`` (docs/protocol.md, "Bind and listen").
            socket_options: ``(level, optname, value)`` triples a native node
                sets on its OS socket before binding; an overlay node, which
                has no OS socket, ignores them (docs/concepts.md, "Socket options and timeouts").

        Returns:
            The binding; call :meth:`Binding.listen` to accept connections on it.

        Raises:
            OSError: ``EADDRINUSE`` when the address is taken,
                ``EADDRNOTAVAIL`` when ``host`` is another node's address.
        """

    @abstractmethod
    async def connect(
        self, address: Address, *, socket_options: SocketOptionList = ()
    ) -> SocketStream:
        """Connect to a listening socket.

        Args:
            address: ``(host, port)`` of the listener, e.g. ``("10.0.0.1", 1234)``.
            socket_options: as for :meth:`bind`, set before connecting.

        Returns:
            The connected stream.

        Raises:
            OSError: ``ECONNREFUSED`` when nobody accepts there, ``EINVAL`` for
                a malformed address, ``ETIMEDOUT`` / ``ECONNRESET`` when the
                connection could not be set up.
        """

    def listen(self, port: int, backlog: int = DEFAULT_BACKLOG) -> _ListenCall:
        """Bind ``port`` and listen on it.

        Use either ``listener = await node.listen(port)`` or
        ``async with node.listen(port) as listener:`` (which closes it on exit).

        Args:
            port: the port to bind, 0..65535 (``0``: any free port).
            backlog: how many established connections may wait for ``accept``;
                more arrivals are closed at once.

        Returns:
            An awaitable / async context manager giving a
            :class:`trio.abc.Listener` of :class:`SocketStream`.

        Raises:
            OSError: ``EADDRINUSE`` when the port is taken, ``EINVAL`` for a bad port.
        """
        return _ListenCall(self, port, backlog)

    @overload
    def socket(self, type: Literal[SocketKind.SOCK_STREAM] = ...) -> Socket: ...

    @overload
    def socket(self, type: Literal[SocketKind.SOCK_DGRAM]) -> DatagramSocket: ...

    def socket(self, type: int = SocketKind.SOCK_STREAM) -> Socket | DatagramSocket:
        """Create a Berkeley-style socket on this node.

        Args:
            type: ``SOCK_STREAM`` (the default: a :class:`~unisockets.net.Socket`)
                or ``SOCK_DGRAM`` (a :class:`~unisockets.net.DatagramSocket`,
                docs/concepts.md, "Datagram sockets").

        Raises:
            OSError: ``EINVAL`` for another type, as socket(2) on Linux.
        """
        if type == SocketKind.SOCK_DGRAM:
            return self._datagram_socket()
        if type != SocketKind.SOCK_STREAM:
            raise oserror(errno.EINVAL, f"socket type {type!r} is not supported")
        from .sockets import Socket

        return Socket(self)

    def _datagram_socket(self) -> DatagramSocket:
        """A new datagram socket (each kind of node makes its own)."""
        raise oserror(errno.EINVAL, f"{self!r} has no datagram sockets")

    _nursery: trio.Nursery

    def _spawn(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        """Run ``fn(*args)`` in the node's nursery (closes and EOFs of socket objects)."""
        self._nursery.start_soon(fn, *args)


class Binding(ABC):
    """A claimed ``(host, port)`` on a node, not yet listening.

    Attributes:
        address: the bound ``(host, port)``.
        os_socket: the OS socket behind it (native node), else ``None``.
    """

    address: Address
    os_socket: trio.socket.SocketType | None = None

    @abstractmethod
    def listen(self, backlog: int = DEFAULT_BACKLOG) -> OverlayListener | NativeListener:
        """Start accepting connections; returns the listener (which owns this binding)."""

    @abstractmethod
    def close(self) -> None:
        """Release the address now: a later ``bind`` of it on this node succeeds. Idempotent.

        Natively the OS socket is closed; on the overlay the release is sent
        to signaling by a node task, and a ``bind`` of the address waits for it.
        """

    async def aclose(self) -> None:
        """Release the address without listening; return once it is released.

        When this returns, a ``bind`` of the address on this node succeeds at
        once (:meth:`close`, then wait for the release under way).
        """
        self.close()
        await trio.lowlevel.checkpoint()


class _ListenCall:
    """What :meth:`Node.listen` returns: awaitable, and an async context manager."""

    def __init__(self, node: Node, port: int, backlog: int) -> None:
        self._node, self._port, self._backlog = node, port, backlog
        self._listener: trio.abc.Listener[SocketStream] | None = None

    async def _open(self) -> trio.abc.Listener[SocketStream]:
        check_port(self._port)
        backlog = check_backlog(self._backlog)
        binding = await self._node.bind(self._port)
        listener = binding.listen(backlog)
        try:
            await listener.wait_ready()
        except BaseException:
            await trio.aclose_forcefully(listener)
            raise
        return listener

    def __await__(self) -> Generator[Any, None, trio.abc.Listener[SocketStream]]:
        return self._open().__await__()

    async def __aenter__(self) -> trio.abc.Listener[SocketStream]:
        self._listener = await self._open()
        return self._listener

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._listener is not None
        await self._listener.aclose()
