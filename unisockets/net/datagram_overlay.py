"""Datagram sockets on a unisockets network: one unreliable channel per peer link.

An overlay node has one :class:`OverlayDatagrams`: its datagram port table
(the sans-IO :class:`~unisockets.protocol.datagram.PortTable`), its sockets
(:class:`OverlayDatagramSocket`) and, per peer, a sender (docs/protocol.md,
"Datagrams"):

- **Sending.** Whether a datagram is sent, waits or is dropped is decided by
  the sans-IO :class:`~unisockets.protocol.datagram_senders.DatagramSenders`,
  as in the asyncio driver. The first datagram to a peer starts a sender task
  that opens a pipe labelled :data:`~unisockets.protocol.datagram.DATAGRAM_LABEL`
  to it (on WebRTC an unordered data channel without retransmissions; the
  peer link is set up first if there is none). Meanwhile up to
  :data:`~unisockets.protocol.datagram.MAX_PENDING_DATAGRAMS` datagrams wait;
  more are dropped and counted, so ``sendto`` never waits for a link. Once
  the channel is open, a ``sendto`` that finds the sender's queue (as many
  places) full waits for room (the channel's backpressure, as a blocking UDP
  socket waits for its send buffer). A peer that cannot be reached (no such
  node, a legacy node, a link that failed) drops what was queued; datagrams
  to it are dropped for :data:`~unisockets.protocol.datagram.RETRY_AFTER`
  seconds, then a new sender tries again.
- **Receiving.** Each node sends on the channel it opened and receives on
  every datagram channel of the link (its own and the peer's). Every message
  goes through :meth:`PortTable.deliver` at once, as it arrives: into a
  socket's bounded queue or dropped and counted. Nothing is queued per
  channel, so no peer can grow this node's memory.
- **Loopback.** A datagram to the node's own address is queued directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from ..protocol.datagram import (
    DATAGRAM_LABEL,
    RETRY_AFTER,
    DatagramEndpoint,
    DatagramStatistics,
    PortTable,
    encode_datagram,
)
from ..protocol.datagram_calls import EndpointSocketCalls
from ..protocol.datagram_senders import DatagramSenders, PeerSender, SendRoute
from .addresses import Address
from .datagram import DatagramSocket

if TYPE_CHECKING:
    from ..transport.base import MessagePipe
    from .overlay import OverlayNode

__all__ = ["RETRY_AFTER", "OverlayDatagramSocket", "OverlayDatagrams"]

logger = logging.getLogger("unisockets.net")


class _Sender:
    """One peer's channel once open, and the datagrams waiting for room on it."""

    def __init__(self, decisions: PeerSender, places: int) -> None:
        self.decisions = decisions
        # as many places as may wait for the channel: opened() always fits
        self.queue, self.receive = trio.open_memory_channel[bytes](places)
        self.pipe: MessagePipe | None = None


