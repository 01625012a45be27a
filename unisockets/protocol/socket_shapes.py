"""What the socket calls shared by the drivers need of a runtime, as typing protocols.

:mod:`unisockets.protocol.socket_api` and :mod:`unisockets.protocol.datagram_calls`
hold the Berkeley socket calls both socket APIs make alike; they await only
what is described here: a byte stream (:class:`ByteStream`, trio's or the
asyncio driver's), a deadline per call (:class:`Deadline`), a lock (trio's or
asyncio's ``Lock``) and, natively, an OS socket's options (:class:`OsSocket`).
:class:`SocketContext` is the ``with``/``async with`` shape of every socket
object, stream or datagram: ``with`` closes, ``async with`` closes and waits.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Protocol, Self

__all__ = ["Address", "Buffer", "ByteStream", "Deadline", "Lock", "OsSocket", "SocketContext"]

#: A socket address: ``(host, port)`` with a dotted IPv4 host and a port 0..65535.
Address = tuple[str, int]


class Buffer(Protocol):
    """A bytes-like object: PEP 688's ``collections.abc.Buffer`` (Python 3.12), spelled out."""

    def __buffer__(self, flags: int, /) -> memoryview:
        """The object's memory (PEP 688)."""


class ByteStream(Protocol):
    """The byte stream a connected socket wraps (trio's or the asyncio driver's)."""

    @property
    def local_address(self) -> Address:
        """This end's ``(host, port)``."""

    @property
    def remote_address(self) -> Address:
        """The peer's ``(host, port)``."""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of ``data`` (trio's ``SendStream.send_all``)."""

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until there is room to send."""

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Receive 1..``max_bytes`` bytes, ``b""`` at EOF."""

    async def send_eof(self) -> None:
        """Half-close: the peer reads EOF after what was sent."""


class Deadline(Protocol):
    """The time one socket call may take: :meth:`scope` bounds each of its waits."""

    def scope(self) -> AbstractAsyncContextManager[None]:
        """Around one wait: raise ``BlockingIOError`` or ``TimeoutError`` when the deadline passes.

        The error is :func:`~unisockets.protocol.socket_options.timeout_error`'s.
        """


class OsSocket(Protocol):
    """An OS socket's option calls (the native fallback's ``trio.socket`` socket)."""

    def setsockopt(self, level: int, optname: int, value: int) -> None:
        """setsockopt(2)."""

    def getsockopt(self, level: int, optname: int) -> int:
        """getsockopt(2), as an ``int``."""


class Lock(Protocol):
    """trio's or asyncio's ``Lock``."""

    async def acquire(self) -> object: ...

    def release(self) -> None: ...

    async def __aenter__(self) -> None: ...

    async def __aexit__(
        self,
        exc_type: builtins.type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class SocketContext(ABC):
    """``with sock:`` closes the socket; ``async with sock:`` closes it and waits.

    A base of every socket object of both drivers (stream and datagram).
    """

    @abstractmethod
    def close(self) -> None:
        """Close the socket at once; idempotent."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close the socket and wait until the close was sent; idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: builtins.type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: builtins.type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
