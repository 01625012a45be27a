"""A byte stream with half-close and flow control over one browser pipe (asyncio).

:class:`Stream` drives the same sans-IO framing as the native
:class:`~unisockets.transport.stream.PipeStream`
(:class:`unisockets.protocol.stream.StreamConnection`: DATA, EOF, CREDIT and
RESET frames, a credit window per direction), so a tab and a native node
speak one data-plane wire. Its methods have the names and the contract of
:class:`trio.abc.HalfCloseableStream` (``send_all``, ``receive_some``,
``send_eof``, ``aclose``, ``wait_send_all_might_not_block``), on asyncio.

Why it is simpler than ``PipeStream``: in the browser the pipe *pushes*
messages (an event listener), and sending never blocks. So each frame is
handled the moment it arrives, from the listener: DATA goes into the receive
buffer, CREDIT releases pending DATA, which is sent right there; EOF and
RESET change the state. Waiting callers are woken after each frame. No task
reads the pipe, and no lock orders writes (there is one thread).

Errors follow trio's vocabulary (:mod:`unisockets.driver.errors`):
:class:`ClosedResourceError` after our own :meth:`Stream.aclose` (also for
calls blocked at that time), :class:`BrokenResourceError` (chained from the
cause) when the link failed, the pipe ended without an EOF frame, or the peer
reset the stream or broke the protocol, :class:`BusyResourceError` for two
concurrent senders or receivers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import NoReturn

from ..protocol.errors import LocalProtocolError, RemoteProtocolError
from ..protocol.stream import (
    DEFAULT_WINDOW,
    CreditGranted,
    DataReceived,
    EofReceived,
    ResetReceived,
    StreamConnection,
    StreamState,
    check_max_bytes,
)
from .errors import BrokenResourceError, BusyResourceError, ClosedResourceError
from .pipes import Pipe
from .runtime import logger
from .stream_base import DEFAULT_RECEIVE_SIZE, Address, StreamBase, checkpoint

# The per-message paths' enum members as globals (cheaper than the class attributes).
_EOF_RECEIVED = StreamState.EOF_RECEIVED
_EOF_SENT = StreamState.EOF_SENT
_ERROR = StreamState.ERROR

__all__ = ["DEFAULT_RECEIVE_SIZE", "Address", "Stream", "StreamBase"]


class Stream(StreamBase):
    """A connected overlay stream (TCP-like: ordered bytes, half-close, flow control).

    Returned by :meth:`DriverNode.connect <unisockets.driver.node.DriverNode.connect>`
    and :meth:`Listener.accept <unisockets.driver.node.Listener.accept>`; not
    created by users. Usable as ``async with stream:`` (closes it).

    Attributes:
        local_address: our ``(host, port)``, e.g. ``("10.0.0.2", 0)``.
        remote_address: the peer's ``(host, port)``.
        bytes_sent: stream bytes handed to :meth:`send_all` so far.
        bytes_received: stream bytes returned by :meth:`receive_some` so far.
    """

    def __init__(
        self,
        pipe: Pipe,
        *,
        local_address: Address,
        remote_address: Address,
        window: int = DEFAULT_WINDOW,
        on_close: Callable[[Stream], object] | None = None,
    ) -> None:
        super().__init__(pipe, local_address=local_address, remote_address=remote_address)
        self._conn = StreamConnection(max_message_size=pipe.max_message_size, receive_window=window)
        self._send_failure: BrokenResourceError | None = None
        self._receive_failure: BrokenResourceError | None = None
        self._on_close = on_close
        # The receive side reached EOF_RECEIVED (it leaves it only for ERROR, which
        # sets _receive_failure): a flag for receive_some, cheaper than the property.
        self._eof_received = False
        pipe.set_receiver(self._on_message, self._on_pipe_end)

    def __repr__(self) -> str:
        return (
            f"<Stream {self.local_address[0]}:{self.local_address[1]} -> "
            f"{self.remote_address[0]}:{self.remote_address[1]} {self._conn!r}>"
        )

    # --- frames from the pipe (event listener context: never raises) --------------------------

    def _on_message(self, message: bytes) -> None:
        conn = self._conn
        try:
            events = conn.receive_frame(message)
        except RemoteProtocolError as exc:
            self._clear()
            self._fail(f"protocol violation by the peer: {exc}", exc)
            self._write_quietly(conn.reset(str(exc)))
            self.pipe.close()
            return
        except LocalProtocolError:
            return  # already in ERROR: nothing more to read
        credit = False
        for event in events:
            if type(event) is DataReceived:  # the common case first
                data = event.data
                self._chunks.append(data)  # StreamBase._push, inline
                self._buffered += len(data)
            elif type(event) is CreditGranted:
                credit = True
            elif type(event) is EofReceived:
                self._eof_received = True
            elif isinstance(event, ResetReceived):
                self._clear()
                self._fail(f"the peer reset the stream: {event.reason or 'no reason given'}", None)
                self.pipe.close()
        if (
            credit  # only a CREDIT releases data or an EOF that waited for credit
            and (conn.pending_bytes or conn.eof_pending)
            and self._send_failure is None
            and conn.send_state is not _ERROR
        ):
            self._write_quietly(conn.flush())
        if self._waiters:  # StreamBase._wake, inline
            waiters, self._waiters = self._waiters, set()
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _on_pipe_end(self, error: BaseException | None) -> None:
        if error is not None:
            self._fail("the peer link failed", error)
        else:
            if self._send_failure is None:
                self._send_failure = BrokenResourceError("the peer closed the stream")
            if self._conn.receive_state is not StreamState.EOF_RECEIVED:
                self._fail("the pipe ended without an end-of-stream frame", None)
        self._wake()

    def _fail(self, message: str, cause: BaseException | None) -> None:
        error = BrokenResourceError(message)
        error.__cause__ = cause
        if self._send_failure is None:
            self._send_failure = error
        if self._receive_failure is None:
            self._receive_failure = error

    def _write(self, frames: list[bytes]) -> None:
        """Send frames in order; a failing pipe breaks the send side and raises."""
        for frame in frames:
            try:
                self.pipe.send(frame)
            except (BrokenResourceError, ClosedResourceError) as exc:
                self._send_broke(exc)

    def _send_broke(self, exc: BrokenResourceError | ClosedResourceError) -> NoReturn:
        """The pipe refused a frame: break the send side and raise (closed: ClosedResourceError)."""
        if self._send_failure is None:
            failure = BrokenResourceError(f"cannot send on the pipe: {exc}")
            failure.__cause__ = exc
            self._send_failure = failure
        self._check_closed()
        raise self._send_failure from exc

    def _write_quietly(self, frames: list[bytes]) -> None:
        if frames:  # most calls have none: no context manager on the hot path then
            with contextlib.suppress(BrokenResourceError, ClosedResourceError):
                self._write(frames)  # a failure: the next call on the stream reports it

    # --- receiving ---------------------------------------------------------------------------

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Receive up to ``max_bytes`` bytes, waiting for at least one.

        Args:
            max_bytes: the most to return, >= 1; ``None`` means up to 64 KiB.

        Returns:
            1..``max_bytes`` bytes, or ``b""`` if and only if the peer sent EOF
            and every byte before it was returned (trio's contract).

        Raises:
            BusyResourceError: another task is in ``receive_some``.
            ClosedResourceError: this stream was closed (also while waiting).
            BrokenResourceError: the link failed, the pipe ended without EOF, or
                the peer reset the stream or broke the protocol.
            ValueError: ``max_bytes`` < 1.
        """
        if max_bytes is not None and (type(max_bytes) is not int or max_bytes < 1):
            max_bytes = check_max_bytes(max_bytes)  # raises, or an int from an index type
        if self._receiving:
            raise BusyResourceError("another task is receiving on this stream")
        self._receiving = True
        try:
            if self._closed:
                raise ClosedResourceError("the stream was closed") from None
            if self._buffered or self._receive_failure is not None or self._eof_received:
                # A checkpoint on every call (trio's rule), but only one: a call
                # that waits for data below has yielded already (as anyio's streams).
                await checkpoint()
                self._check_closed()
            else:
                while True:  # StreamBase._changed, inline (the data plane's path)
                    waiter = asyncio.get_running_loop().create_future()
                    self._waiters.add(waiter)
                    try:
                        await waiter
                    finally:
                        self._waiters.discard(waiter)  # _wake replaced the set: a no-op
                    if self._closed:
                        raise ClosedResourceError("the stream was closed") from None
                    if self._buffered or self._receive_failure is not None or self._eof_received:
                        break
            if self._buffered:
                chunks = self._chunks
                first = chunks[0]
                limit = max_bytes or DEFAULT_RECEIVE_SIZE
                if len(chunks) == 1 and not self._offset and len(first) <= limit:
                    # One whole message waits and fits (the common case): StreamBase._take
                    chunks.popleft()
                    chunk = first
                    n = len(first)
                    self._buffered = 0
                    self.bytes_received += n
                else:
                    chunk = self._take(max_bytes)
                    n = len(chunk)
                try:
                    frames = self._conn.consumed(n)
                except LocalProtocolError:  # in ERROR: no credit to grant any more
                    frames = []
                if frames:
                    self._write_quietly(frames)
                return chunk
            if self._receive_failure is not None:
                raise self._receive_failure
            return b""  # EOF received
        finally:
            self._receiving = False

    # --- sending -----------------------------------------------------------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send all of ``data``, waiting while the peer's credit is used up.

        Returns once every byte was handed to the pipe. If cancelled while
        waiting for credit, the rest is still sent before any later data. The
        call's checkpoint comes after the bytes were handed over when it had
        nothing to wait for (so they leave without a loop iteration's delay);
        as trio's ``send_all`` allows, a cancellation there leaves them sent.

        Raises:
            BusyResourceError: another task is sending.
            ClosedResourceError: this stream was closed, or ``send_eof`` was called.
            BrokenResourceError: the link failed or the peer closed or reset.
        """
        if self._sending:
            raise BusyResourceError("another task is sending on this stream")
        self._sending = True
        waited = False
        try:
            if self._closed:
                raise ClosedResourceError("the stream was closed") from None
            if self._send_failure is not None:
                raise self._send_failure
            conn = self._conn
            try:
                frames = conn.send_data(data)
            except LocalProtocolError:
                if conn.send_state is _EOF_SENT:
                    raise ClosedResourceError("send_eof() was called on this stream") from None
                raise
            if len(frames) == 1:  # the common case: Stream._write, inline
                try:
                    self.pipe.send(frames[0])
                except (BrokenResourceError, ClosedResourceError) as exc:
                    self._send_broke(exc)
            else:
                self._write(frames)
            self.bytes_sent += len(data)
            if conn.pending_bytes or self._send_failure is not None:
                waited = await self._drain()
        finally:
            try:
                if not waited:
                    await checkpoint()  # the call's checkpoint (trio's rule)
            finally:
                self._sending = False

    async def _drain(self) -> bool:
        """Wait until no data or EOF waits for credit (the frame handler sends them).

        Returns:
            Whether it waited (yielded to the loop).
        """
        waited = False
        while self._conn.pending_bytes or self._conn.eof_pending:
            if self._send_failure is not None:
                raise self._send_failure
            waited = True
            await self._changed()
        if self._send_failure is not None:
            raise self._send_failure
        return waited

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the peer granted credit for more data (trio ``SendStream``).

        Raises:
            BusyResourceError: another task is sending.
            ClosedResourceError: this stream was closed (also while waiting).
        """
        if self._sending:
            raise BusyResourceError("another task is sending on this stream")
        self._sending = True
        try:
            await asyncio.sleep(0)
            self._check_closed()
            while (
                self._send_failure is None
                and self._conn.send_state is StreamState.OPEN
                and (self._conn.pending_bytes or not self._conn.send_credit)
            ):
                await self._changed()
        finally:
            self._sending = False

    async def send_eof(self) -> None:
        """Half-close: after the data sent so far the peer reads ``b""``. Idempotent.

        Receiving still works.

        Raises:
            BusyResourceError: another task is sending.
            ClosedResourceError: this stream was closed.
            BrokenResourceError: the link failed or the peer closed or reset.
        """
        if self._sending:
            raise BusyResourceError("another task is sending on this stream")
        self._sending = True
        try:
            await asyncio.sleep(0)
            self._check_closed()
            if self._conn.send_state is StreamState.EOF_SENT and not self._conn.eof_pending:
                return
            if self._send_failure is not None:
                raise self._send_failure
            self._write(self._conn.send_eof())
            await self._drain()
        finally:
            self._sending = False

    # --- closing -----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close: send EOF if not sent yet, let the frames leave, close the pipe. Idempotent.

        The peer reads everything sent, then ``b""``, as with TCP. Data still
        waiting for credit cannot be delivered: the peer gets a RESET
        (:class:`BrokenResourceError`) instead. Calls blocked on this stream
        raise :class:`ClosedResourceError`.
        """
        if self._closed:
            await asyncio.sleep(0)
            return
        self._closed = True
        self._clear()
        self._wake()
        try:
            if self._send_failure is None and self._conn.send_state is not StreamState.ERROR:
                if self._conn.pending_bytes:
                    self._write_quietly(self._conn.reset("closed with unsent data"))
                else:
                    self._write_quietly(self._conn.send_eof())
                await self.pipe.wait_drained()
            await self.pipe.aclose()  # returns once the peer received everything
        finally:
            self.pipe.close()
            if self._on_close is not None:
                callback, self._on_close = self._on_close, None
                try:
                    callback(self)
                except Exception:
                    logger.exception("stream close callback failed")
