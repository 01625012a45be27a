"""A :class:`trio.abc.HalfCloseableStream` over any :class:`~unisockets.transport.base.MessagePipe`.

:class:`PipeStream` drives the sans-IO framing of :mod:`unisockets.protocol.stream`
(DATA / EOF / CREDIT / RESET frames, credit-based flow control) over one pipe,
with no background task: whoever waits reads the pipe for everyone, and writes
go through one lock (the design is :mod:`unisockets.transport.stream_io`'s).

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
from typing import Final

import trio

from ..protocol.stream import (
    DEFAULT_WINDOW,
    StreamConnection,
    StreamState,
    check_max_bytes,
)
from .base import MessagePipe
from .stream_errors import ConflictDetector
from .stream_io import PipeStreamBase

__all__ = ["DEFAULT_RECEIVE_SIZE", "PipeStream"]

#: Bytes ``receive_some()`` returns at most when called without ``max_bytes``.
DEFAULT_RECEIVE_SIZE: Final = 64 * 1024


class PipeStream(PipeStreamBase, trio.abc.HalfCloseableStream):
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
        self._control = deque()
        self._frames = deque()
        self._write_lock = trio.Lock()
        self._send_conflict = ConflictDetector("another task is sending on this stream")
        self._receive_conflict = ConflictDetector("another task is receiving on this stream")
        self._progress_lot = trio.lowlevel.ParkingLot()
        self._reading = False
        self._pipe_ended = False
        self._scopes = set()
        self._closed = False
        self._send_failure = None
        self._receive_failure = None

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
