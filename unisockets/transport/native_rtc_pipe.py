"""A message pipe over one data channel of the native WebRTC core (str0m, ``unisockets._rtc``).

:class:`NativePipe` is a :class:`~unisockets.transport.webrtc_pipe.DataChannelPipe`
whose "asyncio side" is not in another thread: its ``_aio_*`` methods call the
native core at once, in the trio task that called them (:data:`INLINE` stands
in for the bridge). The trio-side semantics are the aiortc pipe's, unchanged:
the same states and errors, the same end-of-stream on a clean stream reset,
the same receive limit for unclaimed pipes and the same inspection hook on the
legacy ``"channel"``.

Backpressure: the native core refuses a message when the SCTP association's
send buffer is full (str0m keeps at most 128 KiB queued across all channels of
a peer connection). Refused messages wait in the pipe's backlog, in order;
the link retries them after every round of network input (acknowledgements
free room), pipe after pipe in the order they were refused, and a message
sent while others wait for room queues behind them without a try.
:meth:`~DataChannelPipe.send_message` waits while more than
:data:`~unisockets.transport.webrtc_pipe.HIGH_WATER` bytes are in the backlog
(``submitted - acked``, where acked counts the bytes str0m accepted), as the
aiortc pipe waits on aiortc's buffer.

Closing resets the stream only once the backlog is empty and str0m's buffered
amount for the channel is 0 (every message acknowledged), so the peer reads
every message before its end even when the association closes right after
(str0m reports a channel closed as soon as its reset is sent, so a closing
link cannot wait for the reset itself). The cost: a close waits for the
peer's delayed SACK, up to 200 ms, when the last message was not acknowledged yet.
A pipe the peer opened (so on a stream id the peer allocates) waits up to
:data:`RESET_DEFER` seconds more for the peer's own reset before it sends
its own, so that mostly one end resets a stream and the other answers.
Resets that cross anyway are handled by str0m 0.24 and sctp-proto 0.10.8:
the allocating end reuses the id only once its own side of it is free, and
the new channel opens at both ends, in every interleaving tested (issue 17;
docs/transport.md, "Limits of the native backend").
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import trio

from .webrtc_pipe import DataChannelPipe

if TYPE_CHECKING:
    from .bridge import AsyncioBridge
    from .native_rtc_link import NativePeerLink

__all__ = ["INLINE", "RESET_DEFER", "NativePipe"]

logger = logging.getLogger(__name__)

#: Seconds a closed pipe the peer opened waits for the peer's stream reset before its own.
RESET_DEFER = 0.25


class _Inline:
    """Stands in for :class:`~unisockets.transport.bridge.AsyncioBridge`: calls run at once.

    The native core has no thread of its own, so "call it in the other
    thread" is a plain call in the calling trio task.
    """

    closing = False

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Call ``fn(*args)`` now."""
        fn(*args)

    def to_trio(self, fn: Callable[..., object], *args: Any) -> None:
        """Call ``fn(*args)`` now (we are in trio already)."""
        fn(*args)


#: The one inline "bridge" every native pipe and link uses.
INLINE: AsyncioBridge = cast("AsyncioBridge", _Inline())


class NativePipe(DataChannelPipe):
    """A :class:`~unisockets.transport.base.MessagePipe` over one str0m data channel.

    Created by :class:`~unisockets.transport.native_rtc_link.NativePeerLink`; not by users.

    Args:
        link: the link whose native peer carries the channel.
        peer_id: the node at the other end.
        label: the channel's label.
        channel: the channel's number in the native peer.
        incoming: the peer opened it (it is open already).
        on_close: called once the pipe is closed, broken or ended.
        on_link_lost: called when the channel's failure means the link died.
    """

    def __init__(
        self,
        link: NativePeerLink,
        peer_id: str,
        label: str,
        *,
        channel: int,
        incoming: bool,
        on_close: Callable[[DataChannelPipe], object] | None = None,
        on_link_lost: Callable[[BaseException], object] | None = None,
    ) -> None:
        super().__init__(
            INLINE,
            peer_id,
            label,
            incoming=incoming,
            on_close=on_close,
            on_link_lost=on_link_lost,
        )
        self.channel = channel
        self._link = link
        self._backlog: collections.deque[bytes] = collections.deque()
        self._handed = 0  # bytes str0m accepted
        self._reset_pending = False
        self._gone = False  # the channel is closed in the native peer
        self._incoming = incoming
        #: When a deferred stream reset is due (trio time), or None (see RESET_DEFER).
        self.reset_due: float | None = None

    # --- what DataChannelPipe calls "the asyncio side", here inline ------------------------

    def _aio_send(self, data: bytes) -> None:
        if self._gone or self._reset_pending:
            return
        self._backlog.append(data)
        if len(self._backlog) > 1 or self._link.congested:
            self._link.wants_room(self)  # behind the messages waiting for room, in order
            return
        self._flush()

    def _aio_close(self) -> None:
        if self._gone or self._reset_pending:
            return
        self._reset_pending = True
        self._flush()

    def _aio_fail(self, error: BaseException) -> None:
        self._break(error)
        self._backlog.clear()
        self._reset_now()

    # --- driven by the link ----------------------------------------------------------------

    def _flush(self) -> None:
        """Hand the backlog to str0m while it takes it; reset the stream once drained."""
        peer = self._link.native_peer
        if peer is None or self._gone:
            self._backlog.clear()
            return
        from .._rtc import RtcError

        if self._backlog:
            try:
                # The whole backlog in one call; str0m takes messages until its buffer is full.
                accepted, events, delay = peer.send_many(self.channel, list(self._backlog))
            except RtcError as exc:
                error = trio.BrokenResourceError(f"pipe {self.label!r} failed: {exc}")
                error.__cause__ = exc
                self._aio_fail(error)
                return
            self._link.after_events(events, delay)  # the events are taken: hand them on
            if accepted:
                for _ in range(accepted):
                    self._handed += len(self._backlog.popleft())
                self._on_acked(self._handed)
        if self._backlog:
            self._link.wants_room(self)
        elif self._reset_pending:
            if peer.buffered_amount(self.channel):
                self._link.wants_room(self)  # checked again after the next input
            elif self._incoming and self.reset_due is None:
                self.reset_due = trio.current_time() + RESET_DEFER
                self._link.defer_reset(self)
            elif self.reset_due is None or trio.current_time() >= self.reset_due:
                self._reset_now()

    def _reset_now(self) -> None:
        if self._gone:
            return
        self._gone = True
        self._reset_pending = False
        peer = self._link.native_peer
        if peer is None:
            return
        from .._rtc import RtcError

        try:
            peer.close_channel(self.channel)
        except RtcError:
            logger.debug("could not close data channel %d", self.channel, exc_info=True)
        self._link.after_call()

    def _on_closed_natively(self, clean: bool) -> None:
        """The native peer closed the channel (a stream reset, or the association died)."""
        self._gone = True
        self._backlog.clear()
        self._on_channel_closed(clean)
