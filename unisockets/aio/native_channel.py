"""One data channel of the native WebRTC core (str0m) in the browser's ``RTCDataChannel`` shape.

:class:`NativeDataChannel` is what the asyncio driver's pipes hold when the
node runs on the native backend (:mod:`unisockets.aio.native_rtc`). The W3C
semantics it keeps (W3C WebRTC 1.0, section 6.2, "RTCDataChannel"):

- ``send`` never refuses a message while the channel is open: the native
  core refuses one when the SCTP association's send buffer is full (str0m
  keeps at most 128 KiB queued across all channels of a peer connection),
  so refused messages wait in the channel's backlog, in order, and the peer
  connection retries them after each round of network input (the native
  backend's rule, docs/transport.md, "The native backend");
- ``bufferedAmount`` is the backlog plus what str0m holds unacknowledged, and
  ``bufferedamountlow`` fires when it falls to ``bufferedAmountLowThreshold``;
- ``close`` resets the SCTP stream (RFC 8831, section 6.7) only once every
  message left and was acknowledged, so the peer reads them all before the
  end; a channel the peer opened first waits up to
  :data:`~unisockets.transport.native_rtc_pipe.RESET_DEFER` seconds for the
  peer's own reset (why: :mod:`unisockets.transport.native_rtc_pipe`);
- ``close`` fires once str0m reports the stream closed (ours or the peer's reset).
"""

from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING

from ..transport.native_rtc_pipe import RESET_DEFER
from .events import EventTarget

if TYPE_CHECKING:
    from .native_rtc import NativePeerConnection

__all__ = ["NativeDataChannel"]

logger = logging.getLogger("unisockets.aio")


class NativeDataChannel(EventTarget):
    """An ``RTCDataChannel`` over one channel of a native peer (see the module docstring).

    Made by :class:`~unisockets.aio.native_rtc.NativePeerConnection`; not by users.

    Args:
        pc: the peer connection whose native peer carries it.
        label: the channel's label.
        protocol: its DCEP sub-protocol.
        number: its number in the native peer (-1 until the offer gives it one).
        incoming: the peer opened it (it is open already).
    """

    def __init__(
        self, pc: NativePeerConnection, label: str, protocol: str, number: int, *, incoming: bool
    ) -> None:
        super().__init__()
        self.label = label
        self.protocol = protocol
        self.number = number
        self.readyState = "open" if incoming else "connecting"
        self.binaryType = "arraybuffer"
        #: ``bufferedamountlow`` fires when :attr:`bufferedAmount` falls to this (bytes).
        self.bufferedAmountLowThreshold = 0
        self.incoming = incoming
        self._pc = pc
        self.backlog: collections.deque[bytes] = collections.deque()
        self._backlog_bytes = 0
        self.reset_pending = False
        self.gone = False  # reset sent, or the stream closed in the native peer
        #: When a deferred stream reset is due (loop time), or None (see RESET_DEFER).
        self.reset_due: float | None = None

    @property
    def bufferedAmount(self) -> int:
        """Bytes sent and not yet acknowledged by the peer (backlog included); 0 once closed."""
        if self.readyState == "closed":
            return 0
        peer = self._pc.native_peer
        held = peer.buffered_amount(self.number) if peer is not None and self.number >= 0 else 0
        return self._backlog_bytes + held

    def send(self, data: bytes | str) -> None:
        """Queue one message (text is sent as its UTF-8 bytes, binary).

        Raises:
            RuntimeError: the channel is not open (a browser's ``InvalidStateError``).
        """
        if self.readyState != "open":
            raise RuntimeError(f"data channel {self.label!r} is {self.readyState}")
        message = data.encode() if isinstance(data, str) else bytes(data)
        self.backlog.append(message)
        self._backlog_bytes += len(message)
        pc = self._pc
        if len(self.backlog) > 1 or pc.congested:
            pc.wants_room(self)  # behind the messages waiting for room, in order
        else:
            self.flush()
        if self.bufferedAmountLowThreshold < self.bufferedAmount:
            pc.watch_low(self)

    def close(self) -> None:
        """Close: reset the stream once every message left (``close`` fires after)."""
        if self.readyState in ("closing", "closed"):
            return
        self.readyState = "closing"
        self.reset_pending = True
        self.flush()

    # --- driven by the peer connection -------------------------------------------------------

    def flush(self) -> None:
        """Hand the backlog to str0m while it takes it; reset the stream once drained."""
        pc = self._pc
        peer = pc.native_peer
        if peer is None or self.gone or self.number < 0:
            return
        from .._rtc import RtcError

        if self.backlog:
            try:
                # The whole backlog in one call; str0m takes messages until its buffer is full.
                accepted, events, delay = peer.send_many(self.number, list(self.backlog))
            except RtcError as exc:
                logger.debug("data channel %r failed: %s", self.label, exc)
                self.backlog.clear()
                self._backlog_bytes = 0
                self.reset_now()
                return
            pc.after_events(events, delay)
            for _ in range(accepted):
                self._backlog_bytes -= len(self.backlog.popleft())
        if self.backlog:
            pc.wants_room(self)
        elif self.reset_pending:
            now = pc.now()
            if peer.buffered_amount(self.number):
                pc.wants_room(self)  # checked again after the next input
            elif self.incoming and self.reset_due is None:
                self.reset_due = now + RESET_DEFER
                pc.defer_reset(self)
            elif self.reset_due is None or now >= self.reset_due:
                self.reset_now()

    def reset_now(self) -> None:
        """Reset the stream now (str0m reports it closed: then ``close`` fires)."""
        if self.gone:
            return
        self.gone = True
        self.reset_pending = False
        peer = self._pc.native_peer
        if peer is None:
            return
        from .._rtc import RtcError

        try:
            peer.close_channel(self.number)
        except RtcError:
            logger.debug("could not close data channel %d", self.number, exc_info=True)
        self._pc.after_call()

    def opened(self) -> None:
        """The peer acknowledged our channel (DCEP ACK): ``open`` fires."""
        if self.readyState == "connecting":
            self.readyState = "open"
            self._dispatch("open")

    def closed(self) -> None:
        """The stream closed (a reset either way, or the association ended): ``close`` fires."""
        if self.readyState == "closed":
            return
        self.gone = True
        self.readyState = "closed"
        self.backlog.clear()
        self._backlog_bytes = 0
        self._dispatch("close")

    def check_low(self) -> bool:
        """Fire ``bufferedamountlow`` if the amount fell to the threshold; True if it did."""
        if self.readyState == "closed" or self.bufferedAmount <= self.bufferedAmountLowThreshold:
            if self.readyState != "closed":
                self._dispatch("bufferedamountlow")
            return True
        return False
