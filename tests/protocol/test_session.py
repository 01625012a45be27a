"""The signaling session core against the real sans-IO server, in memory.

No sockets, no clock: a :class:`World` wires one
:class:`~unisockets.protocol.session.SignalingSession` (node A, the subject)
and one always-connected peer session (node B, listening on ``B:80``) to a
:class:`~unisockets.protocol.server.SignalingServerProtocol`. A's messages
reach the server at once; the server's messages to A wait in an inbox until a
rule delivers them, so answers interleave with new requests, callers giving
up, time passing and lost WebSockets in every order Hypothesis finds. Time is
a number the test advances; the rng is seeded.
"""

from __future__ import annotations

import errno
import math
import random
from collections import deque

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from unisockets.protocol import Acknowledged, Knock, Message, Offer, encode
from unisockets.protocol.events import IdChanged, Reconnected, RequestKind
from unisockets.protocol.server import SignalingServerProtocol
from unisockets.protocol.server_states import AliasState
from unisockets.protocol.session import (
    AliasLost,
    Deliver,
    FailureKind,
    Output,
    Publish,
    Retry,
    Send,
    SessionJoined,
    Settled,
    SignalingSession,
    Stop,
    Ticket,
)

TIMEOUT = 10.0
BACKOFF = (0.5, 10.0)
CLAIMED = "10.0.0.200"  # an address no member has as id (suffixes 1..3)


class World:
    """A server, the peer B (instant) and the subject A (its inbox delivered by hand)."""

    def __init__(self, seed: int = 0, *, reconnect: bool = True) -> None:
        self.server: SignalingServerProtocol[str] = SignalingServerProtocol(suffixes=range(1, 4))
        self.now = 1000.0
        self.b = SignalingSession("10.0.0", request_timeout=TIMEOUT, rng=random.Random(-1))
        self.a = SignalingSession(
            "10.0.0",
            request_timeout=TIMEOUT,
            reconnect=reconnect,
            backoff=BACKOFF,
            rng=random.Random(seed),
        )
        self.inbox: deque[Message] = deque()
        self.stale: deque[Message] = deque()  # frames of A's previous WebSockets
        self.key: str | None = None  # A's current connection
        self.keys = 0
        self.outputs: list[Output] = []  # every output of A, in order
        self.settled: list[Ticket] = []
        self.lost: list[AliasLost] = []
        self.delivered: list[Deliver] = []
        self.published: list[object] = []
        self.server.client_connected("B")
        self._b(self.b.connection_made(self.now))
        assert self.b.connected and self.b.id == "10.0.0.1"
        ticket, out = self.b.bind("10.0.0.1:80", self.now)
        self._b(out)
        assert ticket.done and ticket.error is None
        self._b(self.b.listen("10.0.0.1:80")[1])

    # --- wiring ---------------------------------------------------------------------------

    def _route(self, outgoing: list[tuple[str, Message]]) -> None:
        for key, message in outgoing:
            if key == "B":
                self._b(self.b.receive_data(encode(message), self.now))
            elif key == self.key:
                self.inbox.append(message)
            # anyone else (an intruder) ignores what it gets

    def _b(self, outputs: list[Output]) -> None:
        for output in outputs:
            if isinstance(output, Send):
                for message in output.messages:
                    self._route(self.server.receive("B", message))

    def apply(self, outputs: list[Output]) -> list[Output]:
        """Carry out A's outputs: its messages reach the server at once."""
        self.outputs.extend(outputs)
        for output in outputs:
            if isinstance(output, Send):
                assert self.key is not None, "the core sent without a WebSocket"
                for message in output.messages:
                    self._route(self.server.receive(self.key, message))
            elif isinstance(output, Settled):
                assert output.ticket.done
                assert output.ticket not in self.settled, "settled twice"
                self.settled.append(output.ticket)
            elif isinstance(output, AliasLost):
                self.lost.append(output)
            elif isinstance(output, Deliver):
                self.delivered.append(output)
            elif isinstance(output, Publish):
                self.published.append(output.event)
        return outputs

    def open(self) -> None:
        """A new WebSocket for A (the knock is sent, the acknowledgement waits in the inbox)."""
        assert self.key is None
        self.keys += 1
        self.key = f"A{self.keys}"
        self.server.client_connected(self.key)
        self.apply(self.a.connection_made(self.now))

    def deliver(self, count: int = 1 << 30) -> None:
        """Deliver up to ``count`` frames from the inbox to A."""
        while self.inbox and count > 0:
            count -= 1
            self.apply(self.a.receive_data(encode(self.inbox.popleft()), self.now))

    def call(self, request: tuple[Ticket, list[Output]]) -> Ticket:
        """Make a request of A and deliver everything: usually its answer."""
        ticket, outputs = request
        self.apply(outputs)
        self.deliver()
        return ticket

    def join(self) -> None:
        self.open()
        self.deliver()
        assert self.a.connected

    def lose(self, reason: str = "lost", *, apply: bool = True) -> list[Output]:
        """A's WebSocket closes (the server notices it at once)."""
        assert self.key is not None
        key, self.key = self.key, None
        self.stale.extend(self.inbox)
        self.inbox.clear()
        self._route(self.server.client_disconnected(key))
        outputs = self.a.connection_lost(reason, self.now)
        return self.apply(outputs) if apply else outputs

    def held(self) -> set[str]:
        """The aliases the server says A holds now."""
        if self.key is None or self.server.member_id(self.key) is None:
            return set()
        owner = self.server.member_id(self.key)
        held = {alias for alias, info in self.server.aliases.items() if info.owner == owner}
        for claims in self.server.claimed_aliases.values():
            held |= {alias for alias, info in claims.items() if info.owner == owner}
        return held

    def intrude(self) -> None:
        """Another node joins (while A is away, it takes the lowest free id: A's)."""
        self.server.client_connected("intruder")
        self.server.receive("intruder", Knock(subnet="10.0.0"))

    def state(self, alias: str) -> AliasState | None:
        info = self.server.aliases.get(alias)
        if info is None:
            for claims in self.server.claimed_aliases.values():
                info = claims.get(alias, info)
        return None if info is None else info.state

    def sends(self, outputs: list[Output]) -> list[Message]:
        return [m for o in outputs if isinstance(o, Send) for m in o.messages]


