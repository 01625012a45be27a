"""The peer-link negotiation, sans-IO: every state x input, an injected clock, no WebRTC."""

from __future__ import annotations

import itertools
import json
import math

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from unisockets.protocol import negotiation_events as neg
from unisockets.protocol.negotiation import (
    MAX_PENDING_CANDIDATES,
    MAX_QUEUED_INPUTS,
    TRANSITIONS,
    LinkState,
    Negotiation,
    NegotiationState,
    signaling_input,
)
from unisockets.protocol.negotiation_events import INPUT_TYPES, PeerKind
from unisockets.protocol.peer_link import (
    HELLO,
    HELLO_GRACE,
    MODERN_ANSWER_ATTRIBUTE,
    answered_ufrag,
    mark_answer,
)
from unisockets.protocol.probe import PROBE_TIMEOUT, answer, is_probe, probe, reply_to

LOW, HIGH = "10.0.0.9", "10.0.0.10"  # LOW's offer wins a glare (ids compare as addresses)
TIMEOUT = 20.0


def sdp(ufrag: str, *, marked: bool = False, types: tuple[str, ...] = ("host",)) -> str:
    lines = ["v=0", f"a=ice-ufrag:{ufrag}"]
    lines += [f"a=candidate:1 1 udp 1 127.0.0.1 {9 + i} typ {t}" for i, t in enumerate(types)]
    if marked:
        lines.append(MODERN_ANSWER_ATTRIBUTE)
    return "\r\n".join(lines) + "\r\n"


def candidate(ufrag: str | None = "peer", typ: str = "host") -> str:
    init = {"candidate": f"candidate:2 1 udp 1 127.0.0.1 7 typ {typ}", "sdpMid": "0"}
    if ufrag is not None:
        init["usernameFragment"] = ufrag
    return json.dumps(init)


def machine(local: str = LOW, peer: str = HIGH, now: float = 0.0) -> Negotiation:
    return Negotiation(lambda: local, peer, now, link_timeout=TIMEOUT)


def kinds(outputs: list[neg.Output]) -> list[type]:
    return [type(output) for output in outputs]


def offerer(marked: bool = False) -> Negotiation:
    """A machine that offered and has the peer's answer set (not connected yet)."""
    m = machine()
    assert kinds(m.handle(neg.OfferNow(), 0.0)) == [neg.MakeOffer]
    assert kinds(m.handle(neg.OfferMade(sdp("me")), 0.0)) == [neg.SendOffer]
    assert kinds(m.handle(neg.AnswerReceived(sdp("peer", marked=marked)), 0.0)) == [neg.SetAnswer]
    assert m.handle(neg.RemoteDescriptionSet(), 0.0) == []
    return m


def answerer() -> Negotiation:
    m = machine()
    assert m.handle(neg.OfferReceived(sdp("peer")), 0.0) == [neg.MakeAnswer(sdp("peer"), False)]
    assert m.handle(neg.RemoteDescriptionSet(), 0.0) == []
    [send] = m.handle(neg.AnswerMade(sdp("me")), 0.0)
    assert isinstance(send, neg.SendAnswer) and MODERN_ANSWER_ATTRIBUTE in send.sdp
    return m


# --- the table --------------------------------------------------------------------------------


def test_the_table_has_every_state_x_input() -> None:
    assert set(TRANSITIONS) == set(itertools.product(NegotiationState, INPUT_TYPES))
    assert len(INPUT_TYPES) == 18


def test_signaling_events_by_name() -> None:
    assert signaling_input("offer-now") == neg.OfferNow()
    assert signaling_input("offer", "o") == neg.OfferReceived("o")
    assert signaling_input("answer", "a") == neg.AnswerReceived("a")
    assert signaling_input("candidate", "c") == neg.CandidateReceived("c")
    with pytest.raises(ValueError):
        signaling_input("goodbye")


