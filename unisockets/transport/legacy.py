"""A raw byte stream over a legacy peer's one channel (the original unisockets' data plane).

The original unisockets (docs/protocol.md, "Legacy peers") writes every socket's
bytes straight into the one data channel between two nodes: no framing, no
end-of-stream marker, no flow control. :class:`LegacyStream` speaks exactly
that over a :class:`~unisockets.transport.base.MessagePipe` (in practice the
``"channel"`` pipe of a legacy peer link, see
:meth:`WebRTCTransport.legacy_channel
<unisockets.transport.webrtc.WebRTCTransport.legacy_channel>`), so that one
connection per pair of nodes works with an original node.

What it cannot do, because the wire has no way to say it:

- *Closing is not seen by the peer.* :meth:`~LegacyStream.aclose` only stops
  this stream; it does not close the pipe, which belongs to the peer link and
  is the legacy node's only channel to us (closing it would cut that node
  off for good). :meth:`~LegacyStream.send_eof` likewise only makes later
  sends fail locally.
- *End of stream* is only known when the pipe ends: the peer closed its
  channel cleanly (``b""``), or signaling said the peer left
  (:meth:`~LegacyStream.peer_left`, then ``b""`` after what was received).
  A pipe that fails (the link broke) raises :class:`trio.BrokenResourceError`.
- *No flow control*: the peer sends as fast as it likes; the pipe queues what
  arrives (the peer link bounds it, see ``LEGACY_RECEIVE_LIMIT``).

Hence it is a :class:`trio.abc.HalfCloseableStream` by its interface (it
stands where :class:`~unisockets.transport.stream.PipeStream` stands) but it
cannot pass trio's conformance suites, which require the peer to see a
close or ``send_eof`` as EOF.
"""

from __future__ import annotations

import trio

from ..protocol.stream import check_max_bytes
from .base import MessagePipe
from .stream import DEFAULT_RECEIVE_SIZE
from .stream_errors import Closable, ConflictDetector

__all__ = ["LegacyStream"]


