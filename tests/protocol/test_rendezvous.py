"""The pipe rendezvous (sans-IO): arrivals meet accept_pipe calls, one cancel rule."""

from __future__ import annotations

import math

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from unisockets.protocol.rendezvous import ArrivalKind, PipeRendezvous, Waiter

A, B = "10.0.0.1", "10.0.0.2"


def test_a_pipe_meets_a_waiting_caller_and_a_caller_a_queued_pipe() -> None:
    meet: PipeRendezvous[str] = PipeRendezvous(claim_timeout=10.0)
    waiter = meet.claim(A, "x", handle="event")
    assert isinstance(waiter, Waiter) and waiter.handle == "event" and not waiter.done
    arrival = meet.arrive(A, "x", "pipe-1", 0.0)
    assert arrival.kind is ArrivalKind.HANDED and arrival.waiter is waiter
    assert waiter.pipe == "pipe-1" and waiter.done
    assert meet.arrive(A, "x", "pipe-2", 1.0).kind is ArrivalKind.QUEUED
    assert meet.arrive(A, "x", "pipe-3", 2.0).kind is ArrivalKind.QUEUED
    assert meet.claim(A, "x") == "pipe-2"  # in arrival order
    assert meet.claim(A, "y") is not None and meet.waiting(A) == 1
    assert meet.queued(A) == 1 and meet.next_expiry() == 12.0


def test_unclaimed_pipes_expire_at_their_deadline_and_a_peer_has_a_limit() -> None:
    meet: PipeRendezvous[str] = PipeRendezvous(claim_timeout=5.0, max_unclaimed_per_peer=2)
    assert meet.arrive(A, "x", "p1", 0.0).kind is ArrivalKind.QUEUED
    assert meet.arrive(A, "y", "p2", 1.0).kind is ArrivalKind.QUEUED
    assert meet.arrive(A, "z", "p3", 1.0).kind is ArrivalKind.REFUSED  # A has 2 queued
    assert meet.arrive(B, "z", "p4", 1.0).kind is ArrivalKind.QUEUED  # B has its own limit
    assert meet.expire(4.9) == [] and meet.next_expiry() == 5.0
    assert meet.expire(5.0) == ["p1"]
    assert meet.next_expiry() == 6.0
    assert meet.claim(A, "y") == "p2"  # claimed before its deadline
    assert meet.expire(100.0) == ["p4"]
    assert meet.next_expiry() == math.inf and meet.queued() == 0


def test_a_caller_that_gives_up_after_the_handover_does_not_lose_the_pipe() -> None:
    meet: PipeRendezvous[str] = PipeRendezvous(claim_timeout=5.0, max_unclaimed_per_peer=0)
    first = meet.claim(A, "x")
    second = meet.claim(A, "x")
    assert isinstance(first, Waiter) and isinstance(second, Waiter)
    meet.arrive(A, "x", "pipe", 0.0)
    assert first.pipe == "pipe"
    # first is cancelled before it could return the pipe: the next caller gets it
    arrival = meet.withdraw(first, 1.0)
    assert arrival is not None and arrival.waiter is second and second.pipe == "pipe"
    assert first.pipe is None
    # second gives up too: with nobody waiting, the pipe is queued again (never refused)
    arrival = meet.withdraw(second, 2.0)
    assert arrival is not None and arrival.kind is ArrivalKind.QUEUED
    assert meet.next_expiry() == 7.0
    assert meet.claim(A, "x") == "pipe"
    # a caller that gives up with nothing handed to it just leaves the line
    third = meet.claim(A, "x")
    assert isinstance(third, Waiter)
    assert meet.withdraw(third, 3.0) is None and meet.waiting() == 0


def test_peer_gone_fails_its_callers_and_drops_its_pipes() -> None:
    meet: PipeRendezvous[str] = PipeRendezvous(claim_timeout=5.0)
    waiting_a = meet.claim(A, "x")
    waiting_b = meet.claim(B, "x")
    meet.arrive(A, "y", "pa", 0.0)
    meet.arrive(B, "y", "pb", 0.0)
    assert meet.drop_queued(A) == ["pa"] and meet.waiting(A) == 1  # link failed: callers stay
    failed = meet.fail_waiters(A, lambda: ConnectionError("A left"))
    assert failed == [waiting_a] and isinstance(waiting_a, Waiter)
    assert isinstance(waiting_a.error, ConnectionError) and waiting_a.done
    failed = meet.fail_waiters(None, lambda: RuntimeError("closed"))
    assert failed == [waiting_b]
    assert meet.drop_queued() == ["pb"]
    assert meet.next_expiry() == math.inf


@pytest.mark.parametrize("timeout", [0, -1.0, math.inf, math.nan])
def test_a_bad_claim_timeout_raises_value_error(timeout: float) -> None:
    with pytest.raises(ValueError):
        PipeRendezvous(claim_timeout=timeout)


KEYS = st.sampled_from([(A, "x"), (A, "y"), (B, "x")])