def test_a_non_input_raises_type_error() -> None:
    with pytest.raises(TypeError):
        machine().handle("offer", 0.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        machine().post(neg.TimePasses())
    with pytest.raises(ValueError):
        Negotiation(lambda: LOW, HIGH, 0.0, link_timeout=0)


# --- who offers, glare, restart -----------------------------------------------------------------


def test_offer_now_offers_once_and_only_from_new() -> None:
    m = machine()
    assert m.handle(neg.OfferNow(), 0.0) == [neg.MakeOffer()]
    assert m.role == "offerer" and m.state is NegotiationState.HAVE_LOCAL_OFFER
    assert kinds(m.handle(neg.OfferNow(), 1.0)) == [neg.Ignored]
    assert m.handle(neg.OfferMade("o"), 1.0) == [neg.SendOffer("o")]


@pytest.mark.parametrize(("local", "peer", "wins"), [(LOW, HIGH, True), (HIGH, LOW, False)])
def test_glare_the_lower_id_wins_the_other_drops_its_pc_and_answers(
    local: str, peer: str, wins: bool
) -> None:
    m = machine(local, peer)
    m.handle(neg.OfferNow(), 0.0)
    m.handle(neg.OfferMade(sdp("mine")), 0.0)
    outputs = m.handle(neg.OfferReceived(sdp("theirs")), 1.0)
    if wins:
        assert kinds(outputs) == [neg.Ignored] and m.role == "offerer"
        assert m.state is NegotiationState.HAVE_LOCAL_OFFER
    else:
        assert outputs == [neg.MakeAnswer(sdp("theirs"), drop_pc=True)]
        assert m.role == "answerer" and m.state is NegotiationState.STABLE


@pytest.mark.parametrize("connected", [False, True])
def test_an_offer_on_a_negotiated_link_is_a_restart(connected: bool) -> None:
    m = answerer()
    if connected:
        m.handle(neg.PcStateChanged("connected", "connected"), 1.0)
    fail, restart = m.handle(neg.OfferReceived("again"), 2.0)
    assert isinstance(fail, neg.Fail) and fail.replaced and "restarted" in fail.reason
    assert restart == neg.Restart("again")
    assert m.state is NegotiationState.FAILED


def test_an_unexpected_answer_is_ignored() -> None:
    for m in (machine(), answerer()):
        assert kinds(m.handle(neg.AnswerReceived("x"), 0.0)) == [neg.Ignored]
        assert m.link_state is LinkState.CONNECTING


# --- candidates ---------------------------------------------------------------------------------


def test_candidates_wait_for_the_remote_description_and_stale_ones_are_skipped() -> None:
    m = machine()
    m.handle(neg.OfferNow(), 0.0)
    for ufrag in ("peer", "gone", None):
        assert m.handle(neg.CandidateReceived(candidate(ufrag)), 0.0) == []
    assert m.pending == 3
    m.handle(neg.AnswerReceived(sdp("peer")), 0.0)
    [add] = m.handle(neg.RemoteDescriptionSet(), 0.0)
    assert isinstance(add, neg.AddCandidates)
    assert [c.ufrag for c in add.candidates] == ["peer", None]  # "gone" was another session
    [add] = m.handle(neg.CandidateReceived(candidate("peer", "relay")), 0.0)
    assert add.candidates[0].sdp_mid == "0" and m.pending == 0
    assert m.handle(neg.CandidateReceived(candidate("gone")), 0.0) == []
    assert "relay" in m.ice_failure("failed") and "received from the peer: host, relay" in (
        m.ice_failure("failed")
    )


def test_early_candidates_are_bounded() -> None:
    m = machine()
    m.handle(neg.OfferNow(), 0.0)
    for _ in range(MAX_PENDING_CANDIDATES):
        assert m.handle(neg.CandidateReceived(candidate()), 0.0) == []
    assert kinds(m.handle(neg.CandidateReceived(candidate()), 0.0)) == [neg.Ignored]
    assert m.pending == MAX_PENDING_CANDIDATES


@pytest.mark.parametrize("text", ["{not json", "[]", '{"candidate": 5}', "null"])
def test_bad_candidates_are_ignored_and_end_of_candidates_is_nothing(text: str) -> None:
    m = answerer()
    assert kinds(m.handle(neg.CandidateReceived(text), 0.0)) == [neg.Ignored]
    assert m.handle(neg.CandidateReceived('{"candidate": ""}'), 0.0) == []
    assert m.link_state is LinkState.CONNECTING


# --- connection, greeting, timeouts, flooding ----------------------------------------------------


def test_the_link_times_out_with_an_ice_description() -> None:
    m = machine(now=100.0)
    m.handle(neg.OfferNow(), 100.0)
    m.handle(neg.OfferMade(sdp("me", types=("host", "srflx"))), 100.0)
    assert m.deadline() == 100.0 + TIMEOUT
    assert m.handle(neg.TimePasses(), 100.0 + TIMEOUT - 0.001) == []
    [fail] = m.handle(neg.TimePasses(), 100.0 + TIMEOUT)
    assert isinstance(fail, neg.Fail) and fail.describe_ice and f"{TIMEOUT} s" in fail.reason
    assert "gathered here: host, srflx; received from the peer: none" in m.ice_failure("checking")
    assert m.deadline() == math.inf


@pytest.mark.parametrize(
    ("state", "ice", "ice_detail"),
    [
        ("failed", "failed", True),
        ("failed", "checking", True),
        ("failed", "connected", False),
        ("closed", "closed", False),
    ],
)
def test_a_failed_pc_fails_the_link_saying_whether_ice_failed(
    state: str, ice: str, ice_detail: bool
) -> None:
    m = answerer()
    [fail] = m.handle(neg.PcStateChanged(state, ice), 1.0)
    assert isinstance(fail, neg.Fail) and fail.describe_ice is ice_detail
    assert m.state is NegotiationState.FAILED


def test_a_greeting_keeps_a_live_link_and_fails_a_dead_connected_one() -> None:
    m = answerer()
    m.handle(neg.PcStateChanged("connected", "connected"), 1.0)
    assert m.alive and kinds(m.handle(neg.Greeting(), 2.0)) == [neg.Ignored]
    m.handle(neg.PcStateChanged("disconnected", "disconnected"), 3.0)
    assert not m.alive and m.link_state is LinkState.CONNECTED
    [fail] = m.handle(neg.Greeting(), 4.0)
    assert isinstance(fail, neg.Fail) and "joined again" in fail.reason


@pytest.mark.parametrize("event", [neg.Greeting(), neg.SignalingLost()])
@pytest.mark.parametrize("made", ["new", "offered", "answered", "offerer with answer"])
def test_a_greeting_or_our_lost_signaling_starts_a_link_still_negotiating_over(
    event: neg.Input, made: str
) -> None:
    """What the old signaling session carried may be lost: the link fails, replaced."""
    m = machine()
    if made == "offered":
        m.handle(neg.OfferNow(), 0.0)
    elif made == "answered":
        m = answerer()
    elif made == "offerer with answer":
        m = offerer()
    [fail] = m.handle(event, 1.0)
    assert isinstance(fail, neg.Fail) and fail.replaced and "starting over" in fail.reason
    assert m.state is NegotiationState.FAILED


def test_lost_signaling_keeps_a_connected_link_live_or_not() -> None:
    m = answerer()
    m.handle(neg.PcStateChanged("connected", "connected"), 1.0)
    assert m.handle(neg.SignalingLost(), 2.0) == []
    m.handle(neg.PcStateChanged("disconnected", "disconnected"), 3.0)
    assert m.handle(neg.SignalingLost(), 4.0) == [] and m.link_state is LinkState.CONNECTED


def test_an_answer_says_which_offer_and_a_late_one_to_an_earlier_offer_is_ignored() -> None:
    m = answerer()  # answered the offer sdp("peer")
    assert answered_ufrag(m.handle(neg.AnswerMade(sdp("again")), 0.0)[0].sdp) == "peer"  # type: ignore[union-attr]
    m = machine()
    m.handle(neg.OfferNow(), 0.0)
    m.handle(neg.OfferMade(sdp("me2")), 0.0)
    late = mark_answer(sdp("peer1"), "me1")  # answers our offer of before a restart
    assert kinds(m.handle(neg.AnswerReceived(late), 1.0)) == [neg.Ignored]
    assert m.state is NegotiationState.HAVE_LOCAL_OFFER
    current = mark_answer(sdp("peer2"), "me2")
    assert kinds(m.handle(neg.AnswerReceived(current), 1.0)) == [neg.SetAnswer]


def test_an_answer_that_does_not_say_which_offer_is_taken() -> None:
    """Original nodes (and ours of before the attribute) do not tag their answers."""
    m = machine()
    m.handle(neg.OfferNow(), 0.0)
    m.handle(neg.OfferMade(sdp("me")), 0.0)
    assert kinds(m.handle(neg.AnswerReceived(sdp("peer")), 1.0)) == [neg.SetAnswer]


def test_a_flood_of_signaling_fails_the_link() -> None:
    m = machine()
    for _ in range(MAX_QUEUED_INPUTS):
        assert m.post(neg.CandidateReceived(candidate())) == []
    [fail] = m.post(neg.CandidateReceived(candidate()))
    assert isinstance(fail, neg.Fail) and "floods" in fail.reason
    assert m.next_input() is None and m.post(neg.OfferNow()) == []


def test_the_inbox_is_first_in_first_out() -> None:
    m = machine()
    events = [neg.OfferNow(), neg.AnswerReceived("a"), neg.CandidateReceived("c")]
    for event in events:
        m.post(event)
    assert [m.next_input() for _ in range(4)] == [*events, None]


# --- the legacy verdict -------------------------------------------------------------------------


def test_a_marked_answer_makes_the_peer_modern_when_the_link_connects() -> None:
    m = offerer(marked=True)
    outputs = m.handle(neg.PcStateChanged("connected", "connected"), 5.0)
    assert outputs == [neg.SetKind(PeerKind.MODERN, "its answer is marked modern")]
    assert m.deadline() == math.inf
    assert m.handle(neg.ChannelMessage(b"other"), 6.0) == [neg.Discard()]


def test_the_hello_within_the_grace_makes_the_peer_modern_and_is_dropped() -> None:
    m = offerer()
    m.handle(neg.PcStateChanged("connected", "connected"), 5.0)
    assert m.deadline() == 5.0 + TIMEOUT  # for "channel" to open
    m.handle(neg.ChannelOpened(), 6.0)
    assert m.deadline() == 6.0 + HELLO_GRACE
    assert kinds(m.handle(neg.ChannelMessage(HELLO), 7.0)) == [neg.SetKind, neg.Discard]
    assert m.kind is PeerKind.MODERN


def test_other_bytes_first_or_silence_make_the_peer_legacy() -> None:
    m = offerer()
    m.handle(neg.PcStateChanged("connected", "connected"), 5.0)
    m.handle(neg.ChannelOpened(), 6.0)
    assert kinds(m.handle(neg.ChannelMessage(b"GET /"), 6.5)) == [neg.SetKind]  # kept
    assert m.kind is PeerKind.LEGACY and m.handle(neg.ChannelMessage(HELLO), 7.0) == []
    silent = offerer()
    silent.handle(neg.PcStateChanged("connected", "connected"), 5.0)
    silent.handle(neg.ChannelOpened(), 6.0)
    assert silent.handle(neg.TimePasses(), 6.0 + HELLO_GRACE - 0.01) == []
    [verdict] = silent.handle(neg.TimePasses(), 6.0 + HELLO_GRACE)
    assert verdict == neg.SetKind(PeerKind.LEGACY, f"no hello within {HELLO_GRACE} s")


def test_an_offerers_channel_that_never_opens_fails_the_link() -> None:
    m = offerer()
    m.handle(neg.PcStateChanged("connected", "connected"), 5.0)
    [fail] = m.handle(neg.TimePasses(), 5.0 + TIMEOUT)
    assert isinstance(fail, neg.Fail) and "did not open" in fail.reason


@pytest.mark.parametrize("modern", [True, False])
def test_an_answerer_knows_from_the_channels_sub_protocol(modern: bool) -> None:
    m = answerer()
    m.handle(neg.PcStateChanged("connected", "connected"), 5.0)
    outputs = m.handle(neg.ChannelArrived(modern), 5.5)
    kind = PeerKind.MODERN if modern else PeerKind.LEGACY
    assert kinds(outputs) == ([neg.SendHello] if modern else []) + [neg.SetKind]
    assert m.kind is kind


def test_an_answerer_that_gets_no_channel_takes_the_peer_for_modern() -> None:
    m = answerer()
    m.handle(neg.PcStateChanged("connected", "connected"), 5.0)
    [verdict] = m.handle(neg.TimePasses(), 5.0 + TIMEOUT)
    assert verdict == neg.SetKind(PeerKind.MODERN, "it opened no 'channel'")


def test_glare_lost_forgets_our_channel() -> None:
    m = machine(HIGH, LOW)
    m.handle(neg.OfferNow(), 0.0)
    m.handle(neg.OfferReceived(sdp("peer")), 0.0)
    m.handle(neg.RemoteDescriptionSet(), 0.0)
    m.handle(neg.PcStateChanged("connected", "connected"), 1.0)
    m.handle(neg.ChannelOpened(), 1.0)  # a late event of the dropped channel: no grace runs
    assert m.deadline() == 1.0 + TIMEOUT


# --- goodbye is not death: the probe --------------------------------------------------------------


def modern(now: float = 5.0) -> Negotiation:
    """A connected answerer whose peer is modern, with the peer's "channel" open."""
    m = answerer()
    m.handle(neg.PcStateChanged("connected", "connected"), now)
    assert kinds(m.handle(neg.ChannelArrived(True), now)) == [neg.SendHello, neg.SetKind]
    return m


def test_a_modern_peer_that_left_is_probed_and_kept_when_it_answers() -> None:
    m = modern()
    assert m.handle(neg.PeerLeft(), 10.0) == [neg.SendOnChannel(probe(0))]
    assert m.probing and m.deadline() == 10.0 + PROBE_TIMEOUT
    assert m.handle(neg.PeerLeft(), 10.1) == []  # one probe at a time
    assert m.handle(neg.ChannelMessage(reply_to(5)), 10.2) == [neg.Discard()]  # not ours
    [kept, discard] = m.handle(neg.ChannelMessage(reply_to(0)), 10.3)
    assert isinstance(kept, neg.Ignored) and "link stays" in kept.reason
    assert discard == neg.Discard()
    assert not m.probing and m.deadline() == math.inf
    assert m.handle(neg.TimePasses(), 20.0) == [] and m.link_state is LinkState.CONNECTED
    # a later goodbye probes again, with the next nonce
    assert m.handle(neg.PeerLeft(), 30.0) == [neg.SendOnChannel(probe(1))]


def test_a_probe_without_an_answer_fails_the_link_saying_the_peer_left() -> None:
    m = modern()
    m.handle(neg.PeerLeft(), 10.0)
    assert m.handle(neg.TimePasses(), 10.0 + PROBE_TIMEOUT - 0.01) == []
    [fail] = m.handle(neg.TimePasses(), 10.0 + PROBE_TIMEOUT)
    assert isinstance(fail, neg.Fail) and fail.reason.startswith(f"{HIGH} left")
    assert m.link_state is LinkState.FAILED


def test_a_legacy_or_unconnected_peer_that_left_fails_at_once() -> None:
    legacy = answerer()
    legacy.handle(neg.PcStateChanged("connected", "connected"), 5.0)
    legacy.handle(neg.ChannelArrived(False), 5.0)
    assert legacy.handle(neg.PeerLeft(), 6.0) == [neg.Fail(f"{HIGH} left")]
    for m in (answerer(), offerer(marked=True)):
        assert m.handle(neg.PeerLeft(), 6.0) == [neg.Fail(f"{HIGH} left")]
    unknown = offerer()  # connected, its kind not known yet
    unknown.handle(neg.PcStateChanged("connected", "connected"), 5.0)
    unknown.handle(neg.ChannelOpened(), 5.0)
    assert unknown.handle(neg.PeerLeft(), 6.0) == [neg.Fail(f"{HIGH} left")]


def test_a_peers_probe_is_answered_on_a_modern_link_only() -> None:
    m = modern()
    assert m.handle(neg.ChannelMessage(probe(42)), 6.0) == [
        neg.SendOnChannel(reply_to(42)),
        neg.Discard(),
    ]
    legacy = answerer()
    legacy.handle(neg.PcStateChanged("connected", "connected"), 5.0)
    legacy.handle(neg.ChannelArrived(False), 5.0)
    assert legacy.handle(neg.ChannelMessage(probe(42)), 6.0) == []  # a legacy peer's bytes


@pytest.mark.parametrize(
    "data",
    [b"unisockets/2 probe ", b"unisockets/2 probe x1", b"unisockets/2 probe " + b"9" * 21, HELLO],
)
def test_malformed_probes_are_not_answered(data: bytes) -> None:
    assert not is_probe(data)
    with pytest.raises(ValueError, match="not a probe"):
        answer(data)
    assert modern().handle(neg.ChannelMessage(data), 6.0) == [neg.Discard()]


def test_probe_nonces_are_bounded() -> None:
    assert answer(probe(10**20 - 1)) == reply_to(10**20 - 1)
    for bad in (-1, 10**20):
        with pytest.raises(ValueError, match="nonce"):
            probe(bad)


# --- stateful: any input in any order ------------------------------------------------------------

SDPS = st.builds(sdp, st.sampled_from(["peer", "other"]), marked=st.booleans())
INPUTS = st.one_of(
    st.just(neg.OfferNow()),
    st.builds(neg.OfferReceived, SDPS),
    st.builds(neg.AnswerReceived, SDPS),
    st.builds(
        neg.CandidateReceived,
        st.one_of(
            st.builds(candidate, st.sampled_from(["peer", "other", None])),
            st.sampled_from(["{bad", '{"candidate": ""}']),
        ),
    ),
    st.builds(neg.OfferMade, SDPS),
    st.builds(neg.AnswerMade, SDPS),
    st.just(neg.RemoteDescriptionSet()),
    st.builds(neg.LocalCandidate, st.just("candidate:1 1 udp 1 1.2.3.4 5 typ srflx")),
    st.builds(
        neg.PcStateChanged,
        st.sampled_from(["new", "connecting", "connected", "disconnected", "failed", "closed"]),
        st.sampled_from(["new", "checking", "connected", "failed"]),
    ),
    st.builds(neg.ChannelArrived, st.booleans()),
    st.just(neg.ChannelOpened()),
    st.builds(
        neg.ChannelMessage,
        st.sampled_from([HELLO, b"raw bytes", probe(0), probe(7), reply_to(0), reply_to(1)]),
    ),
    st.just(neg.PeerLeft()),
    st.just(neg.Greeting()),
    st.just(neg.SignalingLost()),
    st.just(neg.TimePasses()),
    st.builds(neg.StepFailed, st.just("boom")),
    st.just(neg.Closed()),
)


class NegotiationMachine(RuleBasedStateMachine):
    """Feeds any input at any time and checks the rules against a small model."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.local, self.peer = LOW, HIGH
        self.m = Negotiation(lambda: self.local, self.peer, 0.0, link_timeout=TIMEOUT)
        self.offers_made = 0
        self.answers_made = 0
        self.kinds_set: list[PeerKind] = []
        self.remote_ufrags: set[str] = set()

    @rule(local_wins=st.booleans())
    def swap_ids(self, local_wins: bool) -> None:
        self.local = LOW if local_wins else "10.0.0.200"

    @rule(seconds=st.floats(0.0, 30.0))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    @rule(event=INPUTS)
    def handle(self, event: neg.Input) -> None:
        before, role, kind = self.m.state, self.m.role, self.m.kind
        deadline, remote_set = self.m.deadline(), self.m.remote_set
        outputs = self.m.handle(event, self.now)
        S = NegotiationState
        if before is S.FAILED:
            assert outputs == [] and self.m.state is S.FAILED
            return
        if any(isinstance(o, neg.Fail) for o in outputs) or isinstance(event, neg.Closed):
            assert self.m.state is S.FAILED and self.m.deadline() == math.inf
        if isinstance(event, neg.TimePasses) and self.now < deadline:
            assert outputs == []
        if isinstance(event, neg.TimePasses) and self.now >= deadline and before is not S.CONNECTED:
            assert kinds(outputs) == [neg.Fail] and outputs[0].describe_ice  # type: ignore[union-attr]
        for output in outputs:
            if isinstance(output, neg.MakeOffer):
                assert before is S.NEW and isinstance(event, neg.OfferNow)
                self.offers_made += 1
            elif isinstance(output, neg.MakeAnswer):
                assert before in (S.NEW, S.HAVE_LOCAL_OFFER)
                assert output.drop_pc is (before is S.HAVE_LOCAL_OFFER)
                assert before is S.NEW or self.local == "10.0.0.200"  # lost the glare
                self.answers_made += 1
                self.remote_ufrags = {"peer"} if "ufrag:peer" in output.offer else {"other"}
            elif isinstance(output, neg.SetAnswer):
                self.remote_ufrags = {"peer"} if "ufrag:peer" in output.sdp else {"other"}
            elif isinstance(output, neg.AddCandidates):
                assert self.m.remote_set and output.candidates
                for added in output.candidates:
                    assert added.ufrag in (None, *self.remote_ufrags)
            elif isinstance(output, neg.SendAnswer):
                assert role == "answerer" and MODERN_ANSWER_ATTRIBUTE in output.sdp
            elif isinstance(output, neg.SetKind):
                assert kind is None
                self.kinds_set.append(output.kind)
            elif isinstance(output, neg.Restart):
                assert before in (S.STABLE, S.CONNECTED) and isinstance(event, neg.OfferReceived)
            elif isinstance(output, neg.SendOnChannel):
                # probes (a connected link) and answers (any negotiated one): modern links only
                assert self.m.kind is PeerKind.MODERN
                assert isinstance(event, neg.PeerLeft | neg.ChannelMessage)
                assert before is S.CONNECTED or (
                    before is S.STABLE and isinstance(event, neg.ChannelMessage)
                )
        if isinstance(event, neg.PeerLeft) and not (
            before is S.CONNECTED and kind is PeerKind.MODERN
        ):
            assert kinds(outputs) == [neg.Fail]  # a legacy or unconnected link: at once
        if self.m.state is S.CONNECTED and before is not S.CONNECTED:
            assert before is S.STABLE and isinstance(event, neg.PcStateChanged)
        if isinstance(event, neg.RemoteDescriptionSet) and before in (S.STABLE, S.CONNECTED):
            assert self.m.remote_set or role is None
        if remote_set and not isinstance(event, neg.OfferReceived | neg.AnswerReceived):
            assert self.m.remote_set or self.m.state is S.FAILED

    @invariant()
    def bounded_and_consistent(self) -> None:
        assert self.m.pending <= MAX_PENDING_CANDIDATES
        assert self.offers_made <= 1 and self.answers_made <= 1
        assert len(self.kinds_set) <= 1
        assert self.m.kind == (self.kinds_set[0] if self.kinds_set else None)
        if self.m.kind is not None:
            assert self.m.state in (NegotiationState.CONNECTED, NegotiationState.STABLE) or (
                self.m.state is NegotiationState.FAILED
            )
        assert (self.m.role is None) is (self.offers_made + self.answers_made == 0)


NegotiationMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40)
TestNegotiation = NegotiationMachine.TestCase


# --- two machines, one link ---------------------------------------------------------------------


class TwoPeers(RuleBasedStateMachine):
    """Two machines wired through in-memory signaling; any delivery order, glare included.

    A fake peer connection connects both sides once each has set its remote
    description and the offerer's answer is the one the answerer made. Whatever the
    order, the link ends with one offerer, one answerer, both connected, both modern.
    """

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.ids = {"a": LOW, "b": HIGH}
        self.m = {
            name: Negotiation(
                lambda i=i: i, self.ids["b" if name == "a" else "a"], 0.0, link_timeout=TIMEOUT
            )
            for name, i in self.ids.items()
        }
        self.wire: dict[str, list[neg.Input]] = {"a": [], "b": []}  # to each side
        self.local_sdp: dict[str, str | None] = {"a": None, "b": None}
        self.remote_sdp: dict[str, str | None] = {"a": None, "b": None}
        self.generation = {"a": 0, "b": 0}

    def _other(self, name: str) -> str:
        return "b" if name == "a" else "a"

    def _run(self, name: str, outputs: list[neg.Output]) -> None:
        m, other = self.m[name], self._other(name)
        for output in outputs:
            if isinstance(output, neg.MakeOffer):
                self.generation[name] += 1
                self.local_sdp[name] = sdp(f"{name}{self.generation[name]}")
                self._run(name, m.handle(neg.OfferMade(self.local_sdp[name]), self.now))
            elif isinstance(output, neg.SendOffer):
                self.wire[other].append(neg.OfferReceived(output.sdp))
                self.wire[other].append(
                    neg.CandidateReceived(candidate(output.sdp.split(":")[1][:2]))
                )
            elif isinstance(output, neg.MakeAnswer):
                self.generation[name] += 1
                self.remote_sdp[name] = output.offer
                self._run(name, m.handle(neg.RemoteDescriptionSet(), self.now))
                self.local_sdp[name] = sdp(f"{name}{self.generation[name]}")
                self._run(name, m.handle(neg.AnswerMade(self.local_sdp[name]), self.now))
            elif isinstance(output, neg.SendAnswer):
                self.wire[other].append(neg.AnswerReceived(output.sdp))
            elif isinstance(output, neg.SetAnswer):
                self.remote_sdp[name] = output.sdp
                self._run(name, m.handle(neg.RemoteDescriptionSet(), self.now))
            elif isinstance(output, neg.AddCandidates):
                ufrag = self.remote_sdp[name].split("ufrag:")[1][:2]  # type: ignore[union-attr]
                assert all(c.ufrag == ufrag for c in output.candidates)
        self._maybe_connect()

    def _maybe_connect(self) -> None:
        a, b = self.m["a"], self.m["b"]
        if (
            a.state is NegotiationState.STABLE
            and b.state is NegotiationState.STABLE
            and a.remote_set
            and b.remote_set
            and _unmark(self.remote_sdp["a"]) == self.local_sdp["b"]
            and _unmark(self.remote_sdp["b"]) == self.local_sdp["a"]
        ):
            for name in ("a", "b"):
                self.m[name].handle(neg.PcStateChanged("connected", "connected"), self.now)

    @rule(name=st.sampled_from(["a", "b"]))
    def offer_now(self, name: str) -> None:
        self._run(name, self.m[name].handle(neg.OfferNow(), self.now))

    @rule(name=st.sampled_from(["a", "b"]))
    def deliver(self, name: str) -> None:
        if self.wire[name]:
            event = self.wire[name].pop(0)  # signaling keeps order per sender
            self._run(name, self.m[name].handle(event, self.now))

    @invariant()
    def never_failed(self) -> None:
        for m in self.m.values():
            assert m.state is not NegotiationState.FAILED

    def teardown(self) -> None:
        if self.m["a"].role is None and self.m["b"].role is None:
            return
        for _ in range(20):  # deliver everything still on the wire
            for name in ("a", "b"):
                while self.wire[name]:
                    self._run(name, self.m[name].handle(self.wire[name].pop(0), self.now))
        a, b = self.m["a"], self.m["b"]
        if a.role is None or b.role is None:
            return  # one side offered, the other never got around to it: nothing to judge
        assert {a.role, b.role} == {"offerer", "answerer"}
        assert a.state is b.state is NegotiationState.CONNECTED
        offering = a if a.role == "offerer" else b
        assert offering.kind is PeerKind.MODERN  # our answers are marked


def _unmark(text: str | None) -> str | None:
    if text is None:
        return None
    return "".join(
        line
        for line in text.splitlines(keepends=True)
        if line.strip() != MODERN_ANSWER_ATTRIBUTE and answered_ufrag(line) is None
    )


TwoPeers.TestCase.settings = settings(max_examples=200, stateful_step_count=30)
TestTwoPeers = TwoPeers.TestCase