class OverlayDatagrams:
    """An overlay node's datagram layer (see the module docstring).

    Created with the node; it takes the transport's incoming datagram pipes
    (:attr:`~unisockets.transport.base.PeerTransport.datagram_sink`).

    Args:
        node: the overlay node.
    """

    def __init__(self, node: OverlayNode) -> None:
        self._node = node
        self.table = PortTable()
        self._readers: dict[DatagramEndpoint, trio.lowlevel.ParkingLot] = {}
        self.senders = DatagramSenders(self.table.statistics)
        self._senders: dict[str, _Sender] = {}
        self._incoming: dict[str, MessagePipe] = {}
        self._counted = trio.lowlevel.ParkingLot()
        self._closed = False
        node.transport.datagram_sink = self._adopt

    @property
    def statistics(self) -> DatagramStatistics:
        """The node's datagram counters (delivered, and dropped by reason)."""
        return self.table.statistics

    @property
    def max_message_size(self) -> int:
        """The largest datagram channel message of this node's transport, bytes."""
        return int(getattr(self._node.transport, "max_message_size", 65536 + 1))

    def socket(self) -> OverlayDatagramSocket:
        """A new datagram socket on this node."""
        sock = OverlayDatagramSocket(self)
        self._readers[sock._endpoint] = trio.lowlevel.ParkingLot()
        return sock

    # --- sending -----------------------------------------------------------------------

    async def send(self, source_port: int, destination: Address, payload: bytes) -> None:
        """Send one datagram, or drop it (see the module docstring); waits only for room."""
        host, port = destination
        if host == self._node.address:
            await trio.lowlevel.checkpoint()
            self._wake(self.table.deliver_payload((host, source_port), port, payload))
            return
        message = encode_datagram(source_port, port, payload)
        route = self.senders.route(host, message, trio.current_time())
        if route is SendRoute.OPEN:
            decisions = self.senders.sender(host)
            assert decisions is not None
            sender = self._senders[host] = _Sender(decisions, self.senders.max_pending)
            self._node._spawn(self._run_sender, host, sender)
        elif route is SendRoute.DROPPED:
            self._counted.unpark_all()
        elif route is SendRoute.SEND:
            await self._send_open(self._senders[host], message)
            return
        await trio.lowlevel.checkpoint()

    async def _send_open(self, sender: _Sender, message: bytes) -> None:
        """Send on an open channel: at once if nothing waits, else wait for room."""
        pipe = sender.pipe
        if pipe is not None and self._idle(sender) and pipe.send_nowait(message):
            await trio.lowlevel.checkpoint()  # the common case: no task hop
            return
        try:
            sender.queue.send_nowait(message)
        except trio.WouldBlock:
            try:
                await sender.queue.send(message)
            except trio.ClosedResourceError:
                self._send_dropped()
            return
        except trio.ClosedResourceError:
            self._send_dropped()
        await trio.lowlevel.checkpoint()

    @staticmethod
    def _idle(sender: _Sender) -> bool:
        """Nothing waits in the sender's queue (a direct send keeps the order)."""
        stats = sender.receive.statistics()
        return stats.current_buffer_used == 0

    async def _run_sender(self, host: str, sender: _Sender) -> None:
        pipe: MessagePipe | None = None
        try:
            pipe = await self._node.transport.open_pipe(host, DATAGRAM_LABEL)
            self._watch(pipe)
            for message in self.senders.opened(sender.decisions):  # fits: see _Sender
                sender.queue.send_nowait(message)
            sender.pipe = pipe
            async for message in sender.receive:
                await pipe.send_message(message)
        except (
            trio.BrokenResourceError,
            trio.ClosedResourceError,
            TimeoutError,
            ValueError,
        ) as exc:
            logger.info("datagrams to %s dropped: %s", host, exc)
        except Exception:  # a bug of ours must not take the node down with it
            logger.exception("datagrams to %s dropped", host)
        finally:
            if self._senders.get(host) is sender:
                del self._senders[host]
            sender.queue.close()
            left = 0
            while True:
                try:
                    sender.receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                left += 1
            self.senders.failed(sender.decisions, trio.current_time(), left)
            self._counted.unpark_all()
            if pipe is not None:
                with trio.CancelScope(shield=True):
                    await pipe.aclose()

    # --- receiving ---------------------------------------------------------------------

    def _adopt(self, pipe: MessagePipe) -> None:
        """The transport's sink: a peer opened its datagram channel to us."""
        old = self._incoming.get(pipe.peer_id)
        self._incoming[pipe.peer_id] = pipe
        if old is not None:  # one channel per peer: the newest (a new link) wins
            self._node._spawn(old.aclose)
        self._watch(pipe)

    def _watch(self, pipe: MessagePipe) -> None:
        """Deliver what arrives on ``pipe`` as it arrives."""
        from ..transport.webrtc_pipe import DataChannelPipe

        if isinstance(pipe, DataChannelPipe):

            def inspect(data: bytes) -> bool:
                self._wake(self.table.deliver(pipe.peer_id, data))
                return True  # consumed: nothing waits in the pipe

            pipe.inspect = inspect
        else:
            self._node._spawn(self._read, pipe)

    async def _read(self, pipe: MessagePipe) -> None:
        """Deliver a pipe's messages (transports without an inspect hook, e.g. in memory)."""
        try:
            while True:
                self._wake(self.table.deliver(pipe.peer_id, await pipe.receive_message()))
        except (trio.EndOfChannel, trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    def _wake(self, endpoint: DatagramEndpoint | None) -> None:
        """A datagram was delivered to ``endpoint`` or (None) dropped: wake who waits."""
        if endpoint is not None:
            self._readers[endpoint].unpark_all()
        self._counted.unpark_all()

    def _send_dropped(self) -> None:
        self.senders.drop()
        self._counted.unpark_all()

    async def wait_statistics(self, condition: Callable[[DatagramStatistics], bool]) -> None:
        """Wait until ``condition(statistics)`` holds (checked after each count changes).

        For tests and monitoring: e.g. ``await node.datagrams.wait_statistics(lambda s:
        s.queue_full >= 100)``. Use a timeout (``trio.fail_after``) around it.
        """
        while not condition(self.table.statistics):
            await self._counted.park()
        await trio.lowlevel.checkpoint()

    def _forget(self, endpoint: DatagramEndpoint) -> None:
        self.table.release(endpoint)
        lot = self._readers.pop(endpoint, None)
        if lot is not None:
            lot.unpark_all()

    def close(self) -> None:
        """Close every socket and sender (the node is closing)."""
        self._closed = True
        for endpoint in list(self._readers):
            endpoint.close()
            self._forget(endpoint)
        self.senders.close()
        self._counted.unpark_all()
        for sender in list(self._senders.values()):
            sender.queue.close()


class OverlayDatagramSocket(EndpointSocketCalls, DatagramSocket):
    """A datagram socket on an overlay node (:class:`~unisockets.net.DatagramSocket`'s API).

    Created by ``node.socket(SOCK_DGRAM)``. Its calls and errnos are decided
    by the sans-IO :class:`~unisockets.protocol.datagram.DatagramEndpoint`.

    Attributes:
        receive_buffer: bytes its receive queue may hold (``SO_RCVBUF``),
            each datagram charged its payload plus
            :data:`~unisockets.protocol.datagram.DATAGRAM_OVERHEAD`; settable.
    """

    _layer: OverlayDatagrams

    def __init__(self, layer: OverlayDatagrams) -> None:
        self._layer = layer
        self._endpoint = DatagramEndpoint()

    def _max_message_size(self) -> int:
        return self._layer.max_message_size

    async def _checkpoint(self) -> None:
        await trio.lowlevel.checkpoint()

    @property
    def receive_buffer(self) -> int:
        """Bytes the receive queue may be charged (see the class docstring)."""
        return self._endpoint.receive_buffer

    @receive_buffer.setter
    def receive_buffer(self, size: int) -> None:
        if type(size) is not int or size < 0:
            raise ValueError(f"receive_buffer must be a non-negative int, not {size!r}")
        self._endpoint.receive_buffer = size

    def _recvfrom_nowait(self, bufsize: int) -> tuple[bytes, Address] | None:
        self._endpoint.check_open()
        return self._endpoint.pop(bufsize)

    async def _recvfrom(self, bufsize: int) -> tuple[bytes, Address]:
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            self._endpoint.check_open()
            got = self._endpoint.pop(bufsize)
            if got is not None:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return got
            await self._layer._readers[self._endpoint].park()

    def __repr__(self) -> str:
        port = self._endpoint.port
        state = "closed" if self._endpoint.closed else f"port {port}"
        return f"<unisockets.OverlayDatagramSocket {state} on {self._layer._node!r}>"