class LegacyStream(trio.abc.HalfCloseableStream):
    """Raw bytes over a pipe that it does not own (see the module docstring).

    Args:
        pipe: the pipe (a legacy peer's ``"channel"``); never closed by the stream.
        receive_size: the most ``receive_some()`` returns without ``max_bytes``.

    Raises:
        ValueError: ``receive_size`` < 1.
    """

    def __init__(self, pipe: MessagePipe, *, receive_size: int = DEFAULT_RECEIVE_SIZE) -> None:
        if receive_size < 1:
            raise ValueError("receive_size must be at least 1")
        self.pipe = pipe
        self._receive_size = receive_size
        self._buffer = bytearray()
        self._eof = False
        self._receive_failure: BaseException | None = None
        self._peer_gone = False
        self._eof_sent = False
        self._closed = False
        self._scopes: set[trio.CancelScope] = set()
        self._send_conflict = ConflictDetector("another task is sending on this stream")
        self._receive_conflict = ConflictDetector("another task is receiving on this stream")

    def peer_left(self) -> None:
        """Signaling said the peer left: once its pipe breaks, read that as EOF, not an error."""
        self._peer_gone = True

    def _check_closed(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the stream was closed") from None

    # ---- trio.abc.ReceiveStream -------------------------------------------------

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Receive up to ``max_bytes`` bytes, waiting for at least one.

        Args:
            max_bytes: the most to return, >= 1; ``None`` means up to 64 KiB.

        Returns:
            1..``max_bytes`` bytes, or ``b""`` once the pipe ended cleanly (the
            peer closed its channel, or left) and every byte before was returned.

        Raises:
            trio.BusyResourceError: another task is in ``receive_some``.
            trio.ClosedResourceError: this stream was closed (also while waiting).
            trio.BrokenResourceError: the pipe failed (the link broke).
            ValueError: ``max_bytes`` < 1.
            TypeError: ``max_bytes`` is not an integer.
        """
        with self._receive_conflict:
            max_bytes = check_max_bytes(max_bytes)
            await trio.lowlevel.checkpoint_if_cancelled()
            self._check_closed()
            if self._buffer:
                chunk = self._take(max_bytes)
                await trio.lowlevel.cancel_shielded_checkpoint()
                return chunk
            with Closable(self._scopes):
                while True:
                    if self._buffer:
                        return self._take(max_bytes)
                    if self._eof:
                        await trio.lowlevel.checkpoint()
                        return b""
                    if self._receive_failure is not None:
                        raise trio.BrokenResourceError(
                            f"the legacy channel to {self.pipe.peer_id} broke"
                        ) from self._receive_failure
                    await self._read()
        raise AssertionError("unreachable")  # pragma: no cover - for mypy

    async def _read(self) -> None:
        try:
            message = await self.pipe.receive_message()
        except trio.EndOfChannel:
            self._eof = True
        except trio.BrokenResourceError as exc:
            if self._peer_gone:
                self._eof = True
            else:
                self._receive_failure = exc
        except trio.ClosedResourceError as exc:  # the link closed it under us
            self._receive_failure = exc
        else:
            self._buffer += message

    def _take(self, max_bytes: int | None) -> bytes:
        n = min(len(self._buffer), max_bytes or self._receive_size)
        chunk = bytes(self._buffer[:n])
        del self._buffer[:n]
        return chunk

    # ---- trio.abc.SendStream ----------------------------------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of ``data`` as messages of at most ``pipe.max_message_size`` bytes.

        Waits for the pipe's backpressure (its send buffer), never for the
        peer (there is no flow control). If cancelled, a prefix may have been sent.

        Raises:
            trio.BusyResourceError: another task is sending.
            trio.ClosedResourceError: this stream was closed, or ``send_eof`` called.
            trio.BrokenResourceError: the pipe failed, or the peer closed its channel.
        """
        with self._send_conflict:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._check_closed()
            if self._eof_sent:
                raise trio.ClosedResourceError("send_eof() was called on this stream")
            view = memoryview(data).cast("B")
            if not view:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return
            size = self.pipe.max_message_size
            with Closable(self._scopes):
                for start in range(0, len(view), size):
                    try:
                        await self.pipe.send_message(bytes(view[start : start + size]))
                    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                        raise trio.BrokenResourceError(
                            f"cannot send on the legacy channel to {self.pipe.peer_id}"
                        ) from exc

    async def wait_send_all_might_not_block(self) -> None:
        """Return at once: ``send_all`` waits only for the pipe's own buffer (trio ``SendStream``).

        Raises:
            trio.BusyResourceError: another task is sending.
            trio.ClosedResourceError: this stream was closed.
        """
        with self._send_conflict:
            await trio.lowlevel.checkpoint()
            self._check_closed()

    # ---- trio.abc.HalfCloseableStream -------------------------------------------

    async def send_eof(self) -> None:
        """Stop sending; idempotent. The peer is *not* told: the legacy wire has no EOF.

        Later ``send_all`` calls raise :class:`trio.ClosedResourceError`, as trio
        requires; receiving still works.

        Raises:
            trio.BusyResourceError: another task is sending.
            trio.ClosedResourceError: this stream was closed.
        """
        with self._send_conflict:
            await trio.lowlevel.checkpoint()
            self._check_closed()
            self._eof_sent = True

    # ---- trio.abc.AsyncResource -------------------------------------------------

    async def aclose(self) -> None:
        """Stop using the pipe; idempotent. The peer does not see it (see the module docstring).

        Blocked calls on this stream raise :class:`trio.ClosedResourceError`;
        bytes received and not read are dropped. The pipe stays open.
        """
        if not self._closed:
            self._closed = True
            for scope in self._scopes:
                scope.cancel()
            self._buffer.clear()
        await trio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        return f"<LegacyStream over {self.pipe!r}>"
