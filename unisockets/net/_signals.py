"""Between signaling and an overlay node's peer transport, both ways.

Out: the transport's offers, answers and candidates go to the peer through
signaling (:class:`SignalAdapter`). In: signaling's events reach the
transport (:func:`pump_signaling`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from ..protocol import events
from ..transport.base import PeerTransport, SignalSender
from ..transport.legacy import LegacyStream

if TYPE_CHECKING:
    from ..signaling.client import SignalingClient

__all__ = ["SignalAdapter", "pump_signaling"]

logger = logging.getLogger("unisockets.net")


class SignalAdapter(SignalSender):
    """Sends a WebRTC transport's offers, answers and candidates over signaling."""

    def __init__(self, signaling: SignalingClient) -> None:
        self._signaling = signaling

    async def send_offer(self, peer_id: str, sdp: str) -> None:
        await self._signaling.send_offer(peer_id, sdp)

    async def send_answer(self, peer_id: str, sdp: str) -> None:
        await self._signaling.send_answer(peer_id, sdp)

    async def send_candidate(self, peer_id: str, candidate: str) -> None:
        await self._signaling.send_candidate(peer_id, candidate)


async def pump_signaling(
    signaling: SignalingClient,
    transport: PeerTransport,
    loopback: PeerTransport,
    legacy_connection: Callable[[str], LegacyStream | None],
) -> None:
    """Hand signaling events to the transport (offers, answers, candidates, leaves).

    Args:
        signaling: the node's signaling client, whose events are read until it closes.
        transport: the node's peer transport.
        loopback: the node's loopback transport (told of id changes only).
        legacy_connection: the node's connection with a legacy peer, if any,
            by peer id (ended when that peer leaves).
    """
    peers: Any = transport
    webrtc = hasattr(peers, "handle_offer")
    async for event in signaling.events:
        try:
            if isinstance(event, events.PeerLeft):
                legacy = legacy_connection(event.peer_id)
                if legacy is not None:
                    legacy.peer_left()  # its channel ends now: EOF, not an error
                await transport.peer_left(event.peer_id)
            elif isinstance(event, events.Disconnected):
                transport.signaling_lost()  # links still negotiating start over
            elif isinstance(event, events.Reconnected):
                transport.signaling_back()  # and their peers get a fresh offer
            elif isinstance(event, events.IdChanged):
                transport.local_id = event.new_id
                loopback.local_id = event.new_id
            elif not webrtc:
                continue
            elif isinstance(event, events.PeerGreeted):
                await peers.handle_greeting(event.peer_id)
            elif isinstance(event, events.OfferReceived):
                await peers.handle_offer(event.peer_id, event.sdp)
            elif isinstance(event, events.AnswerReceived):
                await peers.handle_answer(event.peer_id, event.sdp)
            elif isinstance(event, events.CandidateReceived):
                await peers.handle_candidate(event.peer_id, event.candidate)
        except (OSError, trio.BrokenResourceError, ValueError) as exc:
            # A peer's bad SDP or candidate must not take the node down.
            logger.warning("signaling event %r failed: %r", event, exc)
