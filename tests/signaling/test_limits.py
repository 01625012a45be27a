"""The server's limits as plain values: the token bucket and the validated settings."""

from __future__ import annotations

import math

import pytest

from unisockets.signaling._server_client import close_reason_text
from unisockets.signaling.limits import ServerLimits, TokenBucket


def test_a_full_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, capacity=3, now=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(100.4)  # 0.8 tokens
    assert bucket.take(100.5)  # 1.0 token
    assert not bucket.take(100.5)
    # a long pause refills only up to the capacity
    assert [bucket.take(1000.0) for _ in range(4)] == [True, True, True, False]


def test_a_refused_take_spends_nothing_and_time_never_runs_backwards() -> None:
    bucket = TokenBucket(rate=1.0, capacity=1, now=10.0)
    assert bucket.take(10.0)
    for _ in range(100):
        assert not bucket.take(10.5)
    assert bucket.take(11.0)  # the refused takes did not push the refill back
    assert not bucket.take(5.0)  # an earlier time counts as no time passed
    assert bucket.take(12.0)
    assert bucket.tokens == pytest.approx(0.0)


def test_limits_have_public_server_defaults() -> None:
    limits = ServerLimits()
    assert limits.ping_interval == 30.0
    assert limits.max_message_size == 64 * 1024
    assert limits.burst >= 100 and limits.max_messages_per_second > 0
    assert limits.max_clients > 254


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ping_interval": 0},
        {"ping_interval": math.inf},
        {"max_messages_per_second": -1.0},
        {"handshake_timeout": math.nan},
        {"close_timeout": -0.1},
        {"max_message_size": 0},
        {"burst": 1.5},
        {"max_clients": True},
        {"max_handshakes": 0},
        {"send_queue_bytes": 0},
    ],
)
def test_limits_out_of_range_raise_value_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ServerLimits(**kwargs)  # type: ignore[arg-type]


def test_close_reasons_are_cut_to_123_utf8_bytes_on_a_character_boundary() -> None:
    assert close_reason_text("slow consumer") == "slow consumer"
    assert close_reason_text("x" * 200) == "x" * 123
    cut = close_reason_text("é" * 100)  # 2 bytes each
    assert cut == "é" * 61 and len(cut.encode()) == 122
