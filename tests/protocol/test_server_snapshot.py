"""A subnet of the server machine, stored and loaded into another: it goes on exactly as before."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unisockets.protocol import (
    Accepting,
    Alias,
    Bind,
    Connect,
    Goodbye,
    Knock,
    LocalProtocolError,
    Message,
    RemoteProtocolError,
    Shutdown,
)
from unisockets.protocol.server import SignalingServerProtocol
from unisockets.protocol.server_snapshot import restore_subnet, snapshot_subnet
from unisockets.protocol.server_states import ClientState


def _busy_server() -> SignalingServerProtocol[str]:
    server: SignalingServerProtocol[str] = SignalingServerProtocol()
    for key in ("a", "b", "c", "x"):
        server.client_connected(key)
    server.receive("a", Knock(subnet="10.0.0"))
    server.receive("b", Knock(subnet="10.0.0"))
    server.receive("c", Knock(subnet="10.0.0"))
    server.receive("x", Knock(subnet="10.0.1"))
    server.client_disconnected("b")  # a hole: 10.0.0.2 is free
    server.receive("a", Bind(id="10.0.0.1", alias="10.0.0.1:80"))
    server.receive("a", Accepting(id="10.0.0.1", alias="10.0.0.1:80"))
    server.receive("c", Bind(id="10.0.0.3", alias="127.0.0.1:1234"))
    server.receive(
        "c", Connect(id="10.0.0.3", client_connection_id="c1", remote_alias="10.0.0.1:80")
    )
    return server


def test_a_restored_subnet_has_the_same_members_aliases_and_claims() -> None:
    original = _busy_server()
    snapshot = json.loads(json.dumps(snapshot_subnet(original, "10.0.0")))
    copy: SignalingServerProtocol[str] = SignalingServerProtocol()
    assert restore_subnet(copy, snapshot) == ["a", "c"]
    assert copy.subnets == {"10.0.0": ("10.0.0.1", "10.0.0.3")}
    assert copy.aliases == {k: v for k, v in original.aliases.items() if k.startswith("10.0.0.")}
    assert copy.claimed_aliases == original.claimed_aliases
    assert copy.claimed_addresses("10.0.0") == frozenset({"127.0.0.1"})
    assert copy.members == {"a": "10.0.0.1", "c": "10.0.0.3"}


def test_the_restored_machine_answers_every_input_as_the_original() -> None:
    original = _busy_server()
    copy: SignalingServerProtocol[str] = SignalingServerProtocol()
    restore_subnet(copy, json.loads(json.dumps(snapshot_subnet(original, "10.0.0"))))
    cid = str(uuid.uuid4())
    for server in (original, copy):
        server.client_connected("d")
    steps = [
        ("d", Knock(subnet="10.0.0")),  # gets the hole 10.0.0.2
        ("d", Connect(id="10.0.0.2", client_connection_id=cid, remote_alias="10.0.0.1:80")),
        ("d", Bind(id="10.0.0.2", alias="127.0.0.1:1234")),  # claimed by c: refused
        ("c", Bind(id="10.0.0.3", alias="10.0.0.3:0")),  # its connection alias: refused
    ]
    for key, message in steps:
        assert original.receive(key, message) == copy.receive(key, message)
    with pytest.raises(RemoteProtocolError):
        copy.receive("d", Bind(id="10.0.0.1", alias="10.0.0.1:9"))
    assert original.client_disconnected("c") == copy.client_disconnected("c")
    out = copy.client_disconnected("a")
    assert out[0] == ("d", Goodbye(id="10.0.0.1"))
    assert ("d", Alias(id="10.0.0.1", alias="10.0.0.1:80", set=False)) in out


def test_unknown_keys_are_ignored_and_bad_snapshots_raise() -> None:
    snapshot = snapshot_subnet(_busy_server(), "10.0.0")
    snapshot["grace"] = [{"id": "10.0.0.2", "until": 12.5}]  # state of a later version
    restore_subnet(SignalingServerProtocol(), snapshot)
    with pytest.raises(LocalProtocolError, match="newer"):
        restore_subnet(SignalingServerProtocol(), {**snapshot, "v": 99})
    with pytest.raises(LocalProtocolError, match="malformed"):
        restore_subnet(SignalingServerProtocol(), {"v": 1, "subnet": "10.0.0", "members": [{}]})
    twice = {**snapshot, "members": snapshot["members"] * 2}
    with pytest.raises(LocalProtocolError):
        restore_subnet(SignalingServerProtocol(), twice)
    busy = _busy_server()
    with pytest.raises(LocalProtocolError, match="already"):
        restore_subnet(busy, snapshot)


_OPS = st.lists(
    st.tuples(
        # weighted: binds, accepts and connects build state, leaves and shutdowns undo it
        st.sampled_from(
            [
                *("open", "knock", "bind", "bind", "claim", "accepting", "accepting"),
                *("connect", "connect", "connect", "shutdown", "leave"),
            ]
        ),
        st.integers(0, 3),  # which client
        st.integers(0, 3),  # which other client, for connect
        st.integers(0, 1),  # port
    ),
    min_size=4,
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(ops=_OPS, split=st.integers(0, 100))
def test_a_machine_restored_anywhere_goes_on_exactly_as_the_original(
    ops: list[tuple[str, int, int, int]], split: int
) -> None:
    """Whatever happened before the snapshot, both machines answer what follows alike.

    This is what lets another instance take a subnet over; state added to the
    server and left out of the snapshot makes them differ here.
    """
    original: SignalingServerProtocol[str] = SignalingServerProtocol(suffixes=range(1, 5))
    copy: SignalingServerProtocol[str] | None = None
    keys: list[str] = []
    # three members with an accepting alias, a connection and a claim first, so that
    # every kind of state is there to be carried over and changed; the snapshot
    # is taken before operation ``at``, ``split`` % of the way through the others
    setup = [("open", 0, 0, 0)] * 3 + [("knock", n, 0, 0) for n in range(3)]
    setup += [("bind", 0, 0, 0), ("accepting", 0, 0, 0), ("connect", 1, 0, 0), ("claim", 2, 0, 0)]
    at = len(setup) + split * len(ops) // 100
    ops = setup + ops
    for index, (op, which, other, port) in enumerate(ops):
        if index == at:
            copy = SignalingServerProtocol(suffixes=range(1, 5))
            restore_subnet(copy, json.loads(json.dumps(snapshot_subnet(original, "10.0.0"))))
            for key, state in original.clients.items():
                if state is ClientState.CONNECTED:
                    copy.client_connected(key)
        machines = [original] if copy is None else [original, copy]
        if op == "open" or not keys:
            keys.append(f"k{len(keys)}")
            for machine in machines:
                machine.client_connected(keys[-1])
            continue
        key = keys[which % len(keys)]
        member = original.member_id(key) or "10.0.0.9"
        peer = original.member_id(keys[other % len(keys)]) or "10.0.0.9"
        message: Message | None = {
            "knock": Knock(subnet="10.0.0"),
            "bind": Bind(id=member, alias=f"{member}:{port}"),
            "claim": Bind(id=member, alias=f"127.0.0.1:{port}"),
            "accepting": Accepting(id=member, alias=f"{member}:{port}"),
            "connect": Connect(id=member, client_connection_id="c", remote_alias=f"{peer}:{port}"),
            "shutdown": Shutdown(id=member, alias=f"{member}:{port}"),
            "leave": None,
        }[op]
        results = []
        closed = original.client_state(key) is ClientState.CLOSED
        for machine in machines:
            if closed:
                results.append("closed")
            elif message is None:
                results.append(machine.client_disconnected(key))
            else:
                try:
                    results.append(machine.receive(key, message))
                except RemoteProtocolError as exc:
                    results.append(str(exc))
        assert all(result == results[0] for result in results), (op, results)
    if copy is not None:
        assert copy.subnets == original.subnets
        assert copy.aliases == original.aliases
        assert copy.claimed_aliases == original.claimed_aliases


_GRACE_OPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                *("open", "open", "knock", "rejoin", "rejoin", "bind", "accepting"),
                *("connect", "shutdown", "leave", "leave", "tick", "tick"),
            ]
        ),
        st.integers(0, 5),  # which client
        st.integers(0, 3),  # which id (rejoin), which other client (connect), seconds (tick)
        st.integers(0, 1),  # port; lazyLinks for knocks
    ),
    min_size=4,
    max_size=50,
)

#: The copy's driver clock runs this far ahead of the original's (another process).
_CLOCK_OFFSET = 100.0
#: The wall clock at the original's time 0.
_WALL_OFFSET = 5_000.0


@settings(max_examples=400, deadline=None)
@given(ops=_GRACE_OPS, split=st.integers(0, 100))
def test_stable_address_state_survives_a_restore_on_another_clock(
    ops: list[tuple[str, int, int, int]], split: int
) -> None:
    """Tokens, lazy flags, kept ids, held knocks and the grace after the start carry over.

    The copy runs on another monotonic clock (another process taking the
    subnet over); the snapshot's wall-clock times put its deadlines at the
    same instants. Dropping any of that state makes the answers differ: a
    lost token refuses a replacement, a lost lazy flag sends greetings, a
    lost kept id goes to a newcomer, a lost held knock is never answered, a
    lost grace answers a knock at once.
    """
    grace = 3.0
    original: SignalingServerProtocol[str] = SignalingServerProtocol(
        suffixes=range(1, 5), rejoin_grace=grace, now=0.0
    )
    copy: SignalingServerProtocol[str] | None = None
    keys: list[str] = []
    now = 0.0
    setup = [("open", 0, 0, 0)] * 3 + [("rejoin", n, n, n % 2) for n in range(3)]
    setup += [("bind", 0, 0, 0), ("accepting", 0, 0, 0), ("connect", 1, 0, 0)]
    at = len(setup) + split * len(ops) // 100
    ops = setup + ops
    for index, (op, which, other, port) in enumerate(ops):
        if index == at:
            copy = SignalingServerProtocol(
                suffixes=range(1, 5), rejoin_grace=grace, now=now + _CLOCK_OFFSET
            )
            wall = now + _WALL_OFFSET
            snapshot = snapshot_subnet(original, "10.0.0", now=now, wall=wall)
            restore_subnet(
                copy, json.loads(json.dumps(snapshot)), now=now + _CLOCK_OFFSET, wall=wall
            )
            for key, state in original.clients.items():
                if state is ClientState.CONNECTED:
                    copy.client_connected(key)
        machines = [original] if copy is None else [original, copy]
        clocks = [0.0, _CLOCK_OFFSET][: len(machines)]
        if op == "tick":
            now += other + 0.5
            results: list[object] = [
                m.expire(now + c) for m, c in zip(machines, clocks, strict=True)
            ]
            assert all(result == results[0] for result in results), (op, results)
            continue
        if op == "open" or not keys:
            keys.append(f"k{len(keys)}")
            for machine in machines:
                machine.client_connected(keys[-1])
            continue
        key = keys[which % len(keys)]
        member = original.member_id(key) or "10.0.0.9"
        peer = original.member_id(keys[other % len(keys)]) or "10.0.0.9"
        lazy = port == 1 or None
        message: Message | None = {
            "knock": Knock(subnet="10.0.0", lazy_links=lazy),
            "rejoin": Knock(
                subnet="10.0.0", id=f"10.0.0.{1 + other}", token=f"t{which % 2}", lazy_links=lazy
            ),
            "bind": Bind(id=member, alias=f"{member}:{port}"),
            "accepting": Accepting(id=member, alias=f"{member}:{port}"),
            "connect": Connect(id=member, client_connection_id="c", remote_alias=f"{peer}:{port}"),
            "shutdown": Shutdown(id=member, alias=f"{member}:{port}"),
            "leave": None,
        }[op]
        results = []
        closed = original.client_state(key) is ClientState.CLOSED
        for machine, clock in zip(machines, clocks, strict=True):
            if closed:
                results.append("closed")
            elif message is None:
                results.append(machine.client_disconnected(key, now=now + clock))
            else:
                try:
                    results.append(machine.receive(key, message))
                except RemoteProtocolError as exc:
                    results.append(str(exc))
            results.append(machine.take_replaced())
        assert all(result == results[index % 2] for index, result in enumerate(results)), (
            op,
            results,
        )
    if copy is not None:
        assert copy.subnets == original.subnets
        assert copy.aliases == original.aliases
        assert copy.clients == original.clients
        assert copy.holding == original.holding
        assert copy.kept_ids == {
            node_id: until + _CLOCK_OFFSET for node_id, until in original.kept_ids.items()
        }
        assert copy.next_deadline() == original.next_deadline() + _CLOCK_OFFSET


def test_a_version_1_snapshot_still_loads() -> None:
    snapshot = snapshot_subnet(_busy_server(), "10.0.0")
    for added in ("kept", "held", "holdUntil"):
        del snapshot[added]
    for record in snapshot["members"]:
        del record["token"], record["lazy"]
    copy: SignalingServerProtocol[str] = SignalingServerProtocol()
    assert restore_subnet(copy, {**snapshot, "v": 1}) == ["a", "c"]
    assert copy.subnets == {"10.0.0": ("10.0.0.1", "10.0.0.3")}
