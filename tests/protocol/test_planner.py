"""The connection planner (sans-IO): addresses, ports, labels, legacy peers, releases, backlogs.

Stateful Hypothesis tests drive a :class:`ConnectionPlanner` and an
:class:`AcceptQueue` in memory against simple models, with an injected
:class:`random.Random`; no sockets, no clock.
"""

from __future__ import annotations

import errno
import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from unisockets.protocol.planner import (
    ANY_HOSTS,
    EPHEMERAL_PORTS,
    AcceptQueue,
    ConnectionPlanner,
    Route,
    Take,
    check_address,
    check_backlog,
    check_port,
    connection_label,
    link_failure,
    local_host,
)

OWN, OTHER, LEGACY = "10.0.0.1", "10.0.0.2", "10.0.0.3"
HOSTS = st.sampled_from([*ANY_HOSTS, OWN, OTHER, LEGACY, "127.0.0.1"])
ALIASES = st.sampled_from([f"{OWN}:{port}" for port in (0, 1, 80, 50000)])
SESSIONS = st.integers(0, 3)


def test_addresses_ports_and_backlogs_are_checked_with_einval() -> None:
    assert check_address(("10.0.0.1", 80)) == ("10.0.0.1", 80)
    assert check_address(["", 0]) == ("", 0)
    assert check_address(("localhost", 65535)) == ("localhost", 65535)
    for bad in [("10.0.0.256", 1), ("10.0.0.1", -1), ("10.0.0.1", True), ("x", 1), (1, 1), "a"]:
        with pytest.raises(OSError) as info:
            check_address(bad)
        assert info.value.errno == errno.EINVAL
    for port in (-1, 65536, True, 1.0, "1"):
        with pytest.raises(OSError) as info:
            check_port(port)
        assert info.value.errno == errno.EINVAL
    assert check_backlog(0) == 1 and check_backlog(7) == 7
    with pytest.raises(OSError) as info:
        check_backlog(-1)
    assert info.value.errno == errno.EINVAL


def test_routes_labels_and_link_failures() -> None:
    planner: ConnectionPlanner[object, str] = ConnectionPlanner(random.Random(1))
    assert connection_label("10.0.0.2:0", "10.0.0.1:80") == "10.0.0.2:0>10.0.0.1:80"
    out = planner.outgoing("10.0.0.1:0", "127.0.0.1:80", OTHER, OWN)
    assert out == Route("10.0.0.1:0>127.0.0.1:80", OTHER, loopback=False)
    assert planner.outgoing("10.0.0.1:0", "10.0.0.1:80", OWN, OWN).loopback
    into = planner.incoming("10.0.0.2:0", "10.0.0.1:80", OWN)
    assert into == Route("10.0.0.2:0>10.0.0.1:80", OTHER, loopback=False)
    assert planner.incoming("10.0.0.1:0", "10.0.0.1:80", OWN).loopback
    timed_out = link_failure(OTHER, "ICE failed", timed_out=True)
    assert timed_out.errno == errno.ETIMEDOUT and "link to 10.0.0.2: ICE failed" in str(timed_out)
    assert link_failure(OTHER, "x", timed_out=False).errno == errno.ECONNRESET


def test_an_ephemeral_bind_goes_on_only_after_eaddrinuse() -> None:
    planner: ConnectionPlanner[object, str] = ConnectionPlanner(random.Random(7), ephemeral_tries=3)
    plan = planner.plan_bind(0, "", OWN)
    assert plan.host == OWN and len(plan.ports) == 3 and plan.wait_for is None
    assert plan.retry(errno.EADDRINUSE) and not plan.retry(errno.ETIMEDOUT)
    assert plan.exhausted().errno == errno.EADDRINUSE
    with plan.attempt():
        raise OSError(errno.EADDRINUSE, "taken")  # swallowed: the next port is tried
    with pytest.raises(TimeoutError), plan.attempt():
        raise TimeoutError  # not a reason to try another port
    fixed = planner.plan_bind(80, "127.0.0.1", OWN)
    assert fixed.host == "127.0.0.1" and fixed.ports == (80,)
    assert not fixed.retry(errno.EADDRINUSE)  # a chosen port that is taken is the caller's
    with pytest.raises(OSError) as info, fixed.attempt():
        raise OSError(errno.EADDRINUSE, "taken")
    assert info.value.errno == errno.EADDRINUSE
    with pytest.raises(ValueError):
        ConnectionPlanner(random.Random(), ephemeral_tries=0)


@given(seed=st.integers(0, 2**32), tries=st.integers(1, 200))
def test_ephemeral_ports_come_from_the_injected_rng(seed: int, tries: int) -> None:
    planners: list[ConnectionPlanner[object, str]] = [
        ConnectionPlanner(random.Random(seed), ephemeral_tries=tries) for _ in range(2)
    ]
    ports = planners[0].plan_bind(0, "", OWN).ports
    assert ports == planners[1].plan_bind(0, "", OWN).ports  # same rng, same ports
    assert len(ports) == len(set(ports)) == tries
    assert all(port in EPHEMERAL_PORTS for port in ports)


