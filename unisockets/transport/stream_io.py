"""The reader and writer machinery under :class:`~unisockets.transport.stream.PipeStream`.

:class:`PipeStreamBase` drives the sans-IO framing of :mod:`unisockets.protocol.stream`
(DATA / EOF / CREDIT / RESET frames, credit-based flow control) over one pipe;
:class:`~unisockets.transport.stream.PipeStream` puts trio's
:class:`trio.abc.HalfCloseableStream` methods on top of it.

Design: no background task
--------------------------

waits reads for everyone:

- *One reader at a time, shared by both directions.* A task that needs input
  (``receive_some`` waiting for data, ``send_all`` or ``send_eof`` waiting for
  credit, ``wait_send_all_might_not_block``) becomes the reader if nobody is
  reading: it reads one message, feeds it to the :class:`StreamConnection`
  (DATA goes into the receive buffer, CREDIT raises the send credit) and wakes
  every other waiter (a :class:`trio.lowlevel.ParkingLot`). If somebody is
  already reading, it parks until that reader has made progress, then checks
  again. So a side that only sends still sees the peer's CREDIT frames, and
  DATA read meanwhile waits in the buffer, which the window bounds.
- *Credit is sent from the receive path.* When the application consumes bytes,
  :meth:`StreamConnection.consumed` may return a CREDIT frame; it is queued and
  written by the next ``receive_some`` (at its start, and before it waits for
  the pipe), by the next reader before it reads, and by any writer holding the
  write lock. ``receive_some`` never writes after it took bytes out of the
  buffer, so a cancellation cannot lose data. Grants are batched (half a window
  by default), so the peer keeps at least half a window of credit while we
  consume.
- *Writes go through one lock*, so frames are whole and in order. Frames are
  queued before they are written and dequeued only after the pipe took them,
  so a cancelled ``send_all`` leaves its remaining frames for the next writer
  (``send_all``, ``send_eof`` or ``aclose``) instead of losing them.

Credit writes can only wait when the pipe's outgoing buffer is above its
high-water mark. A pipe whose high-water mark is at least the window (the
in-memory pipe) or that drains without the peer application's help (a WebRTC
data channel, drained by SCTP) never blocks them for long.
"""

from __future__ import annotations

from collections import deque
from contextlib import suppress

import trio

from ..protocol.errors import RemoteProtocolError
from ..protocol.stream import DataReceived, ResetReceived, StreamConnection, StreamState
from .base import MessagePipe
from .stream_errors import Closable, ConflictDetector, Failure

__all__ = ["PipeStreamBase"]


