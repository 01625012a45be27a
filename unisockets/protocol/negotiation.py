"""The negotiation of one peer link, sans-IO: a state x input table (docs/protocol.md, "Peer link").

A peer link is the one ``RTCPeerConnection`` between this node and one peer.
Its drivers (aiortc behind a thread bridge natively, the browser's
``RTCPeerConnection`` in Pyodide) only call the WebRTC stack, send signaling
messages and run timers; :class:`Negotiation` makes every decision, so both
behave alike. Like h2's stream state machine, the transitions are a table
(:data:`TRANSITIONS`): ``(state, type of input) -> handler``; every pair is
listed, the ones that change nothing included. It reads no clock (``now`` is
an argument, seconds on any monotonic clock) and does no I/O: each input
returns the outputs the driver carries out, in order; inputs and outputs are
the dataclasses of :mod:`unisockets.protocol.negotiation_events`.

Decisions it owns:

- *Who offers*: :class:`OfferNow` (the existing member on ``greeting``, or a
  node needing a pipe) offers from ``new`` only; everything else answers.
- *Glare*, both sides offering at once: the lower id's offer wins
  (:func:`~unisockets.protocol.peer_link.offer_wins`); the loser drops its
  peer connection and answers (:class:`MakeAnswer` with ``drop_pc``).
- *Restart*: an offer on a link already negotiated means the peer started
  over: the link fails (``replaced``) and a fresh link answers it (:class:`Restart`),
  with the candidates queued behind the offer. An offer still queued when the
  link's peer connection closes, fails or times out (the peer's old one said
  goodbye just before its new offer was handled) is the peer's new session
  too: the link fails as ``replaced`` and a fresh link answers it the same way.
- *Candidates*: the peer's wait until the remote description is set (at most
  :data:`MAX_PENDING_CANDIDATES`); bad ones, end-of-candidates and those of a
  session that no longer exists (a stale ``usernameFragment``) are skipped.
- *A repeated greeting* keeps a live link, and fails a connected link whose
  peer connection is not connected any more (a new node took the id).
- *A negotiation across two signaling sessions starts over*: a link still
  negotiating when the peer is greeted again (it rejoined) or when our own
  session ends (:class:`SignalingLost`) fails as ``replaced``, and the greeted
  side offers a fresh link. The old session's offer, answer or candidates may
  have died with the server that was carrying them (a SIGKILLed instance,
  docs/signaling-server.md); kept, such a link would wait out the link
  timeout for messages that never come. An answer says which offer it
  answers (:data:`~unisockets.protocol.peer_link.ANSWERS_ATTRIBUTE`), so a
  late answer to an offer made before the restart is ignored, as candidates
  of another ICE session are. A link dropped on :class:`SignalingLost` also
  says ``reoffer``: its peer may count the link as connected (its side came
  up first) and keep it when greeted again, so nobody else would offer;
  this node offers the peer a fresh link once its own session is back
  (:class:`~unisockets.protocol.relinks.Relinks`), and that offer replaces
  the peer's dead link (*Restart*).
- *The legacy verdict* (docs/protocol.md, "Legacy peers"): an answer marked
  with :data:`~unisockets.protocol.peer_link.MODERN_ANSWER_ATTRIBUTE` makes
  the peer modern as soon as the link connects; otherwise the hello on the
  offerer's ``"channel"`` within ``hello_grace`` seconds of its opening says
  modern, other bytes first or silence say legacy; an answerer knows from the
  DCEP sub-protocol of the ``"channel"`` it receives (and says hello back).
  A connected answerer that never receives ``"channel"`` takes the peer for
  modern after the link timeout; an offerer's ``"channel"`` that does not
  open within it fails the link.
- *Deadlines*: the link timeout (not connected in time fails the link, with
  an ICE description) and the verdict's; :meth:`Negotiation.deadline` says
  when to send :class:`TimePasses`.
- *Flooding*: at most :data:`MAX_QUEUED_INPUTS` signaling inputs wait in the
  link's inbox (:meth:`Negotiation.post`); one more fails the link.
- *Goodbye is not death* (:mod:`unisockets.protocol.probe`): when signaling
  says the peer left (:class:`PeerLeft`), a connected modern link with an
  open ``"channel"`` sends a probe there and fails only if no answer comes
  within ``probe_timeout``; any other link fails at once ("``<peer> left``").
  Probes the peer sends are answered.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from .negotiation_events import (
    INPUT_TYPES,
    SIGNALING_INPUTS,
    AddCandidates,
    AnswerMade,
    AnswerReceived,
    CandidateReceived,
    ChannelArrived,
    ChannelMessage,
    ChannelOpened,
    Closed,
    Discard,
    Fail,
    Greeting,
    Ignored,
    Input,
    LocalCandidate,
    MakeAnswer,
    MakeOffer,
    OfferMade,
    OfferNow,
    OfferReceived,
    Output,
    PcStateChanged,
    PeerKind,
    PeerLeft,
    RemoteCandidate,
    RemoteDescriptionSet,
    Restart,
    SendAnswer,
    SendHello,
    SendOffer,
    SendOnChannel,
    SetAnswer,
    SetKind,
    SignalingLost,
    StepFailed,
    TimePasses,
    parse_candidate,
)
from .peer_link import (
    HELLO,
    HELLO_GRACE,
    answer_is_modern,
    answered_ufrag,
    candidate_types,
    describe_ice_failure,
    mark_answer,
    offer_wins,
)
from .probe import PROBE_TIMEOUT, answer, is_probe, probe, reply_to

__all__ = [
    "MAX_PENDING_CANDIDATES",
    "MAX_QUEUED_INPUTS",
    "TRANSITIONS",
    "LinkState",
    "NegotiatedLink",
    "Negotiation",
    "NegotiationState",
    "signaling_input",
]

#: Signaling inputs a link queues before it declares itself flooded and fails.
MAX_QUEUED_INPUTS: Final = 256
#: Remote candidates kept while waiting for the remote description; more are dropped.
MAX_PENDING_CANDIDATES: Final = 64
#: The inputs whose failure is the peer connection's own end (it closed, failed or
#: timed out): an offer still queued then is the peer's new session (*Restart*).
_PEER_CONNECTION_ENDS: Final = (PcStateChanged, TimePasses)


class NegotiationState(enum.Enum):
    """Where the negotiation is (the rows of :data:`TRANSITIONS`)."""

    NEW = "new"  # nothing offered or answered
    HAVE_LOCAL_OFFER = "have-local-offer"  # we offer; no answer yet
    STABLE = "stable"  # offer and answer exchanged; not connected yet
    CONNECTED = "connected"  # the peer connection is (or was) connected
    FAILED = "failed"  # final


class LinkState(enum.Enum):
    """Where a peer link is in its life (what drivers and users see)."""

    CONNECTING = "connecting"  # negotiating, ICE/DTLS not up yet
    CONNECTED = "connected"  # DTLS up: pipes can be opened
    FAILED = "failed"  # gone for good; a new link replaces it on demand


class _Channel(enum.Enum):
    NONE = "none"  # no "channel" yet
    CREATED = "created"  # ours, not open yet
    OPEN = "open"  # ours opened, or the peer's arrived (open)


_S = NegotiationState
_Handler: TypeAlias = Callable[["Negotiation", "Input", float], list[Output]]


@dataclass(slots=True)
class _Verdict:
    """What is known towards the peer's kind."""

    kind: PeerKind | None = None
    marked: bool = False  # the peer's answer carried MODERN_ANSWER_ATTRIBUTE
    channel: _Channel = _Channel.NONE
    since: float = 0.0  # when `channel` got its value


