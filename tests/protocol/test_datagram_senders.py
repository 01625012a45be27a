"""The sans-IO send decisions of datagram sockets: wait, send, drop, pause.

A Hypothesis state machine routes datagrams to a few peers while their
channels open, open, fail (also late, for an attempt already replaced) and
the layer closes, with time as an argument; it checks every decision against
a plain model of docs/protocol.md's "Sending before the channel is open", and
that every datagram is accounted for exactly once: sent, waiting, or counted
in ``send_dropped``.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from unisockets.protocol.datagram import MAX_PENDING_DATAGRAMS, RETRY_AFTER, DatagramStatistics
from unisockets.protocol.datagram_senders import DatagramSenders, PeerSender, SendRoute

HOSTS = st.sampled_from(["10.0.0.2", "10.0.0.3", "10.0.0.4"])
MAX_PENDING = 3
RETRY = 2.0


class SendersMachine(RuleBasedStateMachine):
    """:class:`DatagramSenders` against a model: per host waiting / open / paused."""

    def __init__(self) -> None:
        super().__init__()
        self.statistics = DatagramStatistics()
        self.senders = DatagramSenders(self.statistics, max_pending=MAX_PENDING, retry_after=RETRY)
        self.now = 0.0
        self.counter = 0
        # model
        self.waiting: dict[str, list[bytes]] = {}  # host -> messages, channel opening
        self.open: set[str] = set()
        self.paused: dict[str, float] = {}
        self.closed = False
        self.attempts: list[PeerSender] = []
        # accounting
        self.routed = 0
        self.handed = 0  # to the driver to send: SEND, and flushed by opened()
        self.dropped = 0  # dropped here: DROPPED, and what waited when a channel failed
        self.held = 0  # dropped by the driver (reported through failed())

    @rule(host=HOSTS, advance=st.sampled_from([0.0, 0.5, RETRY, RETRY + 0.1]))
    def route(self, host: str, advance: float) -> None:
        self.now += advance
        self.counter += 1
        message = f"{self.counter}".encode()
        route = self.senders.route(host, message, self.now)
        self.routed += 1
        if self.closed or (
            host not in self.waiting
            and host not in self.open
            and (self.now < self.paused.get(host, -1.0))
        ):
            expected = SendRoute.DROPPED
        elif host in self.open:
            expected = SendRoute.SEND
        elif host not in self.waiting:
            expected = SendRoute.OPEN
            self.waiting[host] = [message]
        elif len(self.waiting[host]) >= MAX_PENDING:
            expected = SendRoute.DROPPED
        else:
            expected = SendRoute.QUEUED
            self.waiting[host].append(message)
        assert route is expected
        if route is SendRoute.OPEN:
            attempt = self.senders.sender(host)
            assert attempt is not None and attempt.host == host
            self.attempts.append(attempt)
        if route is SendRoute.SEND:
            self.handed += 1
        if route is SendRoute.DROPPED:
            self.dropped += 1

    @precondition(lambda self: self.waiting)
    @rule(data=st.data())
    def channel_opens(self, data: st.DataObject) -> None:
        host = data.draw(st.sampled_from(sorted(self.waiting)))
        attempt = self.senders.sender(host)
        assert attempt is not None
        flushed = self.senders.opened(attempt)
        assert flushed == self.waiting.pop(host)  # all, oldest first
        self.handed += len(flushed)
        self.open.add(host)

    @precondition(lambda self: self.waiting or self.open)
    @rule(data=st.data(), held=st.integers(0, 2))
    def channel_fails(self, data: st.DataObject, held: int) -> None:
        host = data.draw(st.sampled_from(sorted({*self.waiting, *self.open})))
        attempt = self.senders.sender(host)
        assert attempt is not None
        # the driver held ``held`` datagrams in its own queue for the channel: dropped too
        self.senders.failed(attempt, self.now, held)
        self.dropped += len(self.waiting.pop(host, []))
        self.held += held
        self.open.discard(host)
        self.paused[host] = self.now + RETRY
        assert self.senders.paused(host, self.now)

    @precondition(lambda self: self.attempts)
    @rule(data=st.data())
    def a_stale_attempt_reports(self, data: st.DataObject) -> None:
        attempt = data.draw(st.sampled_from(self.attempts))
        if self.senders.sender(attempt.host) is attempt:
            return  # current: that is channel_opens / channel_fails
        assert self.senders.opened(attempt) == []
        self.senders.failed(attempt, self.now)  # nothing waits in it: no count, no pause
        if attempt.host not in self.waiting and attempt.host not in self.open:
            return
        assert self.senders.sender(attempt.host) is not None  # the current one is unharmed

    @rule()
    def close(self) -> None:
        closed = self.senders.close()
        assert {attempt.host for attempt in closed} == {*self.waiting, *self.open}
        self.dropped += sum(len(waiting) for waiting in self.waiting.values())
        self.waiting.clear()
        self.open.clear()
        self.closed = True

    @invariant()
    def every_datagram_is_accounted_for_once(self) -> None:
        waiting = sum(map(len, self.waiting.values()))
        assert self.routed == self.handed + waiting + self.dropped
        assert self.statistics.send_dropped == self.dropped + self.held
        for host, waiting in self.waiting.items():
            attempt = self.senders.sender(host)
            assert attempt is not None and attempt.pending == len(waiting) <= MAX_PENDING


SendersMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
TestSenders = SendersMachine.TestCase


def test_defaults_are_the_documented_limits() -> None:
    senders = DatagramSenders(DatagramStatistics())
    assert (senders.max_pending, senders.retry_after) == (MAX_PENDING_DATAGRAMS, RETRY_AFTER)
    with pytest.raises(ValueError):
        DatagramSenders(DatagramStatistics(), max_pending=0)
    with pytest.raises(ValueError):
        DatagramSenders(DatagramStatistics(), retry_after=-1)


def test_a_pause_passes_and_is_forgotten() -> None:
    statistics = DatagramStatistics()
    senders = DatagramSenders(statistics, retry_after=2.0)
    assert senders.route("b", b"1", now=10.0) is SendRoute.OPEN
    attempt = senders.sender("b")
    assert attempt is not None
    senders.failed(attempt, now=11.0)
    assert statistics.send_dropped == 1
    assert senders.route("b", b"2", now=12.9) is SendRoute.DROPPED
    assert senders.route("b", b"3", now=13.0) is SendRoute.OPEN  # a new attempt
    assert senders.sender("b") is not attempt
    assert not senders._paused  # the passed pause is gone: the table stays small