class RendezvousMachine(RuleBasedStateMachine):
    """Any interleaving of arrivals, claims, give-ups, expiries and departures.

    Invariants: no pipe is ever in two places or lost (each is queued, held by
    exactly one caller, taken, refused, expired or dropped); nobody waits for a
    key that has a queued pipe; per-peer limits hold; expiry never takes a pipe
    before its deadline.
    """

    waiters = Bundle("waiters")

    def __init__(self) -> None:
        super().__init__()
        self.meet: PipeRendezvous[int] = PipeRendezvous(claim_timeout=3.0, max_unclaimed_per_peer=3)
        self.now = 0.0
        self.next_pipe = 0
        self.outcome: dict[int, str] = {}  # pipe -> queued/held/taken/refused/expired/dropped
        self.deadline: dict[int, float] = {}
        self.live: list[Waiter[int]] = []

    @rule(seconds=st.floats(min_value=0, max_value=5, allow_nan=False))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    @rule(key=KEYS)
    def a_pipe_arrives(self, key: tuple[str, str]) -> None:
        pipe = self.next_pipe
        self.next_pipe += 1
        before = self.meet.queued(key[0])
        arrival = self.meet.arrive(key[0], key[1], pipe, self.now)
        if arrival.kind is ArrivalKind.HANDED:
            assert arrival.waiter is not None and arrival.waiter.pipe == pipe
            self.outcome[pipe] = "held"
        elif arrival.kind is ArrivalKind.QUEUED:
            assert before < 3  # the limit holds for arrivals (a give-up may requeue past it)
            self.outcome[pipe] = "queued"
            self.deadline[pipe] = self.now + 3.0
        else:
            assert before >= 3
            self.outcome[pipe] = "refused"

    @rule(target=waiters, key=KEYS)
    def a_caller_claims(self, key: tuple[str, str]) -> Waiter[int] | None:
        got = self.meet.claim(key[0], key[1])
        if isinstance(got, Waiter):
            self.live.append(got)
            return got
        assert self.outcome[got] == "queued"
        self.outcome[got] = "taken"
        return None

    @rule(waiter=consumes(waiters))
    def a_caller_returns_or_gives_up(self, waiter: Waiter[int] | None) -> None:
        if waiter is None or waiter not in self.live:
            return
        self.live.remove(waiter)
        if waiter.pipe is not None and waiter.error is None:
            self.outcome[waiter.pipe] = "taken"  # it returned with the pipe
            return
        arrival = self.meet.withdraw(waiter, self.now)
        assert arrival is None  # nothing was handed to it

    @rule(waiter=consumes(waiters))
    def a_caller_is_cancelled_just_after_the_handover(self, waiter: Waiter[int] | None) -> None:
        if waiter is None or waiter not in self.live:
            return
        self.live.remove(waiter)
        pipe = waiter.pipe
        arrival = self.meet.withdraw(waiter, self.now)
        if pipe is None:
            assert arrival is None
            return
        assert arrival is not None and arrival.kind is not ArrivalKind.REFUSED
        if arrival.kind is ArrivalKind.HANDED:
            assert arrival.waiter is not None and arrival.waiter.pipe == pipe
        else:
            self.outcome[pipe] = "queued"
            self.deadline[pipe] = self.now + 3.0

    @rule()
    def expiry(self) -> None:
        for pipe in self.meet.expire(self.now):
            assert self.outcome[pipe] == "queued" and self.deadline[pipe] <= self.now
            self.outcome[pipe] = "expired"

    @rule(peer=st.sampled_from([A, B]))
    def a_link_fails(self, peer: str) -> None:
        for pipe in self.meet.drop_queued(peer):
            assert self.outcome[pipe] == "queued"
            self.outcome[pipe] = "dropped"

    @rule(peer=st.sampled_from([A, B]))
    def a_peer_leaves(self, peer: str) -> None:
        for waiter in self.meet.fail_waiters(peer, lambda: ConnectionError(peer)):
            assert waiter.key[0] == peer and waiter.pipe is None
        self.a_link_fails(peer)

    @invariant()
    def every_pipe_is_in_one_place(self) -> None:
        held = [w.pipe for w in self.live if w.pipe is not None]
        assert len(held) == len(set(held))
        queued = [p for p, o in self.outcome.items() if o == "queued"]
        assert self.meet.queued() == len(queued)
        for pipe, outcome in self.outcome.items():
            if outcome == "held":
                assert pipe in held
        for key in [(A, "x"), (A, "y"), (B, "x")]:
            waiting = [w for w in self.live if w.key == key and not w.done]
            assert not (waiting and self.meet.queued(key[0]) and self._queued_for(key))
        expiry = self.meet.next_expiry()
        assert expiry == min((self.deadline[p] for p in queued), default=math.inf)

    def _queued_for(self, key: tuple[str, str]) -> bool:
        return any(got == key for got in (k for k, q in self.meet._queued.items() if q))


RendezvousMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=60, deadline=None
)
test_rendezvous_machine = RendezvousMachine.TestCase
