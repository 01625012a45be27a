"""The inputs and outputs of the peer-link negotiation (:mod:`unisockets.protocol.negotiation`).

Plain frozen dataclasses, as h2's events: the driver of a peer link turns what
its WebRTC stack and signaling report into inputs, hands them to
:meth:`Negotiation.handle <unisockets.protocol.negotiation.Negotiation.handle>`,
and carries out the outputs it gets back, in order.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Final, TypeAlias

__all__ = [
    "AddCandidates",
    "AnswerMade",
    "AnswerReceived",
    "CandidateReceived",
    "ChannelArrived",
    "ChannelMessage",
    "ChannelOpened",
    "Closed",
    "Discard",
    "Fail",
    "Greeting",
    "INPUT_TYPES",
    "Ignored",
    "Input",
    "LocalCandidate",
    "MakeAnswer",
    "MakeOffer",
    "OfferMade",
    "OfferNow",
    "OfferReceived",
    "Output",
    "PeerLeft",
    "PcStateChanged",
    "PeerKind",
    "RemoteCandidate",
    "RemoteDescriptionSet",
    "Restart",
    "SIGNALING_INPUTS",
    "SendAnswer",
    "SendHello",
    "SendOnChannel",
    "SendOffer",
    "SetAnswer",
    "SetKind",
    "SignalingLost",
    "StepFailed",
    "TimePasses",
    "parse_candidate",
]


class PeerKind(enum.Enum):
    """What kind of node is at the other end of a link (docs/protocol.md, "Legacy peers")."""

    MODERN = "modern"  # one data channel per connection, framed byte streams
    LEGACY = "legacy"  # the original unisockets: one raw "channel" per pair of nodes


# --- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferNow:
    """Signaling input: offer the peer a link (we are the existing member, or need a pipe)."""


@dataclass(frozen=True, slots=True)
class OfferReceived:
    """Signaling input: the peer's SDP offer."""

    sdp: str


@dataclass(frozen=True, slots=True)
class AnswerReceived:
    """Signaling input: the peer's SDP answer."""

    sdp: str


@dataclass(frozen=True, slots=True)
class CandidateReceived:
    """Signaling input: one of the peer's candidates, a JSON ``RTCIceCandidateInit`` string."""

    text: str


@dataclass(frozen=True, slots=True)
class OfferMade:
    """Step done: the driver made our offer (:class:`MakeOffer`); ``sdp`` is its SDP."""

    sdp: str


@dataclass(frozen=True, slots=True)
class AnswerMade:
    """Step done: the driver made our answer (:class:`MakeAnswer`); ``sdp`` is its SDP."""

    sdp: str


@dataclass(frozen=True, slots=True)
class RemoteDescriptionSet:
    """Step done: the peer's offer or answer is the peer connection's remote description."""


@dataclass(frozen=True, slots=True)
class LocalCandidate:
    """The peer connection gathered a candidate (its ``candidate:...`` line)."""

    line: str


@dataclass(frozen=True, slots=True)
class PcStateChanged:
    """The peer connection's ``connectionState`` changed (W3C WebRTC, section 4.3.3).

    Attributes:
        state: the new ``connectionState`` (``"connected"``, ``"disconnected"``,
            ``"failed"``, ``"closed"``, ...).
        ice_state: its ``iceConnectionState`` at that moment (tells an ICE
            failure from a DTLS one).
    """

    state: str
    ice_state: str = "new"


@dataclass(frozen=True, slots=True)
class ChannelArrived:
    """The peer opened a ``"channel"`` (``modern``: with the DCEP sub-protocol ``unisockets/2``)."""

    modern: bool


@dataclass(frozen=True, slots=True)
class ChannelOpened:
    """Our ``"channel"`` (made with the offer) opened."""


