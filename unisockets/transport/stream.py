"""A :class:`trio.abc.HalfCloseableStream` over any :class:`~unisockets.transport.base.MessagePipe`.

:class:`PipeStream` drives the sans-IO framing of :mod:`unisockets.protocol.stream`
(DATA / EOF / CREDIT / RESET frames, credit-based flow control) over one pipe.

Design: no background task
--------------------------

Nothing reads the pipe unless a caller is waiting for something, and whoever
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

Errors (trio's vocabulary, :class:`trio.abc.HalfCloseableStream`): our own
:meth:`PipeStream.aclose` makes every call, including blocked ones, raise
:class:`trio.ClosedResourceError` (``from None``); a link failure, a pipe that
ends without an EOF frame, a RESET from the peer or a protocol violation by the
peer make the stream raise :class:`trio.BrokenResourceError` chained from the
cause; two tasks sending (or two receiving) at once get
:class:`trio.BusyResourceError`.
"""

from __future__ import annotations

from collections import deque
from contextlib import suppress
from types import TracebackType
from typing import Final

import trio

from ..protocol.errors import RemoteProtocolError
from ..protocol.stream import (
    DEFAULT_WINDOW,
    DataReceived,
    ResetReceived,
    StreamConnection,
    StreamState,
    check_max_bytes,
)
from .base import MessagePipe

__all__ = ["DEFAULT_RECEIVE_SIZE", "PipeStream"]

#: Bytes ``receive_some()`` returns at most when called without ``max_bytes``.
DEFAULT_RECEIVE_SIZE: Final = 64 * 1024


class _ConflictDetector:
    """Raise :class:`trio.BusyResourceError` when two tasks enter at once (trio's semantics)."""

    def __init__(self, message: str) -> None:
        self._message = message
        self._held = False

    def __enter__(self) -> None:
        if self._held:
            raise trio.BusyResourceError(self._message)
        self._held = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._held = False


class _Closable:
    """A cancel scope that :meth:`PipeStream.aclose` cancels, as ClosedResourceError.

    A class rather than a ``@contextmanager`` generator: it is entered on every
    blocking call, and a generator-based manager costs twice as much.
    """

    __slots__ = ("_scope", "_scopes")

    def __init__(self, scopes: set[trio.CancelScope]) -> None:
        self._scopes = scopes
        self._scope = trio.CancelScope()

    def __enter__(self) -> None:
        self._scopes.add(self._scope)
        self._scope.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        try:
            handled = self._scope.__exit__(exc_type, exc, tb)
        finally:
            self._scopes.discard(self._scope)
        if self._scope.cancelled_caught:
            raise trio.ClosedResourceError("the stream was closed") from None
        return handled


class _Failure:
    """Why one direction of the stream is broken: a message and the underlying cause."""

    def __init__(self, message: str, cause: BaseException | None) -> None:
        self.message = message
        self.cause = cause

    def error(self) -> trio.BrokenResourceError:
        error = trio.BrokenResourceError(self.message)
        error.__cause__ = self.cause
        return error


