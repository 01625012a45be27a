"""Pacing and backoff (sans-IO), shared by the native and browser clients and the server."""

from __future__ import annotations

import inspect
import random

import pytest

from unisockets.driver import signaling as driver_signaling
from unisockets.protocol import pacing
from unisockets.signaling import client as native_client
from unisockets.signaling import limits


def test_every_client_and_the_server_use_these() -> None:
    assert native_client.DEFAULT_SEND_RATE == pacing.DEFAULT_SEND_RATE
    backoff = inspect.signature(native_client.open_signaling_client).parameters["backoff"]
    assert backoff.default == pacing.DEFAULT_BACKOFF
    assert driver_signaling.TokenBucket is pacing.TokenBucket
    assert limits.TokenBucket is pacing.TokenBucket
    # the clients' default pace stays under the server's default limit
    rate, burst = pacing.DEFAULT_SEND_RATE
    assert rate < limits.DEFAULT_MAX_MESSAGES_PER_SECOND and burst < limits.DEFAULT_BURST


def test_token_bucket_refills_at_its_rate_and_never_beyond_its_capacity() -> None:
    rng = random.Random(7)
    bucket = pacing.TokenBucket(40.0, 8, 100.0)
    now, latest, taken = 100.0, 100.0, 0
    decisions = []
    for _ in range(2000):
        now += rng.choice([0.0, 0.0, 0.001, 0.01, 0.05, -0.01])  # bursts, gaps, a clock step back
        latest = max(latest, now)  # a step back counts as no time passed
        decisions.append(bucket.take(now))
        taken += decisions[-1]
        assert 0.0 <= bucket.tokens <= 8.0
        # never more than the burst plus what the elapsed time earned
        assert taken <= 8 + 40.0 * (latest - 100.0) + 1e-9
    assert True in decisions and False in decisions  # the sequence hit both sides


def test_wait_time_is_when_the_next_token_comes() -> None:
    bucket = pacing.TokenBucket(10.0, 2, 0.0)
    assert bucket.take(0.0) and bucket.take(0.0)
    assert not bucket.take(0.0)
    assert bucket.wait_time() == pytest.approx(0.1)
    assert not bucket.take(0.05)
    assert bucket.wait_time() == pytest.approx(0.05)
    assert bucket.take(0.05 + bucket.wait_time())


def test_backoff_is_capped_exponential_in_the_upper_half() -> None:
    for failures, ceiling in [(0, 0.5), (1, 1.0), (3, 4.0), (5, 10.0), (1000, 10.0)]:
        delays = [pacing.backoff_delay(failures, (0.5, 10.0)) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 10  # jittered


@pytest.mark.parametrize(
    "backoff", [(0, 1), (2, 1), (1, float("inf")), (-1, 1), ("a", 1), (1,), None]
)
def test_bad_backoff(backoff: object) -> None:
    with pytest.raises(ValueError, match="backoff"):
        pacing.check_backoff(backoff)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "send_rate", [(0, 1), (float("inf"), 1), (10, 0), (10, 1.5), ("x", 1), (10,), 5]
)
def test_bad_send_rate(send_rate: object) -> None:
    with pytest.raises(ValueError, match="send_rate"):
        pacing.check_send_rate(send_rate)  # type: ignore[arg-type]


def test_good_values_pass() -> None:
    assert pacing.check_backoff((0.05, 0.2)) == (0.05, 0.2)
    assert pacing.check_send_rate((36, 7)) == (36, 7)
    assert pacing.check_send_rate(None) is None
