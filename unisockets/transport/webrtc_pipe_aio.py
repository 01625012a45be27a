"""The asyncio half of a :class:`~unisockets.transport.webrtc_pipe.DataChannelPipe`.

The only code that touches the pipe's :class:`aiortc.RTCDataChannel`; it runs in
the asyncio thread of the transport's bridge (:mod:`unisockets.transport.bridge`),
like :mod:`unisockets.transport.webrtc_link_aio` for the peer connection.
aiortc's event handlers hand events to the trio half with ``bridge.to_trio`` and
never raise (aiortc notes, pitfall 1). The backpressure reports (``acked``
bytes) and the deferred close are described in
:mod:`unisockets.transport.webrtc_pipe`.
"""

from __future__ import annotations

import abc
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiortc import RTCDataChannel

    from .bridge import AsyncioBridge

__all__ = ["HIGH_WATER", "LOW_WATER", "REPORT_STEP", "AioChannelSide"]

logger = logging.getLogger("unisockets.transport.webrtc_pipe")

#: Bytes sent but not yet handed to SCTP above which send_message waits.
HIGH_WATER = 256 * 1024
#: The channel's ``bufferedAmountLowThreshold``, bytes; must stay below HIGH_WATER.
LOW_WATER = 64 * 1024
#: Progress (bytes) the asyncio side lets accumulate before it reports it after a send;
#: below HIGH_WATER - LOW_WATER, so a sender can never wait on progress left unreported.
REPORT_STEP = (HIGH_WATER - LOW_WATER) // 2


class AioChannelSide(abc.ABC):
    """The ``_aio_*`` methods of a data channel pipe (asyncio thread only).

    Internal: a mixin of :class:`~unisockets.transport.webrtc_pipe.DataChannelPipe`,
    which provides the trio-side handlers it reports to (abstract here).
    """

    _bridge: AsyncioBridge
    _channel: RTCDataChannel | None
    _aio_sent: int
    _aio_reported: int
    _aio_close_pending: bool

    @abc.abstractmethod
    def _on_open(self) -> None:
        """The channel opened (trio side)."""

    @abc.abstractmethod
    def _deliver(self, data: bytes) -> None:
        """A message arrived (trio side)."""

    @abc.abstractmethod
    def _on_channel_closed(self, clean: bool) -> None:
        """The channel closed, cleanly (stream reset) or not (trio side)."""

    @abc.abstractmethod
    def _on_acked(self, acked: int) -> None:
        """``acked`` bytes in all left the channel's buffer (trio side)."""

    @abc.abstractmethod
    def _break(self, error: BaseException) -> None:
        """Fail the pipe (trio side)."""

    def _aio_attach(self, channel: RTCDataChannel) -> None:
        """Bind to ``channel`` and register the handlers (asyncio thread)."""
        self._channel = channel
        channel.bufferedAmountLowThreshold = LOW_WATER
        channel.on("open", self._aio_on_open)
        channel.on("message", self._aio_on_message)
        channel.on("close", self._aio_on_close)
        channel.on("bufferedamountlow", self._aio_on_low)

    def _aio_on_open(self) -> None:
        try:
            self._bridge.to_trio(self._on_open)
        except Exception as exc:  # pragma: no cover - to_trio does not raise
            logger.exception("data channel open handler failed")
            self._aio_fail(exc)

    def _aio_on_message(self, message: bytes | str) -> None:
        try:
            data = message.encode() if isinstance(message, str) else message
            if data:  # empty messages (browsers can send them) carry nothing for us
                self._bridge.to_trio(self._deliver, data)
        except Exception as exc:
            logger.exception("data channel message handler failed")
            self._aio_fail(exc)

    def _aio_on_close(self) -> None:
        try:
            channel = self._channel
            # A stream reset by the peer leaves the SCTP association up; a dying
            # association closes every channel after setting its state to "closed".
            clean = channel is not None and channel.transport.state != "closed"
            self._bridge.to_trio(self._on_channel_closed, clean)
        except Exception as exc:
            logger.exception("data channel close handler failed")
            self._aio_fail(exc)

    def _aio_on_low(self) -> None:
        try:
            channel = self._channel
            if channel is not None:
                self._aio_report(self._aio_sent - channel.bufferedAmount)
                if self._aio_close_pending and not channel.bufferedAmount:
                    self._aio_close_pending = False
                    channel.close()
        except Exception as exc:
            logger.exception("data channel bufferedamountlow handler failed")
            self._aio_fail(exc)

    def _aio_fail(self, error: BaseException) -> None:
        """Fail the pipe from the asyncio thread and close its channel; never raises."""
        try:
            self._bridge.to_trio(self._break, error)
            if self._channel is not None:
                self._channel.close()
        except Exception:
            logger.exception("could not fail a data channel")

    def _aio_send(self, data: bytes) -> None:
        channel = self._channel
        if channel is None or channel.readyState != "open":
            return  # closing or closed: the close handler tells trio
        try:
            channel.send(data)
        except Exception as exc:
            self._aio_fail(exc)
            return
        self._aio_sent += len(data)
        buffered = channel.bufferedAmount
        acked = self._aio_sent - buffered
        if buffered <= LOW_WATER and acked - self._aio_reported >= REPORT_STEP:
            self._aio_report(acked)

    def _aio_report(self, acked: int) -> None:
        self._aio_reported = acked
        self._bridge.to_trio(self._on_acked, acked)

    def _aio_close(self) -> None:
        channel = self._channel
        if channel is not None:
            try:
                if channel.readyState == "open" and channel.bufferedAmount:
                    # Close once the buffer is empty (see the module docstring).
                    self._aio_close_pending = True
                    channel.bufferedAmountLowThreshold = 0
                    return
                channel.close()
            except Exception:
                logger.exception("could not close a data channel")
