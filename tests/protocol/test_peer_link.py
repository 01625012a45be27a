"""Peer-link wire constants and verdicts shared by the native and browser drivers."""

from __future__ import annotations

import pytest

from unisockets.driver import links as driver_links
from unisockets.protocol import peer_link
from unisockets.protocol.peer_link import (
    ANSWERS_ATTRIBUTE,
    MODERN_ANSWER_ATTRIBUTE,
    answer_is_modern,
    answered_ufrag,
    candidate_types,
    describe_ice_failure,
    mark_answer,
    offer_wins,
)
from unisockets.transport import webrtc_link

ANSWER = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP x\r\n"


def test_a_marked_answer_says_modern_and_marking_is_idempotent() -> None:
    assert not answer_is_modern(ANSWER)
    marked = mark_answer(ANSWER)
    assert marked.endswith(MODERN_ANSWER_ATTRIBUTE + "\r\n") and answer_is_modern(marked)
    assert mark_answer(marked) == marked
    assert answer_is_modern(mark_answer(ANSWER.rstrip("\r\n")))  # no final CRLF
    # a line that merely contains the text is not the attribute
    assert not answer_is_modern(ANSWER + "a=x-" + MODERN_ANSWER_ATTRIBUTE[2:] + "\r\n")


def test_an_answer_can_name_the_offer_it_answers_once() -> None:
    assert answered_ufrag(mark_answer(ANSWER)) is None
    tagged = mark_answer(ANSWER, "Off3r")
    assert answer_is_modern(tagged) and answered_ufrag(tagged) == "Off3r"
    assert tagged.endswith(ANSWERS_ATTRIBUTE + "Off3r\r\n")
    assert mark_answer(tagged, "Off3r") == tagged
    assert answered_ufrag(mark_answer(mark_answer(ANSWER), "x")) == "x"  # marked before


@pytest.mark.parametrize(
    ("low", "high"),
    [("10.0.0.1", "10.0.0.2"), ("10.0.0.9", "10.0.0.10"), ("10.0.0.2", "node-b")],
)
def test_the_lower_id_offer_wins(low: str, high: str) -> None:
    assert offer_wins(low, high) and not offer_wins(high, low)


def test_both_drivers_use_these_constants() -> None:
    assert webrtc_link.HELLO is peer_link.HELLO
    assert peer_link.HELLO.decode() == driver_links.HELLO
    for name in ("LEGACY_LABEL", "MODERN_PROTOCOL", "offer_wins"):
        assert getattr(webrtc_link, name) is getattr(peer_link, name)
        assert getattr(driver_links, name) is getattr(peer_link, name)
    assert webrtc_link.HELLO_GRACE == peer_link.HELLO_GRACE


def test_candidate_types_reads_typ_of_every_candidate_line() -> None:
    sdp = (
        "a=candidate:1 1 udp 2130706431 192.0.2.1 40000 typ host\r\n"
        "a=candidate:2 1 udp 1694498815 198.51.100.7 40001 typ srflx raddr 0.0.0.0 rport 0\r\n"
        "a=end-of-candidates\r\n"
    )
    assert candidate_types(sdp) == {"host", "srflx"}
    assert candidate_types("candidate:3 1 udp 1 203.0.113.9 3478 typ relay") == {"relay"}
    assert candidate_types("v=0\r\n") == set()


@pytest.mark.parametrize(
    ("local", "remote", "servers", "hint"),
    [
        ({"host"}, set(), False, "the peer sent no candidates"),
        ({"host"}, {"host"}, False, "no STUN/TURN server is configured"),
        ({"host", "srflx"}, {"host", "srflx"}, True, "a TURN server"),
        ({"relay"}, {"host"}, True, "even the relay candidates failed"),
    ],
)
def test_an_ice_failure_names_state_candidates_and_a_hint(
    local: set[str], remote: set[str], servers: bool, hint: str
) -> None:
    text = describe_ice_failure("10.0.0.2", "failed", local, remote, ice_servers=servers)
    assert text.startswith("ICE could not connect to 10.0.0.2 (ICE state failed;")
    assert f"gathered here: {', '.join(sorted(local))}" in text
    assert f"received from the peer: {', '.join(sorted(remote)) or 'none'}" in text
    assert hint in text