class PlannerMachine(RuleBasedStateMachine):
    """A planner against a model: releases under way, legacy connections, closing."""

    @initialize(seed=st.integers(0, 2**32))
    def start(self, seed: int) -> None:
        self.planner: ConnectionPlanner[object, int] = ConnectionPlanner(
            random.Random(seed), ephemeral_tries=4
        )
        self.rng = random.Random(seed)  # the model's copy of the injected rng
        #: alias -> (the handle of the first release under way, how many are under way)
        self.releasing: dict[str, tuple[int, int]] = {}
        self.handles = 0
        self.legacy: dict[str, object] = {}
        self.closed = False

    @rule(port=st.sampled_from([0, 1, 80, 50000]), host=HOSTS)
    def bind(self, port: int, host: str) -> None:
        plan = self.planner.plan_bind(port, host, OWN)
        expected_host = OWN if host in ANY_HOSTS else host
        assert plan.host == expected_host
        if port == 0:
            assert plan.ports == tuple(self.rng.sample(EPHEMERAL_PORTS, 4))
            assert plan.wait_for is None
        else:
            alias = f"{expected_host}:{port}"
            assert plan.ports == (port,)
            under_way = self.releasing.get(alias)
            assert plan.wait_for == (None if under_way is None else under_way[0])

    @rule(alias=ALIASES, session=st.none() | SESSIONS, current=SESSIONS)
    def release(self, alias: str, session: int | None, current: int) -> None:
        self.handles += 1
        wait = self.planner.release(alias, self.handles, session=session, current_session=current)
        if self.closed or (session is not None and session != current):
            assert wait is None  # nothing to send
            return
        first, count = self.releasing.get(alias, (self.handles, 0))
        assert wait == first  # a bind waits for the release under way first
        self.releasing[alias] = (first, count + 1)

    @rule(alias=ALIASES)
    def released(self, alias: str) -> None:
        woken = self.planner.released(alias)
        under_way = self.releasing.get(alias)
        if under_way is None:
            assert woken is None
        elif under_way[1] == 1:
            assert woken == under_way[0]  # the last release under way wakes the binds
            del self.releasing[alias]
        else:
            assert woken is None
            self.releasing[alias] = (under_way[0], under_way[1] - 1)

    @rule(peer=st.sampled_from([OTHER, LEGACY]))
    def legacy_opened(self, peer: str) -> None:
        connection = object()
        assert self.planner.legacy_opened(peer, connection) == (peer not in self.legacy)
        self.legacy.setdefault(peer, connection)

    @rule(peer=st.sampled_from([OTHER, LEGACY]), current=st.booleans())
    def legacy_closed(self, peer: str, current: bool) -> None:
        connection = self.legacy.get(peer) if current else object()  # a stale one: no effect
        self.planner.legacy_closed(peer, connection)
        if current:
            self.legacy.pop(peer, None)

    @rule(host=HOSTS, port=st.integers(0, 65535))
    def connect(self, host: str, port: int) -> None:
        target = local_host(host, OWN)
        if target in self.legacy:
            with pytest.raises(ConnectionRefusedError) as info:
                self.planner.plan_connect((host, port), OWN)
            assert info.value.errno == errno.ECONNREFUSED
        else:
            assert self.planner.plan_connect((host, port), OWN) == f"{target}:{port}"

    @precondition(lambda self: not self.closed)
    @rule()
    def close(self) -> None:
        assert self.planner.close() == [first for first, _ in self.releasing.values()]
        self.releasing.clear()
        self.closed = True

    @invariant()
    def agrees(self) -> None:
        if not hasattr(self, "planner"):
            return
        for alias in [f"{OWN}:{port}" for port in (0, 1, 80, 50000)]:
            assert self.planner.releasing(alias) == (alias in self.releasing)
        for peer in (OTHER, LEGACY):
            assert self.planner.legacy_connection(peer) is self.legacy.get(peer)
        assert self.planner.closed == self.closed


class AcceptQueueMachine(RuleBasedStateMachine):
    """An accept queue against a deque: backlog admission, order, failure, close."""

    @initialize(backlog=st.integers(1, 4))
    def start(self, backlog: int) -> None:
        self.queue: AcceptQueue[int] = AcceptQueue(backlog)
        self.backlog = backlog
        self.model: deque[int] = deque()
        self.closed = False
        self.failure: BaseException | None = None
        self.next = 0

    @rule()
    def offer(self) -> None:
        self.next += 1
        admitted = self.queue.offer(self.next)
        assert admitted == (not self.closed and len(self.model) < self.backlog)
        if admitted:
            self.model.append(self.next)

    @rule()
    def take(self) -> None:
        taken = self.queue.take()
        if self.closed:
            assert taken is Take.CLOSED
        elif self.model:
            assert taken == self.model.popleft()
        else:
            assert taken is (Take.WAIT if self.failure is None else Take.FAILED)

    @rule()
    def fail(self) -> None:
        error = ConnectionError("alias lost")
        self.queue.fail(error)
        self.failure = self.failure or error
        assert self.queue.failure is self.failure

    @rule()
    def close(self) -> None:
        assert self.queue.close() == list(self.model)
        self.model.clear()
        self.closed = True

    @invariant()
    def agrees(self) -> None:
        if hasattr(self, "queue"):
            assert len(self.queue) == len(self.model) <= self.backlog


TestPlannerMachine = PlannerMachine.TestCase
TestPlannerMachine.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestAcceptQueueMachine = AcceptQueueMachine.TestCase
TestAcceptQueueMachine.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
