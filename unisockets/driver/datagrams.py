"""Datagram sockets of the asyncio driver: ``node.socket(SOCK_DGRAM)`` (a tab, or asyncio natively).

The same wire, limits and errnos as the native overlay node's
(:mod:`unisockets.net.datagram_overlay`; docs/protocol.md, "Datagrams"),
decided by the same sans-IO :mod:`unisockets.protocol.datagram` (ports,
queues) and :mod:`unisockets.protocol.datagram_senders` (sent, waiting or dropped):

- the first datagram to a peer opens the link's unordered, never
  retransmitted data channel ``unisockets/datagram``; meanwhile up to
  :data:`~unisockets.protocol.datagram.MAX_PENDING_DATAGRAMS` wait, more are
  dropped and counted, ``sendto`` never waits for a link. Once open, a
  ``sendto`` that finds the channel's buffer above :data:`HIGH_WATER` waits
  for it to drain (the channel's ``bufferedAmount``);
- every message is handed to the receiving socket's bounded queue as it
  arrives (``set_receiver``), or dropped and counted;
- datagrams to the node's own address are queued directly.

The calls are coroutines, as the driver's stream sockets' (:mod:`.sockets`).
"""

from __future__ import annotations

import asyncio
import socket as _stdlib_socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from ..protocol.datagram import (
    DATAGRAM_LABEL,
    RETRY_AFTER,
    DatagramEndpoint,
    DatagramStatistics,
    PortTable,
    check_recv_size,
    encode_datagram,
)
from ..protocol.datagram_calls import EndpointSocketCalls
from ..protocol.datagram_senders import DatagramSenders, PeerSender, SendRoute
from ..protocol.socket_options import BlockingMode, timeout_error
from .errors import BrokenResourceError, ClosedResourceError
from .pipes import MAX_MESSAGE_SIZE, Pipe
from .runtime import logger

if TYPE_CHECKING:
    from .node import DriverNode

__all__ = ["HIGH_WATER", "RETRY_AFTER", "SOCK_DGRAM", "DriverDatagrams", "DatagramSocket"]

SOCK_DGRAM = _stdlib_socket.SOCK_DGRAM
#: Bytes buffered in the datagram channel above which ``sendto`` waits for it to drain.
HIGH_WATER: Final = 256 * 1024

Address = tuple[str, int]


class _Peer:
    """One peer's channel once open (what waits for it is in :class:`PeerSender`)."""

    def __init__(self, decisions: PeerSender) -> None:
        self.decisions = decisions
        self.pipe: Pipe | None = None


