"""The asyncio side of a peer link: the only code touching its RTCPeerConnection.

A :class:`~unisockets.transport.webrtc_link.PeerLink` is driven from trio;
its :class:`AioPeerConnection` runs in the asyncio thread of the transport's
bridge (:class:`~unisockets.transport.bridge.AsyncioBridge`), like the
``_aio_*`` methods of :mod:`unisockets.transport.webrtc_pipe`. The link calls
it through the bridge (``bridge.run``, ``bridge.call_soon``) with the
*generation* of the peer connection it means; what aiortc reports goes back
to the link's trio-side handlers with ``bridge.to_trio``, tagged with the
generation it concerns, so that the link ignores news of a peer connection
it has replaced (glare, restart).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import trio
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from ..protocol.consent import ConsentPolicy
from ..protocol.datagram import DATAGRAM_LABEL
from ..protocol.peer_link import LEGACY_LABEL, MODERN_PROTOCOL
from .webrtc_consent import take_over_consent
from .webrtc_ice import raise_receive_buffers
from .webrtc_pipe import DataChannelPipe

if TYPE_CHECKING:
    from aiortc import RTCIceCandidate

    from .bridge import AsyncioBridge
    from .webrtc_link import PeerLink

__all__ = ["LINGER_TIMEOUT", "AioPeerConnection"]

logger = logging.getLogger("unisockets.transport.webrtc_link")

#: Seconds a closing transport waits for sent data and stream resets to be acknowledged.
LINGER_TIMEOUT = 2.0


class AioPeerConnection:
    """A peer link's RTCPeerConnection, created, negotiated and closed in the asyncio thread.

    Every method runs in the bridge's asyncio thread (see the module docstring).

    Args:
        link: the trio-side link it reports to.
        bridge: the transport's bridge between trio and asyncio.
        configuration: aiortc's configuration for each peer connection.
        consent: the consent-freshness policy (RFC 7675) of each connected
            peer connection (:mod:`unisockets.transport.webrtc_consent`).
    """

    def __init__(
        self,
        link: PeerLink,
        bridge: AsyncioBridge,
        configuration: RTCConfiguration,
        consent: ConsentPolicy,
    ) -> None:
        self._link = link
        self._bridge = bridge
        self._configuration = configuration
        self._consent = consent
        self._pc: RTCPeerConnection | None = None
        self._generation = 0
        self._legacy: list[RTCDataChannel] = []

    def _new_pc(self, generation: int) -> RTCPeerConnection:
        pc = RTCPeerConnection(self._configuration)

        def on_state() -> None:
            state = pc.connectionState
            if state == "connected":
                self._connected(generation, pc)
            self._bridge.to_trio(self._link._on_pc_state, generation, state, pc.iceConnectionState)

        def on_ice_state() -> None:
            self._bridge.to_trio(self._link._on_ice_state, generation, pc.iceConnectionState)

        def on_datachannel(channel: RTCDataChannel) -> None:
            self._on_datachannel(generation, channel)

        pc.on("connectionstatechange", on_state)
        pc.on("iceconnectionstatechange", on_ice_state)
        pc.on("datachannel", on_datachannel)
        self._pc = pc
        self._generation = generation
        return pc

    def _connected(self, generation: int, pc: RTCPeerConnection) -> None:
        # Our consent checks replace aioice's on this peer connection only
        # (webrtc_consent); an expiry fails the link with its reason.
        def expired(reason: str) -> None:
            error = trio.BrokenResourceError(f"the link to {self._link.peer_id} died: {reason}")
            self._bridge.to_trio(self._link._pipe_link_lost, generation, error)

        try:
            if not take_over_consent(pc, self._consent, expired):
                logger.warning("aioice internals changed: the link keeps aioice's consent checks")
            raise_receive_buffers(pc)
        except Exception:  # pragma: no cover - neither raises
            logger.exception("connection state handler failed")

    def _current(self, generation: int) -> RTCPeerConnection:
        if self._pc is None or generation != self._generation:
            raise trio.BrokenResourceError("the peer connection was replaced")
        return self._pc

    def _legacy_pipe(
        self, generation: int, channel: RTCDataChannel, *, incoming: bool
    ) -> DataChannelPipe:
        pipe = DataChannelPipe(
            self._bridge,
            self._link.peer_id,
            LEGACY_LABEL,
            incoming=incoming,
            on_link_lost=lambda error: self._link._pipe_link_lost(generation, error),
        )
        pipe.inspect = self._link._inspect_legacy
        pipe._aio_attach(channel)
        self._legacy.append(channel)
        return pipe

    async def offer(self, generation: int) -> str:
        """Make a new peer connection with our ``"channel"`` and its offer.

        Args:
            generation: the link's number for the new peer connection.

        Returns:
            The offer's SDP (with our candidates, gathered by aiortc).
        """
        pc = self._new_pc(generation)
        channel = pc.createDataChannel(LEGACY_LABEL, protocol=MODERN_PROTOCOL)
        channel.on("open", lambda: self._bridge.to_trio(self._link._on_channel_opened, generation))
        pipe = self._legacy_pipe(generation, channel, incoming=False)
        self._bridge.to_trio(self._link._on_legacy_pipe, generation, pipe, None)
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)

    async def answer(self, generation: int, sdp: str) -> str:
        """Answer the peer's offer on a new peer connection (ours, if any, is closed first).

        Args:
            generation: the link's number for the new peer connection.
            sdp: the peer's offer.

        Returns:
            The answer's SDP.
        """
        old, self._pc = self._pc, None
        if old is not None:  # glare: ours lost; aiortc cannot roll back, so start over
            self._legacy.clear()
            await old.close()
        pc = self._new_pc(generation)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    async def set_answer(self, generation: int, sdp: str) -> None:
        """Apply the peer's answer to our offer.

        Args:
            generation: the peer connection it answers.
            sdp: the answer.

        Raises:
            trio.BrokenResourceError: that peer connection was replaced.
        """
        pc = self._current(generation)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def add_candidates(self, generation: int, candidates: list[RTCIceCandidate]) -> None:
        """Add the peer's ICE candidates, in order.

        Args:
            generation: the peer connection they are for.
            candidates: the parsed candidates.

        Raises:
            trio.BrokenResourceError: that peer connection was replaced.
        """
        pc = self._current(generation)
        for candidate in candidates:
            await pc.addIceCandidate(candidate)

    def create_channel(self, generation: int, pipe: DataChannelPipe) -> None:
        """Create the data channel of a pipe we open; a failure breaks the pipe (in trio).

        Args:
            generation: the peer connection to create it on.
            pipe: the pipe, labelled; the channel is attached to it.
        """
        try:
            pc = self._current(generation)
            if pipe.label == DATAGRAM_LABEL:  # docs/protocol.md, "Datagrams"
                channel = pc.createDataChannel(pipe.label, ordered=False, maxRetransmits=0)
            else:
                channel = pc.createDataChannel(pipe.label, ordered=True)
            pipe._aio_attach(channel)
        except Exception as exc:
            self._bridge.to_trio(pipe._break, exc)

    def _on_datachannel(self, generation: int, channel: RTCDataChannel) -> None:
        try:
            if channel.label == LEGACY_LABEL:
                modern = channel.protocol == MODERN_PROTOCOL
                pipe = self._legacy_pipe(generation, channel, incoming=True)
                self._bridge.to_trio(self._link._on_legacy_pipe, generation, pipe, modern)
                return
            pipe = DataChannelPipe(
                self._bridge,
                self._link.peer_id,
                channel.label,
                incoming=True,
                on_close=self._link._forget,
                on_link_lost=self._link.fail,
            )
            pipe._aio_attach(channel)
            self._bridge.to_trio(self._link._on_incoming_pipe, generation, pipe)
        except Exception:
            logger.exception("datachannel handler failed")
            try:
                channel.close()
            except Exception:
                logger.exception("could not close a data channel")

    async def close(self, linger: bool) -> None:
        """Close the peer connection, if any.

        Args:
            linger: first wait, at most :data:`LINGER_TIMEOUT` seconds, until the
                peer acknowledged what was sent and the stream resets of
                closed pipes.
        """
        pc, self._pc = self._pc, None
        self._legacy.clear()
        if pc is None:
            return
        if linger and pc.sctp is not None and pc.sctp.state == "connected":
            loop = asyncio.get_running_loop()
            deadline = loop.time() + LINGER_TIMEOUT
            while not _sctp_settled(pc.sctp) and loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.005)  # aiortc has no event for "all acknowledged"
        await pc.close()


def _sctp_settled(sctp: Any) -> bool:
    """Whether an aiortc SCTP transport has nothing left in flight.

    Nothing queued or unacknowledged, no stream reset pending, and no channel
    half-way through its reset (the peer still has to reset its direction,
    which is how it learns the pipe ended cleanly). Reads aiortc internals;
    if they change, this says True and closing simply does not linger.
    """
    for name in ("_data_channel_queue", "_outbound_queue", "_sent_queue", "_reconfig_queue"):
        if getattr(sctp, name, None):
            return False
    if getattr(sctp, "_reconfig_request", None) is not None:
        return False
    channels = getattr(sctp, "_data_channels", {})
    return not any(channel.readyState == "closing" for channel in channels.values())