@dataclass(slots=True)
class _Ice:
    """What ICE learnt: ufrags and candidate types of both sides, candidates on hold."""

    remote_ufrags: set[str] = field(default_factory=set)
    local_ufrags: set[str] = field(default_factory=set)  # of our offer
    remote_types: set[str] = field(default_factory=set)
    local_types: set[str] = field(default_factory=set)
    remote_set: bool = False
    pending: list[RemoteCandidate] = field(default_factory=list)


class Negotiation:
    """The negotiation of the link between ``local_id`` and ``peer_id`` (see the module docstring).

    Args:
        local_id: our node id (a callable: it may change when signaling rejoins).
        peer_id: the peer's node id.
        now: the time the link starts, seconds (its link timeout runs from here).
        link_timeout: seconds the link may take to connect, > 0.
        hello_grace: seconds an offerer waits for the hello after its ``"channel"`` opened.
        ice_servers: whether STUN/TURN servers are configured (for :meth:`ice_failure`).
        probe_timeout: seconds a probe waits for its answer after the peer left,
            > 0 (:mod:`unisockets.protocol.probe`).

    Attributes:
        peer_id: the peer's node id.
        state: the :class:`NegotiationState`.
        role: ``"offerer"``, ``"answerer"`` or None (nothing negotiated yet).
        alive: whether the peer connection is connected right now.
    """

    def __init__(
        self,
        local_id: Callable[[], str],
        peer_id: str,
        now: float,
        *,
        link_timeout: float,
        hello_grace: float = HELLO_GRACE,
        ice_servers: bool = False,
        probe_timeout: float = PROBE_TIMEOUT,
    ) -> None:
        if not (isinstance(link_timeout, int | float) and link_timeout > 0):
            raise ValueError(f"link_timeout must be a positive number of seconds: {link_timeout!r}")
        self.peer_id = peer_id
        self.state = _S.NEW
        self.role: str | None = None
        self.alive = False
        self._local_id = local_id
        self._started = now
        self._link_timeout = float(link_timeout)
        self._hello_grace = float(hello_grace)
        self._ice_servers = ice_servers
        if not (isinstance(probe_timeout, int | float) and probe_timeout > 0):
            raise ValueError(f"probe_timeout must be a positive number: {probe_timeout!r}")
        self._probe_timeout = float(probe_timeout)
        self._probes = 0  # probes sent: the next nonce
        self._probe_until = math.inf  # the deadline of the probe waiting for its answer
        self._connected_at = math.inf
        self._verdict = _Verdict()
        self._ice = _Ice()
        self._inbox: deque[Input] = deque()

    def __repr__(self) -> str:
        return f"<Negotiation {self.peer_id} {self.state.value} {self.role or '-'}>"

    # --- what drivers read ----------------------------------------------------------------

    @property
    def link_state(self) -> LinkState:
        """The :class:`LinkState` users see."""
        if self.state is _S.FAILED:
            return LinkState.FAILED
        return LinkState.CONNECTED if self.state is _S.CONNECTED else LinkState.CONNECTING

    @property
    def kind(self) -> PeerKind | None:
        """The peer's :class:`PeerKind` once known, else None."""
        return self._verdict.kind

    @property
    def remote_set(self) -> bool:
        """Whether the remote description of the current peer connection is set."""
        return self._ice.remote_set

    @property
    def pending(self) -> int:
        """Remote candidates waiting for the remote description."""
        return len(self._ice.pending)

    def ice_failure(self, ice_state: str) -> str:
        """Why ICE did not connect: its state, both sides' candidate types, a hint.

        Args:
            ice_state: the peer connection's ``iceConnectionState``.

        Returns:
            :func:`~unisockets.protocol.peer_link.describe_ice_failure`'s sentence.
        """
        ice = self._ice
        return describe_ice_failure(
            self.peer_id,
            ice_state,
            set(ice.local_types),
            set(ice.remote_types),
            ice_servers=self._ice_servers,
        )

    def deadline(self) -> float:
        """When to input :class:`TimePasses` next, seconds (``inf``: nothing timed).

        Changes with every input: ask again after each.
        """
        if self.state is _S.FAILED:
            return math.inf
        if self.state is not _S.CONNECTED:
            return self._started + self._link_timeout
        verdict = self._verdict
        if verdict.kind is not None:
            return self._probe_until
        if verdict.channel is _Channel.OPEN:
            return verdict.since + self._hello_grace
        return max(self._connected_at, verdict.since) + self._link_timeout

    @property
    def probing(self) -> bool:
        """Whether a probe waits for its answer (the peer left, per signaling)."""
        return self._probe_until < math.inf

    # --- the inbox ------------------------------------------------------------------------

    def post(self, event: Input) -> list[Output]:
        """Queue a signaling input for the driver to :meth:`handle` when it is ready.

        Args:
            event: an :class:`OfferNow`, :class:`OfferReceived`,
                :class:`AnswerReceived` or :class:`CandidateReceived`.

        Returns:
            ``[]``, or a :class:`Fail` when :data:`MAX_QUEUED_INPUTS` inputs are
            already waiting (the link fails: a flooding peer cannot grow memory).
            Ignored once failed.

        Raises:
            TypeError: ``event`` is not a signaling input.
        """
        if not isinstance(event, SIGNALING_INPUTS):
            raise TypeError(f"only signaling inputs are queued, not {event!r}")
        if self.state is _S.FAILED:
            return []
        if len(self._inbox) >= MAX_QUEUED_INPUTS:
            return self.handle(StepFailed(f"signaling from {self.peer_id} floods the link"), 0.0)
        self._inbox.append(event)
        return []

    def next_input(self) -> Input | None:
        """The oldest queued signaling input (removed from the inbox), or None."""
        if self.state is _S.FAILED:
            self._inbox.clear()
        return self._inbox.popleft() if self._inbox else None

    # --- the machine ----------------------------------------------------------------------

    def handle(self, event: Input, now: float) -> list[Output]:
        """Take one input at time ``now``; return what the driver does, in order.

        Args:
            event: one of the input types (see :data:`TRANSITIONS`).
            now: the current time, seconds.

        Returns:
            The outputs. A :class:`Fail` leaves the machine failed.

        Raises:
            TypeError: ``event`` is not an input.
        """
        handler = TRANSITIONS.get((self.state, type(event)))
        if handler is None:
            raise TypeError(f"not a negotiation input: {event!r}")
        outputs = handler(self, event, now)
        if any(isinstance(output, Fail) for output in outputs):
            if isinstance(event, _PEER_CONNECTION_ENDS):
                outputs = self._carry_over(outputs)
            self._to_failed()
        return outputs

    def _carry_over(self, outputs: list[Output]) -> list[Output]:
        """Hand an offer still queued to a fresh link: this link fails as ``replaced``."""
        restart = self._queued_restart(None)
        if not restart:
            return outputs
        failed = [
            dataclasses.replace(output, replaced=True) if isinstance(output, Fail) else output
            for output in outputs
        ]
        return failed + restart

    def _queued_restart(self, offer: str | None) -> list[Output]:
        """A :class:`Restart` for the newest offer in the inbox (else ``offer``), if any.

        It takes the candidates queued behind that offer along: they belong
        to the peer's new session, and this link's inbox dies with it.
        """
        candidates: list[str] = []
        for queued in self._inbox:
            if isinstance(queued, OfferReceived):
                offer, candidates = queued.sdp, []
            elif isinstance(queued, CandidateReceived) and offer is not None:
                candidates.append(queued.text)
        return [] if offer is None else [Restart(offer, tuple(candidates))]

    def _to_failed(self) -> None:
        self.state = _S.FAILED
        self.alive = False
        self._inbox.clear()
        self._ice.pending.clear()

    # --- handlers (one per kind of cell) ---------------------------------------------------

    def _nothing(self, event: Input, now: float) -> list[Output]:
        return []

    def _closed(self, event: Input, now: float) -> list[Output]:
        self._to_failed()
        return []

    def _step_failed(self, event: Input, now: float) -> list[Output]:
        assert isinstance(event, StepFailed)
        return [Fail(event.reason)]

    def _offer_now(self, event: Input, now: float) -> list[Output]:
        self.role = "offerer"
        self.state = _S.HAVE_LOCAL_OFFER
        self._verdict.channel, self._verdict.since = _Channel.CREATED, now
        return [MakeOffer()]

    def _not_now(self, event: Input, now: float) -> list[Output]:
        return [Ignored(f"already {self.state.value}: not offering {self.peer_id} a link")]

    def _offer_made(self, event: Input, now: float) -> list[Output]:
        assert isinstance(event, OfferMade)
        self._ice.local_types |= candidate_types(event.sdp)
        self._ice.local_ufrags = _ufrags(event.sdp)
        return [SendOffer(event.sdp)]

    def _answer(self, event: Input, now: float) -> list[Output]:
        assert isinstance(event, OfferReceived)
        drop_pc = self.state is _S.HAVE_LOCAL_OFFER
        if drop_pc:
            if offer_wins(self._local_id(), self.peer_id):
                return [Ignored(f"glare with {self.peer_id}: our offer wins")]
            self._verdict.channel = _Channel.NONE  # our "channel" goes with our offer
        self.role = "answerer"
        self.state = _S.STABLE
        self._learn_remote(event.sdp)
        return [MakeAnswer(event.sdp, drop_pc=drop_pc)]

    def _restart(self, event: Input, now: float) -> list[Output]:
        assert isinstance(event, OfferReceived)
        return [
            Fail(f"{self.peer_id} renegotiated: it restarted the link", replaced=True),
            *self._queued_restart(event.sdp),
        ]

    def _answer_made(self, event: Input, now: float) -> list[Output]:
        assert isinstance(event, AnswerMade)
        if self.role != "answerer":
            return [Ignored("an answer made while not answering")]
        self._ice.local_types |= candidate_types(event.sdp)
        offer_ufrag = min(self._ice.remote_ufrags, default=None)
        return [SendAnswer(mark_answer(event.sdp, offer_ufrag))]

    def _set_answer(self, event: Input, now: float) -> list[Output]:
        assert isinstance(event, AnswerReceived)
        answered = answered_ufrag(event.sdp)
        if (
            answered is not None
            and self._ice.local_ufrags
            and answered not in self._ice.local_ufrags
        ):
            return [Ignored(f"ignoring a late answer from {self.peer_id} to an earlier offer")]
        self.state = _S.STABLE
        self._verdict.marked = answer_is_modern(event.sdp)
        self._learn_remote(event.sdp)
        return [SetAnswer(event.sdp)]

    def _unexpected_answer(self, event: Input, now: float) -> list[Output]:
        return [Ignored(f"ignoring an unexpected answer from {self.peer_id}")]

    def _learn_remote(self, sdp: str) -> None:
        self._ice.remote_ufrags = _ufrags(sdp)
        self._ice.remote_types |= candidate_types(sdp)

    def _remote_set(self, event: Input, now: float) -> list[Output]:
        if self.role is None or self._ice.remote_set:
            return []
        self._ice.remote_set = True
        pending, self._ice.pending = self._ice.pending, []
        return self._add(pending)

    def _candidate(self, event: Input, now: float) -> list[Output]:
        assert isinstance(event, CandidateReceived)
        try:
            candidate = parse_candidate(event.text)
        except ValueError as exc:
            return [Ignored(f"ignoring a bad candidate from {self.peer_id}: {exc}")]
        if candidate is None:
            return []  # end-of-candidates: nothing to do
        if not self._ice.remote_set:
            if len(self._ice.pending) >= MAX_PENDING_CANDIDATES:
                return [Ignored(f"too many early candidates from {self.peer_id}; dropping")]
            self._ice.pending.append(candidate)
            return []
        return self._add([candidate])

    def _add(self, candidates: list[RemoteCandidate]) -> list[Output]:
        ufrags = self._ice.remote_ufrags
        fresh = tuple(c for c in candidates if not (c.ufrag and ufrags and c.ufrag not in ufrags))
        for candidate in fresh:
            self._ice.remote_types |= candidate_types(candidate.line)
        return [AddCandidates(fresh)] if fresh else []

    def _local_candidate(self, event: Input, now: float) -> list[Output]:
        assert isinstance(event, LocalCandidate)
        self._ice.local_types |= candidate_types(event.line)
        return []

    def _pc_state(self, event: Input, now: float) -> list[Output]:
        assert isinstance(event, PcStateChanged)
        if event.state in ("failed", "closed"):
            if event.state == "failed" and event.ice_state in ("failed", "checking", "new"):
                return [Fail("", describe_ice=True)]  # ICE, not DTLS, failed
            return [Fail(f"the peer connection to {self.peer_id} {event.state}")]
        self.alive = event.state == "connected"
        if not self.alive or self.state is not _S.STABLE:
            return []
        self.state = _S.CONNECTED
        self._connected_at = now
        if self.role == "offerer" and self._verdict.marked:  # its answer said so
            return self._set_kind(PeerKind.MODERN, "its answer is marked modern")
        return []

    def _channel_arrived(self, event: Input, now: float) -> list[Output]:
        assert isinstance(event, ChannelArrived)
        self._verdict.channel, self._verdict.since = _Channel.OPEN, now
        kind = PeerKind.MODERN if event.modern else PeerKind.LEGACY
        hello: list[Output] = [SendHello()] if event.modern else []
        return hello + self._set_kind(kind, "the DCEP sub-protocol of its channel")

    def _channel_opened(self, event: Input, now: float) -> list[Output]:
        if self._verdict.channel is _Channel.CREATED:
            self._verdict.channel, self._verdict.since = _Channel.OPEN, now
        return []

    def _channel_message(self, event: Input, now: float) -> list[Output]:
        assert isinstance(event, ChannelMessage)
        kind = self._verdict.kind
        if kind is None:
            if event.data == HELLO:
                return [*self._set_kind(PeerKind.MODERN, "it said hello"), Discard()]
            return self._set_kind(PeerKind.LEGACY, "it sent bytes before any hello")
        if kind is not PeerKind.MODERN:
            return []
        if is_probe(event.data):
            return [SendOnChannel(answer(event.data)), Discard()]
        if self.probing and event.data == reply_to(self._probes - 1):
            self._probe_until = math.inf
            reason = f"{self.peer_id} answered on the link: only its signaling left, the link stays"
            return [Ignored(reason), Discard()]
        return [Discard()]

    def _peer_left(self, event: Input, now: float) -> list[Output]:
        verdict = self._verdict
        if not (
            self.state is _S.CONNECTED
            and self.alive
            and verdict.kind is PeerKind.MODERN
            and verdict.channel is _Channel.OPEN
        ):
            return [Fail(f"{self.peer_id} left")]
        if self.probing:
            return []
        self._probe_until = now + self._probe_timeout
        self._probes += 1
        return [SendOnChannel(probe(self._probes - 1))]

    def _set_kind(self, kind: PeerKind, reason: str) -> list[Output]:
        if self._verdict.kind is not None:
            return []
        self._verdict.kind = kind
        return [SetKind(kind, reason)]

    def _greeting(self, event: Input, now: float) -> list[Output]:
        if self.state is not _S.CONNECTED:
            reason = f"{self.peer_id} rejoined signaling while the link was negotiating"
            return [Fail(f"{reason}: starting over", replaced=True)]
        if not self.alive:
            return [Fail(f"{self.peer_id} joined again")]
        return [Ignored(f"{self.peer_id} greeted us again: keeping the link")]

    def _signaling_lost(self, event: Input, now: float) -> list[Output]:
        if self.state is _S.CONNECTED:
            return []  # up without signaling: a link outlives the session it was made in
        reason = f"signaling was lost while the link to {self.peer_id} was negotiating"
        return [Fail(f"{reason}: starting over", replaced=True, reoffer=True)]

    def _time_passes(self, event: Input, now: float) -> list[Output]:
        if now < self.deadline():
            return []
        if self.probing:
            return [
                Fail(f"{self.peer_id} left: no answer on the link within {self._probe_timeout:g} s")
            ]
        if self.state is not _S.CONNECTED:
            return [
                Fail(f"no link to {self.peer_id} within {self._link_timeout} s", describe_ice=True)
            ]
        channel = self._verdict.channel
        if channel is _Channel.OPEN:
            return self._set_kind(PeerKind.LEGACY, f"no hello within {self._hello_grace} s")
        if channel is _Channel.CREATED:
            return [Fail(f"the 'channel' channel to {self.peer_id} did not open")]
        # The original always opens "channel"; a peer that opens none is not one.
        return self._set_kind(PeerKind.MODERN, "it opened no 'channel'")


