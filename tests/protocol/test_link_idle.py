"""The idle timer of a lazy peer link (unisockets.protocol.link_idle), with an injected clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from unisockets.protocol.link_idle import LinkIdle


def test_a_modern_link_closes_after_the_timeout_without_connections() -> None:
    idle = LinkIdle(2.0, now=10.0)
    assert idle.deadline() == math.inf  # the peer's kind is not known yet
    idle.modern = True
    assert idle.deadline() == 12.0  # idle since it was made
    idle.connections(1, 11.0)
    assert idle.deadline() == math.inf and not idle.expired(100.0)
    idle.connections(2, 12.0)
    idle.connections(0, 20.0)
    assert idle.deadline() == 22.0
    assert not idle.expired(21.9) and idle.expired(22.0)
    idle.connections(0, 21.0)  # still none: the idle time runs from 20.0
    assert idle.deadline() == 22.0


def test_legacy_links_and_eager_nodes_never_close() -> None:
    legacy = LinkIdle(2.0, now=0.0)
    assert legacy.deadline() == math.inf and not legacy.expired(1e9)
    eager = LinkIdle(None, now=0.0)
    eager.modern = True
    assert eager.deadline() == math.inf


@pytest.mark.parametrize("timeout", [0, -1.0, math.inf, math.nan, "5"])
def test_a_bad_timeout_is_a_value_error(timeout: object) -> None:
    with pytest.raises(ValueError, match="idle timeout"):
        LinkIdle(timeout, now=0.0)  # type: ignore[arg-type]


def test_a_link_that_came_up_slowly_is_idle_from_then_not_from_its_start() -> None:
    """A link set up for a connect on a loaded machine is not closed as soon as it is up."""
    idle = LinkIdle(0.5, now=0.0)
    idle.became_modern(3.0)  # ICE and DTLS took 3 s
    assert idle.deadline() == 3.5 and not idle.expired(3.0)
    busy = LinkIdle(0.5, now=0.0)
    busy.connections(1, 0.1)  # a connect waits for the link: it counts
    busy.became_modern(3.0)
    assert busy.deadline() == math.inf


class IdleModel(RuleBasedStateMachine):
    """LinkIdle against a plain model: closes exactly ``timeout`` s after the last connection."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.idle = LinkIdle(2.0, now=0.0)
        self.modern = False
        self.count = 0
        self.idle_since = 0.0

    @rule(dt=st.floats(0, 5))
    def time_passes(self, dt: float) -> None:
        self.now += dt

    @rule()
    def peer_known_modern(self) -> None:
        self.idle.became_modern(self.now)
        if (not self.modern and self.count == 0) or self.count == 0:
            self.idle_since = self.now
        self.modern = True

    @rule(count=st.integers(0, 3))
    def connections(self, count: int) -> None:
        self.idle.connections(count, self.now)
        if count == 0 and self.count > 0:
            self.idle_since = self.now
        self.count = count

    @invariant()
    def deadline_matches(self) -> None:
        expected = math.inf if not self.modern or self.count else self.idle_since + 2.0
        assert self.idle.deadline() == expected
        assert self.idle.expired(self.now) == (self.now >= expected)


TestIdleModel = IdleModel.TestCase