class DriverDatagrams:
    """A tab node's datagram layer (see the module docstring); made with the node.

    Args:
        node: the driver's node.
    """

    def __init__(self, node: DriverNode) -> None:
        self._node = node
        self.table = PortTable()
        self._readers: dict[DatagramEndpoint, asyncio.Event] = {}
        self.senders = DatagramSenders(self.table.statistics)
        self._peers: dict[str, _Peer] = {}
        self._counted = asyncio.Event()
        node.links.datagram_sink = self._adopt

    @property
    def statistics(self) -> DatagramStatistics:
        """The node's datagram counters (delivered, and dropped by reason)."""
        return self.table.statistics

    def socket(self) -> DatagramSocket:
        """A new datagram socket on this node."""
        sock = DatagramSocket(self)
        self._readers[sock._endpoint] = asyncio.Event()
        return sock

    # --- sending -----------------------------------------------------------------------

    async def send(self, source_port: int, destination: Address, payload: bytes) -> None:
        """Send one datagram, or drop it and count it (see the module docstring)."""
        host, port = destination
        if host == self._node.address:
            self._wake(self.table.deliver_payload((host, source_port), port, payload))
            await asyncio.sleep(0)
            return
        message = encode_datagram(source_port, port, payload)
        route = self.senders.route(host, message, asyncio.get_running_loop().time())
        if route is SendRoute.OPEN:
            decisions = self.senders.sender(host)
            assert decisions is not None
            peer = self._peers[host] = _Peer(decisions)
            self._node._spawn(self._open(host, peer))
        elif route is SendRoute.DROPPED:
            self._count_changed()
        elif route is SendRoute.SEND:
            peer = self._peers[host]
            if peer.pipe is not None and peer.pipe.buffered_amount > HIGH_WATER:
                await peer.pipe.wait_drained()
            self._send_on(host, peer, message)
        await asyncio.sleep(0)

    def _send_on(self, host: str, peer: _Peer, message: bytes) -> None:
        if peer.pipe is None:  # it failed while this send waited for the buffer to drain
            self.senders.drop()
            self._count_changed()
            return
        try:
            peer.pipe.send(message)
        except (BrokenResourceError, ClosedResourceError) as exc:
            self.senders.drop()
            self._unreachable_now(host, peer, exc)

    async def _open(self, host: str, peer: _Peer) -> None:
        try:
            pipe = await self._node.links.open_pipe(host, DATAGRAM_LABEL)
        except Exception as exc:  # no link (or a JsException): never into the node's tasks
            self._unreachable_now(host, peer, exc)
            return
        if self._peers.get(host) is not peer:
            pipe.close()
            return
        peer.pipe = pipe
        self._receive_on(pipe, lambda error: self._unreachable_now(host, peer, error))
        for message in self.senders.opened(peer.decisions):
            self._send_on(host, peer, message)

    def _unreachable_now(self, host: str, peer: _Peer, error: BaseException | None) -> None:
        logger.info("datagrams to %s dropped: %s", host, error)
        self.senders.failed(peer.decisions, asyncio.get_running_loop().time())
        self._count_changed()
        if self._peers.get(host) is peer:
            del self._peers[host]
        if peer.pipe is not None:
            peer.pipe.close()
            peer.pipe = None

    # --- receiving ---------------------------------------------------------------------

    def _adopt(self, pipe: Pipe) -> None:
        """The links' sink: a peer opened its datagram channel to us."""
        self._receive_on(pipe, lambda _error: None)

    def _receive_on(self, pipe: Pipe, on_end: object) -> None:
        def receive(message: bytes) -> None:
            self._wake(self.table.deliver(pipe.peer_id, message))

        pipe.set_receiver(receive, on_end)  # type: ignore[arg-type]

    def _wake(self, endpoint: DatagramEndpoint | None) -> None:
        """A datagram was delivered to ``endpoint`` or (None) dropped: wake who waits."""
        if endpoint is not None:
            self._readers[endpoint].set()
        self._count_changed()

    def _count_changed(self) -> None:
        self._counted.set()
        self._counted = asyncio.Event()

    async def wait_statistics(self, condition: Callable[[DatagramStatistics], bool]) -> None:
        """Wait until ``condition(statistics)`` holds (checked after each count changes).

        As :meth:`unisockets.net.datagram_overlay.OverlayDatagrams.wait_statistics`,
        for tests and monitoring: e.g. ``await node.driver.datagrams.wait_statistics(
        lambda s: s.filtered >= 1)``. Use a timeout (``asyncio.timeout``) around it.
        """
        while not condition(self.table.statistics):
            await self._counted.wait()

    def _forget(self, endpoint: DatagramEndpoint) -> None:
        self.table.release(endpoint)
        event = self._readers.pop(endpoint, None)
        if event is not None:
            event.set()

    def close(self) -> None:
        """Close every socket and datagram channel (the node is closing)."""
        self.senders.close()
        self._count_changed()
        for endpoint in list(self._readers):
            endpoint.close()
            self._forget(endpoint)
        for peer in self._peers.values():
            if peer.pipe is not None:
                peer.pipe.close()
        self._peers.clear()


class DatagramSocket(EndpointSocketCalls, BlockingMode):
    """A datagram socket in a tab, with the API of :class:`unisockets.net.DatagramSocket`.

    Created by ``node.socket(SOCK_DGRAM)``; every call and errno is the
    native socket's (docs/concepts.md, "Datagram sockets").

    Attributes:
        family: ``AF_INET``.
        type: ``SOCK_DGRAM``.
    """

    family = _stdlib_socket.AF_INET
    type = SOCK_DGRAM

    _layer: DriverDatagrams

    def __init__(self, layer: DriverDatagrams) -> None:
        self._layer = layer
        self._endpoint = DatagramEndpoint()

    def _max_message_size(self) -> int:
        return MAX_MESSAGE_SIZE

    async def _checkpoint(self) -> None:
        await asyncio.sleep(0)

    async def recvfrom(self, bufsize: int) -> tuple[bytes, Address]:
        """The next datagram (cut to ``bufsize``) and its sender; ``EBADF`` once closed.

        Honours the socket's timeout as natively (``BlockingIOError`` for 0,
        ``TimeoutError`` when it passes).
        """
        check_recv_size(bufsize)
        timeout = self._timeout
        self._endpoint.check_open()
        got = self._endpoint.pop(bufsize)
        if got is not None:
            return got
        if timeout == 0:
            raise timeout_error(0, "recvfrom")
        if timeout is None:
            return await self._wait(bufsize)
        try:
            async with asyncio.timeout(timeout):
                return await self._wait(bufsize)
        except TimeoutError:
            raise timeout_error(timeout, "recvfrom") from None

    async def _wait(self, bufsize: int) -> tuple[bytes, Address]:
        while True:
            self._endpoint.check_open()
            got = self._endpoint.pop(bufsize)
            if got is not None:
                return got
            event = self._layer._readers[self._endpoint]
            event.clear()
            await event.wait()

    async def recv(self, bufsize: int) -> bytes:
        """The next datagram's payload."""
        return (await self.recvfrom(bufsize))[0]

    async def aclose(self) -> None:
        """Close the socket (as :meth:`close`)."""
        self.close()
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        state = "closed" if self._endpoint.closed else f"port {self._endpoint.port}"
        return f"<unisockets.browser.DatagramSocket {state}>"
