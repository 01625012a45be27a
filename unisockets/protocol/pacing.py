"""How often a signaling client may talk to the server: pacing and reconnection backoff.

Shared by the native client (:mod:`unisockets.signaling.client`), the browser
driver (:mod:`unisockets.driver.signaling`) and the server's per-client rate
limit (:class:`unisockets.signaling.limits.ServerLimits`), so the three agree
by construction. Sans-IO: no I/O and no clock (the caller passes the time in);
:func:`backoff_delay` draws its jitter from the generator passed in (or :mod:`random`).

- :class:`TokenBucket`: ``rate`` tokens per second, at most ``capacity``
  saved up, starting full. The server spends one per incoming message and
  closes a client that finds it empty (1008); clients spend one per outgoing
  message and wait for the next token instead.
- :func:`backoff_delay`: reconnection attempt ``n`` waits between half and
  all of ``min(cap, base * 2**n)`` seconds, so that clients dropped together
  do not come back together.
"""

from __future__ import annotations

import math
import random
from typing import Final

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_SEND_RATE",
    "TokenBucket",
    "backoff_delay",
    "check_backoff",
    "check_send_rate",
]

#: The pace of the signaling clients by default, ``(messages per second, burst)``:
#: 90 % of our server's default per-client limits (500 messages/s, bursts of
#: 2,500: :mod:`unisockets.signaling.limits`), leaving room for messages that
#: reach the server closer together than they were sent.
DEFAULT_SEND_RATE: Final = (0.9 * 500.0, int(0.9 * 2500))
#: Reconnection backoff by default, ``(base, cap)`` in seconds.
DEFAULT_BACKOFF: Final = (0.5, 10.0)


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, at most ``capacity`` saved up.

    The bucket starts full; each :meth:`take` spends one token if there is
    one. Time is passed in (seconds on any monotonic clock, e.g.
    :func:`trio.current_time` or ``loop.time()``), so the bucket never reads
    a clock itself.

    Args:
        rate: tokens added per second, > 0.
        capacity: the most tokens the bucket holds (the burst), >= 1.
        now: the current time, in seconds.
    """

    __slots__ = ("_capacity", "_last", "_rate", "_tokens")

    def __init__(self, rate: float, capacity: int, now: float) -> None:
        self._rate = float(rate)
        self._capacity = float(capacity)
        self._tokens = float(capacity)
        self._last = now

    @property
    def tokens(self) -> float:
        """Tokens left after the last :meth:`take` (not refilled to the present)."""
        return self._tokens

    def take(self, now: float) -> bool:
        """Spend one token if the bucket has one at time ``now``.

        Args:
            now: the current time in seconds; an earlier time than the last
                call counts as no time passed.

        Returns:
            ``True`` if a token was spent, ``False`` if the bucket is empty
            (nothing is spent).
        """
        elapsed = max(0.0, now - self._last)
        self._last = max(self._last, now)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def wait_time(self) -> float:
        """Seconds until the next token, as of the last :meth:`take` (0 if one is there)."""
        return max(0.0, (1.0 - self._tokens) / self._rate)


def backoff_delay(
    failures: int, backoff: tuple[float, float], rng: random.Random | None = None
) -> float:
    """Seconds to wait before reconnection attempt ``failures + 1``: capped, jittered.

    Exponential (``base * 2**failures``) up to ``cap``, then a uniform pick in
    its upper half.

    Args:
        failures: attempts that failed since the last session that joined (0 first).
        backoff: ``(base, cap)`` in seconds, checked by :func:`check_backoff`.
        rng: where the jitter comes from (:mod:`random`'s global generator if None).

    Returns:
        The delay in seconds, in ``[ceiling / 2, ceiling]``.
    """
    base, cap = backoff
    ceiling = min(cap, base * 2 ** min(failures, 32))
    return (rng or random).uniform(ceiling / 2, ceiling)


def check_backoff(backoff: tuple[float, float]) -> tuple[float, float]:
    """Validate a ``(base, cap)`` backoff in seconds.

    Returns:
        ``backoff`` as a tuple of floats.

    Raises:
        ValueError: unless ``0 < base <= cap < inf``.
    """
    try:
        base, cap = (float(value) for value in backoff)
    except (TypeError, ValueError):
        raise ValueError(f"backoff must be (base, cap) in seconds, got {backoff!r}") from None
    if not 0 < base <= cap or math.isinf(cap):
        raise ValueError(f"backoff must be (base, cap) with 0 < base <= cap, got {backoff!r}")
    return base, cap


def check_send_rate(send_rate: tuple[float, int] | None) -> tuple[float, int] | None:
    """Validate a ``(messages per second, burst)`` pace, or ``None`` (no pacing).

    Returns:
        ``send_rate`` unchanged.

    Raises:
        ValueError: unless ``rate > 0`` (finite) and ``burst`` is an int >= 1.
    """
    if send_rate is None:
        return None
    try:
        rate, burst = send_rate
    except (TypeError, ValueError):
        raise ValueError(f"send_rate must be (rate > 0, burst >= 1), got {send_rate!r}") from None
    if not (isinstance(rate, int | float) and 0 < rate < math.inf):
        raise ValueError(f"send_rate must be (rate > 0, burst >= 1), got {send_rate!r}")
    if type(burst) is not int or burst < 1:
        raise ValueError(f"send_rate must be (rate > 0, burst >= 1), got {send_rate!r}")
    return send_rate
