"""What the asyncio driver's byte streams share: addresses, counters, the receive buffer.

:class:`StreamBase` is the common part of the driver's two streams over a
pipe: :class:`unisockets.driver.streams.Stream` (our framed data-plane wire,
:mod:`unisockets.protocol.stream`) and
:class:`unisockets.driver.legacy.LegacyStream` (an original node's raw bytes).
Each subclass decides what a message from the pipe means; both wait for it,
buffer it and hand it out the same way (the calls of
:class:`trio.abc.HalfCloseableStream`, on asyncio).
"""

from __future__ import annotations

import asyncio
from typing import Final, Self

from .errors import ClosedResourceError
from .pipes import Pipe
from .runtime import settle

__all__ = ["DEFAULT_RECEIVE_SIZE", "Address", "StreamBase"]

#: Bytes :meth:`Stream.receive_some` returns at most when called without ``max_bytes``.
DEFAULT_RECEIVE_SIZE: Final = 64 * 1024

#: A socket address: ``(dotted IPv4 host, port)``.
Address = tuple[str, int]


class StreamBase:
    """What the driver's streams share: addresses, counters, the receive buffer, waiting.

    Args:
        pipe: the pipe under the stream.
        local_address: our ``(host, port)``.
        remote_address: the peer's ``(host, port)``.

    Attributes:
        pipe: the pipe.
        local_address: our ``(host, port)``, e.g. ``("10.0.0.2", 0)``.
        remote_address: the peer's ``(host, port)``.
        bytes_sent: stream bytes handed to ``send_all`` so far.
        bytes_received: stream bytes returned by ``receive_some`` so far.
    """

    def __init__(self, pipe: Pipe, *, local_address: Address, remote_address: Address) -> None:
        self.pipe = pipe
        self.local_address = local_address
        self.remote_address = remote_address
        self.bytes_sent = 0
        self.bytes_received = 0
        self._buffer = bytearray()
        self._waiters: set[asyncio.Future[None]] = set()
        self._sending = False
        self._receiving = False
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the stream (see the subclasses)."""
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` was called."""
        return self._closed

    @property
    def buffered_bytes(self) -> int:
        """Bytes received and not yet returned by ``receive_some``."""
        return len(self._buffer)

    def _take(self, max_bytes: int | None) -> bytes:
        """Remove and return up to ``max_bytes`` (default 64 KiB) from the buffer."""
        n = min(len(self._buffer), max_bytes or DEFAULT_RECEIVE_SIZE)
        chunk = bytes(self._buffer[:n])
        del self._buffer[:n]
        self.bytes_received += n
        return chunk

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            settle(waiter)

    async def _changed(self) -> None:
        """Wait until data arrived, the pipe ended, or the stream was closed."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await waiter
        finally:
            self._waiters.discard(waiter)
        self._check_closed()

    def _check_closed(self) -> None:
        if self._closed:
            raise ClosedResourceError("the stream was closed") from None
