"""What a native peer link does with the events of its core (``unisockets._rtc``).

:class:`NativeLinkEvents` is the half of
:class:`~unisockets.transport.native_rtc_link.NativePeerLink` that turns the
native peer's events (``Peer.poll_io``: data, channel openings and closes,
DTLS connected, ICE states, srflx candidates) into pipe messages, pipes and
inputs of the link's negotiation, and trickles the candidates it found
(RFC 8838). Consent expiry (RFC 7675) is judged here too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import trio

from ..protocol.consent import ConsentPolicy
from ..protocol.peer_link import LEGACY_LABEL, MODERN_PROTOCOL
from .native_rtc_pipe import NativePipe
from .webrtc_link import PeerLink

if TYPE_CHECKING:
    from .._rtc import Event
    from .native_rtc_link import NativePeerLink

__all__ = ["NativeLinkEvents", "candidates_of"]


class NativeLinkEvents(PeerLink):
    """The native peer's events, handled (a base of ``NativePeerLink``, which sets these)."""

    _channels: dict[int, NativePipe]
    _trickle: list[str]
    _sdp_sent: str | None
    _consent_policy: ConsentPolicy
    _dtls: bool

    def _dispatch(self, events: list[Event]) -> None:
        generation = self._generation
        for event in events:
            if generation != self._generation:
                return
            kind = event[0]
            if self.failure is not None:  # lingering: only count the resets that completed
                if kind == "close":
                    self._channels.pop(_int(event[1]), None)
                continue
            if kind == "data":
                pipe = self._channels.get(_int(event[1]))
                if pipe is not None:
                    pipe._deliver(_bytes(event[2]))
            elif kind == "open":
                self._opened(_int(event[1]), str(event[2]), str(event[3]))
            elif kind == "close":
                pipe = self._channels.pop(_int(event[1]), None)
                if pipe is not None:  # a stream reset (a dying association says "closed" first)
                    pipe._on_closed_natively(clean=True)
            elif kind == "connected":
                self._dtls = True
                self._on_pc_state(generation, "connected", self._ice_state)
            elif kind == "ice":
                self._ice_changed(generation, str(event[1]))
            elif kind == "closed":
                self._on_pc_state(generation, "closed", self._ice_state)
            elif kind == "candidate":
                self._trickle.append(str(event[1]))

    async def _send_trickle(self) -> None:
        """Trickle the srflx candidates found so far (after our SDP: its mid and ufrag)."""
        if self._sdp_sent is None or not self._trickle:
            return
        sdp, lines, self._trickle = self._sdp_sent, self._trickle, []
        for candidate in candidates_of(sdp, lines):
            await self._signal.send_candidate(self.peer_id, candidate)

    def _ice_changed(self, generation: int, state: str) -> None:
        self._on_ice_state(generation, state)
        if state == "disconnected" and self._dtls:
            self._consent_expired()

    def _consent_expired(self) -> None:
        lifetime = self._consent_policy.lifetime
        self.fail(
            trio.BrokenResourceError(
                f"ICE consent expired: nothing from {self.peer_id} for {lifetime} s"
            )
        )

    def _opened(self, number: int, label: str, protocol: str) -> None:
        pipe = self._channels.get(number)
        if pipe is not None:  # ours: the peer acked it
            pipe._on_open()
            if pipe is self.legacy_pipe:
                self._on_channel_opened(self._generation)
            return
        if label == LEGACY_LABEL:
            pipe = self._legacy(number, incoming=True)
            self._on_legacy_pipe(self._generation, pipe, protocol == MODERN_PROTOCOL)
            return
        pipe = self._pipe(number, label, incoming=True)
        self._on_incoming_pipe(self._generation, pipe)

    def _pipe(self, number: int, label: str, *, incoming: bool) -> NativePipe:
        pipe = NativePipe(
            cast("NativePeerLink", self),
            self.peer_id,
            label,
            channel=number,
            incoming=incoming,
            on_close=self._forget,
            on_link_lost=self.fail,
        )
        self._channels[number] = pipe
        return pipe

    def _legacy(self, number: int, *, incoming: bool) -> NativePipe:
        generation = self._generation
        pipe = NativePipe(
            cast("NativePeerLink", self),
            self.peer_id,
            LEGACY_LABEL,
            channel=number,
            incoming=incoming,
            on_link_lost=lambda error: self._pipe_link_lost(generation, error),
        )
        pipe.inspect = self._inspect_legacy
        self._channels[number] = pipe
        return pipe


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _bytes(value: object) -> bytes:
    assert isinstance(value, bytes)
    return value


def candidates_of(sdp: str, extra: Sequence[str] = ()) -> list[str]:
    """The ``a=candidate`` lines of our SDP as JSON ``RTCIceCandidateInit`` strings.

    W3C WebRTC, section 4.8.1.1; the same fields the aiortc backend sends
    (:func:`unisockets.transport.webrtc_ice.local_candidates`).

    Args:
        sdp: our offer or answer (str0m's, one ``m=`` line).
        extra: candidate lines found later (``candidate:...``): when given,
            these, with the SDP's mid and ufrag, instead of the SDP's own.

    Returns:
        One JSON string per candidate line, in order.
    """
    mid: str | None = None
    ufrag: str | None = None
    lines: list[str] = []
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
        elif line.startswith("a=ice-ufrag:"):
            ufrag = line[len("a=ice-ufrag:") :]
        elif line.startswith("a=candidate:") and not extra:
            lines.append(line[len("a=") :])
    lines.extend(extra)
    return [
        json.dumps(
            {"candidate": line, "sdpMid": mid, "sdpMLineIndex": 0, "usernameFragment": ufrag}
        )
        for line in lines
    ]