# --- examples: each reconnect ordering, spelled out ---------------------------------------


def test_bind_connect_shutdown_then_listen_and_deliver() -> None:
    w = World()
    w.join()
    a = w.a.id
    ticket = w.call(w.a.bind(f"{a}:5", w.now))
    assert ticket.done and ticket.error is None and w.a.bound == {f"{a}:5"}
    failure, out = w.a.listen(f"{a}:5")
    assert failure is None
    w.apply(out)
    assert w.state(f"{a}:5") is AliasState.ACCEPTING
    _connect, out = w.b.connect(f"{a}:5", w.now)
    w._b(out)
    w.deliver()
    assert w.delivered[-1].alias == f"{a}:5"
    assert w.state(f"{a}:5") is AliasState.ACCEPTING  # accepting again at once
    ticket = w.call(w.a.connect("10.0.0.1:80", w.now))
    assert ticket.result is not None and ticket.result.session == w.a.session
    assert ticket.result.remote_id == "10.0.0.1"
    refused = w.call(w.a.connect("10.0.0.1:81", w.now))
    assert refused.error is not None and refused.error.errno == errno.ECONNREFUSED
    shut = w.call(w.a.shutdown(ticket.result.local_alias, w.now, session=ticket.result.session))
    assert shut.done and shut.error is None
    assert w.held() == {f"{a}:5"}
    bad = w.call(w.a.shutdown(f"{a}:9", w.now))
    assert bad.error is not None and bad.error.errno == errno.EINVAL


