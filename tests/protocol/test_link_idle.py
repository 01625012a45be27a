"""The idle timer of a lazy peer link (unisockets.protocol.link_idle), with an injected clock."""

from __future__ import annotations

import math

import pytest

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
