"""The browser's pacing and backoff are the native client's (which Pyodide cannot import).

unisockets.browser.pacing keeps its own token bucket and backoff because
importing unisockets.signaling.limits imports trio (the package __init__).
These run natively and compare the two, value for value.
"""

from __future__ import annotations

import inspect
import random

import pytest

from unisockets.browser import pacing
from unisockets.signaling import client as native_client
from unisockets.signaling.limits import TokenBucket as NativeTokenBucket


def test_defaults_are_the_native_clients() -> None:
    assert pacing.DEFAULT_SEND_RATE == native_client.DEFAULT_SEND_RATE
    backoff = inspect.signature(native_client.open_signaling_client).parameters["backoff"]
    assert backoff.default == pacing.DEFAULT_BACKOFF


def test_token_bucket_takes_exactly_as_the_native_one() -> None:
    rng = random.Random(7)
    ours, native = pacing.TokenBucket(40.0, 8, 100.0), NativeTokenBucket(40.0, 8, 100.0)
    now = 100.0
    decisions = []
    for _ in range(2000):
        now += rng.choice([0.0, 0.0, 0.001, 0.01, 0.05, -0.01])  # bursts, gaps, a clock step back
        decisions.append(ours.take(now))
        assert decisions[-1] == native.take(now)
        assert ours.tokens == native.tokens
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
        native = [native_client._backoff_delay(failures, (0.5, 10.0)) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in native)


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
