"""The stream users hold: :class:`SocketStream`, a :class:`trio.abc.HalfCloseableStream`.

One class for every backend: it wraps the backend's byte stream (a stream over
a WebRTC data channel or an in-memory pipe, or a native :class:`trio.SocketStream`)
and adds what a socket has, its two addresses. The contract (``receive_some``
returns ``b""`` if and only if EOF; ``BrokenResourceError``,
``ClosedResourceError``, ``BusyResourceError``) is trio's, see
:class:`trio.abc.HalfCloseableStream`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from .addresses import Address

__all__ = ["SocketStream"]


class SocketStream(trio.abc.HalfCloseableStream):
    """A connected byte stream between two sockets.

    Created by :meth:`unisockets.net.Node.connect` and by listeners' ``accept``;
    users do not construct it.

    Attributes:
        local_address: this side's ``(host, port)``, e.g. ``("10.0.0.2", 0)``.
        remote_address: the other side's ``(host, port)``, e.g. ``("10.0.0.1", 1234)``.
        transport_stream: the backend stream underneath (for diagnostics).
    """

    def __init__(
        self,
        transport_stream: trio.abc.HalfCloseableStream,
        *,
        local_address: Address,
        remote_address: Address,
        on_close: Callable[[], Awaitable[None] | None] | None = None,
    ) -> None:
        self.transport_stream = transport_stream
        self.local_address = local_address
        self.remote_address = remote_address
        self._close_callbacks: list[Callable[[], Awaitable[None] | None]] = []
        if on_close is not None:
            self._close_callbacks.append(on_close)
        self._closed = False

    def add_close_callback(self, callback: Callable[[], Awaitable[None] | None]) -> None:
        """Call ``callback()`` (awaiting its result if any) when the stream is closed."""
        self._close_callbacks.append(callback)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of ``data``, waiting for flow control as needed (trio ``SendStream``).

        Raises:
            trio.BusyResourceError: another task is already sending on this stream.
            trio.BrokenResourceError: the connection broke (peer gone, link failed).
            trio.ClosedResourceError: this stream was closed, or ``send_eof`` was called.
        """
        await self.transport_stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until ``send_all`` may not block (trio ``SendStream``)."""
        await self.transport_stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        """Half-close: the peer's ``receive_some`` returns ``b""`` after the data sent so far.

        The other direction stays open (trio ``HalfCloseableStream``; TCP's ``shutdown(SHUT_WR)``).
        """
        await self.transport_stream.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Receive at most ``max_bytes`` bytes (trio ``ReceiveStream``).

        Returns:
            At least one byte, or ``b""`` if and only if the peer sent EOF.
            Always :class:`bytes` (trio's ABC allows a ``bytearray``), so the
            result goes straight to APIs typed ``bytes``, such as
            ``h11.Connection.receive_data``.

        Raises:
            trio.BusyResourceError: another task is already receiving.
            trio.BrokenResourceError: the connection broke.
            trio.ClosedResourceError: this stream was closed.
        """
        data = await self.transport_stream.receive_some(max_bytes)
        return data if type(data) is bytes else bytes(data)

    async def aclose(self) -> None:
        """Close the stream; the peer reads EOF after what was sent. Idempotent."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            await self.transport_stream.aclose()
        finally:
            for callback in self._close_callbacks:
                result = callback()
                if result is not None:
                    with trio.CancelScope(shield=True):
                        await result

    def __repr__(self) -> str:
        (lhost, lport), (rhost, rport) = self.local_address, self.remote_address
        return f"<SocketStream {lhost}:{lport} -> {rhost}:{rport}>"
