"""Consent freshness (RFC 7675), sans-IO: an injected clock and rng, no sockets."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from unisockets.protocol.consent import (
    EXPIRE,
    SEND_CHECK,
    ConsentFreshness,
    ConsentPolicy,
    ConsentState,
)

RFC = ConsentPolicy()


def drain(consent: ConsentFreshness, now: float) -> list[object]:
    """Every action due at ``now``, in order."""
    actions = []
    while (action := consent.poll(now)) is not None:
        actions.append(action)
    return actions


def test_the_default_policy_is_rfc_7675s() -> None:
    assert (RFC.interval, RFC.jitter, RFC.lifetime) == (5.0, 0.2, 30.0)
    assert RFC.unanswered_checks == 3


@pytest.mark.parametrize(
    "fields",
    [
        {"interval": 0},
        {"interval": -1.0},
        {"interval": math.inf},
        {"lifetime": math.nan},
        {"lifetime": "30"},
        {"jitter": 1.0},
        {"jitter": -0.1},
        {"unanswered_checks": 0},
        {"unanswered_checks": 2.0},
        {"unanswered_checks": True},
    ],
)
def test_a_bad_policy_raises_value_error(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ConsentPolicy(**fields)  # type: ignore[arg-type]


def test_checks_come_every_four_to_six_seconds() -> None:
    consent = ConsentFreshness(1000.0, RFC, random.Random(1))
    now, gaps = 1000.0, []
    for _ in range(500):
        due = consent.deadline()
        assert consent.poll(due - 1e-6) is None  # nothing before its time
        gaps.append(due - now)
        now = due
        assert drain(consent, now) == [SEND_CHECK]
        consent.check_answered(now + 0.01)
    assert 4.0 <= min(gaps) < 4.1 and 5.9 < max(gaps) <= 6.0  # jittered over the whole range
    assert consent.state is ConsentState.GRANTED


def test_a_silent_peer_expires_30_s_after_its_last_answer() -> None:
    consent = ConsentFreshness(0.0, RFC, random.Random(2))
    ends: list[float] = []  # when the outstanding checks end unanswered (7.5 s transactions)
    now = 0.0
    while consent.state is ConsentState.GRANTED:
        now = min([consent.deadline(), *ends])
        for end in [t for t in ends if t <= now]:
            ends.remove(end)
            consent.check_unanswered(end)
        for action in drain(consent, now):
            if action is SEND_CHECK:
                ends.append(now + 7.5)
    assert consent.state is ConsentState.EXPIRED
    assert consent.unanswered >= 3
    assert 30.0 <= now < 30.0 + 6.0 + 7.5
    assert consent.poll(now + 100) is None and consent.deadline() == math.inf


def test_a_starved_process_checks_again_instead_of_expiring() -> None:
    consent = ConsentFreshness(0.0, RFC, random.Random(3))
    # the event loop was blocked for ten minutes: no check was sent, none went unanswered
    assert drain(consent, 600.0) == [SEND_CHECK]
    assert consent.state is ConsentState.GRANTED
    consent.check_answered(600.2)
    assert consent.last_answer == 600.2 and consent.unanswered == 0
    # checks that went unanswered *before* the starvation are not enough on their own
    consent.check_unanswered(601.0)
    consent.check_unanswered(601.0)
    assert drain(consent, 1200.0) == [SEND_CHECK]  # lifetime passed, but only 2 unanswered
    consent.check_unanswered(1207.5)
    assert drain(consent, 1207.5) == [EXPIRE]  # 3 unanswered, 607 s silent


def test_a_late_answer_keeps_consent() -> None:
    consent = ConsentFreshness(0.0, RFC, random.Random(4))
    for _ in range(3):
        consent.check_unanswered(10.0)
    consent.check_answered(29.0)  # one still outstanding was answered, late
    assert drain(consent, 40.0) == [SEND_CHECK]
    assert drain(consent, 58.9) in ([], [SEND_CHECK])
    assert consent.state is ConsentState.GRANTED
    # an answer stamped earlier than the last one does not move consent back
    consent.check_answered(5.0)
    assert consent.last_answer == 29.0


def test_stop_is_final_and_quiet() -> None:
    consent = ConsentFreshness(0.0, RFC, random.Random(5))
    consent.stop()
    consent.check_unanswered(100.0)
    consent.check_answered(100.0)
    assert consent.state is ConsentState.STOPPED
    assert drain(consent, 1e9) == [] and consent.deadline() == math.inf


def test_the_same_rng_gives_the_same_schedule() -> None:
    def schedule(seed: int) -> list[float]:
        consent = ConsentFreshness(0.0, RFC, random.Random(seed))
        times = []
        for _ in range(20):
            times.append(consent.deadline())
            drain(consent, times[-1])
            consent.check_answered(times[-1])
        return times

    assert schedule(9) == schedule(9) != schedule(10)


class ConsentMachine(RuleBasedStateMachine):
    """Any order of time passing, answers and unanswered checks, against a model.

    The model: consent may expire only when ``lifetime`` has passed since the
    last answer and ``unanswered_checks`` checks ended unanswered since then,
    and then it expires at the first poll; a check is due at each deadline.
    """

    def __init__(self) -> None:
        super().__init__()
        self.policy = ConsentPolicy(interval=2.0, jitter=0.5, lifetime=9.0, unanswered_checks=2)
        self.now = 50.0
        self.consent = ConsentFreshness(self.now, self.policy, random.Random(0))
        self.last_answer = self.now
        self.unanswered = 0
        self.expired = False
        self.outstanding = 0
        self.last_check = self.now

    @rule(seconds=st.floats(min_value=0, max_value=40, allow_nan=False))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def poll_at_the_deadline(self) -> None:
        deadline = self.consent.deadline()
        if math.isfinite(deadline):
            self.now = max(self.now, deadline)
        self.poll()

    @rule()
    def poll(self) -> None:
        may_expire = (
            self.unanswered >= self.policy.unanswered_checks
            and self.now >= self.last_answer + self.policy.lifetime
        )
        actions = drain(self.consent, self.now)
        if self.expired:
            assert actions == []
            return
        if may_expire:
            assert actions == [EXPIRE]
            self.expired = True
            return
        assert EXPIRE not in actions
        assert actions in ([], [SEND_CHECK])
        if actions:
            self.outstanding += 1
            self.last_check = self.now
        else:
            assert self.now < self.consent.deadline()

    @precondition(lambda self: self.outstanding > 0)
    @rule(answered=st.booleans())
    def a_check_ends(self, answered: bool) -> None:
        self.outstanding -= 1
        if answered:
            self.consent.check_answered(self.now)
            if not self.expired:
                self.last_answer = max(self.last_answer, self.now)
                self.unanswered = 0
        else:
            self.consent.check_unanswered(self.now)
            if not self.expired:
                self.unanswered += 1

    @invariant()
    def agrees_with_the_model(self) -> None:
        if self.expired:
            assert self.consent.state is ConsentState.EXPIRED
            assert self.consent.deadline() == math.inf
            return
        assert self.consent.state is ConsentState.GRANTED
        assert self.consent.last_answer == self.last_answer
        assert self.consent.unanswered == self.unanswered
        deadline = self.consent.deadline()
        # the next check is never further away than one stretched interval
        stretched = self.policy.interval * (1 + self.policy.jitter)
        assert deadline <= max(self.now, self.last_check) + stretched + 1e-9


ConsentMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=60, deadline=None)
test_consent_machine = ConsentMachine.TestCase
