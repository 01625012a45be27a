"""An offer still queued when a link fails goes to a fresh link, with its candidates (issue 17).

The peer restarted: its new offer and the candidates behind it wait in our
old link's inbox, and the old peer connection ends (the peer's goodbye on
it, a timeout) before the link's task takes them. They are the peer's new
session: a :class:`Restart` hands them to a fresh link, or nobody answers.
"""

from __future__ import annotations

import pytest

from unisockets.protocol import negotiation_events as neg
from unisockets.protocol.negotiation import NegotiationState

from .test_negotiation import TIMEOUT, answerer, candidate, kinds, machine, offerer, sdp


@pytest.mark.parametrize(
    "end",
    [
        neg.PcStateChanged("closed", "connected"),
        neg.PcStateChanged("failed", "failed"),
    ],
)
def test_a_queued_offer_outlives_the_peer_connection_that_ended(end: neg.Input) -> None:
    m = offerer(marked=True)
    m.handle(neg.PcStateChanged("connected", "connected"), 1.0)
    m.post(neg.CandidateReceived(candidate("peer")))  # the old session's: not carried
    m.post(neg.OfferReceived(sdp("new")))
    m.post(neg.CandidateReceived(candidate("new")))
    m.post(neg.CandidateReceived(candidate("new", "srflx")))
    fail, restart = m.handle(end, 2.0)
    assert isinstance(fail, neg.Fail) and fail.replaced  # accept waiters stay for the new link
    assert restart == neg.Restart(sdp("new"), (candidate("new"), candidate("new", "srflx")))
    assert m.state is NegotiationState.FAILED and m.next_input() is None


def test_a_queued_offer_outlives_the_link_timeout() -> None:
    m = machine()
    m.handle(neg.OfferNow(), 0.0)
    m.handle(neg.OfferMade(sdp("me")), 0.0)
    m.post(neg.OfferReceived(sdp("peer")))  # queued: the link's task is busy (starved)
    fail, restart = m.handle(neg.TimePasses(), TIMEOUT)
    assert isinstance(fail, neg.Fail) and fail.replaced and fail.describe_ice
    assert restart == neg.Restart(sdp("peer"))


def test_nothing_is_carried_without_a_queued_offer_or_for_a_stale_session() -> None:
    m = answerer()
    m.post(neg.CandidateReceived(candidate("peer")))
    [fail] = m.handle(neg.PcStateChanged("closed", "connected"), 1.0)
    assert isinstance(fail, neg.Fail) and not fail.replaced
    # Greeted again while negotiating: what was queued came over the old session.
    m = machine()
    m.handle(neg.OfferNow(), 0.0)
    m.handle(neg.OfferMade(sdp("me")), 0.0)
    m.post(neg.OfferReceived(sdp("old session")))
    assert neg.Restart not in kinds(m.handle(neg.Greeting(), 1.0))
    assert m.next_input() is None


def test_a_restart_takes_the_candidates_queued_behind_its_offer() -> None:
    m = answerer()
    m.handle(neg.PcStateChanged("connected", "connected"), 1.0)
    m.post(neg.CandidateReceived(candidate("new")))
    fail, restart = m.handle(neg.OfferReceived(sdp("new")), 2.0)
    assert isinstance(fail, neg.Fail) and fail.replaced
    assert restart == neg.Restart(sdp("new"), (candidate("new"),))
