"""A connection's wait across peer links that fail under it (unisockets.protocol.link_wait).

The race it settles (docs/protocol.md, "Lazy peer links"): both sides of an
idle link close it by their own timers. The connecting side closes first and
connects again on a new link; the accepting side is told of the connection
while its side of the old link still stands, waits on it, and sees it close
(its idle timer, or the peer's SCTP close). That accept must wait for the
peer's new link instead of failing: it failed 1 run in 2 of
tests/net/test_lazy_links.py under load before.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unisockets.protocol.link_idle import LinkIdle
from unisockets.protocol.link_wait import LinkWait, PipeRetry, retry_pipe
from unisockets.protocol.negotiation_events import PeerKind


@given(
    timeout=st.floats(0.1, 60.0),
    lag=st.floats(0.0, 5.0),  # the accepting side's pipe closed this much later
    told=st.floats(0.01, 0.09),  # how long before its old link's deadline it is told
)
def test_an_accept_told_while_its_old_link_idles_out_waits_for_the_next_link(
    timeout: float, lag: float, told: float
) -> None:
    connecting, accepting = LinkIdle(timeout, 0.0), LinkIdle(timeout, 0.0)
    for idle in (connecting, accepting):
        idle.became_modern(0.0)
        idle.connections(1, 0.0)
    connecting.connections(0, 10.0)  # the connection closes...
    accepting.connections(0, 10.0 + lag)  # ...and its close reaches the other side later
    assert connecting.expired(10.0 + timeout)  # the connecting side's link closes first
    # it connects again; the accepting side is told while its old link still stands
    assert not accepting.expired(10.0 + timeout - told)
    wait = LinkWait(offer=False)
    # its old link closes under the wait: idle, or the peer's SCTP close
    assert accepting.expired(10.0 + lag + timeout)
    assert wait.go_on(was_connected=True, peer_left=False, replaced=False)
    # and so on for as many links as fail (within the caller's timeout)
    assert wait.go_on(was_connected=False, peer_left=False, replaced=False)


@given(
    failures=st.lists(
        st.tuples(st.booleans(), st.booleans(), st.booleans()), min_size=1, max_size=8
    )
)
def test_an_accepting_wait_ends_only_when_the_peer_left(
    failures: list[tuple[bool, bool, bool]],
) -> None:
    wait = LinkWait(offer=False)
    for was_connected, peer_left, replaced in failures:
        go_on = wait.go_on(was_connected=was_connected, peer_left=peer_left, replaced=replaced)
        assert go_on is not (peer_left and not replaced)


def test_a_connecting_wait_tries_one_new_link_after_a_stale_one() -> None:
    wait = LinkWait(offer=True)
    # the link was up when we took it: the peer closed it a moment ago
    assert wait.go_on(was_connected=True, peer_left=False, replaced=False)
    # the fresh link we made failed too: the peer is unreachable
    assert not wait.go_on(was_connected=True, peer_left=False, replaced=False)


def test_a_connecting_wait_gives_up_on_a_fresh_link_or_a_peer_that_left() -> None:
    assert not LinkWait(offer=True).go_on(was_connected=False, peer_left=False, replaced=False)
    assert not LinkWait(offer=True).go_on(was_connected=True, peer_left=True, replaced=False)
    assert not LinkWait(offer=False).go_on(was_connected=True, peer_left=True, replaced=False)


def test_a_replaced_link_hands_the_wait_to_the_link_that_replaced_it() -> None:
    for offer in (True, False):
        wait = LinkWait(offer=offer)
        for _ in range(3):  # the peer restarted the link (more than once)
            assert wait.go_on(was_connected=True, peer_left=True, replaced=True)


# The connecting side's open_pipe (both drivers): once more on a new link, when that can help.
_R, _RETRY, _FAIL = PipeRetry.RAISE, PipeRetry.RETRY, PipeRetry.FAIL_AND_RETRY


@pytest.mark.parametrize(
    ("was_connected", "replaced", "failed", "legacy", "closing", "expected"),
    [
        (False, False, True, False, False, _R),  # our fresh link failed: peer unreachable
        (False, False, False, False, False, _R),  # ...or timed out opening the channel
        (False, True, True, False, False, _RETRY),  # replaced while negotiating (signaling lost)
        (True, False, True, False, False, _RETRY),  # stale: up when we began, died under us
        (True, True, True, False, False, _RETRY),  # the peer restarted it under us
        (True, False, False, False, False, _FAIL),  # up, yet the channel did not open: dead
        (True, False, False, True, False, _R),  # a live legacy link carries no pipes
        (True, False, True, True, False, _RETRY),  # a legacy link that died: the next may differ
        (True, False, True, False, True, _R),  # the node is closing
        (False, True, True, False, True, _R),
    ],
)
def test_a_pipe_is_tried_once_more_only_on_a_replaced_or_stale_link(
    was_connected: bool,
    replaced: bool,
    failed: bool,
    legacy: bool,
    closing: bool,
    expected: PipeRetry,
) -> None:
    link = _Link(
        replaced=replaced,
        failure=ValueError("it failed") if failed else None,
        kind=PeerKind.LEGACY if legacy else PeerKind.MODERN,
    )
    assert retry_pipe(link, was_connected=was_connected, closing=closing) is expected


@dataclass
class _Link:
    """A driver's link, as :func:`retry_pipe` reads it."""

    replaced: bool
    failure: BaseException | None
    kind: PeerKind | None