class PipeStream(trio.abc.HalfCloseableStream):
    """A byte stream with half-close and flow control over one message pipe.

    Both ends of the pipe must wrap it in a :class:`PipeStream` with the same
    ``window``. See the module docstring for the design.

    Args:
        pipe: the pipe; the stream owns it and closes it in :meth:`aclose`.
        window: receive window per direction in bytes: the most the peer may
            have in flight to us, hence the most this stream buffers.
        grant_threshold: consumed bytes collected before a CREDIT is sent
            (default ``window // 2``).
        receive_size: the most ``receive_some()`` returns without ``max_bytes``.

    Raises:
        ValueError: ``pipe.max_message_size`` is below 5 bytes or an argument
            is out of range.
    """

    def __init__(
        self,
        pipe: MessagePipe,
        *,
        window: int = DEFAULT_WINDOW,
        grant_threshold: int | None = None,
        receive_size: int = DEFAULT_RECEIVE_SIZE,
    ) -> None:
        if receive_size < 1:
            raise ValueError("receive_size must be at least 1")
        self.pipe = pipe
        self._conn = StreamConnection(
            max_message_size=pipe.max_message_size,
            receive_window=window,
            grant_threshold=grant_threshold,
        )
        self._receive_size = receive_size
        self._buffer = bytearray()
        self._control: deque[bytes] = deque()  # CREDIT/RESET frames, written first
        self._frames: deque[bytes] = deque()  # DATA/EOF frames, in stream order
        self._write_lock = trio.Lock()
        self._send_conflict = _ConflictDetector("another task is sending on this stream")
        self._receive_conflict = _ConflictDetector("another task is receiving on this stream")
        self._progress_lot = trio.lowlevel.ParkingLot()
        self._reading = False
        self._pipe_ended = False
        self._scopes: set[trio.CancelScope] = set()
        self._closed = False
        self._send_failure: _Failure | None = None
        self._receive_failure: _Failure | None = None

    # ---- introspection ---------------------------------------------------------

    @property
    def window(self) -> int:
        """The receive window in bytes (the most this stream ever buffers)."""
        return self._conn.receive_window

    @property
    def buffered_bytes(self) -> int:
        """Bytes received and not yet returned by :meth:`receive_some` (at most :attr:`window`)."""
        return len(self._buffer)

    @property
    def send_credit(self) -> int:
        """Bytes we may send before the peer must grant more credit."""
        return self._conn.send_credit

    # ---- plumbing --------------------------------------------------------------

    def _closable(self) -> _Closable:
        """Run a blocking operation that :meth:`aclose` interrupts with ClosedResourceError."""
        return _Closable(self._scopes)

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
        failure = _Failure(message, cause)
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
                    self._send_failure = _Failure(f"cannot send on the pipe: {exc}", exc)
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
            self._send_failure = _Failure("the peer closed the stream", None)
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

    # ---- trio.abc.ReceiveStream -------------------------------------------------

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Receive up to ``max_bytes`` bytes, waiting for at least one.

        Args:
            max_bytes: the most to return, >= 1; ``None`` means up to 64 KiB.

        Returns:
            1..``max_bytes`` bytes, or ``b""`` if and only if the peer sent EOF
            (half-close or close) and every byte before it was returned.

        Raises:
            trio.BusyResourceError: another task is in ``receive_some``.
            trio.ClosedResourceError: this stream was closed (also while waiting).
            trio.BrokenResourceError: the link failed, the pipe ended without
                EOF, or the peer reset the stream or broke the protocol.
            ValueError: ``max_bytes`` < 1.
            TypeError: ``max_bytes`` is not an integer.
        """
        with self._receive_conflict:
            max_bytes = check_max_bytes(max_bytes)
            # One schedule point per call, as trio's streams make: a call that
            # waits for the pipe has it there; one served from the buffer yields
            # (cancel-shielded, so no bytes taken out can be lost) at the end.
            await trio.lowlevel.checkpoint_if_cancelled()
            self._check_closed()
            if self._buffer and not self._control:
                chunk = self._take(max_bytes)
                await trio.lowlevel.cancel_shielded_checkpoint()
                return chunk
            with self._closable():
                await self._flush_control()
                while True:
                    if self._buffer:
                        return self._take(max_bytes)
                    if self._receive_failure is not None:
                        raise self._receive_failure.error()
                    if self._conn.receive_state is StreamState.EOF_RECEIVED:
                        return b""
                    await self._progress()
                    self._check_closed()
        raise AssertionError("unreachable")  # pragma: no cover - for mypy

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

    # ---- trio.abc.SendStream ----------------------------------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of ``data``, waiting for credit and pipe backpressure.

        Splits it into DATA frames of at most ``pipe.max_message_size`` bytes.
        Returns once every frame was handed to the pipe. If cancelled, a prefix
        of ``data`` may have been sent; the rest is sent before any later data.

        Raises:
            trio.BusyResourceError: another task is sending (``send_all``,
                ``send_eof``, ``wait_send_all_might_not_block``).
            trio.ClosedResourceError: this stream was closed, or ``send_eof`` called.
            trio.BrokenResourceError: the link failed or the peer closed or reset.
        """
        with self._send_conflict:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._check_send()
            with self._closable():
                self._frames.extend(self._conn.send_data(data))
                if not (self._frames or self._control or self._conn.pending_bytes):
                    # Nothing to write (empty data): the pipe gives no schedule point.
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    return
                # Writing to the pipe is this call's schedule point.
                await self._drain()

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

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the peer granted credit (trio ``SendStream``).

        Returns at once when the stream is broken (the next ``send_all`` raises).

        Raises:
            trio.BusyResourceError: another task is sending.
            trio.ClosedResourceError: this stream was closed (also while waiting).
        """
        with self._send_conflict:
            await trio.lowlevel.checkpoint()
            self._check_closed()
            with self._closable():
                while (
                    self._send_failure is None
                    and self._conn.send_state is StreamState.OPEN
                    and (self._conn.pending_bytes or not self._conn.send_credit)
                ):
                    await self._progress()
                    self._check_closed()

    # ---- trio.abc.HalfCloseableStream -------------------------------------------

    async def send_eof(self) -> None:
        """Half-close: after the data sent so far the peer reads ``b""``. Idempotent.

        Receiving still works. Waits for credit if earlier data is still pending.

        Raises:
            trio.BusyResourceError: another task is sending.
            trio.ClosedResourceError: this stream was closed.
            trio.BrokenResourceError: the link failed or the peer closed or reset.
        """
        with self._send_conflict:
            await trio.lowlevel.checkpoint()
            self._check_closed()
            if (
                self._conn.send_state is StreamState.EOF_SENT
                and not self._conn.eof_pending
                and not self._frames
            ):
                return
            if self._send_failure is not None:
                raise self._send_failure.error()
            with self._closable():
                self._frames.extend(self._conn.send_eof())
                await self._drain()

    # ---- trio.abc.AsyncResource -------------------------------------------------

    async def aclose(self) -> None:
        """Close the stream: send EOF (if not sent yet), then close the pipe. Idempotent.

        The peer reads everything sent, then ``b""``, as with TCP. Blocked calls
        on this stream raise :class:`trio.ClosedResourceError`. Data still
        waiting for credit (from a cancelled ``send_all``) cannot be delivered:
        the peer gets a RESET (:class:`trio.BrokenResourceError`) instead. May
        wait for pipe backpressure; if cancelled, the pipe is closed anyway.
        """
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        for scope in self._scopes:
            scope.cancel()
        self._progress_lot.unpark_all()
        self._buffer.clear()
        try:
            await self._say_goodbye()
        finally:
            self._pipe_ended = True
            await self.pipe.aclose()

    async def _say_goodbye(self) -> None:
        if self._send_failure is not None or self._conn.send_state is StreamState.ERROR:
            await trio.lowlevel.checkpoint()
            return
        if self._conn.pending_bytes:
            self._control.extend(self._conn.reset("closed with unsent data"))
            self._frames.clear()
        else:
            self._frames.extend(self._conn.send_eof())
        with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._write_all()

    def __repr__(self) -> str:
        return f"<PipeStream over {self.pipe!r} {self._conn!r}>"
