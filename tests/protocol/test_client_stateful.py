"""Several sans-IO clients against the real sans-IO server, driven by Hypothesis.

Everything runs in memory: a client's messages reach the server at once, and
the server's messages wait in one inbox per client until a rule delivers
them, so answers interleave with new requests, cancellations and dropped
connections in every order Hypothesis can find. The checks:

- every request ends exactly once (an answer, or ``RequestFailed``), unless
  it was cancelled; no request is answered twice; a cancelled request yields
  no answer event, at most one ``CancelledRequestSucceeded``;
- once a client has read everything the server sent it, it has no request
  in flight, and its own aliases are exactly what the server says it holds
  and what the answers it was given add up to (late successes of cancelled
  requests were undone, not leaked);
- once every inbox is empty, every alias a client knows of is held on the
  server by the owner the client names, and every peer it knows is a member.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from unisockets.protocol import Message
from unisockets.protocol.client import SignalingClientProtocol
from unisockets.protocol.client_states import JoinState
from unisockets.protocol.events import (
    AliasAdded,
    AliasRemoved,
    BindRejected,
    BindSucceeded,
    CancelledRequestSucceeded,
    ConnectRefused,
    ConnectSucceeded,
    Event,
    IncomingConnection,
    Request,
    RequestFailed,
    ShutdownRejected,
    ShutdownSucceeded,
)
from unisockets.protocol.server import SignalingServerProtocol

SUBNET = "10.0.0"
#: Room for three members, so that a fourth client's knock is rejected.
SUFFIXES = range(1, 4)
MAX_CLIENTS = 4
PORTS = st.integers(0, 2)

ANSWERS = (
    BindSucceeded,
    BindRejected,
    ConnectSucceeded,
    ConnectRefused,
    ShutdownSucceeded,
    ShutdownRejected,
    RequestFailed,
)


@dataclass
class Slot:
    """One client and what the test knows about it."""

    client: SignalingClientProtocol
    key: int
    inbox: deque[Message] = field(default_factory=deque)
    requests: list[Request] = field(default_factory=list)
    cancelled: set[Request] = field(default_factory=set)
    answers: Counter[Request] = field(default_factory=Counter)
    late: Counter[Request] = field(default_factory=Counter)
    #: The aliases this client should hold, from the answers it was given.
    own: set[str] = field(default_factory=set)


class ClientsAndServer(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.server: SignalingServerProtocol[int] = SignalingServerProtocol(suffixes=SUFFIXES)
        self.keys = itertools.count()
        self.slots: list[Slot] = []
        self.by_key: dict[int, Slot] = {}

    # --- plumbing -------------------------------------------------------------------------

    def open_session(self, slot: Slot) -> None:
        slot.key = next(self.keys)
        self.by_key[slot.key] = slot
        self.server.client_connected(slot.key)
        self.send(slot, [slot.client.knock()])

    def send(self, slot: Slot, messages: list[Message]) -> None:
        for message in messages:
            for key, outgoing in self.server.receive(slot.key, message):
                self.by_key[key].inbox.append(outgoing)

    def record(self, slot: Slot, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, ANSWERS):
                request = event.request
                assert request in slot.requests, f"an answer to a request never made: {event}"
                assert request not in slot.cancelled, f"a cancelled request answered: {event}"
                slot.answers[request] += 1
                assert slot.answers[request] == 1, f"answered twice: {event}"
                if isinstance(event, BindSucceeded):
                    slot.own.add(event.alias)
                elif isinstance(event, ConnectSucceeded):
                    slot.own.add(event.local_alias)
                elif isinstance(event, ShutdownSucceeded | ShutdownRejected):
                    slot.own.discard(event.alias)
            elif isinstance(event, AliasAdded | AliasRemoved) and event.owner_id == slot.client.id:
                # Only a cancelled shutdown that took effect says this about our own aliases.
                assert isinstance(event, AliasRemoved)
                slot.own.discard(event.alias)
            elif isinstance(event, CancelledRequestSucceeded):
                assert event.request in slot.cancelled
                slot.late[event.request] += 1
                assert slot.late[event.request] == 1
                self.send(slot, [event.undo])
            elif (
                isinstance(event, IncomingConnection)
                and event.bound_alias in slot.client.bound_aliases
            ):
                self.send(slot, slot.client.accept(event.bound_alias))  # keep accepting

    def joined(self) -> list[Slot]:
        return [s for s in self.slots if s.client.join_state is JoinState.JOINED]

    # --- rules ----------------------------------------------------------------------------

    @initialize()
    def first_client(self) -> None:
        self.add_client()

    @precondition(lambda self: len(self.slots) < MAX_CLIENTS)
    @rule()
    def add_client(self) -> None:
        slot = Slot(SignalingClientProtocol(subnet=SUBNET), key=-1)
        self.slots.append(slot)
        self.open_session(slot)

    @precondition(lambda self: any(s.inbox for s in self.slots))
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        slot = data.draw(st.sampled_from([s for s in self.slots if s.inbox]))
        self.record(slot, slot.client.receive(slot.inbox.popleft()))

    @precondition(lambda self: any(s.inbox for s in self.slots))
    @rule()
    def deliver_everything(self) -> None:
        while any(s.inbox for s in self.slots):
            for slot in self.slots:
                if slot.inbox:
                    self.record(slot, slot.client.receive(slot.inbox.popleft()))

    @precondition(lambda self: self.joined())
    @rule(data=st.data(), port=PORTS)
    def bind(self, data: st.DataObject, port: int) -> None:
        slot = data.draw(st.sampled_from(self.joined()))
        request, messages = slot.client.bind(f"{slot.client.id}:{port}")
        slot.requests.append(request)
        self.send(slot, messages)

    @precondition(lambda self: any(s.client.bound_aliases for s in self.joined()))
    @rule(data=st.data())
    def accept(self, data: st.DataObject) -> None:
        slot = data.draw(st.sampled_from([s for s in self.joined() if s.client.bound_aliases]))
        alias = data.draw(st.sampled_from(sorted(slot.client.bound_aliases)))
        self.send(slot, slot.client.accept(alias))

    @precondition(lambda self: self.joined())
    @rule(data=st.data(), port=PORTS)
    def connect(self, data: st.DataObject, port: int) -> None:
        slot = data.draw(st.sampled_from(self.joined()))
        held = sorted(self.server.aliases)
        members = sorted(self.server.members.values())
        targets = held + [f"{member}:{port}" for member in members]
        target = data.draw(st.sampled_from(targets))
        request, messages = slot.client.connect(target)
        slot.requests.append(request)
        self.send(slot, messages)

    @precondition(lambda self: self.joined())
    @rule(data=st.data(), port=PORTS)
    def shutdown(self, data: st.DataObject, port: int) -> None:
        slot = data.draw(st.sampled_from(self.joined()))
        own = sorted(slot.client.bound_aliases | slot.client.connection_aliases)
        alias = data.draw(st.sampled_from([*own, f"{slot.client.id}:{port}"]))
        request, messages = slot.client.shutdown(alias)
        slot.requests.append(request)
        self.send(slot, messages)

    @precondition(lambda self: any(s.client.pending_requests for s in self.slots))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        slot = data.draw(st.sampled_from([s for s in self.slots if s.client.pending_requests]))
        request = data.draw(st.sampled_from(slot.client.pending_requests))
        slot.cancelled.add(request)
        self.send(slot, slot.client.cancel(request))

    @rule(data=st.data())
    def reconnect(self, data: st.DataObject) -> None:
        """The WebSocket drops (messages in flight are lost); the client knocks again."""
        slot = data.draw(st.sampled_from(self.slots))
        failed = {r for r in slot.client.pending_requests}
        for key, outgoing in self.server.client_disconnected(slot.key):
            self.by_key[key].inbox.append(outgoing)
        del self.by_key[slot.key]
        slot.inbox.clear()
        events = slot.client.connection_lost()
        slot.own.clear()
        assert {e.request for e in events if isinstance(e, RequestFailed)} == failed
        self.record(slot, events)
        self.open_session(slot)

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def a_client_that_read_everything_agrees_with_the_server(self) -> None:
        held = self.server.aliases
        for slot in self.slots:
            if slot.inbox:
                continue
            client = slot.client
            assert client.pending_requests == ()
            unanswered = [
                r for r in slot.requests if r not in slot.cancelled and slot.answers[r] != 1
            ]
            assert unanswered == []
            if client.join_state is not JoinState.JOINED:
                assert client.join_state is JoinState.REJECTED
                assert self.server.member_id(slot.key) is None
                continue
            assert self.server.member_id(slot.key) == client.id
            on_server = {alias for alias, info in held.items() if info.owner == client.id}
            assert client.bound_aliases | client.connection_aliases == on_server == slot.own
            assert client.bound_aliases.isdisjoint(client.connection_aliases)

    @invariant()
    def when_everything_is_delivered_every_view_is_current(self) -> None:
        if any(s.inbox for s in self.slots):
            return
        held = self.server.aliases
        members = set(self.server.members.values())
        for slot in self.joined():
            for alias, owner in slot.client.aliases.items():
                assert alias in held and held[alias].owner == owner, (alias, owner)
            assert slot.client.peers <= members - {slot.client.id}


ClientsAndServer.TestCase.settings = settings(
    max_examples=300, stateful_step_count=40, deadline=None
)
test_clients_and_server = ClientsAndServer.TestCase
