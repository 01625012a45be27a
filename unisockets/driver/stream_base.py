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
import types
from collections import deque
from collections.abc import Generator
from typing import Final, Self

from .errors import ClosedResourceError
from .pipes import Pipe

__all__ = ["DEFAULT_RECEIVE_SIZE", "Address", "StreamBase", "checkpoint"]

#: Bytes :meth:`Stream.receive_some` returns at most when called without ``max_bytes``.
DEFAULT_RECEIVE_SIZE: Final = 64 * 1024

#: A socket address: ``(dotted IPv4 host, port)``.
Address = tuple[str, int]


@types.coroutine
def checkpoint() -> Generator[None, None, None]:
    """Yield to the event loop once: ``await checkpoint()`` is ``await asyncio.sleep(0)``.

    ``asyncio.sleep(0)`` awaits exactly this (a bare ``yield``, which the task
    reschedules at once; a pending cancellation is raised here); calling it
    directly saves the ``sleep`` coroutine on every stream call (the data
    plane's checkpoints, trio's rule kept under asyncio).
    """
    yield


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
        # The receive buffer: the messages' bytes objects as they came (no copy), the
        # first one read from ``_offset`` on; ``_buffered`` counts the unread bytes.
        self._chunks: deque[bytes] = deque()
        self._offset = 0
        self._buffered = 0
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
        return self._buffered

    def _push(self, data: bytes) -> None:
        """Append received bytes to the buffer (kept as they are, not copied)."""
        if data:
            self._chunks.append(data)
            self._buffered += len(data)

    def _clear(self) -> None:
        """Drop everything buffered."""
        self._chunks.clear()
        self._offset = self._buffered = 0

    def _take(self, max_bytes: int | None) -> bytes:
        """Remove and return ``min(buffered, max_bytes)`` bytes (default 64 KiB); needs some.

        A message read whole is returned as it came (no copy).
        """
        n = min(self._buffered, max_bytes or DEFAULT_RECEIVE_SIZE)
        chunks = self._chunks
        first = chunks[0]
        start = self._offset
        end = start + n
        if end <= len(first):  # all from the first message
            if end == len(first):
                chunks.popleft()
                self._offset = 0
                data = first if start == 0 else first[start:]
            else:
                self._offset = end
                data = first[start:end]
        else:
            parts = [first[start:] if start else first]
            chunks.popleft()
            self._offset = 0
            need = n - (len(first) - start)
            while need:
                chunk = chunks[0]
                if len(chunk) <= need:
                    parts.append(chunks.popleft())
                    need -= len(chunk)
                else:
                    parts.append(chunk[:need])
                    self._offset = need
                    need = 0
            data = b"".join(parts)
        self._buffered -= n
        self.bytes_received += n
        return data

    def _wake(self) -> None:
        if self._waiters:
            waiters, self._waiters = self._waiters, set()
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

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
