"""Fuzzing the native core's boundary (``unisockets._rtc``) with Hypothesis.

Arbitrary SDP, candidates, channel numbers and datagrams go into a real
``Peer``: the only exceptions allowed out are the core's typed errors
(:class:`unisockets._rtc.RtcError` and its subclasses), never a panic
(pyo3's ``PanicException``), never a crash of the process, and the peer stays
usable afterwards (it still makes an offer).
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unisockets.transport.native_rtc import native_available

pytestmark = pytest.mark.skipif(not native_available(), reason="the native extension is not built")

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: SDP-like text: real line prefixes and junk, so the parser gets past its first line.
SDP_LINE = st.one_of(
    st.sampled_from(
        [
            "v=0",
            "o=- 1 2 IN IP4 127.0.0.1",
            "s=-",
            "t=0 0",
            "a=group:BUNDLE 0",
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
            "c=IN IP4 0.0.0.0",
            "a=mid:0",
            "a=sctp-port:5000",
            "a=max-message-size:262144",
            "a=ice-ufrag:abcd",
            "a=ice-pwd:abcdefghijklmnopqrstuvwx",
            "a=setup:actpass",
            "a=fingerprint:sha-256 00:11",
            "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host",
        ]
    ),
    st.text(max_size=80),
)
SDP = st.one_of(st.text(max_size=400), st.lists(SDP_LINE, max_size=20).map("\r\n".join))


def _still_usable(peer: object) -> None:
    from unisockets import _rtc

    assert isinstance(peer, _rtc.Peer)
    sdp, channel = peer.create_offer("channel", "unisockets/2")
    assert sdp.startswith("v=0") and channel >= 1


@FUZZ
@given(offer=SDP, answer=SDP)
def test_arbitrary_sdp_raises_only_typed_errors(offer: str, answer: str) -> None:
    from unisockets import _rtc

    peer = _rtc.Peer("127.0.0.1")
    try:
        with pytest.raises(_rtc.RtcError):
            peer.accept_offer(offer)
            raise _rtc.SdpError("accepted")  # a valid offer is fine too
        other = _rtc.Peer("127.0.0.1")
        other.create_offer("x", "")
        with pytest.raises(_rtc.RtcError):
            other.accept_answer(answer)
            raise _rtc.SdpError("accepted")
        other.close()
    finally:
        peer.close()


@FUZZ
@given(line=st.text(max_size=200), channel=st.integers(0, 2**63 - 1), data=st.binary(max_size=64))
def test_arbitrary_candidates_and_channels_raise_only_typed_errors(
    line: str, channel: int, data: bytes
) -> None:
    from unisockets import _rtc

    peer = _rtc.Peer("127.0.0.1")
    try:
        with contextlib.suppress(_rtc.CandidateError):  # a valid candidate is fine too
            peer.add_remote_candidate(line)
        with pytest.raises(_rtc.ChannelError):
            peer.send(channel, data)
        assert peer.buffered_amount(channel) == 0
        peer.close_channel(channel)  # unknown: nothing to do
        _still_usable(peer)
    finally:
        peer.close()


@FUZZ
@given(
    datagrams=st.lists(
        st.one_of(
            st.binary(max_size=1500),
            # STUN-, DTLS- and RTP-looking first bytes, so the demultiplexer passes them on
            st.tuples(st.sampled_from([0, 1, 22, 23, 128, 200]), st.binary(max_size=600)).map(
                lambda pair: bytes([pair[0]]) + pair[1]
            ),
        ),
        max_size=20,
    )
)
def test_arbitrary_datagrams_never_crash_a_connecting_peer(datagrams: list[bytes]) -> None:
    from unisockets import _rtc

    offerer, answerer = _rtc.Peer("127.0.0.1"), _rtc.Peer("127.0.0.1")
    try:
        sdp, _ = offerer.create_offer("channel", "unisockets/2")
        offerer.accept_answer(answerer.accept_offer(sdp))
        source = answerer.local_address
        events, delay = offerer.handle_datagrams([(data, source) for data in datagrams])
        assert delay >= 0.0
        assert all(isinstance(event, tuple) for event in events)
        offerer.poll_io()
        assert offerer.is_alive()
    finally:
        offerer.close()
        answerer.close()


def test_bad_construction_arguments_raise_typed_errors() -> None:
    from unisockets import _rtc

    with pytest.raises(_rtc.CandidateError):
        _rtc.Peer("not an address")
    with pytest.raises(_rtc.RtcError):
        _rtc.Peer("127.0.0.1", consent_interval=-1.0)
    with pytest.raises(_rtc.RtcError):
        _rtc.Peer("203.0.113.7")  # not an address of this machine: cannot bind
    offerer, answerer, bystander = (_rtc.Peer("127.0.0.1") for _ in range(3))
    answer = answerer.accept_offer(offerer.create_offer("channel", "")[0])
    with pytest.raises(_rtc.StateError):
        bystander.accept_answer(answer)  # a good answer, but no offer of ours is pending
    with pytest.raises(_rtc.SdpError):
        offerer.accept_answer("v=0\r\n")
    for peer in (offerer, answerer, bystander):
        peer.close()
