"""A peer link: the one RTCPeerConnection between this node and one peer.

A :class:`PeerLink` runs as one trio task in the transport's nursery. Its
signaling inputs (our decision to offer, the peer's offer, answer and
candidates) are queued and handled one at a time in order, so a slow step
never races the next one and the signaling reader never waits for aiortc.
Its :class:`~unisockets.transport.webrtc_link_aio.AioPeerConnection` runs in
the asyncio thread of the transport's bridge and is the only code touching
the :class:`aiortc.RTCPeerConnection`.

Negotiation (docs/protocol.md, "Peer link") is decided by
:class:`unisockets.protocol.negotiation.Negotiation`: who offers, glare (the
lower id's offer wins; the other side drops its own peer connection and
answers: aiortc has no rollback), restarts (an offer on a negotiated link fails
it and a fresh link answers), when the peer's candidates are added, the legacy
verdict and the deadlines. This driver carries out its outputs with aiortc and
the signaling sender, and inputs what aiortc reports. The offerer sends its
candidates as ``candidate`` messages for trickling peers after its offer
(aiortc puts them in the SDP too).

Legacy peers (docs/protocol.md, "Legacy peers"): the original unisockets has one
data channel per pair of nodes, ``"channel"``, and no other. Our offerer
creates ``"channel"`` with the DCEP sub-protocol :data:`MODERN_PROTOCOL`
(the original sets none and ignores it). An answerer that receives
``"channel"`` with that sub-protocol knows the offerer is one of ours and
sends :data:`HELLO` on it once; without it, the offerer is an original node.
An offerer whose peer's answer carries
:data:`~unisockets.protocol.peer_link.MODERN_ANSWER_ATTRIBUTE` (our answerers
add it) knows at once that it talks to a modern node; otherwise, an
offerer whose ``"channel"`` opened and brought no hello within
:data:`HELLO_GRACE` seconds (or brought anything else first) talks to an
original node (the negotiation decides). :attr:`PeerLink.kind` says which;
:meth:`PeerLink.wait_kind` waits for it. On a legacy link ``"channel"`` is the peer's one byte pipe
(:attr:`PeerLink.legacy_pipe`) and no labelled pipe may be opened (an
original answerer takes the last channel that arrives as its channel); on a
modern link nothing but the hello is ever sent on it and what arrives on it
is dropped.

Pipes are data channels the link opens once connected and the peer's kind is
known (DCEP, in-band), or that the peer opens (the ``datachannel`` event).
A link fails, breaking every pipe on it with
:class:`trio.BrokenResourceError`, when ICE or DTLS fail or close, when it is
not connected within the link timeout, when a signaling step fails, or when
the transport says so (peer left, transport closing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio
from aiortc import RTCConfiguration

from ..protocol.consent import ConsentPolicy
from ..protocol.link_idle import LinkIdle
from ..protocol.negotiation import LinkState, Negotiation
from ..protocol.negotiation_events import (
    AddCandidates,
    AnswerMade,
    ChannelArrived,
    ChannelMessage,
    ChannelOpened,
    Discard,
    Fail,
    Ignored,
    MakeAnswer,
    MakeOffer,
    OfferMade,
    Output,
    PcStateChanged,
    PeerKind,
    RemoteDescriptionSet,
    Restart,
    SendAnswer,
    SendHello,
    SendOffer,
    SendOnChannel,
    SetAnswer,
    SetKind,
)
from ..protocol.peer_link import HELLO, HELLO_GRACE, LEGACY_LABEL, MODERN_PROTOCOL, offer_wins
from .webrtc_ice import candidate_from_json, local_candidates
from .webrtc_link_aio import LINGER_TIMEOUT as LINGER_TIMEOUT  # documented here (fail)
from .webrtc_link_aio import AioPeerConnection
from .webrtc_link_base import PeerLinkBase
from .webrtc_pipe import DataChannelPipe

if TYPE_CHECKING:
    from aiortc import RTCIceCandidate

    from .base import SignalSender
    from .bridge import AsyncioBridge

__all__ = [
    "HELLO",
    "HELLO_GRACE",
    "LEGACY_LABEL",
    "LEGACY_RECEIVE_LIMIT",
    "MODERN_PROTOCOL",
    "LegacyPeerError",
    "LinkState",
    "PeerKind",
    "PeerLink",
    "offer_wins",
]

logger = logging.getLogger(__name__)

#: Unread bytes a legacy peer may queue on its channel (it has no flow control); more breaks it.
LEGACY_RECEIVE_LIMIT = 16 * 1024 * 1024
#: Seconds closing a peer connection may take before we stop waiting for it.
CLOSE_TIMEOUT = 10.0


class LegacyPeerError(trio.BrokenResourceError):
    """A labelled pipe was asked of a legacy peer, which has only its ``"channel"``."""


class PeerLink(PeerLinkBase):
    """The peer connection to one peer, driven from trio (see the module docstring).

    Created and registered by the WebRTC transport; not by users.

    Attributes:
        peer_id: the peer's node id.
        failure: why the link failed (a :class:`trio.BrokenResourceError`), or None.
        replaced: whether it failed because a new link to the same peer took over.
        pipes: the open labelled pipes on this link.
        legacy_pipe: the pipe over the ``"channel"`` data channel once it exists
            (on a legacy link: the peer's one byte pipe), else None.
    """

    def __init__(
        self,
        peer_id: str,
        *,
        bridge: AsyncioBridge,
        signal: SignalSender,
        local_id: Callable[[], str],
        configuration: RTCConfiguration,
        link_timeout: float,
        consent: ConsentPolicy,
        on_incoming: Callable[[PeerLink, DataChannelPipe], object],
        on_failed: Callable[[PeerLink, BaseException], object],
        on_restart: Callable[[PeerLink, str, tuple[str, ...]], object],
        idle_timeout: float | None = None,
    ) -> None:
        self.peer_id = peer_id
        self.failure: BaseException | None = None
        self.replaced = False
        self.pipes: set[DataChannelPipe] = set()
        self.legacy_pipe: DataChannelPipe | None = None
        #: Signaling said the peer left since this link was made (its failure ends waiters).
        self.peer_gone = False
        self.negotiation = Negotiation(
            local_id,
            peer_id,
            trio.current_time(),
            link_timeout=link_timeout,
            hello_grace=HELLO_GRACE,
            ice_servers=bool(configuration.iceServers),
        )
        self._kind_known = trio.Event()
        self._bridge = bridge
        self._signal = signal
        self._on_incoming = on_incoming
        self._on_failed = on_failed
        self._on_restart = on_restart
        self._inbox_bell = trio.Event()  # set when the machine's inbox may have inputs
        self._rearm = trio.lowlevel.ParkingLot()  # the machine's deadline may have moved
        self._connected = trio.Event()
        self._cancel_scope = trio.CancelScope()
        self._generation = 0  # which peer connection trio is talking to
        self._ice_state = "new"  # the current peer connection's iceConnectionState
        self._linger = False
        self._aio = AioPeerConnection(self, bridge, configuration, consent)
        #: Closes the link after ``idle_timeout`` s without connections (lazy links).
        self.idle = LinkIdle(idle_timeout, trio.current_time())
        #: open_pipe calls waiting for the link (they count as connections for the idle timer).
        self._opening = 0

    async def open_pipe(self, label: str) -> DataChannelPipe:
        """Create a data channel labelled ``label`` once connected and the peer is known modern.

        Args:
            label: the pipe's label (checked by the transport).

        Returns:
            The pipe, still opening: the caller waits for the peer's ack.

        Raises:
            LegacyPeerError: the peer is a legacy node (it would take the new
                channel for its one channel).
            trio.BrokenResourceError: the link failed.
        """
        if await self._wait_kind_opening() is PeerKind.LEGACY:
            raise LegacyPeerError(
                f"{self.peer_id} is a legacy unisockets node: it has one channel, no pipes"
            )
        pipe = DataChannelPipe(
            self._bridge,
            self.peer_id,
            label,
            incoming=False,
            on_close=self._forget,
            on_link_lost=self.fail,
        )
        self.pipes.add(pipe)
        self._pipes_changed()
        self._bridge.call_soon(self._aio.create_channel, self._generation, pipe)
        return pipe

    # --- the link's task (trio) ------------------------------------------------------------

    async def run(self) -> None:
        """Handle the queued signaling inputs until the link fails; then close it.

        Never raises (failures fail the link); the peer connection is closed on
        the asyncio thread before this returns, even when cancelled.
        """
        try:
            with self._cancel_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._timer)
                    await self._drive()
        finally:
            self.fail(trio.BrokenResourceError("the transport closed"))
            with trio.CancelScope(shield=True):
                await self._close_pc()

    async def _carry_out(self, outputs: list[Output]) -> None:
        """Do what the machine decided, in order (the steps that await WebRTC or signaling)."""
        for output in outputs:
            if isinstance(output, MakeOffer):
                self._generation += 1
                sdp = await self._bridge.run(self._aio.offer, self._generation)
                await self._carry_out(self._handle(OfferMade(sdp)))
            elif isinstance(output, MakeAnswer):
                if output.drop_pc:  # our offer's "channel" goes with our offer
                    self.legacy_pipe = None
                self._generation += 1
                answer = await self._bridge.run(self._aio.answer, self._generation, output.offer)
                await self._carry_out(self._handle(RemoteDescriptionSet()))
                await self._carry_out(self._handle(AnswerMade(answer)))
            elif isinstance(output, SetAnswer):
                await self._bridge.run(self._aio.set_answer, self._generation, output.sdp)
                await self._carry_out(self._handle(RemoteDescriptionSet()))
            elif isinstance(output, SendOffer | SendAnswer):
                if isinstance(output, SendOffer):
                    await self._signal.send_offer(self.peer_id, output.sdp)
                else:
                    await self._signal.send_answer(self.peer_id, output.sdp)
                for candidate in local_candidates(output.sdp):
                    await self._signal.send_candidate(self.peer_id, candidate)
            elif isinstance(output, AddCandidates):
                await self._add_candidates(output)
            else:
                self._apply([output])

    def _apply(self, outputs: list[Output]) -> None:
        """Do the outputs that need no waiting (the others only come from :meth:`_carry_out`)."""
        for output in outputs:
            if isinstance(output, Fail):
                text = output.reason
                if output.describe_ice:
                    detail = self.negotiation.ice_failure(self._ice_state)
                    text = f"{text}: {detail}" if text else detail
                self.fail(trio.BrokenResourceError(text), replaced=output.replaced)
            elif isinstance(output, Restart):
                self._on_restart(self, output.offer, output.candidates)
            elif isinstance(output, SetKind):
                if output.kind is PeerKind.MODERN:
                    self.idle.became_modern(trio.current_time())
                self._rearm.unpark_all()
                if output.kind is PeerKind.LEGACY and self.legacy_pipe is not None:
                    self.legacy_pipe.receive_limit = LEGACY_RECEIVE_LIMIT
                logger.info("%s is a %s node (%s)", self.peer_id, output.kind.value, output.reason)
                self._kind_known.set()
            elif isinstance(output, SendHello):
                if self.legacy_pipe is not None:
                    self._bridge.call_soon(_aio_send_on_channel, self.legacy_pipe, HELLO)
            elif isinstance(output, SendOnChannel):  # a probe, or the answer to one
                if self.legacy_pipe is not None:
                    self._bridge.call_soon(_aio_send_on_channel, self.legacy_pipe, output.data)
            elif isinstance(output, Ignored):
                logger.info("%s", output.reason)

    async def _add_candidates(self, output: AddCandidates) -> None:
        parsed: list[RTCIceCandidate] = []
        for candidate in output.candidates:
            try:
                found = candidate_from_json(candidate.text)
            except ValueError as exc:
                logger.warning("ignoring a bad candidate from %s: %s", self.peer_id, exc)
                continue
            if found is not None:
                parsed.append(found[0])
        if parsed:
            await self._bridge.run(self._aio.add_candidates, self._generation, parsed)

    async def _close_pc(self) -> None:
        if self._bridge.closing:
            return
        try:
            with trio.move_on_after(CLOSE_TIMEOUT) as scope:
                await self._bridge.run(self._aio.close, self._linger)
            if scope.cancelled_caught:  # the bridge's shutdown cancels what is left
                logger.error("closing the peer connection to %s timed out", self.peer_id)
        except Exception:
            logger.exception("closing the peer connection to %s failed", self.peer_id)

    # --- events from the asyncio side (trio) -----------------------------------------------

    def _on_pc_state(self, generation: int, state: str, ice_state: str) -> None:
        if generation != self._generation or self.failure is not None:
            return
        self._ice_state = ice_state
        self._apply(self._handle(PcStateChanged(state, ice_state)))
        if self.state is LinkState.CONNECTED:
            self._connected.set()

    def _on_ice_state(self, generation: int, ice_state: str) -> None:
        if generation == self._generation:
            self._ice_state = ice_state

    def _on_incoming_pipe(self, generation: int, pipe: DataChannelPipe) -> None:
        if generation != self._generation or self.failure is not None:
            pipe._close()
            return
        self.pipes.add(pipe)
        self._pipes_changed()
        self._on_incoming(self, pipe)

    def _on_legacy_pipe(self, generation: int, pipe: DataChannelPipe, modern: bool | None) -> None:
        """Our ``"channel"`` (``modern`` None) or the peer's was made."""
        if generation != self._generation or self.failure is not None:
            return  # its peer connection is being closed
        if self.legacy_pipe is not None:
            logger.info("%s opened %r again: using the new one", self.peer_id, LEGACY_LABEL)
        self.legacy_pipe = pipe
        if modern is not None:
            self._apply(self._handle(ChannelArrived(modern)))

    def _on_channel_opened(self, generation: int) -> None:
        if generation == self._generation and self.failure is None:
            self._apply(self._handle(ChannelOpened()))

    def _inspect_legacy(self, data: bytes) -> bool:
        """Look at a message on ``"channel"`` before it is queued; True: drop it."""
        outputs = self._handle(ChannelMessage(data))
        self._apply(outputs)
        dropped = any(isinstance(output, Discard) for output in outputs)
        if dropped and data != HELLO:
            logger.debug("dropping %d bytes from %s on %r", len(data), self.peer_id, LEGACY_LABEL)
        return dropped

    def _pipe_link_lost(self, generation: int, error: BaseException) -> None:
        if generation == self._generation:
            self.fail(error)


def _aio_send_on_channel(pipe: DataChannelPipe, data: bytes) -> None:
    """Send :data:`HELLO` or a probe on the ``"channel"`` of a modern link (asyncio thread)."""
    channel = pipe._channel
    if channel is not None and channel.readyState == "open":
        channel.send(data)