class PipeStreamBase:
    """The state and the pipe I/O of a :class:`~unisockets.transport.stream.PipeStream`.

    Internal: :class:`~unisockets.transport.stream.PipeStream` sets every
    attribute below in its constructor and calls these methods from its trio
    stream methods. See the module docstring for the design.

    Attributes:
        pipe: the pipe the stream owns.
    """

    pipe: MessagePipe
    _conn: StreamConnection
    _receive_size: int
    _buffer: bytearray
    _control: deque[bytes]  # CREDIT/RESET frames, written first
    _frames: deque[bytes]  # DATA/EOF frames, in stream order
    _write_lock: trio.Lock
    _send_conflict: ConflictDetector
    _receive_conflict: ConflictDetector
    _progress_lot: trio.lowlevel.ParkingLot
    _reading: bool
    _pipe_ended: bool
    _scopes: set[trio.CancelScope]
    _closed: bool
    _send_failure: Failure | None
    _receive_failure: Failure | None

    def _closable(self) -> Closable:
        """Run a blocking operation that ``aclose`` interrupts with ClosedResourceError."""
        return Closable(self._scopes)

    def _check_closed(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the stream was closed") from None

    def _check_send(self) -> None:
        self._check_closed()
        if self._send_failure is not None:
            raise self._send_failure.error()
        if self._conn.send_state is StreamState.EOF_SENT:
            raise trio.ClosedResourceError("send_eof() was called on this stream") from None

    def _fail(self, message: str, cause: BaseException | None) -> None:
        """Break both directions (link failure, reset, protocol violation)."""
        failure = Failure(message, cause)
        if self._send_failure is None:
            self._send_failure = failure
        if self._receive_failure is None:
            self._receive_failure = failure
        self._control.clear()
        self._frames.clear()

    async def _write_queued(self, *, frames: bool) -> None:
        """Write queued control frames, then (if ``frames``) queued DATA/EOF frames.

        The caller holds the write lock. A frame leaves its queue only once the
        pipe took it.

        Raises:
            trio.BrokenResourceError: the pipe failed (the send side is now broken).
        """
        while self._control or (frames and self._frames):
            queue = self._control if self._control else self._frames
            try:
                await self.pipe.send_message(queue[0])
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                if self._send_failure is None:
                    self._send_failure = Failure(f"cannot send on the pipe: {exc}", exc)
                self._control.clear()
                self._frames.clear()
                self._check_closed()
                raise self._send_failure.error()  # noqa: B904 - chained from the cause
            queue.popleft()

    async def _write_all(self) -> None:
        await self._acquire_write_lock()
        try:
            await self._write_queued(frames=True)
        finally:
            self._write_lock.release()

    async def _acquire_write_lock(self) -> None:
        """Take the write lock; without a schedule point when it is free.

        ``trio.Lock.acquire`` always yields to the scheduler. Every caller
        writes to the pipe right after, which is a checkpoint of its own, so
        the uncontended case skips that extra trip (a round trip of 100-byte
        echoes has four writes).
        """
        if self._write_lock.locked():
            await self._write_lock.acquire()
        else:
            self._write_lock.acquire_nowait()

    async def _flush_control(self) -> None:
        """Send queued CREDIT frames unless a writer (who will send them) holds the lock.

        Failures are left for the reader to discover.
        """
        if not self._control or self._write_lock.locked() or self._send_failure is not None:
            return
        self._write_lock.acquire_nowait()
        try:
            with suppress(trio.BrokenResourceError):
                await self._write_queued(frames=False)
        finally:
            self._write_lock.release()

    async def _progress(self) -> None:
        """Wait until the stream's state may have changed.

        Becomes the reader (reads and handles one pipe message) if nobody is
        reading, else parks until the current reader made progress.
        """
        if self._pipe_ended:
            await trio.lowlevel.checkpoint()
            return
        if self._reading:
            await self._progress_lot.park()
            return
        self._reading = True
        try:
            await self._flush_control()
            try:
                message = await self.pipe.receive_message()
            except trio.EndOfChannel:
                self._on_pipe_end()
                return
            except trio.BrokenResourceError as exc:
                self._pipe_ended = True
                self._fail("the pipe broke", exc)
                return
            except trio.ClosedResourceError as exc:
                self._pipe_ended = True
                if not self._closed:
                    self._fail("the pipe was closed under the stream", exc)
                return
            await self._handle(message)
        finally:
            self._reading = False
            self._progress_lot.unpark_all()

    def _on_pipe_end(self) -> None:
        """The peer closed the pipe: it reads no more; without an EOF frame, it broke."""
        self._pipe_ended = True
        if self._send_failure is None:
            self._send_failure = Failure("the peer closed the stream", None)
        if self._conn.receive_state is not StreamState.EOF_RECEIVED:
            self._fail("the pipe ended without an end-of-stream frame", None)

    async def _handle(self, message: bytes) -> None:
        try:
            events = self._conn.receive_frame(message)
        except RemoteProtocolError as exc:
            self._buffer.clear()
            self._fail(f"protocol violation by the peer: {exc}", exc)
            await self._abort(self._conn.reset(str(exc)))
            return
        for event in events:
            if isinstance(event, DataReceived):
                self._buffer += event.data
            elif isinstance(event, ResetReceived):
                self._buffer.clear()
                self._fail(f"the peer reset the stream: {event.reason or 'no reason given'}", None)
                await self._abort([])
            # EofReceived and CreditGranted live in the connection's state.

    async def _abort(self, reset: list[bytes]) -> None:
        """Tell the peer (best effort, if no writer is blocked) and close the pipe."""
        try:
            if reset and not self._write_lock.locked():
                async with self._write_lock:
                    for frame in reset:
                        await self.pipe.send_message(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self._pipe_ended = True
            await self.pipe.aclose()

    def _take(self, max_bytes: int | None) -> bytes:
        """Take up to ``max_bytes`` from the receive buffer; queue the CREDIT it earns."""
        n = min(len(self._buffer), max_bytes or self._receive_size)
        if n == len(self._buffer):
            chunk = bytes(self._buffer)
            self._buffer.clear()
        else:
            chunk = bytes(self._buffer[:n])
            del self._buffer[:n]
        self._control.extend(self._conn.consumed(n))
        return chunk

    async def _drain(self) -> None:
        """Write every queued frame and everything pending in the connection."""
        while True:
            await self._write_all()
            if not self._conn.pending_bytes and not self._conn.eof_pending:
                return
            if not self._conn.send_credit:
                await self._progress()
            self._check_closed()
            if self._send_failure is not None:
                raise self._send_failure.error()
            self._frames.extend(self._conn.flush())