class NegotiatedLink:
    """What a driver's peer link shows of its :class:`Negotiation` (a base of both drivers' links).

    Attributes:
        peer_id: the peer's node id.
        negotiation: the link's :class:`Negotiation`.
    """

    peer_id: str
    negotiation: Negotiation

    def __repr__(self) -> str:
        return f"<PeerLink {self.peer_id} {self.state.value} {self.role or '-'}>"

    @property
    def state(self) -> LinkState:
        """Where the link is: a :class:`LinkState`."""
        return self.negotiation.link_state

    @property
    def role(self) -> str | None:
        """``"offerer"``, ``"answerer"`` or None (nothing negotiated yet)."""
        return self.negotiation.role

    @property
    def kind(self) -> PeerKind | None:
        """The peer's :class:`PeerKind` once known (after the link connected), else None."""
        return self.negotiation.kind


def _ufrags(sdp: str) -> set[str]:
    """The ``a=ice-ufrag`` values of an SDP."""
    return {
        line.strip()[len("a=ice-ufrag:") :]
        for line in sdp.splitlines()
        if line.strip().startswith("a=ice-ufrag:")
    }


def signaling_input(kind: str, payload: str = "") -> Input:
    """The input for a signaling event a driver's link is posted.

    Args:
        kind: ``"offer-now"`` (we offer), ``"offer"``, ``"answer"`` or ``"candidate"``.
        payload: the SDP or the candidate JSON (ignored for ``"offer-now"``).

    Returns:
        An :class:`OfferNow`, :class:`OfferReceived`, :class:`AnswerReceived`
        or :class:`CandidateReceived`.

    Raises:
        ValueError: an unknown ``kind``.
    """
    if kind == "offer-now":
        return OfferNow()
    if kind == "offer":
        return OfferReceived(payload)
    if kind == "answer":
        return AnswerReceived(payload)
    if kind == "candidate":
        return CandidateReceived(payload)
    raise ValueError(f"not a signaling input: {kind!r}")


