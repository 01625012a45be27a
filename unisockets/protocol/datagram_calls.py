"""The datagram socket calls that every driver makes alike, on a node's port table.

A datagram socket of an overlay node, trio's
(:class:`unisockets.net.datagram_overlay.OverlayDatagramSocket`) or asyncio's
(:class:`unisockets.driver.datagrams.DatagramSocket`), is one
:class:`~unisockets.protocol.datagram.DatagramEndpoint` in its node's
:class:`~unisockets.protocol.datagram.PortTable`: ``bind``, ``connect``,
``getsockname``, ``getpeername``, ``close`` and the checks of a send are
lookups there, the same on every runtime. :class:`EndpointSocketCalls` holds
them once; a driver's socket adds how it yields to the scheduler
(:meth:`~EndpointSocketCalls._checkpoint`), how it waits for a datagram and
how its layer sends one. The errnos are the endpoint's and the table's
(docs/concepts.md, "Datagram sockets").
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Protocol

from .datagram import DatagramEndpoint, PortTable, check_max_payload
from .socket_shapes import Address, Buffer, SocketContext

__all__ = ["DatagramLayer", "EndpointSocketCalls"]


class _Node(Protocol):
    @property
    def address(self) -> str: ...


class DatagramLayer(Protocol):
    """What a node's datagram layer shows its sockets (trio's or asyncio's layer)."""

    @property
    def table(self) -> PortTable:
        """The node's datagram ports."""

    @property
    def _node(self) -> _Node:
        """The node (its overlay address)."""

    def _forget(self, endpoint: DatagramEndpoint) -> None:
        """A socket closed: stop waking its readers."""

    async def send(self, source_port: int, destination: Address, payload: bytes) -> None:
        """Send one datagram, or drop and count it."""


class EndpointSocketCalls(SocketContext):
    """The calls of a datagram socket that are lookups in the port table (see the module docstring).

    A driver's socket sets ``_layer`` and ``_endpoint`` in its constructor.
    """

    _layer: DatagramLayer
    _endpoint: DatagramEndpoint

    @abstractmethod
    async def _checkpoint(self) -> None:
        """Yield to the scheduler once (a call that had nothing to wait for)."""

    @abstractmethod
    def _max_message_size(self) -> int:
        """The largest message the layer's pipes carry, bytes (``max_payload``'s limit)."""

    @property
    def max_payload(self) -> int:
        """The largest payload :meth:`sendto` takes, bytes (``EMSGSIZE`` beyond); settable.

        Default :data:`~unisockets.protocol.datagram.DEFAULT_MAX_PAYLOAD`
        (1,154: no SCTP fragmentation). Setting it raises ``EINVAL`` beyond the
        channel's largest message less the datagram header
        (:func:`~unisockets.protocol.datagram.check_max_payload`).
        """
        return self._endpoint.max_payload

    @max_payload.setter
    def max_payload(self, size: int) -> None:
        self._endpoint.max_payload = check_max_payload(size, self._max_message_size())

    @property
    def dropped(self) -> int:
        """Datagrams dropped because this socket's receive queue was full."""
        return self._endpoint.dropped

    async def bind(self, address: Address) -> None:
        """Bind a datagram port of this node (``EADDRINUSE``, ``EADDRNOTAVAIL``, ``EINVAL``)."""
        self._layer.table.bind_address(self._endpoint, address, self._layer._node.address)
        await self._checkpoint()

    async def connect(self, address: Address) -> None:
        """Set the default peer and accept only its datagrams (``EINVAL``, ``EBADF``)."""
        self._layer.table.connect(self._endpoint, address, self._layer._node.address)
        await self._checkpoint()

    async def sendto(self, data: Buffer, address: Address) -> int:
        """Send one datagram to ``address``; ``len(data)`` (``EMSGSIZE``, ``EINVAL``, ``EBADF``)."""
        return await self._send(data, address)

    async def send(self, data: Buffer) -> int:
        """Send one datagram to the connected peer (``EDESTADDRREQ`` if none)."""
        return await self._send(data, None)

    async def _send(self, data: Buffer, address: Address | None) -> int:
        payload = bytes(data)
        port, destination = self._layer.table.prepare_send(
            self._endpoint, address, len(payload), self._layer._node.address
        )
        await self._layer.send(port, destination, payload)
        return len(payload)

    def getsockname(self) -> Address:
        """This socket's ``(host, port)``; ``("0.0.0.0", 0)`` before bind."""
        return self._layer.table.sockname(self._endpoint, self._layer._node.address)

    def getpeername(self) -> Address:
        """The connected peer's ``(host, port)`` (``ENOTCONN`` if none)."""
        return self._endpoint.getpeername()

    def close(self) -> None:
        """Close the socket and free its port at once; idempotent. Waiting calls raise ``EBADF``."""
        if self._endpoint.close():
            self._layer._forget(self._endpoint)
