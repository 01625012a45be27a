"""SignalingServerProtocol against a naive model, driven by Hypothesis.

Many clients connect, knock (into two small subnets that fill up; asking
for an id or not, with a rejoin token or not, so that some knocks replace a
member and some wait for the end of the rejoin grace), bind (their own
address, a free id of the subnet, ``127.0.0.1``, another member's address),
accept, connect, shut down, relay, spoof, send garbage, leave and let time
pass in random order. After every step the server's state equals the model's; every call's
output equals the model's expectation exactly (recipients, messages, order);
every violation raises RemoteProtocolError and changes nothing.

The model is written for obviousness, not speed: lists and scans where the
server uses indexes.
"""

from __future__ import annotations

from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from unisockets.protocol.errors import RemoteProtocolError
from unisockets.protocol.messages import (
    REJECTED_ID,
    Accept,
    Accepting,
    Acknowledged,
    Alias,
    Answer,
    Bind,
    Candidate,
    Connect,
    Goodbye,
    Greeting,
    Knock,
    Message,
    Offer,
    Shutdown,
)
from unisockets.protocol.server import AliasInfo, SignalingServerProtocol
from unisockets.protocol.server_states import AliasState, ClientState
from unisockets.protocol.wire import encode

SUFFIXES = range(1, 4)
SUBNETS = ("10.0.0", "10.0.1")
#: The rejoin grace of the server under test, seconds (it starts at time 0).
GRACE = 5.0
TOKENS = st.sampled_from([None, "a", "b"])
PORTS = st.integers(0, 3)
CID = "6f1c1a44-93ae-4b8e-9f0e-3f4e6b9b2c77"

Out = list[tuple[int, Message]]


class ServerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.server: SignalingServerProtocol[int] = SignalingServerProtocol(
            suffixes=SUFFIXES, rejoin_grace=GRACE, now=0.0
        )
        self.next_key = 0
        #: model: the time, whether the grace after the start is on, the knocks waiting for
        #: its end (key -> (subnet, asked id, token)), the rejoin token of each member, and
        #: the ids kept for members that left: id -> (token, until)
        self.now = 0.0
        self.holding = True
        self.waiting: dict[int, tuple[str, str | None, str | None, bool]] = {}
        self.tokens: dict[str, str | None] = {}
        #: model: whether each member knocked with lazyLinks
        self.lazy: dict[str, bool] = {}
        self.kept: dict[str, tuple[str, float]] = {}
        #: model: keys of connections replaced by a newer one of their node, not closed yet
        self.replaced: list[int] = []
        #: model: key -> id (None before joining), in connection order
        self.clients: dict[int, str | None] = {}
        #: model: subnet -> member ids in join order
        self.order: dict[str, list[str]] = {subnet: [] for subnet in SUBNETS}
        #: model: id -> {port: state}, ports in the order they were taken
        self.ports: dict[str, dict[int, AliasState]] = {}
        #: model: subnet -> {alias: (holder id, state)} on claimed addresses, in the order taken
        self.claims: dict[str, dict[str, tuple[str, AliasState]]] = {}

    # -- model helpers ---------------------------------------------------------

    def key_of(self, member_id: str) -> int:
        return next(key for key, value in self.clients.items() if value == member_id)

    def subnet_of(self, member_id: str) -> str:
        return member_id.rsplit(".", 1)[0]

    def others(self, member_id: str) -> list[str]:
        return [m for m in self.order[self.subnet_of(member_id)] if m != member_id]

    def members(self) -> list[str]:
        return [m for m in self.clients.values() if m is not None]

    def pick_member(self, data: st.DataObject) -> tuple[int, str]:
        key = data.draw(st.sampled_from([k for k, v in self.clients.items() if v is not None]))
        member_id = self.clients[key]
        assert member_id is not None
        return key, member_id

    def claims_of(self, member_id: str) -> dict[str, AliasState]:
        held = self.claims.get(self.subnet_of(member_id), {})
        return {alias: state for alias, (holder, state) in held.items() if holder == member_id}

    def claimed_addresses(self, subnet: str) -> set[str]:
        return {alias.rsplit(":", 1)[0] for alias in self.claims.get(subnet, {})}

    def own_port(self, data: st.DataObject, me: str, port: int) -> int:
        """Mostly a port ``me`` holds (if any), else ``port``."""
        if len(self.ports[me]) > 0 and data.draw(st.booleans()):
            return data.draw(st.sampled_from(sorted(self.ports[me])))
        return port

    def snapshot(self) -> tuple[Any, ...]:
        s = self.server
        return (
            list(s.clients.items()),
            list(s.members.items()),
            list(s.aliases.items()),
            [(subnet, list(held.items())) for subnet, held in s.claimed_aliases.items()],
            list(s.subnets.items()),
        )

    def expect(self, out: Out, expected: Out) -> None:
        assert out == expected
        for _, message in out:
            encode(message)  # every message we send is encodable

    def violation(self, key: int, message: Message) -> None:
        before = self.snapshot()
        try:
            self.server.receive(key, message)
        except RemoteProtocolError:
            pass
        else:
            raise AssertionError(f"{message!r} from {key} was accepted")
        assert self.snapshot() == before

    def has_members(self) -> bool:
        return any(v is not None for v in self.clients.values())

    def has_unjoined(self) -> bool:
        return any(v is None and k not in self.waiting for k, v in self.clients.items())

    def unjoined(self) -> list[int]:
        return [k for k, v in self.clients.items() if v is None and k not in self.waiting]

    # -- rules -------------------------------------------------------------------

    @initialize(data=st.data())
    def start_with_members(self, data: st.DataObject) -> None:
        """Three members and one unjoined client, so that every rule is enabled at once."""
        for _ in range(4):
            self.open()
        for key, subnet in ((0, SUBNETS[0]), (1, SUBNETS[0]), (2, SUBNETS[1])):
            self._knock(key, subnet, f"{subnet}.{key + 1}", "a")

    @precondition(lambda self: len(self.clients) < 10)
    @rule()
    def open(self) -> None:
        key = self.next_key
        self.next_key += 1
        assert self.server.client_connected(key) == []
        self.clients[key] = None

    @precondition(lambda self: self.has_unjoined())
    @rule(
        data=st.data(),
        subnet=st.sampled_from(SUBNETS),
        asked=st.none() | st.sampled_from([*SUFFIXES, 9]),
        token=TOKENS,
        lazy=st.sampled_from([None, False, True]),
    )
    def knock(
        self,
        data: st.DataObject,
        subnet: str,
        asked: int | None,
        token: str | None,
        lazy: bool | None,
    ) -> None:
        key = data.draw(st.sampled_from(self.unjoined()))
        asked_id = None
        if asked is not None:
            asked_id = f"{data.draw(st.sampled_from([subnet, *SUBNETS]))}.{asked}"
        self._knock(key, subnet, asked_id, token, lazy)

    def _knock(
        self, key: int, subnet: str, asked: str | None, token: str | None, lazy: bool | None = None
    ) -> None:
        before = list(self.replaced)
        knock = Knock(subnet=subnet, id=asked, token=token, lazy_links=lazy)
        out = self.server.receive(key, knock)
        self.expect(out, self._answer(key, subnet, asked, token, lazy is True))
        assert self.server.take_replaced() == self.replaced[len(before) :]

    def _answer(
        self, key: int, subnet: str, asked: str | None, token: str | None, lazy: bool = False
    ) -> Out:
        """The model's answer to a knock (at once, or at the end of the grace)."""
        expected: Out = []
        claimed = self.claimed_addresses(subnet)
        suffix: int | None = None
        if asked is not None and self.subnet_of(asked) == subnet:
            wanted = int(asked.rsplit(".", 1)[1])
            if asked in self.order[subnet]:
                if token is not None and self.tokens[asked] == token:
                    event("knock replaces a member")
                    expected += self._remove(asked)
                    old = self.key_of(asked)
                    del self.clients[old]
                    self.replaced.append(old)
                    suffix = wanted
            elif (
                wanted in SUFFIXES
                and asked not in claimed
                and (asked not in self.kept or self.kept[asked][0] == token)
            ):
                event("knock gets the id it asks for")
                suffix = wanted
        if suffix is None and self.holding:
            event("knock waits for the end of the grace")
            self.waiting[key] = (subnet, asked, token, lazy)
            return []
        if suffix is None:
            taken = {int(m.rsplit(".", 1)[1]) for m in self.order[subnet]}
            free = [
                s
                for s in SUFFIXES
                if s not in taken
                and f"{subnet}.{s}" not in claimed
                and f"{subnet}.{s}" not in self.kept
            ]
            if not free:
                event("knock rejected: subnet full")
                return [(key, Acknowledged(id=REJECTED_ID, rejected=True))]
            suffix = free[0]
        new = f"{subnet}.{suffix}"
        self.kept.pop(new, None)
        expected.append((key, Acknowledged(id=new, rejected=False)))
        expected += [
            (self.key_of(m), Greeting(offerer_id=m, answerer_id=new))
            for m in self.order[subnet]
            if not (lazy and self.lazy[m])  # two lazy nodes link up on demand
        ]
        if lazy and any(self.lazy[m] for m in self.order[subnet]):
            event("a join between lazy nodes greets nobody")
        self.clients[key] = new
        self.order[subnet].append(new)
        self.ports[new] = {}
        self.tokens[new] = token
        self.lazy[new] = lazy
        return expected

    def _remove(self, member: str) -> Out:
        """Take ``member`` out of the model; the alias removals its peers are told of."""
        self.order[self.subnet_of(member)].remove(member)
        remaining = [self.key_of(m) for m in self.order[self.subnet_of(member)]]
        expected: Out = []
        for port in self.ports.pop(member):
            removed = Alias(id=member, alias=f"{member}:{port}", set=False)
            expected += [(k, removed) for k in remaining]
        for alias in self.claims_of(member):
            del self.claims[self.subnet_of(member)][alias]
            expected += [(k, Alias(id=member, alias=alias, set=False)) for k in remaining]
        del self.tokens[member]
        del self.lazy[member]
        return expected

    @precondition(lambda self: bool(self.replaced))
    @rule(data=st.data())
    def close_replaced(self, data: st.DataObject) -> None:
        """A replaced connection closes: the server forgot it, nobody is told."""
        key = data.draw(st.sampled_from(self.replaced))
        self.replaced.remove(key)
        self.expect(self.server.client_disconnected(key, now=self.now), [])

    @rule(dt=st.sampled_from([0.0, 0.5, 2.0, 4.0, 6.0]))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        out = self.server.expire(self.now)
        for node_id, (_token, until) in list(self.kept.items()):
            if until <= self.now:
                del self.kept[node_id]
        expected: Out = []
        if self.holding and self.now >= GRACE:
            self.holding = False
            waiting, self.waiting = self.waiting, {}
            for key, (subnet, asked, token, lazy) in waiting.items():
                event("a waiting knock is answered")
                expected += self._answer(key, subnet, asked, token, lazy)
        self.expect(out, expected)
        assert self.server.holding is self.holding
        assert self.server.kept_ids == {i: until for i, (_t, until) in self.kept.items()}

    @precondition(lambda self: bool(self.clients))
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.clients)))
        member = self.clients.pop(key)
        out = self.server.client_disconnected(key, now=self.now)
        self.waiting.pop(key, None)
        if member is None:
            self.expect(out, [])
            return
        event(f"leave with {len(self.ports[member])} aliases")
        token = self.tokens[member]
        if token is not None:
            event("leave keeps the id")
            self.kept[member] = (token, self.now + GRACE)
        remaining = [self.key_of(m) for m in self.others(member)]
        expected: Out = [(k, Goodbye(id=member)) for k in remaining]
        expected += self._remove(member)
        self.expect(out, expected)
        assert not any(info.owner == member for info in self.server.aliases.values())
        assert self.server.client_state(key) is ClientState.CLOSED

    @precondition(lambda self: self.has_members())
    @rule(data=st.data(), port=PORTS)
    def bind(self, data: st.DataObject, port: int) -> None:
        key, me = self.pick_member(data)
        self._bind(key, me, port)

    def _bind(self, key: int, me: str, port: int) -> None:
        alias = f"{me}:{port}"
        out = self.server.receive(key, Bind(id=me, alias=alias))
        if port in self.ports[me]:
            event(f"bind refused: port {self.ports[me][port].value}")
            self.expect(out, [(key, Alias(id=me, alias=alias, set=False))])
            return
        event("bind")
        self.ports[me][port] = AliasState.BOUND
        told = [self.key_of(m) for m in self.order[self.subnet_of(me)]]
        self.expect(out, [(k, Alias(id=me, alias=alias, set=True)) for k in told])

    @precondition(lambda self: self.has_members())
    @rule(data=st.data(), port=PORTS)
    def accepting(self, data: st.DataObject, port: int) -> None:
        key, me = self.pick_member(data)
        self._accepting(key, me, self.own_port(data, me, port))

    def _accepting(self, key: int, me: str, port: int) -> None:
        out = self.server.receive(key, Accepting(id=me, alias=f"{me}:{port}"))
        self.expect(out, [])
        if self.ports[me].get(port) in (AliasState.BOUND, AliasState.ACCEPTING):
            event("accepting on a bound alias")
            self.ports[me][port] = AliasState.ACCEPTING

    @precondition(lambda self: self.has_members())
    @rule(data=st.data(), port=PORTS)
    def listen(self, data: st.DataObject, port: int) -> None:
        """bind then accepting, as a node's listen() does."""
        key, me = self.pick_member(data)
        self._bind(key, me, port)
        self._accepting(key, me, port)

    @precondition(lambda self: self.has_members())
    @rule(
        data=st.data(),
        port=PORTS,
        address=st.sampled_from(["127.0.0.1", "10.0.0.1", "10.0.0.3", "10.0.1.2", "10.0.0.9"]),
    )
    def bind_any_address(self, data: st.DataObject, port: int, address: str) -> None:
        """A bind of an address that need not be the binder's id (the original's C server)."""
        key, me = self.pick_member(data)
        if address == me:
            self._bind(key, me, port)
            return
        subnet = self.subnet_of(me)
        alias = f"{address}:{port}"
        out = self.server.receive(key, Bind(id=me, alias=alias))
        if address in self.order[subnet]:
            event("bind refused: another member's address")
            # ours says why (isMemberAddress), so that a lazy binder reports EADDRNOTAVAIL
            refusal = Alias(id=me, alias=alias, set=False, is_member_address=True)
            self.expect(out, [(key, refusal)])
            return
        if alias in self.claims.get(subnet, {}):
            event("bind refused: claimed alias held")
            self.expect(out, [(key, Alias(id=me, alias=alias, set=False))])
            return
        event("bind of a claimed address")
        self.claims.setdefault(subnet, {})[alias] = (me, AliasState.BOUND)
        told = [self.key_of(m) for m in self.order[subnet]]
        self.expect(out, [(k, Alias(id=me, alias=alias, set=True)) for k in told])

    @precondition(lambda self: any(self.claims.values()))
    @rule(data=st.data(), kind=st.sampled_from(["accepting", "shutdown"]))
    def use_a_claim(self, data: st.DataObject, kind: str) -> None:
        """accepting/shutdown of a held claimed alias, by its holder or by another member."""
        subnet = data.draw(st.sampled_from(sorted(s for s, held in self.claims.items() if held)))
        alias = data.draw(st.sampled_from(sorted(self.claims[subnet])))
        holder, state = self.claims[subnet][alias]
        me = data.draw(st.sampled_from([holder, *self.order[subnet]]))
        key = self.key_of(me)
        if kind == "accepting":
            self.expect(self.server.receive(key, Accepting(id=me, alias=alias)), [])
            if me == holder:
                event("accepting on a claimed alias")
                self.claims[subnet][alias] = (holder, AliasState.ACCEPTING)
            return
        out = self.server.receive(key, Shutdown(id=me, alias=alias))
        if me != holder:
            event("shutdown of another's claimed alias refused")
            self.expect(out, [(key, Alias(id=me, alias=alias, set=True))])
            return
        event(f"shutdown of a {state.value} claimed alias")
        del self.claims[subnet][alias]
        told = [self.key_of(m) for m in self.order[subnet]]
        self.expect(out, [(k, Alias(id=me, alias=alias, set=False)) for k in told])

    @precondition(lambda self: self.has_members())
    @rule(data=st.data(), port=PORTS, suffix=st.sampled_from([*SUFFIXES, 9]))
    def connect(self, data: st.DataObject, port: int, suffix: int) -> None:
        key, me = self.pick_member(data)
        remote_id = f"{data.draw(st.sampled_from(SUBNETS))}.{suffix}"
        held = [(m, p) for m, ports in self.ports.items() for p in ports]
        subnet = self.subnet_of(me)
        claims = self.claims.get(subnet, {})
        held += [(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1])) for a in claims]
        listening = [
            (m, p)
            for m in self.order[subnet]
            for p, state in self.ports[m].items()
            if state is AliasState.ACCEPTING
        ]
        listening += [
            (a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1]))
            for a, (_, state) in claims.items()
            if state is AliasState.ACCEPTING
        ]
        aim = data.draw(st.sampled_from(["anywhere", "held", "listening"]))
        if aim == "held" and held:
            remote_id, port = data.draw(st.sampled_from(held))
        elif aim == "listening" and listening:
            remote_id, port = data.draw(st.sampled_from(listening))
        remote = f"{remote_id}:{port}"
        out = self.server.receive(
            key, Connect(id=me, client_connection_id=CID, remote_alias=remote)
        )
        local_port = next(p for p in range(65536) if p not in self.ports[me])
        local = f"{me}:{local_port}"
        same_subnet = remote_id in self.order[subnet]
        remote_state = self.ports[remote_id].get(port) if same_subnet else None
        owner = remote_id
        if not same_subnet and remote in claims:
            owner, remote_state = claims[remote]
            event("connect to a claimed alias")
        event(f"connect to an alias {remote_state.value if remote_state else 'not held'}")
        if remote_state is not AliasState.ACCEPTING:  # succeeds iff it exists and accepts
            refused = Alias(id=me, alias=local, set=False, client_connection_id=CID)
            self.expect(out, [(key, refused)])
            return
        self.ports[me][local_port] = AliasState.CONNECTION
        listener = self.key_of(owner)
        self.expect(
            out,
            [
                (
                    key,
                    Alias(
                        id=me,
                        alias=local,
                        set=True,
                        client_connection_id=CID,
                        is_connection_alias=True,
                    ),
                ),
                (listener, Alias(id=me, alias=local, set=True)),
                (listener, Accept(bound_alias=remote, client_alias=local)),
                (key, Alias(id=owner, alias=remote, set=True, client_connection_id=CID)),
            ],
        )

    @precondition(lambda self: self.has_members())
    @rule(data=st.data(), port=PORTS)
    def shutdown(self, data: st.DataObject, port: int) -> None:
        key, me = self.pick_member(data)
        port = self.own_port(data, me, port)
        alias = f"{me}:{port}"
        out = self.server.receive(key, Shutdown(id=me, alias=alias))
        if port not in self.ports[me]:
            self.expect(out, [(key, Alias(id=me, alias=alias, set=True))])
            return
        event(f"shutdown of a {self.ports[me][port].value} alias")
        del self.ports[me][port]
        told = [self.key_of(m) for m in self.order[self.subnet_of(me)]]
        self.expect(out, [(k, Alias(id=me, alias=alias, set=False)) for k in told])

    @precondition(lambda self: self.has_members())
    @rule(
        data=st.data(),
        opcode=st.sampled_from(["offer", "answer", "candidate"]),
        suffix=st.sampled_from([*SUFFIXES, 9]),
        spoof=st.booleans(),
    )
    def relay(self, data: st.DataObject, opcode: str, suffix: int, spoof: bool) -> None:
        key, me = self.pick_member(data)
        peer = f"{data.draw(st.sampled_from(SUBNETS))}.{suffix}"
        if data.draw(st.booleans()):  # mostly aim at a live member
            peer = data.draw(st.sampled_from(self.members()))
        sender = f"{self.subnet_of(me)}.{9 if spoof else me.rsplit('.', 1)[1]}"
        message: Message
        if opcode == "offer":
            message = Offer(offerer_id=sender, answerer_id=peer, offer="v=0\r\n")
        elif opcode == "answer":
            message = Answer(offerer_id=peer, answerer_id=sender, answer="v=0\r\n")
        else:
            message = Candidate(offerer_id=sender, answerer_id=peer, candidate="{}")
        if spoof or peer == me:
            self.violation(key, message)
            return
        if peer not in self.others(me):
            event("relay dropped (no such member)")
            dropped = self.server.dropped_relays
            self.expect(self.server.receive(key, message), [])
            assert self.server.dropped_relays == dropped + 1
            return
        event("relay delivered")
        # relayed unchanged, to the named member only
        self.expect(self.server.receive(key, message), [(self.key_of(peer), message)])

    @precondition(lambda self: self.has_members())
    @rule(
        data=st.data(),
        kind=st.sampled_from(["bind", "accepting", "shutdown", "connect"]),
        port=PORTS,
        other=st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.1.1", "10.0.1.3"]),
        spoof_id=st.booleans(),
    )
    def spoof(self, data: st.DataObject, kind: str, port: int, other: str, spoof_id: bool) -> None:
        key, me = self.pick_member(data)
        if other == me:
            return
        if not spoof_id and (kind == "bind" or other not in self.order[self.subnet_of(me)]):
            return  # no spoofing: an address other than one's own (bind_any_address)
        claimed = other if spoof_id else me
        address = me if spoof_id else other
        message: Message
        if kind == "connect":
            message = Connect(id=other, client_connection_id=CID, remote_alias=f"{me}:{port}")
        elif kind == "bind":
            message = Bind(id=claimed, alias=f"{address}:{port}")
        elif kind == "accepting":
            message = Accepting(id=claimed, alias=f"{address}:{port}")
        else:
            message = Shutdown(id=claimed, alias=f"{address}:{port}")
        self.violation(key, message)

    @precondition(lambda self: bool(self.clients))
    @rule(
        data=st.data(),
        garbage=st.text(max_size=40)
        | st.binary(max_size=40)
        | st.sampled_from(
            [
                encode(Goodbye(id="10.0.0.1")),
                encode(Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2")),
                encode(Acknowledged(id="10.0.0.1", rejected=False)),
                encode(Alias(id="10.0.0.1", alias="10.0.0.1:1", set=True)),
                encode(Accept(bound_alias="10.0.0.1:1", client_alias="10.0.0.2:0")),
                '{"data":{"subnet":"10.0.0.0"},"opcode":"knock"}',
                '{"data":{"id":"10.0.0.1"},"opcode":"bind"}',
            ]
        ),
    )
    def garbage(self, data: st.DataObject, garbage: str | bytes) -> None:
        key = data.draw(st.sampled_from(sorted(self.clients)))
        before = self.snapshot()
        try:
            out = self.server.receive_data(key, garbage)
        except RemoteProtocolError:
            assert self.snapshot() == before
        else:  # pragma: no cover - random text is almost never a valid frame
            raise AssertionError(f"garbage {garbage!r} was accepted: {out}")

    @precondition(lambda self: self.has_members() and any(v is None for v in self.clients.values()))
    @rule(data=st.data(), port=PORTS)
    def before_knock(self, data: st.DataObject, port: int) -> None:
        """Anything but a knock before joining (also while a knock waits) is a violation."""
        key = data.draw(st.sampled_from([k for k, v in self.clients.items() if v is None]))
        _, member = self.pick_member(data)
        choices: list[Message] = [
            Bind(id=member, alias=f"{member}:{port}"),
            Connect(id=member, client_connection_id=CID, remote_alias=f"{member}:{port}"),
            Offer(offerer_id=member, answerer_id=member, offer="v=0"),
        ]
        if key in self.waiting:
            choices.append(Knock(subnet=SUBNETS[0]))
        message = data.draw(st.sampled_from(choices))
        self.violation(key, message)

    @precondition(lambda self: self.has_members())
    @rule(data=st.data())
    def second_knock(self, data: st.DataObject) -> None:
        key, _ = self.pick_member(data)
        self.violation(key, Knock(subnet=data.draw(st.sampled_from(SUBNETS))))

    # -- invariants ------------------------------------------------------------------

    @invariant()
    def ids_are_unique_and_in_range(self) -> None:
        ids = list(self.server.members.values())
        assert len(ids) == len(set(ids))
        for member_id in ids:
            subnet, suffix = member_id.rsplit(".", 1)
            assert subnet in SUBNETS and int(suffix) in SUFFIXES

    @invariant()
    def every_alias_belongs_to_a_live_member(self) -> None:
        live = set(self.server.members.values())
        for alias, info in self.server.aliases.items():
            assert info.owner in live
            assert alias.rsplit(":", 1)[0] == info.owner
            assert info.state is not AliasState.FREE
        for subnet, held in self.server.claimed_aliases.items():
            for alias, info in held.items():
                assert info.owner in live and self.subnet_of(info.owner) == subnet
                assert alias.rsplit(":", 1)[0] not in self.server.subnet_members(subnet)
                assert info.state is not AliasState.FREE
            assert self.server.claimed_addresses(subnet) == {a.rsplit(":", 1)[0] for a in held}

    @invariant()
    def server_state_equals_the_model(self) -> None:
        s = self.server
        assert s.clients == {
            k: ClientState.JOINED
            if v is not None
            else ClientState.HELD
            if k in self.waiting
            else ClientState.CONNECTED
            for k, v in self.clients.items()
        }
        assert s.members == {k: v for k, v in self.clients.items() if v is not None}
        assert s.subnets == {subnet: tuple(ids) for subnet, ids in self.order.items() if ids}
        assert s.aliases == {
            f"{member}:{port}": AliasInfo(member, state)
            for member, ports in self.ports.items()
            for port, state in ports.items()
        }
        assert s.claimed_aliases == {
            subnet: {alias: AliasInfo(holder, state) for alias, (holder, state) in held.items()}
            for subnet, held in self.claims.items()
            if held
        }
        for key, member_id in self.clients.items():
            assert s.member_id(key) == member_id


ServerMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)
test_server_machine = ServerMachine.TestCase