@dataclass(frozen=True, slots=True)
class ChannelMessage:
    """A message arrived on ``"channel"`` (before anyone reads it)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Greeting:
    """Signaling greeted the peer again (it rejoined) while this link exists."""


@dataclass(frozen=True, slots=True)
class SignalingLost:
    """Our own signaling session ended (the connection to the server was lost).

    What this link sent in it, or was about to receive, may be lost with the
    server (a restarted or killed server, an instance of a cluster:
    docs/signaling-server.md); what it would send now waits for the next
    session, where it could meet a peer that started over.
    """


@dataclass(frozen=True, slots=True)
class TimePasses:
    """The time of :meth:`~unisockets.protocol.negotiation.Negotiation.deadline` came."""


@dataclass(frozen=True, slots=True)
class StepFailed:
    """A step of the driver (a WebRTC call, a send) raised; ``reason`` describes it."""

    reason: str


@dataclass(frozen=True, slots=True)
class PeerLeft:
    """Signaling said the peer left (``goodbye``): probe a modern link, fail any other.

    See :mod:`unisockets.protocol.probe`.
    """


@dataclass(frozen=True, slots=True)
class Closed:
    """The driver failed the link itself (peer left, transport closing, pipe lost)."""


Input: TypeAlias = (
    OfferNow
    | OfferReceived
    | AnswerReceived
    | CandidateReceived
    | OfferMade
    | AnswerMade
    | RemoteDescriptionSet
    | LocalCandidate
    | PcStateChanged
    | ChannelArrived
    | ChannelOpened
    | ChannelMessage
    | Greeting
    | TimePasses
    | StepFailed
    | PeerLeft
    | SignalingLost
    | Closed
)
#: The input types, the columns of :data:`~unisockets.protocol.negotiation.TRANSITIONS`.
INPUT_TYPES: Final[tuple[type[Input], ...]] = Input.__args__
#: The inputs that arrive by signaling (queued in the link's inbox).
SIGNALING_INPUTS: Final = (OfferNow, OfferReceived, AnswerReceived, CandidateReceived)

# --- outputs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemoteCandidate:
    """A remote candidate to add, parsed from its JSON ``RTCIceCandidateInit``.

    Attributes:
        line: the candidate line without ``a=`` (``"candidate:..."``).
        sdp_mid: its ``sdpMid``, or None.
        sdp_mline_index: its ``sdpMLineIndex`` (>= 0), or None.
        ufrag: its ``usernameFragment``, or None.
        text: the JSON it came in, as received.
    """

    line: str
    sdp_mid: str | None
    sdp_mline_index: int | None
    ufrag: str | None
    text: str


def parse_candidate(text: str) -> RemoteCandidate | None:
    """Parse a JSON ``RTCIceCandidateInit`` (W3C WebRTC, section 4.8.1.1) from a ``candidate``.

    Args:
        text: the JSON string as browsers, original nodes and ours send it.

    Returns:
        The candidate, or None for the end-of-candidates marker (an empty line).

    Raises:
        ValueError: not a JSON object with a ``candidate`` string.
    """
    try:
        init = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not JSON: {text[:80]!r}") from exc
    if not isinstance(init, dict) or not isinstance(init.get("candidate"), str):
        raise ValueError("no 'candidate' string")
    line = init["candidate"].removeprefix("a=")
    if not line:
        return None
    mid, index, ufrag = init.get("sdpMid"), init.get("sdpMLineIndex"), init.get("usernameFragment")
    return RemoteCandidate(
        line=line,
        sdp_mid=mid if isinstance(mid, str) else None,
        sdp_mline_index=index if type(index) is int and index >= 0 else None,
        ufrag=ufrag if isinstance(ufrag, str) else None,
        text=text,
    )


@dataclass(frozen=True, slots=True)
class MakeOffer:
    """Make a new peer connection, its ``"channel"`` (sub-protocol ``unisockets/2``), an
    offer, set it as local description; then input :class:`OfferMade`."""


@dataclass(frozen=True, slots=True)
class SendOffer:
    """Send ``sdp`` to the peer as our offer (then our candidates)."""

    sdp: str


@dataclass(frozen=True, slots=True)
class MakeAnswer:
    """Answer ``offer``: close the old peer connection first if ``drop_pc``.

    ``drop_pc``: glare was lost, our offer's peer connection (and its ``"channel"``)
    goes. Then make a new one, set the offer as remote description (input
    :class:`RemoteDescriptionSet`), make the answer, set it local, and input
    :class:`AnswerMade`.
    """

    offer: str
    drop_pc: bool


@dataclass(frozen=True, slots=True)
class SendAnswer:
    """Send ``sdp`` (marked as modern) to the peer as our answer (then our candidates)."""

    sdp: str


@dataclass(frozen=True, slots=True)
class SetAnswer:
    """Set the peer's answer ``sdp`` as remote description, then input
    :class:`RemoteDescriptionSet`."""

    sdp: str


@dataclass(frozen=True, slots=True)
class AddCandidates:
    """Add these remote candidates to the peer connection, in order."""

    candidates: tuple[RemoteCandidate, ...]


@dataclass(frozen=True, slots=True)
class SendHello:
    """Send :data:`~unisockets.protocol.peer_link.HELLO` once on the peer's ``"channel"``."""


@dataclass(frozen=True, slots=True)
class SendOnChannel:
    """Send ``data`` on the link's ``"channel"`` (a probe or its answer, modern links only)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Discard:
    """Drop the :class:`ChannelMessage` just handled (a hello, or bytes for a modern link)."""


@dataclass(frozen=True, slots=True)
class SetKind:
    """The peer is a ``kind`` node (``reason`` says how we know)."""

    kind: PeerKind
    reason: str


@dataclass(frozen=True, slots=True)
class Fail:
    """Fail the link: break its pipes, close its peer connection.

    Attributes:
        reason: why (the message of the error pipes break with).
        replaced: a new link to the same peer takes over (accept waiters stay).
        describe_ice: append
            :meth:`~unisockets.protocol.negotiation.Negotiation.ice_failure`
            (ICE did not connect).
        reoffer: offer the peer a fresh link once our signaling session is
            back (the link was dropped when it ended:
            :class:`~unisockets.protocol.relinks.Relinks` keeps the peers).
    """

    reason: str
    replaced: bool = False
    describe_ice: bool = False
    reoffer: bool = False


@dataclass(frozen=True, slots=True)
class Restart:
    """Answer ``offer`` with a fresh link to the same peer (this one failed, replaced).

    Attributes:
        offer: the peer's SDP offer.
        candidates: the peer's candidates that were queued behind the offer
            (JSON ``RTCIceCandidateInit`` strings, in order), for the fresh
            link too: a trickling peer puts none in its SDP.
    """

    offer: str
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Ignored:
    """Nothing to do; ``reason`` is worth a log line."""

    reason: str


Output: TypeAlias = (
    MakeOffer
    | SendOffer
    | MakeAnswer
    | SendAnswer
    | SetAnswer
    | AddCandidates
    | SendHello
    | SendOnChannel
    | Discard
    | SetKind
    | Fail
    | Restart
    | Ignored
)
