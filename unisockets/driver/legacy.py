"""A raw byte stream over a legacy peer's one channel, on asyncio (the original's data plane).

The original unisockets (docs/protocol.md, "Legacy peers") writes every
socket's bytes straight into the one data channel between two nodes: no
framing, no end-of-stream marker, no flow control. :class:`LegacyStream`
speaks exactly that over the link's ``"channel"`` pipe
(:meth:`unisockets.driver.links.PeerLinks.legacy_pipe`), as
:class:`unisockets.transport.legacy.LegacyStream` does for the trio driver,
so one connection per pair of nodes works with an original node. The node
allows one at a time (:meth:`unisockets.protocol.planner.ConnectionPlanner.check_legacy_free`).

What the wire cannot say, the stream cannot do:

- *closing is not seen by the peer*: :meth:`LegacyStream.aclose` only ends
  this stream and detaches it from the pipe, which belongs to the link (it is
  the legacy node's only channel to us); ``send_eof`` only makes later sends
  fail locally;
- *end of stream* is known only when the pipe ends cleanly, or when signaling
  says the peer left (:meth:`LegacyStream.peer_left`): ``b""`` after what was
  received; a link failure raises :class:`BrokenResourceError`;
- *no flow control*: what arrives is buffered until read.

The methods are those of :class:`unisockets.driver.streams.Stream` (trio's
``HalfCloseableStream`` names, on asyncio).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..protocol.stream import check_max_bytes
from .errors import BrokenResourceError, BusyResourceError, ClosedResourceError
from .pipes import MAX_MESSAGE_SIZE, Pipe
from .runtime import logger
from .stream_base import Address, StreamBase
from .streams import Stream

__all__ = ["AnyStream", "LegacyStream"]


class LegacyStream(StreamBase):
    """Raw bytes over a legacy peer's channel, which it does not own (see the module docstring).

    Args:
        pipe: the link's ``"channel"`` pipe (never closed by the stream).
        local_address: our ``(host, port)``.
        remote_address: the peer's ``(host, port)``.
        on_close: called once when the stream closes.

    Attributes:
        pipe: the pipe.
        local_address, remote_address: as given.
        bytes_sent, bytes_received: stream bytes so far.
    """

    def __init__(
        self,
        pipe: Pipe,
        *,
        local_address: Address,
        remote_address: Address,
        on_close: Callable[[LegacyStream], object] | None = None,
    ) -> None:
        super().__init__(pipe, local_address=local_address, remote_address=remote_address)
        self._eof = False
        self._eof_sent = False
        self._failure: BrokenResourceError | None = None
        self._on_close = on_close
        pipe.set_receiver(self._on_message, self._on_end)

    def __repr__(self) -> str:
        return f"<LegacyStream {self.local_address} -> {self.remote_address}>"

    def peer_left(self) -> None:
        """Signaling said the peer left: ``b""`` after what was received (its only goodbye)."""
        self._eof = True
        self._wake()

    def _on_message(self, message: bytes) -> None:
        if not self._closed:
            self._push(message)
            self._wake()

    def _on_end(self, error: BaseException | None) -> None:
        if error is None or self._eof:
            self._eof = True
        elif self._failure is None:
            failure = BrokenResourceError("the legacy peer's channel failed")
            failure.__cause__ = error
            self._failure = failure
        self._wake()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Receive up to ``max_bytes`` bytes (``b""``: the channel ended or the peer left).

        Raises:
            BusyResourceError: another task is receiving.
            ClosedResourceError: this stream was closed (also while waiting).
            BrokenResourceError: the link failed.
            ValueError: ``max_bytes`` < 1.
        """
        max_bytes = check_max_bytes(max_bytes)
        if self._receiving:
            raise BusyResourceError("another task is receiving on this stream")
        self._receiving = True
        try:
            await asyncio.sleep(0)
            while True:
                self._check_closed()
                if self._buffered:
                    return self._take(max_bytes)
                if self._eof:
                    return b""
                if self._failure is not None:
                    raise self._failure
                await self._changed()
        finally:
            self._receiving = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of ``data`` as raw messages on the channel.

        Raises:
            BusyResourceError: another task is sending.
            ClosedResourceError: this stream was closed, or ``send_eof`` was called.
            BrokenResourceError: the link failed or the channel ended.
        """
        if self._sending:
            raise BusyResourceError("another task is sending on this stream")
        self._sending = True
        try:
            await asyncio.sleep(0)
            self._check_closed()
            if self._eof_sent:
                raise ClosedResourceError("send_eof() was called on this stream")
            if self._failure is not None:
                raise self._failure
            view = memoryview(bytes(data))
            for start in range(0, len(view), MAX_MESSAGE_SIZE):
                try:
                    self.pipe.send(bytes(view[start : start + MAX_MESSAGE_SIZE]))
                except (BrokenResourceError, ClosedResourceError) as exc:
                    raise BrokenResourceError(f"cannot send to the legacy peer: {exc}") from exc
            self.bytes_sent += len(view)
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        """Return at once (sending never waits: the original has no flow control)."""
        await asyncio.sleep(0)
        self._check_closed()

    async def send_eof(self) -> None:
        """Make later sends fail; the peer sees nothing (the wire has no EOF). Idempotent."""
        await asyncio.sleep(0)
        self._check_closed()
        self._eof_sent = True

    async def aclose(self) -> None:
        """End this stream and detach it from the channel (which stays open). Idempotent."""
        await asyncio.sleep(0)
        if self._closed:
            return
        self._closed = True
        self._clear()
        self._wake()
        self.pipe.detach()  # what this connection left unread is not the next one's
        if self._on_close is not None:
            callback, self._on_close = self._on_close, None
            try:
                callback(self)
            except Exception:
                logger.exception("legacy stream close callback failed")


#: What a node's connect and accept give: a framed stream, or one over a legacy channel.
AnyStream = Stream | LegacyStream