def test_a_bind_refused_says_why() -> None:
    w = World()
    w.join()
    taken, out = w.a.bind("10.0.0.1:80", w.now)  # another node's address, unknown to A yet
    w.apply(out)
    w.deliver()
    # Our server says it is a member's id (isMemberAddress): EADDRNOTAVAIL all the same.
    assert taken.error is not None and taken.error.errno == errno.EADDRNOTAVAIL
    assert "another node's address" in taken.error.text
    held, out = w.a.bind("10.0.0.9:80", w.now)  # a free id: A claims it, then binds again
    w.apply(out)
    w.deliver()
    assert held.done and held.error is None
    twice = w.call(w.a.bind("10.0.0.9:80", w.now))
    assert twice.error is not None and twice.error.errno == errno.EADDRINUSE
    # B offers A a peer link: now A knows B's id, and refuses its address without asking.
    offer = Offer(offerer_id="10.0.0.1", answerer_id=w.a.id or "", offer="v=0")
    w.apply(w.a.receive_data(encode(offer), w.now))
    known, out = w.a.bind("10.0.0.1:81", w.now)
    assert known.error is not None and known.error.errno == errno.EADDRNOTAVAIL
    assert w.sends(out) == []
    w.call(w.a.bind(f"{w.a.id}:1", w.now))
    again = w.call(w.a.bind(f"{w.a.id}:1", w.now))
    assert again.error is not None and again.error.errno == errno.EADDRINUSE
    failure, _ = w.a.listen(f"{w.a.id}:7")
    assert failure is not None and failure.errno == errno.EINVAL


def _request_in_flight(w: World, kind: str) -> Ticket:
    a = w.a.id
    if kind == "shutdown":
        w.call(w.a.bind(f"{a}:3", w.now))
        ticket, out = w.a.shutdown(f"{a}:3", w.now)
    elif kind == "bind":
        ticket, out = w.a.bind(f"{a}:3", w.now)
    else:
        ticket, out = w.a.connect("10.0.0.1:80", w.now)
    w.apply(out)
    assert w.inbox  # the answer is on its way
    return ticket


@pytest.mark.parametrize("kind", ["bind", "connect", "shutdown"])
def test_a_loss_during_a_request_carries_it_to_the_next_session(kind: str) -> None:
    w = World()
    w.join()
    a = w.a.id
    ticket = _request_in_flight(w, kind)
    out = w.lose("the server went away")
    assert any(isinstance(o, Retry) for o in out)
    assert all(w.a.receive_data(encode(m), w.now) == [] for m in w.stale)  # late answers
    if kind == "shutdown":  # the server forgot the alias with the session: done
        assert ticket.done and ticket.error is None
    else:  # waits for the next session, within its deadline
        assert not ticket.done and ticket.request is None
        assert w.a.next_deadline() == ticket.deadline == w.now + TIMEOUT
    assert w.a.bound == set()
    w.join()  # sent again there, once
    assert ticket.done and ticket.error is None
    if kind == "bind":
        assert w.a.bound == {f"{a}:3"} and w.held() == {f"{a}:3"}
    elif kind == "connect":
        assert ticket.result is not None and ticket.result.session == w.a.session
        assert w.held() == {ticket.result.local_alias}
    else:
        assert w.held() == set()  # nothing restored, nothing leaked


def test_a_bind_carried_over_is_undone_by_a_shutdown_made_after_it() -> None:
    # bind :3 and shutdown :3 both in flight when the WebSocket goes: the shutdown is
    # done with the session; the bind, carried over, must not bind :3 again for good.
    w = World()
    w.join()
    a = w.a.id
    bind, out = w.a.bind(f"{a}:3", w.now)
    w.apply(out)
    shutdown, out = w.a.shutdown(f"{a}:3", w.now)
    w.apply(out)
    w.lose()
    assert shutdown.done and shutdown.error is None and not bind.done
    w.join()
    assert bind.done and bind.error is None  # its caller was answered
    assert w.a.bound == set() and w.held() == set()  # and the shutdown made after it won


@pytest.mark.parametrize("kind", ["bind", "connect", "shutdown"])
def test_a_loss_during_a_request_fails_it_when_no_session_follows(kind: str) -> None:
    w = World(reconnect=False)
    w.join()
    ticket = _request_in_flight(w, kind)
    out = w.lose("the server went away")
    assert any(isinstance(o, Stop) for o in out)
    assert ticket.error is not None and ticket.error.kind is FailureKind.SIGNALING
    assert w.a.bound == set()


def test_requests_made_while_disconnected_wait_for_the_next_session_or_time_out() -> None:
    w = World()
    w.join()
    a = w.a.id
    w.lose()
    waiting, out = w.a.bind(f"{a}:4", w.now)
    assert out == [] and not waiting.done
    late, out = w.a.connect("10.0.0.1:80", w.now + 5)
    assert w.a.next_deadline() == w.now + TIMEOUT
    w.now += TIMEOUT
    out = w.apply(w.a.expire(w.now))
    assert waiting.error is not None and waiting.error.kind is FailureKind.TIMEOUT
    assert not late.done and w.a.next_deadline() == w.now + 5
    w.join()
    assert late.done and late.result is not None  # sent once joined
    assert w.held() == {late.result.local_alias}


