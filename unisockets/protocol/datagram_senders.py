"""Where each outgoing datagram goes: sent, waiting for its peer's channel, or dropped.

The decisions every driver of datagram sockets makes alike, as data
(docs/protocol.md, "Datagrams", "Sending before the channel is open"); the
driver only opens channels and writes messages. Time is an argument (seconds
on any monotonic clock: ``trio.current_time()``, the asyncio loop's ``time()``),
so the rules are tested without a clock.

- The first datagram to a peer is :attr:`SendRoute.OPEN`: it waits, and the
  driver opens the peer's datagram channel (setting up the link if needed).
- While the channel opens, up to ``max_pending``
  (:data:`~unisockets.protocol.datagram.MAX_PENDING_DATAGRAMS`) datagrams wait
  (:attr:`SendRoute.QUEUED`); more are :attr:`SendRoute.DROPPED`: ``sendto``
  never waits for a link.
- :meth:`DatagramSenders.opened` hands the waiting datagrams to the driver, in
  order; from then on every datagram is :attr:`SendRoute.SEND` (the driver
  applies the channel's own backpressure).
- :meth:`DatagramSenders.failed` (no such node, a legacy node, a link that
  failed) drops what waited; datagrams to that peer are dropped for
  ``retry_after`` (:data:`~unisockets.protocol.datagram.RETRY_AFTER`) seconds,
  then the next one is :attr:`SendRoute.OPEN` again.
- Every datagram dropped here, or by the driver (:meth:`DatagramSenders.drop`),
  is counted once in :attr:`DatagramStatistics.send_dropped`. Memory is bounded:
  at most ``max_pending`` datagrams per peer, and a peer's pause is forgotten
  once it has passed.
"""

from __future__ import annotations

import enum
from collections import deque

from .datagram import MAX_PENDING_DATAGRAMS, RETRY_AFTER, DatagramStatistics

__all__ = ["DatagramSenders", "PeerSender", "SendRoute"]


class SendRoute(enum.Enum):
    """What :meth:`DatagramSenders.route` decided for one datagram."""

    #: The first datagram to the peer: it waits; the driver opens the channel.
    OPEN = "open"
    #: It waits for the channel the driver is opening.
    QUEUED = "queued"
    #: The channel is open: the driver sends it now.
    SEND = "send"
    #: Dropped and counted (too many waiting, the peer paused, the layer closed).
    DROPPED = "dropped"


class PeerSender:
    """One attempt at a peer's datagram channel: what waits for it, whether it is open.

    Made by :meth:`DatagramSenders.route` (``OPEN``); the driver keeps it beside
    its channel and passes it back to :meth:`~DatagramSenders.opened` and
    :meth:`~DatagramSenders.failed`, so that a late report about an old attempt
    never touches a newer one.

    Attributes:
        host: the peer's node id.
        open: whether :meth:`DatagramSenders.opened` was called.
    """

    def __init__(self, host: str) -> None:
        self.host = host
        self.open = False
        self._pending: deque[bytes] = deque()

    @property
    def pending(self) -> int:
        """Datagrams waiting for the channel."""
        return len(self._pending)


class DatagramSenders:
    """A node's send decisions for every peer (see the module docstring).

    Args:
        statistics: the node's counters; ``send_dropped`` is counted here.
        max_pending: datagrams that may wait for one peer's channel (>= 1).
        retry_after: seconds a failed peer's datagrams are dropped (>= 0).

    Raises:
        ValueError: ``max_pending`` < 1 or ``retry_after`` < 0.
    """

    def __init__(
        self,
        statistics: DatagramStatistics,
        *,
        max_pending: int = MAX_PENDING_DATAGRAMS,
        retry_after: float = RETRY_AFTER,
    ) -> None:
        if max_pending < 1 or retry_after < 0:
            raise ValueError(f"bad limits: max_pending={max_pending}, retry_after={retry_after}")
        self.statistics = statistics
        self.max_pending = max_pending
        self.retry_after = retry_after
        self.closed = False
        self._senders: dict[str, PeerSender] = {}
        self._paused: dict[str, float] = {}

    def route(self, host: str, message: bytes, now: float) -> SendRoute:
        """Decide where one datagram (a whole channel message) to ``host`` goes.

        A ``QUEUED`` or ``OPEN`` message is kept here until :meth:`opened` or
        :meth:`failed`; a ``SEND`` one the driver sends; a ``DROPPED`` one is counted.

        Args:
            host: the destination node id (not this node: loopback is the driver's).
            message: the encoded datagram.
            now: the current time, seconds.
        """
        sender = self._senders.get(host)
        if sender is None:
            if self.closed or self._paused_at(host, now):
                return self._dropped()
            sender = self._senders[host] = PeerSender(host)
            sender._pending.append(message)
            return SendRoute.OPEN
        if sender.open:
            return SendRoute.SEND
        if len(sender._pending) >= self.max_pending:
            return self._dropped()
        sender._pending.append(message)
        return SendRoute.QUEUED

    def sender(self, host: str) -> PeerSender | None:
        """The current attempt at ``host``'s channel, if any."""
        return self._senders.get(host)

    def opened(self, sender: PeerSender) -> list[bytes]:
        """The driver opened ``sender``'s channel: take what waited, oldest first.

        Returns:
            The messages to send now; empty when ``sender`` is no longer the
            current attempt (the layer closed: then the driver closes the channel).
        """
        if self._senders.get(sender.host) is not sender:
            return []
        sender.open = True
        messages = list(sender._pending)
        sender._pending.clear()
        return messages

    def failed(self, sender: PeerSender, now: float, dropped: int = 0) -> None:
        """``sender``'s channel could not be opened, or broke: drop what waited, pause the peer.

        Args:
            sender: the attempt that failed (a stale one only has its drops counted).
            now: the current time, seconds.
            dropped: datagrams the driver itself held for the channel and drops
                now (counted with the rest).
        """
        self.drop(len(sender._pending) + dropped)
        sender._pending.clear()
        if self._senders.get(sender.host) is sender:
            del self._senders[sender.host]
            self._paused = {host: until for host, until in self._paused.items() if now < until}
            self._paused[sender.host] = now + self.retry_after

    def drop(self, count: int = 1) -> None:
        """Count ``count`` datagrams the driver could not send (e.g. the channel closed)."""
        self.statistics.send_dropped += count

    def close(self) -> list[PeerSender]:
        """The node is closing: drop what waits; every later datagram is dropped.

        Returns:
            The attempts that were current (their channels are to be closed).
        """
        self.closed = True
        senders = list(self._senders.values())
        for sender in senders:
            self.drop(len(sender._pending))
            sender._pending.clear()
        self._senders.clear()
        self._paused.clear()
        return senders

    def paused(self, host: str, now: float) -> bool:
        """Whether datagrams to ``host`` are dropped at ``now`` after a failure."""
        return self._paused_at(host, now)

    def _paused_at(self, host: str, now: float) -> bool:
        until = self._paused.get(host)
        if until is None:
            return False
        if now < until:
            return True
        del self._paused[host]  # passed: forgotten, so the table stays small
        return False

    def _dropped(self) -> SendRoute:
        self.drop()
        return SendRoute.DROPPED
