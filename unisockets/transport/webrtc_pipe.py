"""A message pipe over one WebRTC data channel (aiortc), used from trio.

Each :class:`DataChannelPipe` is one reliable, ordered data channel inside a
peer link. It lives in two threads (see :mod:`unisockets.transport.bridge`):
methods named ``_aio_*`` (:mod:`unisockets.transport.webrtc_pipe_aio`) run in
the asyncio thread and touch the :class:`aiortc.RTCDataChannel`; every other
method runs in trio and touches only the trio-side state. aiortc's event
handlers hand events to trio in batches and never raise (aiortc notes, pitfall 1).

Backpressure (send side): the trio side counts the bytes it handed to the
loop (``submitted``); the loop reports how many of them left the channel's
buffer (``acked`` = bytes sent - ``bufferedAmount``) on every
``bufferedamountlow`` event, and after a send that leaves the buffer at or
below :data:`LOW_WATER` once :data:`REPORT_STEP` bytes of progress went
unreported (so a trickle of small messages costs no extra trio wake-ups).
:meth:`DataChannelPipe.send_message` waits while ``submitted - acked``
exceeds :data:`HIGH_WATER`. No wake-up is missed (the aiortc notes, pitfall 5):
once the loop has processed every submitted message, either the buffer is
above LOW_WATER and the event reports when it drains, or the trio side's view
is at most ``LOW_WATER + REPORT_STEP`` < HIGH_WATER and it does not wait.

Closing: the channel is closed (its SCTP stream reset) only once what we sent
has left its buffer for SCTP. aiortc queues the reset behind pending messages
itself, but while a reset waits it rescans its whole send queue on every flush:
with many streams closing under load that was quadratic (1,000 concurrent
streams: 34 s instead of 11 s, and a loop so busy that ICE consent expired).

Receive side: aiortc has no receive flow control (pitfall 4), so received
messages are queued for trio without bound; the byte-stream layer above
(:mod:`unisockets.transport.stream`) bounds them with its credits.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import trio

from ..protocol.stream import DEFAULT_MAX_MESSAGE_SIZE
from .base import MessagePipe
from .webrtc_pipe_aio import HIGH_WATER, LOW_WATER, REPORT_STEP, AioChannelSide

if TYPE_CHECKING:
    from aiortc import RTCDataChannel

    from .bridge import AsyncioBridge

__all__ = [
    "HIGH_WATER",
    "LOW_WATER",
    "MAX_MESSAGE_SIZE",
    "REPORT_STEP",
    "DataChannelPipe",
    "PipeStatistics",
    "ReceiveBudget",
]


#: The largest message a pipe carries, bytes: the stream layer's default frame size
#: (a 64 KiB payload and its 1-byte header), within the 256 KiB that aiortc and
#: browsers accept on a data channel (``a=max-message-size`` in their SDP).
MAX_MESSAGE_SIZE: Final = DEFAULT_MAX_MESSAGE_SIZE


@dataclass(slots=True)
class ReceiveBudget:
    """Bytes that several pipes may queue together before the one that overflows breaks.

    The WebRTC transport gives the pipes one peer opened and nobody accepted
    yet one budget, so that many waiting pipes (1,000 connects at once on a
    starved node) cost no more memory than a few flooded ones. A pipe counts
    what it queues while it holds the budget and gives it all back when it is
    accepted (:meth:`DataChannelPipe.leave_budget`) or closed.

    Attributes:
        limit: the most bytes the pipes may queue together.
        used: the bytes they queue now.
    """

    limit: int
    used: int = 0


class _State(enum.Enum):
    OPENING = "opening"  # ours, waiting for the peer's DCEP ACK
    OPEN = "open"
    EOF = "eof"  # the peer closed the channel cleanly
    BROKEN = "broken"  # the channel or its link failed
    CLOSED = "closed"  # we closed it


@dataclass(frozen=True, slots=True, kw_only=True)
class PipeStatistics:
    """A snapshot of a pipe's queues (for tests and diagnostics).

    Attributes:
        buffered_amount: bytes given to :meth:`DataChannelPipe.send_message`
            not yet known to have left the data channel's buffer for SCTP (an
            upper bound: the asyncio side reports progress only when the buffer
            is low after a send or drains below :data:`LOW_WATER`).
        queued_messages: messages received and not yet read.
        queued_bytes: their total size in bytes.
        tasks_waiting_send: trio tasks blocked in ``send_message`` (backpressure).
        tasks_waiting_receive: trio tasks blocked in ``receive_message``.
        state: ``"opening"``, ``"open"``, ``"eof"``, ``"broken"`` or ``"closed"``.
    """

    buffered_amount: int
    queued_messages: int
    queued_bytes: int
    tasks_waiting_send: int
    tasks_waiting_receive: int
    state: str


class DataChannelPipe(AioChannelSide, MessagePipe):
    """A :class:`~unisockets.transport.base.MessagePipe` over one aiortc data channel.

    Created by the WebRTC transport (:meth:`WebRTCTransport.open_pipe
    <unisockets.transport.webrtc.WebRTCTransport.open_pipe>` and the accepting
    side's ``datachannel`` handler); not by users.

    Attributes:
        label: the data channel's label.
        peer_id: the node at the other end.
        max_message_size: :data:`MAX_MESSAGE_SIZE`.
    """

    def __init__(
        self,
        bridge: AsyncioBridge,
        peer_id: str,
        label: str,
        *,
        incoming: bool,
        on_close: Callable[[DataChannelPipe], object] | None = None,
        on_link_lost: Callable[[BaseException], object] | None = None,
    ) -> None:
        self.label = label
        self.peer_id = peer_id
        self.max_message_size = MAX_MESSAGE_SIZE
        self._bridge = bridge
        self._on_close = on_close
        self._on_link_lost = on_link_lost
        # trio side
        self._state = _State.OPEN if incoming else _State.OPENING
        self._error: BaseException | None = None
        self._received: collections.deque[bytes] = collections.deque()
        self._received_bytes = 0
        self._receivers = trio.lowlevel.ParkingLot()
        self._senders = trio.lowlevel.ParkingLot()
        self._opened = trio.Event()
        self._submitted = 0
        self._acked = 0
        #: Most bytes queued before the pipe fails (set while nobody accepted it yet).
        self.receive_limit: int | None = None
        #: Shared with the other unaccepted pipes of the peer (see :class:`ReceiveBudget`).
        self.receive_budget: ReceiveBudget | None = None
        self._budgeted = 0
        #: Called (in trio) with each received message before it is queued; when it
        #: returns True the message is consumed and not queued (the peer link uses it
        #: on the legacy channel for the modern peer's hello, see webrtc_link).
        self.inspect: Callable[[bytes], bool] | None = None
        if incoming:
            self._opened.set()
        # asyncio side
        self._channel: RTCDataChannel | None = None
        self._aio_sent = 0
        self._aio_reported = 0
        self._aio_close_pending = False

    # --- public API (trio) -----------------------------------------------------------------

    async def send_message(self, data: bytes) -> None:
        """Send one message; wait while more than :data:`HIGH_WATER` bytes are buffered.

        Args:
            data: 1..:data:`MAX_MESSAGE_SIZE` bytes (any bytes-like object).

        Raises:
            ValueError: ``data`` is empty or too large.
            trio.ClosedResourceError: this side closed the pipe.
            trio.BrokenResourceError: the link failed or the peer closed the pipe.
        """
        data = bytes(data)
        if not data:
            raise ValueError("a message must not be empty")
        if len(data) > MAX_MESSAGE_SIZE:
            raise ValueError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_SIZE}")
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            self._check_sendable()
            if self._submitted - self._acked <= HIGH_WATER:
                break
            await self._senders.park()
        self._submitted += len(data)
        self._bridge.call_soon(self._aio_send, data)
        await trio.lowlevel.cancel_shielded_checkpoint()

    def send_nowait(self, data: bytes) -> bool:
        """Send one message now if the pipe is open and below :data:`HIGH_WATER`.

        Args:
            data: 1..:data:`MAX_MESSAGE_SIZE` bytes.

        Returns:
            True if it was handed to the channel; False (nothing sent) when
            the pipe is not open or its buffer is above the mark.
        """
        if (
            self._state is not _State.OPEN
            or self._submitted - self._acked > HIGH_WATER
            or not 0 < len(data) <= MAX_MESSAGE_SIZE
        ):
            return False
        self._submitted += len(data)
        self._bridge.call_soon(self._aio_send, data)
        return True

    async def receive_message(self) -> bytes:
        """Receive the next message, waiting for one.

        Messages that arrived before the link broke are still returned; the
        error comes after them.

        Returns:
            The message (never empty).

        Raises:
            trio.EndOfChannel: the peer closed the pipe and every message was read.
            trio.ClosedResourceError: this side closed the pipe.
            trio.BrokenResourceError: the link failed (after the queued messages).
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            if self._state is _State.CLOSED:
                raise trio.ClosedResourceError("the pipe was closed")
            if self._received:
                message = self._received.popleft()
                self._received_bytes -= len(message)
                await trio.lowlevel.cancel_shielded_checkpoint()
                return message
            if self._state is _State.BROKEN:
                raise trio.BrokenResourceError(f"pipe {self.label!r} broke") from self._error
            if self._state is _State.EOF:
                raise trio.EndOfChannel
            await self._receivers.park()

    async def aclose(self) -> None:
        """Close the pipe (idempotent); messages already sent are still delivered.

        The data channel is closed in the asyncio thread: aiortc sends what is
        buffered, then resets the stream (W3C WebRTC 6.2.4), and the peer sees
        :class:`trio.EndOfChannel` after the last message.
        """
        self._close()
        await trio.lowlevel.checkpoint()

    def statistics(self) -> PipeStatistics:
        """Return a snapshot of the pipe's queues and state."""
        return PipeStatistics(
            buffered_amount=self._submitted - self._acked,
            queued_messages=len(self._received),
            queued_bytes=self._received_bytes,
            tasks_waiting_send=self._senders.statistics().tasks_waiting,
            tasks_waiting_receive=self._receivers.statistics().tasks_waiting,
            state=self._state.value,
        )

    # --- trio side -------------------------------------------------------------------------

    def _check_sendable(self) -> None:
        if self._state is _State.OPEN:
            return
        if self._state is _State.CLOSED:
            raise trio.ClosedResourceError("the pipe was closed")
        if self._state is _State.EOF:
            raise trio.BrokenResourceError(f"the peer closed pipe {self.label!r}")
        if self._state is _State.BROKEN:
            raise trio.BrokenResourceError(f"pipe {self.label!r} broke") from self._error
        raise trio.BrokenResourceError(f"pipe {self.label!r} is not open yet")

    def leave_budget(self) -> None:
        """Give back to the pipe's :class:`ReceiveBudget` what it counted there, and drop it."""
        if self.receive_budget is not None:
            self.receive_budget.used -= self._budgeted
            self.receive_budget = None
        self._budgeted = 0

    def _close(self) -> None:
        if self._state is _State.CLOSED:
            return
        self.leave_budget()
        self._state = _State.CLOSED
        self._received.clear()
        self._received_bytes = 0
        self._opened.set()
        self._wake_all()
        if self._on_close is not None:
            self._on_close(self)
        if not self._bridge.closing:
            self._bridge.call_soon(self._aio_close)

    def _wake_all(self) -> None:
        self._receivers.unpark_all()
        self._senders.unpark_all()

    def _on_open(self) -> None:
        if self._state is _State.OPENING:
            self._state = _State.OPEN
        self._opened.set()

    def discard_received(self) -> int:
        """Drop every received message not yet read (the legacy channel between connections).

        Returns:
            The number of bytes dropped.
        """
        dropped = self._received_bytes
        self._received.clear()
        self._received_bytes = 0
        return dropped

    def _deliver(self, data: bytes) -> None:
        if self._state is _State.CLOSED:
            return
        if self.inspect is not None and self.inspect(data):
            return
        self._received.append(data)
        self._received_bytes += len(data)
        self._receivers.unpark_all()
        budget = self.receive_budget
        if budget is not None:
            budget.used += len(data)
            self._budgeted += len(data)
        if self.receive_limit is not None and self._received_bytes > self.receive_limit:
            limit = f"{self.receive_limit} unread bytes into pipe {self.label!r}"
        elif budget is not None and budget.used > budget.limit:
            limit = f"{budget.limit} unread bytes into its unaccepted pipes ({self.label!r})"
        else:
            return
        self.leave_budget()
        self._break(trio.BrokenResourceError(f"{self.peer_id} sent over {limit}"))
        self._bridge.call_soon(self._aio_close)

    def _on_acked(self, acked: int) -> None:
        if acked > self._acked:
            self._acked = acked
            if self._submitted - acked <= HIGH_WATER:
                self._senders.unpark_all()

    def _on_channel_closed(self, clean: bool) -> None:
        if self._state is _State.OPEN and clean:
            self._state = _State.EOF
        elif self._state in (_State.OPEN, _State.OPENING):
            self._error = trio.BrokenResourceError(
                "the data channel closed before it opened"
                if self._state is _State.OPENING
                else "the peer link closed"
            )
            self._state = _State.BROKEN
        self._opened.set()
        self._wake_all()
        if self._on_close is not None:
            self._on_close(self)
        if not clean and self._on_link_lost is not None:
            # The SCTP association is gone, often before aiortc reports the
            # connection state: the whole link is dead, say so now.
            self._on_link_lost(trio.BrokenResourceError("the SCTP association closed"))

    def _break(self, error: BaseException) -> None:
        """Fail the pipe (link failure, transport closing); idempotent."""
        if self._state in (_State.OPEN, _State.OPENING):
            self._state = _State.BROKEN
            self._error = error
        self._opened.set()
        self._wake_all()
        if self._on_close is not None:
            self._on_close(self)

    async def _wait_open(self) -> None:
        """Wait for the peer's DCEP ACK (outgoing pipes).

        Raises:
            trio.BrokenResourceError: the channel or its link failed first.
            trio.ClosedResourceError: the pipe was closed meanwhile.
        """
        await self._opened.wait()
        if self._state is _State.CLOSED:
            raise trio.ClosedResourceError("the pipe was closed")
        if self._state is _State.BROKEN:
            raise trio.BrokenResourceError(f"pipe {self.label!r} did not open") from self._error
