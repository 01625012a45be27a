"""A legacy peer for tests: a node that behaves like the original unisockets.

It follows ``pkg/web/transport/transporter.ts`` and ``cmd/unisockets_runner/main.ts``
of pojntfx/unisockets (the ``HEAD`` of the mirror), with a real aiortc peer
connection per peer and our own :class:`~unisockets.signaling.client.SignalingClient`
for the signaling wire (which both speak byte for byte):

- On ``greeting`` (we are the existing member) it creates a peer connection
  with one data channel ``"channel"`` (no sub-protocol) and sends the offer.
- On ``offer`` it makes a new peer connection (replacing any it had for that
  peer), answers, and takes *the last data channel that arrives* from that
  peer as its channel to it; every message of every channel of that peer goes
  into one queue per peer, which is reset when a channel arrives.
- ``send(alias, data)`` maps the alias to its owner's id and writes one
  message on that peer's channel, waiting until it exists and is open.
  ``recv(alias)`` returns the next message of that peer's queue. Raw bytes:
  no framing, no end of stream.
- ``bind``/``accept``/``connect`` go through signaling as the original's
  sockets do; ``goodbye`` closes that peer's connection and forgets its queue.

aiortc puts its candidates in the SDP; like our transport, the emulator also
sends them as ``candidate`` messages (the original trickles them).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from unisockets.protocol import events
from unisockets.protocol.addresses import format_alias, parse_alias
from unisockets.signaling.client import SignalingClient, open_signaling_client
from unisockets.transport.bridge import AsyncioBridge, open_asyncio_bridge
from unisockets.transport.webrtc import LOOPBACK
from unisockets.transport.webrtc_ice import (
    candidate_from_json,
    install_aioice_tuning,
    local_candidates,
    set_host_addresses,
)

__all__ = ["LegacyPeer", "open_legacy_peer"]

logger = logging.getLogger("tests.legacy_peer")


class LegacyPeer:
    """One original-style node (see the module docstring). Made by :func:`open_legacy_peer`.

    Attributes:
        signaling: its signaling client.
        channel_labels: per peer id, ``(label, sub-protocol)`` of every data channel
            it adopted, in order: its own as offerer, each arriving one as answerer.
        offered_to: the peer ids it offered a peer connection to.
        answered: the peer ids whose offer it answered.
    """

    def __init__(self, signaling: SignalingClient, bridge: AsyncioBridge) -> None:
        self.signaling = signaling
        self.channel_labels: dict[str, list[tuple[str, str]]] = {}
        self.offered_to: list[str] = []
        self.answered: list[str] = []
        self._bridge = bridge
        # trio side: one queue per peer (transporter.ts queuedMessages)
        self._queues: dict[str, collections.deque[bytes]] = {}
        self._arrived = trio.lowlevel.ParkingLot()
        # asyncio side
        self._pcs: dict[str, RTCPeerConnection] = {}
        self._channels: dict[str, RTCDataChannel] = {}
        self._channel_open: dict[str, asyncio.Event] = {}
        self._remote_set: dict[str, bool] = {}
        self._pending: dict[str, list[str]] = {}

    @property
    def id(self) -> str:
        """The node's id from signaling."""
        return self.signaling.id

    # --- the sockets of main.ts ------------------------------------------------------------

    async def bind(self, port: int) -> str:
        """Bind ``port`` on our id (signaling ``bind``); returns the alias."""
        alias = format_alias(self.id, port)
        await self.signaling.bind(alias)
        return alias

    async def accept(self, alias: str) -> str:
        """Accept one connection on our bound ``alias``; returns the client's alias."""
        return await self.signaling.accept(alias)

    async def connect(self, address: tuple[str, int]) -> str:
        """Connect to ``(host, port)`` (signaling ``connect``); returns the remote alias."""
        _, remote_alias, _ = await self.signaling.connect(format_alias(*address))
        return remote_alias

    async def send(self, alias: str, data: bytes) -> None:
        """Write ``data`` as one message on the channel to ``alias``'s owner (transporter.send)."""
        await self._bridge.run(self._aio_send, parse_alias(alias)[0], bytes(data))

    async def recv(self, alias: str) -> bytes:
        """Return the next message from ``alias``'s owner (transporter.recv)."""
        peer_id = parse_alias(alias)[0]
        while not self._queues.get(peer_id):
            await self._arrived.park()
        return self._queues[peer_id].popleft()

    async def recv_exactly(self, alias: str, n: int) -> bytes:
        """Read messages from ``alias``'s owner until ``n`` bytes came (a test helper)."""
        data = bytearray()
        while len(data) < n:
            data += await self.recv(alias)
        return bytes(data)

    async def leave(self) -> None:
        """Close the signaling connection (the server says goodbye); peer connections stay."""
        await self.signaling.aclose()

    # --- signaling (signaling-client.ts + main.ts) -------------------------------------------

    async def _pump(self) -> None:
        async for event in self.signaling.events:
            if isinstance(event, events.PeerGreeted):
                self.offered_to.append(event.peer_id)
                sdp = await self._bridge.run(self._aio_offer, event.peer_id)
                await self.signaling.send_offer(event.peer_id, sdp)
                await self._send_candidates(event.peer_id, sdp)
            elif isinstance(event, events.OfferReceived):
                self.answered.append(event.peer_id)
                sdp = await self._bridge.run(self._aio_answer, event.peer_id, event.sdp)
                await self.signaling.send_answer(event.peer_id, sdp)
                await self._send_candidates(event.peer_id, sdp)
            elif isinstance(event, events.AnswerReceived):
                await self._bridge.run(self._aio_set_answer, event.peer_id, event.sdp)
            elif isinstance(event, events.CandidateReceived):
                await self._bridge.run(self._aio_candidate, event.peer_id, event.candidate)
            elif isinstance(event, events.PeerLeft):
                self._queues.pop(event.peer_id, None)
                await self._bridge.run(self._aio_shutdown, event.peer_id)

    async def _send_candidates(self, peer_id: str, sdp: str) -> None:
        for candidate in local_candidates(sdp):
            await self.signaling.send_candidate(peer_id, candidate)

    # --- trio side of the queues -------------------------------------------------------------

    def _channel_arrived(self, peer_id: str, label: str, protocol: str) -> None:
        self.channel_labels.setdefault(peer_id, []).append((label, protocol))
        self._queues[peer_id] = collections.deque()  # queuedMessages.set(id, [])

    def _queue(self, peer_id: str, data: bytes) -> None:
        queue = self._queues.get(peer_id)
        if queue is None:
            logger.error("message from %s without a channel", peer_id)  # ChannelDoesNotExist
            return
        queue.append(data)
        self._arrived.unpark_all()

    # --- transporter.ts (asyncio thread) -----------------------------------------------------

    async def _aio_new_pc(self, peer_id: str) -> RTCPeerConnection:
        old = self._pcs.pop(peer_id, None)
        if old is not None:
            await old.close()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._pcs[peer_id] = pc
        self._remote_set[peer_id] = False
        # A send may already wait on this peer's event (it was made before the
        # offer arrived): keep it, or that send would wait forever.
        self._channel_open.setdefault(peer_id, asyncio.Event())
        return pc

    def _aio_adopt(self, peer_id: str, channel: RTCDataChannel) -> None:
        """Make ``channel`` the one to ``peer_id`` (the last one wins); queue its messages."""
        self._channels[peer_id] = channel
        opened = self._channel_open.setdefault(peer_id, asyncio.Event())
        opened.clear()

        def on_open() -> None:
            opened.set()

        def on_message(message: bytes | str) -> None:
            data = message.encode() if isinstance(message, str) else message
            self._bridge.to_trio(self._queue, peer_id, data)

        channel.on("open", on_open)
        channel.on("message", on_message)
        if channel.readyState == "open":
            opened.set()

    async def _aio_offer(self, peer_id: str) -> str:
        pc = await self._aio_new_pc(peer_id)
        channel = pc.createDataChannel("channel")
        self._bridge.to_trio(self._channel_arrived, peer_id, "channel", "")
        self._aio_adopt(peer_id, channel)
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)

    async def _aio_answer(self, peer_id: str, sdp: str) -> str:
        pc = await self._aio_new_pc(peer_id)

        def on_datachannel(channel: RTCDataChannel) -> None:
            self._bridge.to_trio(self._channel_arrived, peer_id, channel.label, channel.protocol)
            self._aio_adopt(peer_id, channel)

        pc.on("datachannel", on_datachannel)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await self._aio_remote_set(peer_id)
        return str(pc.localDescription.sdp)

    async def _aio_set_answer(self, peer_id: str, sdp: str) -> None:
        pc = self._pcs.get(peer_id)
        if pc is None:
            logger.error("answer from %s without a connection", peer_id)
            return
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        await self._aio_remote_set(peer_id)

    async def _aio_remote_set(self, peer_id: str) -> None:
        self._remote_set[peer_id] = True
        for text in self._pending.pop(peer_id, []):
            await self._aio_candidate(peer_id, text)

    async def _aio_candidate(self, peer_id: str, text: str) -> None:
        pc = self._pcs.get(peer_id)
        if pc is None or not self._remote_set.get(peer_id):
            self._pending.setdefault(peer_id, []).append(text)
            return
        parsed = candidate_from_json(text)
        if parsed is not None:
            await pc.addIceCandidate(parsed[0])

    async def _aio_send(self, peer_id: str, data: bytes) -> None:
        while True:
            channel = self._channels.get(peer_id)
            if channel is not None and channel.readyState == "open":
                channel.send(data)
                return
            opened = self._channel_open.setdefault(peer_id, asyncio.Event())
            opened.clear()
            await opened.wait()

    async def _aio_shutdown(self, peer_id: str) -> None:
        pc = self._pcs.pop(peer_id, None)
        if pc is not None:
            await pc.close()
        channel = self._channels.pop(peer_id, None)
        if channel is not None:
            channel.close()

    async def _aio_close_all(self) -> None:
        for peer_id in list(self._pcs):
            await self._aio_shutdown(peer_id)


@asynccontextmanager
async def open_legacy_peer(url: str, subnet: str = "10.0.0") -> AsyncIterator[LegacyPeer]:
    """Run a legacy peer on the signaling server at ``url`` for the block (loopback ICE only).

    On exit its peer connections are closed, then its signaling connection.
    """
    install_aioice_tuning()
    async with (
        open_signaling_client(url, subnet) as signaling,
        open_asyncio_bridge(name="legacy-peer") as bridge,
    ):
        set_host_addresses(bridge.loop, LOOPBACK)
        async with trio.open_nursery() as nursery:
            peer = LegacyPeer(signaling, bridge)
            nursery.start_soon(peer._pump)
            try:
                yield peer
            finally:
                with trio.CancelScope(shield=True):
                    await bridge.run(peer._aio_close_all)
                nursery.cancel_scope.cancel()