def _table() -> dict[tuple[NegotiationState, type[Input]], _Handler]:
    n = Negotiation
    live = (_S.NEW, _S.HAVE_LOCAL_OFFER, _S.STABLE, _S.CONNECTED)
    negotiated = (_S.STABLE, _S.CONNECTED)
    table: dict[tuple[NegotiationState, type[Input]], _Handler] = {}
    for state in live:
        table[state, OfferNow] = n._offer_now if state is _S.NEW else n._not_now
        table[state, OfferReceived] = n._restart if state in negotiated else n._answer
        table[state, AnswerReceived] = (
            n._set_answer if state is _S.HAVE_LOCAL_OFFER else n._unexpected_answer
        )
        table[state, CandidateReceived] = n._candidate
        table[state, OfferMade] = n._offer_made if state is _S.HAVE_LOCAL_OFFER else n._nothing
        table[state, AnswerMade] = n._answer_made if state is _S.STABLE else n._nothing
        table[state, RemoteDescriptionSet] = n._remote_set if state in negotiated else n._nothing
        table[state, LocalCandidate] = n._local_candidate
        table[state, PcStateChanged] = n._pc_state
        table[state, ChannelArrived] = n._channel_arrived if state in negotiated else n._nothing
        table[state, ChannelOpened] = n._channel_opened
        table[state, ChannelMessage] = n._channel_message if state in negotiated else n._nothing
        table[state, Greeting] = n._greeting
        table[state, TimePasses] = n._time_passes
        table[state, StepFailed] = n._step_failed
        table[state, PeerLeft] = n._peer_left
        table[state, SignalingLost] = n._signaling_lost
        table[state, Closed] = n._closed
    for kind in INPUT_TYPES:  # failed is final: every input changes nothing
        table[_S.FAILED, kind] = n._nothing
    return table


#: ``(state, input type) -> handler``: every cell of the state x input table.
TRANSITIONS: Final = _table()