def test_a_shutdown_of_an_old_session_is_never_sent_to_the_alias_of_a_newer_connection() -> None:
    w = World()
    w.join()
    first = w.call(w.a.connect("10.0.0.1:80", w.now))
    assert first.result is not None
    old = first.result
    w.lose()
    w.join()
    second = w.call(w.a.connect("10.0.0.1:80", w.now))
    assert second.result is not None and second.result.local_alias == old.local_alias
    assert second.result.session == old.session + 1
    ticket, out = w.a.shutdown(old.local_alias, w.now, session=old.session)
    assert ticket.done and ticket.error is None and w.sends(out) == []
    assert w.held() == {old.local_alias}  # the newer connection keeps it
    # A shutdown made while disconnected sends nothing either, in any later session.
    w.lose()
    ticket, out = w.a.shutdown(second.result.local_alias, w.now)
    assert ticket.done and ticket.error is None and out and w.sends(out) == []


def test_same_id_binds_and_accepts_again() -> None:
    w = World()
    w.join()
    a = w.a.id
    for alias in (f"{a}:1", f"{CLAIMED}:2"):
        ticket = w.call(w.a.bind(alias, w.now))
        assert ticket.error is None
    w.apply(w.a.listen(f"{a}:1")[1])
    w.lose()
    failure, out = w.a.listen(f"{CLAIMED}:2")  # while disconnected: the next session accepts
    assert failure is None and out == []
    w.join()
    assert any(isinstance(e, Reconnected) for e in w.published)
    assert w.held() == {f"{a}:1", f"{CLAIMED}:2"}
    assert w.state(f"{a}:1") is w.state(f"{CLAIMED}:2") is AliasState.ACCEPTING


def test_a_loss_the_server_did_not_see_comes_back_with_the_same_id_and_aliases() -> None:
    # docs/protocol.md, "Stable addresses": the knock asks for the id with the node's
    # token, and replaces the connection the server still holds.
    w = World()
    w.join()
    a = w.a.id
    first = next(m for m in w.sends(w.outputs) if isinstance(m, Knock))
    assert first.id is None and first.token is not None and len(first.token) == 32
    w.call(w.a.bind(f"{a}:1", w.now))
    w.apply(w.a.listen(f"{a}:1")[1])
    silent, w.key = w.key, None  # the WebSocket died; the server did not notice
    w.inbox.clear()
    w.apply(w.a.connection_lost("no answer to pings", w.now))
    w.open()
    again = [m for m in w.sends(w.outputs) if isinstance(m, Knock)][-1]
    assert again == Knock(subnet="10.0.0", id=a, token=first.token)
    w.deliver()
    assert w.a.id == a and not any(isinstance(e, IdChanged) for e in w.published)
    assert w.server.take_replaced() == [silent]
    assert w.held() == {f"{a}:1"} and w.state(f"{a}:1") is AliasState.ACCEPTING
    assert w.lost == []


def test_without_stable_ids_the_knock_is_the_originals() -> None:
    session = SignalingSession("10.0.0", request_timeout=TIMEOUT, stable_id=False)
    assert session.connection_made(0.0) == [Send((Knock(subnet="10.0.0"),))]
    session.receive_data(encode(Acknowledged(id="10.0.0.5", rejected=False)), 0.0)
    session.connection_lost("lost", 1.0)
    assert session.connection_made(2.0) == [Send((Knock(subnet="10.0.0"),))]  # no id asked


def test_a_rebind_refused_loses_the_alias() -> None:
    w = World()
    w.join()
    w.call(w.a.bind(f"{CLAIMED}:2", w.now))
    w.lose()
    stolen, out = w.b.bind(f"{CLAIMED}:2", w.now)
    w._b(out)
    assert stolen.error is None
    w.join()
    assert [lost.alias for lost in w.lost] == [f"{CLAIMED}:2"]
    assert "taken" in w.lost[-1].reason and w.a.bound == set()


