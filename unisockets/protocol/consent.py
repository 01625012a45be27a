"""ICE consent freshness (RFC 7675) for one peer connection, sans-IO.

An ICE agent may keep sending to a peer only while the peer keeps consenting:
every few seconds it sends a STUN binding request on the selected candidate
pair, and consent expires 30 s after the last response (RFC 7675, section
5.1). Consent expiry is also how a link notices a peer that vanished without a
word (a pulled cable, a machine powered off); a killed process is noticed much
sooner, through the signaling server's goodbye (docs/transport.md,
"Failure detection").

:class:`ConsentFreshness` makes every decision and does nothing else: the
driver tells it the time and what became of each check, and asks it what to do
next. It reads no clock (the driver passes ``now``, seconds on any monotonic
clock) and draws its jitter from an injected :class:`random.Random`.

One rule goes beyond RFC 7675, to keep a busy process from failing a healthy
link: consent expires only when the lifetime has passed since the last
response **and** at least :attr:`ConsentPolicy.unanswered_checks` checks have
ended unanswered since then. A process whose event loop was starved for half a
minute has sent no checks in that time, so on waking it checks again instead
of giving up on a peer it never asked; a peer that is really gone leaves every
check unanswered and expires a few seconds after the lifetime.

The same rule keeps the native signaling client's WebSocket alive
(:data:`unisockets.signaling.client.DEFAULT_KEEPALIVE`: a ping is a check,
its pong or any frame an answer).

Inputs: :meth:`ConsentFreshness.check_answered`,
:meth:`ConsentFreshness.check_unanswered`, :meth:`ConsentFreshness.stop`.
Output: :meth:`ConsentFreshness.poll` returns :data:`SEND_CHECK`,
:data:`EXPIRE` or ``None``; :meth:`ConsentFreshness.deadline` says when to
poll next.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass
from typing import Final

__all__ = [
    "EXPIRE",
    "SEND_CHECK",
    "ConsentAction",
    "ConsentFreshness",
    "ConsentPolicy",
    "ConsentState",
]


class ConsentAction(enum.Enum):
    """What :meth:`ConsentFreshness.poll` asks the driver to do now."""

    SEND_CHECK = "send-check"  # send one STUN binding request (a consent check)
    EXPIRE = "expire"  # consent expired: stop sending to the peer, fail the link


#: Send one consent check now; report its fate with ``check_answered``/``check_unanswered``.
SEND_CHECK: Final = ConsentAction.SEND_CHECK
#: Consent expired: cease sending to the peer (RFC 7675, section 5.1) and fail the link.
EXPIRE: Final = ConsentAction.EXPIRE


class ConsentState(enum.Enum):
    """Where consent is: granted (checks go on), expired or stopped (both final)."""

    GRANTED = "granted"
    EXPIRED = "expired"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentPolicy:
    """How often consent is checked and when it expires.

    Args:
        interval: seconds between consent checks before jitter (RFC 7675,
            section 5.1: 5 s), > 0.
        jitter: each interval is drawn uniformly from ``interval * (1 - jitter)``
            to ``interval * (1 + jitter)`` (RFC 7675: 0.2, so 4 to 6 s), in [0, 1).
        lifetime: seconds after the last response at which consent expires
            (RFC 7675: 30 s), > 0.
        unanswered_checks: checks that must have ended unanswered since the
            last response before consent may expire (our rule against
            starved processes; see the module docstring), >= 1.

    Raises:
        ValueError: a value is out of its range or not finite.
    """

    interval: float = 5.0
    jitter: float = 0.2
    lifetime: float = 30.0
    unanswered_checks: int = 3

    def __post_init__(self) -> None:
        for name in ("interval", "lifetime"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number of seconds, not {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        jitter = self.jitter
        if isinstance(jitter, bool) or not isinstance(jitter, int | float):
            raise ValueError(f"jitter must be a number, not {jitter!r}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), not {jitter!r}")
        checks = self.unanswered_checks
        if isinstance(checks, bool) or not isinstance(checks, int) or checks < 1:
            raise ValueError(f"unanswered_checks must be an integer >= 1, not {checks!r}")


class ConsentFreshness:
    """The consent of one peer connection's selected candidate pair (RFC 7675).

    Created when ICE connects (a successful connectivity check is the first
    consent). The first check is due one jittered interval later.

    Args:
        now: the current time in seconds (any monotonic clock, the same for
            every call).
        policy: intervals and limits; :class:`ConsentPolicy()` is RFC 7675's.
        rng: the source of jitter (injected, so tests are reproducible).
    """

    __slots__ = ("_last_answer", "_next_check", "_policy", "_rng", "_state", "_unanswered")

    def __init__(self, now: float, policy: ConsentPolicy, rng: random.Random) -> None:
        self._policy = policy
        self._rng = rng
        self._state = ConsentState.GRANTED
        self._last_answer = now
        self._unanswered = 0
        self._next_check = now + self._draw_interval()

    @property
    def state(self) -> ConsentState:
        """:class:`ConsentState`: granted, or (final) expired or stopped."""
        return self._state

    @property
    def policy(self) -> ConsentPolicy:
        """The :class:`ConsentPolicy` this consent follows."""
        return self._policy

    @property
    def last_answer(self) -> float:
        """Time of the last response (or of the start), seconds."""
        return self._last_answer

    @property
    def unanswered(self) -> int:
        """Checks that ended unanswered since the last response."""
        return self._unanswered

    def deadline(self) -> float:
        """When :meth:`poll` has something to do next, seconds (``inf`` once final).

        Returns:
            The earlier of the next check's time and, once enough checks went
            unanswered, the expiry time; results of checks may make it earlier,
            so poll again after each input.
        """
        if self._state is not ConsentState.GRANTED:
            return math.inf
        if self._unanswered >= self._policy.unanswered_checks:
            return min(self._next_check, self._last_answer + self._policy.lifetime)
        return self._next_check

    def poll(self, now: float) -> ConsentAction | None:
        """What to do at time ``now``.

        Args:
            now: the current time in seconds.

        Returns:
            :data:`EXPIRE` once (the state becomes expired) when consent has
            expired; else :data:`SEND_CHECK` when a check is due (the next one
            is scheduled a jittered interval after ``now``); else ``None``.
            Call again until it returns ``None``.
        """
        if self._state is not ConsentState.GRANTED:
            return None
        if (
            self._unanswered >= self._policy.unanswered_checks
            and now >= self._last_answer + self._policy.lifetime
        ):
            self._state = ConsentState.EXPIRED
            return EXPIRE
        if now >= self._next_check:
            self._next_check = now + self._draw_interval()
            return SEND_CHECK
        return None

    def check_answered(self, now: float) -> None:
        """A consent check (any one still outstanding) got its response.

        Args:
            now: the time the response was handled, seconds; consent is fresh
                from then on (an earlier time than the last response changes
                nothing).
        """
        if self._state is not ConsentState.GRANTED:
            return
        self._last_answer = max(self._last_answer, now)
        self._unanswered = 0

    def check_unanswered(self, now: float) -> None:
        """A consent check's transaction ended without a response.

        Args:
            now: the current time in seconds (kept for symmetry and tracing;
                expiry is decided by :meth:`poll`).
        """
        if self._state is ConsentState.GRANTED:
            self._unanswered += 1

    def stop(self) -> None:
        """Stop checking (the peer connection is closing); final."""
        if self._state is ConsentState.GRANTED:
            self._state = ConsentState.STOPPED

    def _draw_interval(self) -> float:
        policy = self._policy
        return policy.interval * (1.0 + policy.jitter * (2.0 * self._rng.random() - 1.0))