def test_a_new_id_loses_every_alias() -> None:
    w = World()
    w.join()
    old = w.a.id
    w.call(w.a.bind(f"{old}:1", w.now))
    w.lose()
    w.intrude()
    w.join()
    assert w.a.id != old
    assert any(isinstance(e, IdChanged) for e in w.published)
    assert [lost.alias for lost in w.lost] == [f"{old}:1"] and w.a.bound == set()
    assert w.held() == set()


def test_a_shutdown_or_forget_during_the_rebind_leaves_nothing_behind() -> None:
    for forget in (False, True):
        w = World()
        w.join()
        a = w.a.id
        w.call(w.a.bind(f"{a}:1", w.now))
        w.lose()
        w.open()
        w.deliver(1)  # acknowledged: the rebind is sent, its answer waits
        assert w.inbox
        if forget:
            w.apply(w.a.forget_alias(f"{a}:1"))
        else:
            shut, out = w.a.shutdown(f"{a}:1", w.now)
            w.apply(out)
        w.deliver()
        assert w.held() == set() and w.a.bound == set()
        if not forget:
            assert shut.error is None


def test_a_caller_that_gives_up_is_undone() -> None:
    w = World()
    w.join()
    a = w.a.id
    # Gave up before the answer: cancelled in the protocol, the late success undone.
    connect, out = w.a.connect("10.0.0.1:80", w.now)
    w.apply(out)
    w.apply(w.a.give_up(connect))
    bind, out = w.a.bind(f"{a}:1", w.now)
    w.apply(out)
    w.now += TIMEOUT
    w.apply(w.a.expire(w.now))
    assert bind.error is not None and bind.error.kind is FailureKind.TIMEOUT
    w.deliver()
    assert w.held() == set() and connect not in w.settled
    # Gave up after the answer came but before taking it: undone at once.
    bind = w.call(w.a.bind(f"{a}:2", w.now))
    assert bind.done and w.a.bound == {f"{a}:2"}
    w.apply(w.a.give_up(bind))
    w.deliver()
    assert w.held() == set() and w.a.bound == set()


def test_close_fails_everything_and_stops() -> None:
    w = World()
    w.join()
    w.call(w.a.bind(f"{w.a.id}:1", w.now))
    sent, out = w.a.connect("10.0.0.1:80", w.now)
    w.apply(out)
    out = w.apply(w.a.close("bye"))
    assert sent.error is not None and sent.error.kind is FailureKind.SIGNALING
    assert [lost.alias for lost in w.lost] == [f"{w.a.id}:1"]
    assert w.lose() == []  # no Disconnected, no Retry
    after, _ = w.a.bind("10.0.0.2:3", w.now)
    assert after.error is not None and after.error.kind is FailureKind.SIGNALING
    assert w.a.listen("10.0.0.2:3")[0] is not None


def test_the_first_join_failing_or_no_reconnect_stops() -> None:
    w = World()
    w.open()
    out = w.lose("refused")
    assert out[-1] == Stop("refused") and w.a.closed
    w = World(reconnect=False)
    w.join()
    out = w.lose("gone")
    assert out[-1] == Stop("gone") and w.a.closed


def test_reconnection_backoff_grows_and_resets_on_join() -> None:
    w = World(seed=7)
    w.join()
    delays = []
    w.lose()
    for _ in range(8):
        w.open()  # never acknowledged
        delays.append(next(o.delay for o in w.lose() if isinstance(o, Retry)))
    for failures, delay in enumerate(delays, start=1):
        ceiling = min(BACKOFF[1], BACKOFF[0] * 2**failures)
        assert ceiling / 2 <= delay <= ceiling
    w.join()
    out = w.lose()
    assert next(o.delay for o in out if isinstance(o, Retry)) <= BACKOFF[0]


# --- the stateful test --------------------------------------------------------------------


class SessionMachine(RuleBasedStateMachine):
    """Requests, answers, callers giving up, time and lost WebSockets in any order."""

    @initialize(seed=st.integers(0, 2**32 - 1))
    def start(self, seed: int) -> None:
        self.w = World(seed)
        self.w.join()
        self.waiting: list[Ticket] = []  # callers still waiting
        self.untaken: list[Ticket] = []  # settled, the caller has not looked yet
        self.bound: set[str] = set()  # what the callers were told they hold
        self.connections: dict[str, int] = {}  # connection alias -> session, taken
        self.failures = 0
        self.intruders = 0
        self.b_claims: set[str] = set()
        self.stale_binds: set[int] = set()  # settled binds whose alias was dropped since

    # --- helpers --------------------------------------------------------------------------

    def _apply(self, outputs: list[Output]) -> None:
        before = len(self.w.settled)
        self.w.apply(outputs)
        for ticket in self.w.settled[before:]:
            assert ticket in self.waiting
            self.waiting.remove(ticket)
            self.untaken.append(ticket)
        for output in outputs:
            if isinstance(output, AliasLost):
                event("alias lost: " + output.reason.split(" ", 1)[1][:24])
                self.bound.discard(output.alias)
                self._drop_untaken(output.alias)
            elif isinstance(output, SessionJoined):
                self.failures = 0
            elif isinstance(output, Publish) and isinstance(output.event, Reconnected):
                event(f"reconnected, restoring {min(len(self.w.a.bound), 2)}+ aliases")
            elif isinstance(output, Retry):
                ceiling = min(BACKOFF[1], BACKOFF[0] * 2**self.failures)
                assert ceiling / 2 <= output.delay <= ceiling
                self.failures += 1

    def _drop_untaken(self, alias: str, *, waiting: bool = False) -> None:
        for ticket in (*(self.waiting if waiting else ()), *self.untaken):
            if ticket.kind is RequestKind.BIND and ticket.target == alias:
                self.stale_binds.add(id(ticket))

    def _request(self, ticket: Ticket, outputs: list[Output]) -> None:
        self.waiting.append(ticket)
        self._apply(outputs)
        if ticket.done and ticket in self.waiting:  # settled at once (no Settled output)
            self.waiting.remove(ticket)
            self.untaken.append(ticket)

    def _aliases(self) -> list[str]:
        node = self.w.a.id or "10.0.0.2"
        # Ours, and two that are not (A's connection aliases count up from port 0).
        return sorted({*self.bound, *self.connections, f"{node}:200", f"{CLAIMED}:9"})

    # --- rules ----------------------------------------------------------------------------

    @rule(port=st.integers(1, 3), claimed=st.booleans())
    def bind(self, port: int, claimed: bool) -> None:
        address = CLAIMED if claimed else (self.w.a.id or "10.0.0.2")
        self._request(*self.w.a.bind(f"{address}:{port}", self.w.now))

    @rule(port=st.sampled_from([80, 81]))
    def connect(self, port: int) -> None:
        self._request(*self.w.a.connect(f"10.0.0.1:{port}", self.w.now))

    @rule(data=st.data(), with_session=st.booleans())
    def shutdown(self, data: st.DataObject, with_session: bool) -> None:
        alias = data.draw(st.sampled_from(self._aliases()))
        session = self.connections.get(alias) if with_session else None
        self.bound.discard(alias)
        self.connections.pop(alias, None)
        self._drop_untaken(alias, waiting=True)
        self._request(*self.w.a.shutdown(alias, self.w.now, session=session))

    @rule(data=st.data())
    def listen(self, data: st.DataObject) -> None:
        alias = data.draw(st.sampled_from(self._aliases()))
        failure, outputs = self.w.a.listen(alias)
        assert (failure is None) == (alias in self.w.a.bound)
        self._apply(outputs)

    @precondition(lambda self: self.w.inbox)
    @rule(count=st.integers(1, 4))
    def deliver(self, count: int) -> None:
        before = self.w.a.session
        while self.w.inbox and count > 0:
            count -= 1
            message = self.w.inbox.popleft()
            self._apply(self.w.a.receive_data(encode(message), self.w.now))
        assert self.w.a.session == before

    @rule(take=st.booleans())
    def everything_settles(self, take: bool) -> None:
        """Deliver every frame; every caller takes its result (or every one gives up)."""
        if self.w.key is None:
            self.reconnect()
        self.deliver(1 << 30)
        while self.untaken:
            self._return(self.untaken[0], take)

    @precondition(lambda self: self.untaken)
    @rule(data=st.data(), take=st.booleans())
    def caller_returns(self, data: st.DataObject, take: bool) -> None:
        self._return(data.draw(st.sampled_from(self.untaken)), take)

    def _return(self, ticket: Ticket, take: bool) -> None:
        self.untaken.remove(ticket)
        if not take:  # cancelled between the wake-up and the return
            self._apply(self.w.a.give_up(ticket))
            return
        if ticket.error is not None:
            return
        if ticket.kind is RequestKind.BIND:
            if id(ticket) not in self.stale_binds:
                self.bound.add(ticket.target)
        elif ticket.result is not None and ticket.result.session == self.w.a.session:
            self.connections[ticket.result.local_alias] = ticket.result.session

    @precondition(lambda self: self.waiting)
    @rule(data=st.data())
    def caller_cancelled(self, data: st.DataObject) -> None:
        ticket = data.draw(st.sampled_from(self.waiting))
        self.waiting.remove(ticket)
        self._apply(self.w.a.give_up(ticket))
        assert ticket not in self.w.settled

    @rule(seconds=st.sampled_from([0.5, 4.0, TIMEOUT]))
    def time_passes(self, seconds: float) -> None:
        self.w.now += seconds
        self._apply(self.w.a.expire(self.w.now))
        assert all(t.deadline > self.w.now for t in self.waiting)
        assert self.w.a.next_deadline() > self.w.now

    @precondition(lambda self: self.w.key is not None)
    @rule()
    def lose_the_websocket(self) -> None:
        session = self.w.a.session
        for ticket in self.waiting:
            assert ticket.session in (None, session)
        self._apply(self.w.lose(apply=False))
        assert self.w.a.session == session + 1
        self.connections.clear()  # they died with the session
        for ticket in self.waiting:
            assert ticket.request is None  # every sent request failed

    @precondition(lambda self: self.w.key is None and self.w.stale)
    @rule()
    def a_late_frame_of_a_dead_websocket(self) -> None:
        assert self.w.a.receive_data(encode(self.w.stale.popleft()), self.w.now) == []

    @precondition(lambda self: self.w.key is None)
    @rule()
    def reconnect(self) -> None:
        self.w.open()

    @precondition(lambda self: self.w.key is None and self.intruders == 0)
    @rule()
    def another_node_takes_our_id(self) -> None:
        self.intruders += 1
        self.w.intrude()

    @precondition(lambda self: self.intruders == 1)
    @rule()
    def the_other_node_leaves(self) -> None:
        self.intruders = 0
        self.w._route(self.w.server.client_disconnected("intruder"))

    @precondition(lambda self: self.w.key is None)
    @rule(port=st.integers(1, 3), ours=st.booleans())
    def b_takes_a_claimed_alias(self, port: int, ours: bool) -> None:
        alias = f"{CLAIMED}:{port}"
        if ours:  # one that A held when it went away
            alias = min((a for a in self.w.a.bound if a.startswith(CLAIMED)), default=alias)
        ticket, outputs = self.w.b.bind(alias, self.w.now)
        self.w._b(outputs)
        if ticket.error is None:
            self.b_claims.add(alias)

    @precondition(lambda self: self.b_claims)
    @rule()
    def b_releases_its_claims(self) -> None:
        for alias in sorted(self.b_claims):
            self.w._b(self.w.b.shutdown(alias, self.w.now)[1])
        self.b_claims.clear()

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def the_core_holds_what_the_callers_were_told(self) -> None:
        pending_binds = {t.target for t in (*self.waiting, *self.untaken)}
        assert self.bound <= self.w.a.bound | pending_binds
        assert self.w.a.accepting <= self.w.a.bound

    @invariant()
    def quiet_means_the_server_agrees(self) -> None:
        w = self.w
        if w.inbox or self.waiting or self.untaken or not w.a.connected:
            return
        event(f"quiet, holding {min(len(self.bound | set(self.connections)), 2)}+ aliases")
        assert w.held() == self.bound | set(self.connections), "a leaked or missing alias"
        assert w.a.bound == self.bound
        for alias in w.a.accepting:
            assert w.state(alias) is AliasState.ACCEPTING


SessionMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
test_session_machine = SessionMachine.TestCase


def test_no_deadline_for_a_ticket_is_infinite() -> None:
    w = World()
    w.join()
    assert w.a.next_deadline() == math.inf
    ticket, _out = w.a.bind(f"{w.a.id}:1", w.now)
    assert ticket.deadline == w.now + TIMEOUT
