"""Unit tests of SignalingServerProtocol: every flow of PROTOCOL.md and every violation."""

from __future__ import annotations

from typing import Any

import pytest

from unisockets.protocol.errors import LocalProtocolError, RemoteProtocolError
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

SDP = "v=0\r\n"
CANDIDATE = '{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0"}'
CID = "20bc5a15-9db6-4a4f-b4f1-c04ed0d9b7ec"

Server = SignalingServerProtocol[str]


def snapshot(server: Server) -> tuple[Any, ...]:
    """Everything the server exposes, order included."""
    return (
        list(server.clients.items()),
        list(server.members.items()),
        list(server.aliases.items()),
        [(subnet, list(held.items())) for subnet, held in server.claimed_aliases.items()],
        list(server.subnets.items()),
    )


def join(server: Server, *keys: str, subnet: str = "10.0.0") -> list[str]:
    """Connect and knock every key; return their ids."""
    ids = []
    for key in keys:
        assert server.client_connected(key) == []
        out = server.receive(key, Knock(subnet=subnet))
        ack = out[0][1]
        assert isinstance(ack, Acknowledged) and not ack.rejected
        ids.append(ack.id)
    return ids


def assert_violation(server: Server, key: str, message: Message, match: str = "") -> None:
    """``message`` from ``key`` raises RemoteProtocolError (close code 1008), nothing changes."""
    before = snapshot(server)
    with pytest.raises(RemoteProtocolError, match=match) as info:
        server.receive(key, message)
    assert info.value.close_code == 1008
    assert snapshot(server) == before


@pytest.fixture
def server() -> Server:
    return SignalingServerProtocol()


# -- construction and registration ------------------------------------------


def test_default_suffixes_start_at_1(server: Server) -> None:
    assert join(server, "a", "b") == ["10.0.0.1", "10.0.0.2"]


@pytest.mark.parametrize(
    "suffixes", [range(0), range(-1, 3), range(250, 257), range(5, 1), [1, 2, 3]]
)
def test_invalid_suffixes_are_a_local_error(suffixes: Any) -> None:
    with pytest.raises(LocalProtocolError):
        SignalingServerProtocol(suffixes=suffixes)


def test_stepped_suffix_range_is_used_lowest_first() -> None:
    server: Server = SignalingServerProtocol(suffixes=range(10, 20, 5))
    assert join(server, "a", "b") == ["10.0.0.10", "10.0.0.15"]


def test_client_connected_registers_a_client_that_has_not_joined(server: Server) -> None:
    assert server.client_connected("a") == []
    assert server.client_state("a") is ClientState.CONNECTED
    assert server.member_id("a") is None
    assert server.members == {}
    assert server.clients == {"a": ClientState.CONNECTED}


def test_client_connected_twice_is_a_local_error(server: Server) -> None:
    server.client_connected("a")
    with pytest.raises(LocalProtocolError):
        server.client_connected("a")


def test_unknown_key_is_a_local_error(server: Server) -> None:
    with pytest.raises(LocalProtocolError):
        server.receive("nobody", Knock(subnet="10.0.0"))
    with pytest.raises(LocalProtocolError):
        server.receive_data("nobody", encode(Knock(subnet="10.0.0")))
    assert server.client_state("nobody") is ClientState.CLOSED


def test_receive_of_a_non_message_is_a_local_error(server: Server) -> None:
    server.client_connected("a")
    with pytest.raises(LocalProtocolError):
        server.receive("a", "knock")  # type: ignore[arg-type]


# -- join ----------------------------------------------------------------------


def test_first_knock_gets_only_an_acknowledgement(server: Server) -> None:
    server.client_connected("a")
    assert server.receive("a", Knock(subnet="10.0.0")) == [
        ("a", Acknowledged(id="10.0.0.1", rejected=False))
    ]
    assert server.client_state("a") is ClientState.JOINED
    assert server.member_id("a") == "10.0.0.1"


def test_knock_acknowledges_then_greets_every_existing_member_in_join_order(
    server: Server,
) -> None:
    join(server, "a", "b")
    server.client_connected("c")
    assert server.receive("c", Knock(subnet="10.0.0")) == [
        ("c", Acknowledged(id="10.0.0.3", rejected=False)),
        ("a", Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.3")),
        ("b", Greeting(offerer_id="10.0.0.2", answerer_id="10.0.0.3")),
    ]


def test_freed_suffix_is_reused_and_greetings_follow_join_order_not_suffix_order(
    server: Server,
) -> None:
    join(server, "a", "b", "c")
    server.client_disconnected("a")
    assert join(server, "d") == ["10.0.0.1"]
    server.client_connected("e")
    out = server.receive("e", Knock(subnet="10.0.0"))
    assert [key for key, _ in out] == ["e", "b", "c", "d"]
    assert out[0][1] == Acknowledged(id="10.0.0.4", rejected=False)
    assert server.subnet_members("10.0.0") == ("10.0.0.2", "10.0.0.3", "10.0.0.1", "10.0.0.4")


def test_subnets_are_independent(server: Server) -> None:
    join(server, "a", "b")
    server.client_connected("x")
    assert server.receive("x", Knock(subnet="192.168.1")) == [
        ("x", Acknowledged(id="192.168.1.1", rejected=False))
    ]
    assert server.subnets == {
        "10.0.0": ("10.0.0.1", "10.0.0.2"),
        "192.168.1": ("192.168.1.1",),
    }


def test_full_subnet_rejects_the_knock_and_the_client_may_knock_again() -> None:
    server: Server = SignalingServerProtocol(suffixes=range(1, 3))
    join(server, "a", "b")
    server.client_connected("c")
    before = snapshot(server)
    assert server.receive("c", Knock(subnet="10.0.0")) == [
        ("c", Acknowledged(id=REJECTED_ID, rejected=True))
    ]
    assert snapshot(server) == before
    assert server.client_state("c") is ClientState.CONNECTED
    # another subnet still has room, and a freed suffix can be taken
    server.client_disconnected("a")
    assert server.receive("c", Knock(subnet="10.0.0")) == [
        ("c", Acknowledged(id="10.0.0.1", rejected=False)),
        ("b", Greeting(offerer_id="10.0.0.2", answerer_id="10.0.0.1")),
    ]


def test_original_range_starts_at_0_and_rejects_the_257th_member() -> None:
    server: Server = SignalingServerProtocol(suffixes=range(0, 256))
    ids = join(server, *(f"k{i}" for i in range(256)))
    assert ids[0] == "10.0.0.0" and ids[-1] == "10.0.0.255"
    server.client_connected("late")
    assert server.receive("late", Knock(subnet="10.0.0")) == [
        ("late", Acknowledged(id=REJECTED_ID, rejected=True))
    ]


def test_second_knock_is_a_violation(server: Server) -> None:
    join(server, "a")
    assert_violation(server, "a", Knock(subnet="10.0.0"), "already joined")
    assert_violation(server, "a", Knock(subnet="10.0.1"), "already joined")


NOT_KNOCK = [
    Offer(offerer_id="10.0.0.1", answerer_id="10.0.0.2", offer=SDP),
    Answer(offerer_id="10.0.0.2", answerer_id="10.0.0.1", answer=SDP),
    Candidate(offerer_id="10.0.0.1", answerer_id="10.0.0.2", candidate=CANDIDATE),
    Bind(id="10.0.0.1", alias="10.0.0.1:1"),
    Accepting(id="10.0.0.1", alias="10.0.0.1:1"),
    Connect(id="10.0.0.1", client_connection_id=CID, remote_alias="10.0.0.2:1"),
    Shutdown(id="10.0.0.1", alias="10.0.0.1:1"),
]
SERVER_ONLY = [
    Acknowledged(id="10.0.0.1", rejected=False),
    Acknowledged(id=REJECTED_ID, rejected=True),
    Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2"),
    Alias(id="10.0.0.1", alias="10.0.0.1:1", set=True),
    Accept(bound_alias="10.0.0.2:1", client_alias="10.0.0.1:0"),
    Goodbye(id="10.0.0.2"),
]


@pytest.mark.parametrize("message", NOT_KNOCK, ids=lambda m: m.OPCODE)
def test_message_before_knock_is_a_violation(server: Server, message: Message) -> None:
    join(server, "b", "c")
    server.client_connected("a")
    assert_violation(server, "a", message, "before knock")


@pytest.mark.parametrize("joined", [False, True])
@pytest.mark.parametrize("message", SERVER_ONLY, ids=lambda m: m.OPCODE)
def test_server_opcodes_from_a_client_are_violations(
    server: Server, message: Message, joined: bool
) -> None:
    join(server, "b")
    if joined:
        join(server, "a")
    else:
        server.client_connected("a")
    assert_violation(server, "a", message, "sent by servers")


# -- relays ----------------------------------------------------------------------


def test_offer_answer_candidate_are_relayed_to_the_named_member_only(server: Server) -> None:
    join(server, "a", "b", "c")
    offer = Offer(offerer_id="10.0.0.1", answerer_id="10.0.0.2", offer=SDP)
    answer = Answer(offerer_id="10.0.0.1", answerer_id="10.0.0.2", answer=SDP)
    from_a = Candidate(offerer_id="10.0.0.1", answerer_id="10.0.0.2", candidate=CANDIDATE)
    from_b = Candidate(offerer_id="10.0.0.2", answerer_id="10.0.0.1", candidate=CANDIDATE)
    before = snapshot(server)
    assert server.receive("a", offer) == [("b", offer)]
    assert server.receive("b", answer) == [("a", answer)]
    assert server.receive("a", from_a) == [("b", from_a)]
    assert server.receive("b", from_b) == [("a", from_b)]
    assert snapshot(server) == before


@pytest.mark.parametrize(
    "message",
    [
        Offer(offerer_id="10.0.0.3", answerer_id="10.0.0.2", offer=SDP),
        Answer(offerer_id="10.0.0.2", answerer_id="10.0.0.3", answer=SDP),
        Candidate(offerer_id="10.0.0.3", answerer_id="10.0.0.2", candidate=CANDIDATE),
    ],
    ids=lambda m: m.OPCODE,
)
def test_relay_with_a_spoofed_sender_is_a_violation(server: Server, message: Message) -> None:
    join(server, "a", "b", "c")
    assert_violation(server, "a", message, "spoofed")


@pytest.mark.parametrize("opcode", ["offer", "answer", "candidate"])
def test_relay_to_oneself_is_a_violation(server: Server, opcode: str) -> None:
    join(server, "a", "b")
    assert_violation(server, "a", _relay(opcode, "10.0.0.1", "10.0.0.1"), "to itself")


@pytest.mark.parametrize("recipient", ["10.0.0.9", "10.0.1.2"])
@pytest.mark.parametrize("opcode", ["offer", "answer", "candidate"])
def test_relay_to_a_non_member_or_another_subnet_is_dropped(
    server: Server, opcode: str, recipient: str
) -> None:
    join(server, "a", "b")
    join(server, "x", "y", subnet="10.0.1")  # 10.0.1.2 exists, in another subnet
    assert server.receive("a", _relay(opcode, "10.0.0.1", recipient)) == []
    assert server.dropped_relays == 1
    # the sender is still a member in good standing
    relay = _relay(opcode, "10.0.0.1", "10.0.0.2")
    assert server.receive("a", relay) == [("b", relay)]


def _relay(opcode: str, me: str, recipient: str) -> Message:
    if opcode == "offer":
        return Offer(offerer_id=me, answerer_id=recipient, offer=SDP)
    if opcode == "answer":
        return Answer(offerer_id=recipient, answerer_id=me, answer=SDP)
    return Candidate(offerer_id=me, answerer_id=recipient, candidate=CANDIDATE)


# -- bind ----------------------------------------------------------------------------


def test_bind_tells_every_member_of_the_subnet_binder_included(server: Server) -> None:
    join(server, "a", "b", "c")
    join(server, "x", subnet="10.0.1")
    set_ = Alias(id="10.0.0.2", alias="10.0.0.2:1234", set=True)
    assert server.receive("b", Bind(id="10.0.0.2", alias="10.0.0.2:1234")) == [
        ("a", set_),
        ("b", set_),
        ("c", set_),
    ]
    assert server.aliases == {"10.0.0.2:1234": AliasInfo("10.0.0.2", AliasState.BOUND)}
    assert not server.aliases["10.0.0.2:1234"].accepting


@pytest.mark.parametrize("accepting", [False, True])
def test_bind_of_a_held_port_is_refused_to_the_binder_only(server: Server, accepting: bool) -> None:
    join(server, "a", "b")
    server.receive("a", Bind(id="10.0.0.1", alias="10.0.0.1:80"))
    if accepting:
        server.receive("a", Accepting(id="10.0.0.1", alias="10.0.0.1:80"))
    before = snapshot(server)
    assert server.receive("a", Bind(id="10.0.0.1", alias="10.0.0.1:80")) == [
        ("a", Alias(id="10.0.0.1", alias="10.0.0.1:80", set=False))
    ]
    assert snapshot(server) == before


def test_bind_of_a_port_held_as_connection_alias_is_refused_not_an_error(
    server: Server,
) -> None:
    join(server, "a", "b")
    server.receive("b", Bind(id="10.0.0.2", alias="10.0.0.2:80"))
    server.receive("b", Accepting(id="10.0.0.2", alias="10.0.0.2:80"))
    server.receive(
        "a", Connect(id="10.0.0.1", client_connection_id=CID, remote_alias="10.0.0.2:80")
    )
    assert server.aliases["10.0.0.1:0"].state is AliasState.CONNECTION
    before = snapshot(server)
    assert server.receive("a", Bind(id="10.0.0.1", alias="10.0.0.1:0")) == [
        ("a", Alias(id="10.0.0.1", alias="10.0.0.1:0", set=False))
    ]
    assert snapshot(server) == before


@pytest.mark.parametrize(
    ("cls", "id_", "alias"),
    [
        (Bind, "10.0.0.2", "10.0.0.2:80"),  # spoofed id
        (Accepting, "10.0.0.2", "10.0.0.2:80"),
        (Accepting, "10.0.0.1", "10.0.0.2:80"),  # another member's address
        (Shutdown, "10.0.0.2", "10.0.0.2:80"),
        (Shutdown, "10.0.0.1", "10.0.0.2:80"),
    ],
)
def test_alias_requests_for_another_members_address_are_violations(
    server: Server, cls: type[Bind | Accepting | Shutdown], id_: str, alias: str
) -> None:
    join(server, "a", "b")
    join(server, "x", subnet="10.0.1")
    server.receive("b", Bind(id="10.0.0.2", alias="10.0.0.2:80"))
    assert_violation(server, "a", cls(id=id_, alias=alias), "spoofed|another member's address")


# -- binding an address other than one's own id (issue 15) ---------------------------


@pytest.mark.parametrize("alias", ["10.0.0.2:80", "10.0.0.2:81"])
def test_a_bind_on_another_members_address_is_refused_not_closed(
    server: Server, alias: str
) -> None:
    """Held or not, another live member's address is never taken; the binder gets an answer."""
    join(server, "a", "b")
    server.receive("b", Bind(id="10.0.0.2", alias="10.0.0.2:80"))
    before = snapshot(server)
    # isMemberAddress (ours) says why: the binder reports EADDRNOTAVAIL, not EADDRINUSE.
    assert server.receive("a", Bind(id="10.0.0.1", alias=alias)) == [
        ("a", Alias(id="10.0.0.1", alias=alias, set=False, is_member_address=True))
    ]
    assert snapshot(server) == before
    assert server.client_state("a") is ClientState.JOINED


def test_the_original_echo_programs_bind_and_connect_127_0_0_1(server: Server) -> None:
    """The original's C server binds 127.0.0.1:1234 on any node; its client connects there."""
    join(server, "server", "client", "third")
    assert server.receive("server", Bind(id="10.0.0.1", alias="127.0.0.1:1234")) == [
        (key, Alias(id="10.0.0.1", alias="127.0.0.1:1234", set=True))
        for key in ("server", "client", "third")
    ]
    assert server.claimed_aliases == {
        "10.0.0": {"127.0.0.1:1234": AliasInfo("10.0.0.1", AliasState.BOUND)}
    }
    assert server.claimed_addresses("10.0.0") == {"127.0.0.1"}
    assert server.aliases == {}
    assert server.receive("server", Accepting(id="10.0.0.1", alias="127.0.0.1:1234")) == []
    # someone else binding it too is refused: one holder per alias
    assert server.receive("third", Bind(id="10.0.0.3", alias="127.0.0.1:1234")) == [
        ("third", Alias(id="10.0.0.3", alias="127.0.0.1:1234", set=False))
    ]
    out = server.receive(
        "client", Connect(id="10.0.0.2", client_connection_id=CID, remote_alias="127.0.0.1:1234")
    )
    assert out == [
        (
            "client",
            Alias(
                id="10.0.0.2",
                alias="10.0.0.2:0",
                set=True,
                client_connection_id=CID,
                is_connection_alias=True,
            ),
        ),
        ("server", Alias(id="10.0.0.2", alias="10.0.0.2:0", set=True)),
        ("server", Accept(bound_alias="127.0.0.1:1234", client_alias="10.0.0.2:0")),
        (
            "client",
            Alias(id="10.0.0.1", alias="127.0.0.1:1234", set=True, client_connection_id=CID),
        ),
    ]
    assert server.receive("server", Shutdown(id="10.0.0.1", alias="127.0.0.1:1234")) == [
        (key, Alias(id="10.0.0.1", alias="127.0.0.1:1234", set=False))
        for key in ("server", "client", "third")
    ]
    assert server.claimed_aliases == {}
    assert server.claimed_addresses("10.0.0") == frozenset()


def test_the_original_runners_subnet_and_range_in_either_order() -> None:
    """``127.0.0`` with suffixes 0..255, as the original runner and server use them."""
    server: Server = SignalingServerProtocol(suffixes=range(256))
    # The C server's node joins first: it is 127.0.0.0 and binds 127.0.0.1:1234.
    assert join(server, "server", subnet="127.0.0") == ["127.0.0.0"]
    server.receive("server", Bind(id="127.0.0.0", alias="127.0.0.1:1234"))
    server.receive("server", Accepting(id="127.0.0.0", alias="127.0.0.1:1234"))
    # 127.0.0.1 is held: the client's node gets the next free id.
    assert join(server, "client", subnet="127.0.0") == ["127.0.0.2"]
    out = server.receive(
        "client", Connect(id="127.0.0.2", client_connection_id=CID, remote_alias="127.0.0.1:1234")
    )
    assert out[2] == ("server", Accept(bound_alias="127.0.0.1:1234", client_alias="127.0.0.2:0"))
    # Released with its holder: the address is an id again.
    server.client_disconnected("server")
    assert join(server, "late", subnet="127.0.0") == ["127.0.0.0"]
    assert join(server, "later", subnet="127.0.0") == ["127.0.0.1"]
    # The other order: the client's node is 127.0.0.1 already; binding it is refused.
    assert server.receive("late", Bind(id="127.0.0.0", alias="127.0.0.1:1234")) == [
        ("late", Alias(id="127.0.0.0", alias="127.0.0.1:1234", set=False, is_member_address=True))
    ]


def test_a_claimed_free_id_is_not_handed_out_until_released(server: Server) -> None:
    join(server, "a", "b")
    server.receive("a", Bind(id="10.0.0.1", alias="10.0.0.3:80"))
    server.receive("a", Bind(id="10.0.0.1", alias="10.0.0.3:81"))
    assert join(server, "c") == ["10.0.0.4"]
    server.receive("a", Shutdown(id="10.0.0.1", alias="10.0.0.3:80"))
    assert join(server, "d") == ["10.0.0.5"]  # 10.0.0.3:81 still held
    out = server.client_disconnected("a")
    assert out == [
        *[(k, Goodbye(id="10.0.0.1")) for k in ("b", "c", "d")],
        *[(k, Alias(id="10.0.0.1", alias="10.0.0.3:81", set=False)) for k in ("b", "c", "d")],
    ]
    assert server.claimed_aliases == {}
    assert join(server, "e") == ["10.0.0.1"]
    assert join(server, "f") == ["10.0.0.3"]


def test_claims_are_per_subnet_and_only_their_holder_may_use_them(server: Server) -> None:
    join(server, "a", "b")
    join(server, "x", subnet="10.0.1")
    server.receive("a", Bind(id="10.0.0.1", alias="127.0.0.1:1234"))
    # the same alias in another subnet is another alias
    assert server.receive("x", Bind(id="10.0.1.1", alias="127.0.0.1:1234")) == [
        ("x", Alias(id="10.0.1.1", alias="127.0.0.1:1234", set=True))
    ]
    # b holds no alias there: accepting is ignored, shutdown refused (as for its own ports)
    before = snapshot(server)
    assert server.receive("b", Accepting(id="10.0.0.2", alias="127.0.0.1:1234")) == []
    assert server.receive("b", Shutdown(id="10.0.0.2", alias="127.0.0.1:1234")) == [
        ("b", Alias(id="10.0.0.2", alias="127.0.0.1:1234", set=True))
    ]
    assert snapshot(server) == before
    # a connect from the other subnet reaches its own subnet's holder only
    server.receive("a", Accepting(id="10.0.0.1", alias="127.0.0.1:1234"))
    refused = server.receive(
        "x", Connect(id="10.0.1.1", client_connection_id=CID, remote_alias="127.0.0.1:1234")
    )
    assert refused == [
        ("x", Alias(id="10.0.1.1", alias="10.0.1.1:0", set=False, client_connection_id=CID))
    ]


# -- accepting ---------------------------------------------------------------------


def test_accepting_marks_an_owned_alias_without_reply(server: Server) -> None:
    join(server, "a", "b")
    server.receive("a", Bind(id="10.0.0.1", alias="10.0.0.1:80"))
    assert server.receive("a", Accepting(id="10.0.0.1", alias="10.0.0.1:80")) == []
    assert server.aliases["10.0.0.1:80"].accepting
    assert server.receive("a", Accepting(id="10.0.0.1", alias="10.0.0.1:80")) == []
    assert server.aliases["10.0.0.1:80"].state is AliasState.ACCEPTING


def test_accepting_of_an_unbound_port_is_ignored(server: Server) -> None:
    join(server, "a")
    before = snapshot(server)
    assert server.receive("a", Accepting(id="10.0.0.1", alias="10.0.0.1:80")) == []
    assert snapshot(server) == before


# -- connect -----------------------------------------------------------------------


def listening(server: Server, port: int = 1234) -> str:
    """a = 10.0.0.1 listens on ``port``; b = 10.0.0.2 joined; return the alias."""
    join(server, "a", "b")
    alias = f"10.0.0.1:{port}"
    server.receive("a", Bind(id="10.0.0.1", alias=alias))
    server.receive("a", Accepting(id="10.0.0.1", alias=alias))
    return alias


def test_accepted_connect_sends_the_four_messages_in_protocol_order(server: Server) -> None:
    remote = listening(server)
    out = server.receive("b", Connect(id="10.0.0.2", client_connection_id=CID, remote_alias=remote))
    assert out == [
        (
            "b",
            Alias(
                id="10.0.0.2",
                alias="10.0.0.2:0",
                set=True,
                client_connection_id=CID,
                is_connection_alias=True,
            ),
        ),
        ("a", Alias(id="10.0.0.2", alias="10.0.0.2:0", set=True)),
        ("a", Accept(bound_alias=remote, client_alias="10.0.0.2:0")),
        ("b", Alias(id="10.0.0.1", alias=remote, set=True, client_connection_id=CID)),
    ]
    assert server.aliases == {
        remote: AliasInfo("10.0.0.1", AliasState.ACCEPTING),
        "10.0.0.2:0": AliasInfo("10.0.0.2", AliasState.CONNECTION),
    }


def test_connect_allocates_the_lowest_port_not_held_by_binds_or_connections(
    server: Server,
) -> None:
    remote = listening(server)
    for port in (0, 2):
        server.receive("b", Bind(id="10.0.0.2", alias=f"10.0.0.2:{port}"))
    allocated = []
    for _ in range(3):
        out = server.receive(
            "b", Connect(id="10.0.0.2", client_connection_id=CID, remote_alias=remote)
        )
        allocated.append(out[0][1].alias)  # type: ignore[union-attr]
    assert allocated == ["10.0.0.2:1", "10.0.0.2:3", "10.0.0.2:4"]
    # shutting a connection alias down frees its port for the next connect
    server.receive("b", Shutdown(id="10.0.0.2", alias="10.0.0.2:3"))
    out = server.receive("b", Connect(id="10.0.0.2", client_connection_id=CID, remote_alias=remote))
    assert out[0][1] == Alias(
        id="10.0.0.2",
        alias="10.0.0.2:3",
        set=True,
        client_connection_id=CID,
        is_connection_alias=True,
    )


def test_connect_does_not_clear_accepting(server: Server) -> None:
    remote = listening(server)
    join(server, "c")
    for key, id_ in (("b", "10.0.0.2"), ("c", "10.0.0.3")):
        out = server.receive(key, Connect(id=id_, client_connection_id=CID, remote_alias=remote))
        assert len(out) == 4
    assert server.aliases[remote].accepting


@pytest.mark.parametrize("remote", ["10.0.0.1:9", "10.0.0.1:1234", "10.0.0.7:1", "10.0.1.1:1234"])
def test_refused_connect_answers_the_connector_only_and_holds_nothing(
    server: Server, remote: str
) -> None:
    join(server, "a", "b")
    server.receive("a", Bind(id="10.0.0.1", alias="10.0.0.1:1234"))  # bound, not accepting
    join(server, "x", subnet="10.0.1")  # 10.0.1.1:1234 accepting, in another subnet
    server.receive("x", Bind(id="10.0.1.1", alias="10.0.1.1:1234"))
    server.receive("x", Accepting(id="10.0.1.1", alias="10.0.1.1:1234"))
    before = snapshot(server)
    for _ in range(2):  # the refused alias is released, so the same one comes again
        out = server.receive(
            "b", Connect(id="10.0.0.2", client_connection_id=CID, remote_alias=remote)
        )
        assert out == [
            ("b", Alias(id="10.0.0.2", alias="10.0.0.2:0", set=False, client_connection_id=CID))
        ]
        assert snapshot(server) == before


def test_connect_to_an_own_accepting_alias_is_accepted(server: Server) -> None:
    remote = listening(server)
    out = server.receive("a", Connect(id="10.0.0.1", client_connection_id=CID, remote_alias=remote))
    assert [key for key, _ in out] == ["a", "a", "a", "a"]
    assert out[0][1] == Alias(
        id="10.0.0.1",
        alias="10.0.0.1:0",
        set=True,
        client_connection_id=CID,
        is_connection_alias=True,
    )


def test_connect_with_a_spoofed_id_is_a_violation(server: Server) -> None:
    remote = listening(server)
    message = Connect(id="10.0.0.1", client_connection_id=CID, remote_alias=remote)
    assert_violation(server, "b", message, "spoofed")


def test_connect_when_every_port_is_held_is_a_violation(server: Server) -> None:
    remote = listening(server)
    for port in range(65536):
        server.receive("b", Bind(id="10.0.0.2", alias=f"10.0.0.2:{port}"))
    message = Connect(id="10.0.0.2", client_connection_id=CID, remote_alias=remote)
    assert_violation(server, "b", message, "every port")


def test_accepting_on_a_connection_alias_is_ignored(server: Server) -> None:
    remote = listening(server)
    server.receive("b", Connect(id="10.0.0.2", client_connection_id=CID, remote_alias=remote))
    before = snapshot(server)
    assert server.receive("b", Accepting(id="10.0.0.2", alias="10.0.0.2:0")) == []
    assert snapshot(server) == before


# -- shutdown ----------------------------------------------------------------------


def test_shutdown_by_the_owner_frees_the_alias_and_tells_every_member(server: Server) -> None:
    remote = listening(server)
    join(server, "x", subnet="10.0.1")
    unset = Alias(id="10.0.0.1", alias=remote, set=False)
    assert server.receive("a", Shutdown(id="10.0.0.1", alias=remote)) == [
        ("a", unset),
        ("b", unset),
    ]
    assert server.aliases == {}
    # the port can be bound again
    set_ = Alias(id="10.0.0.1", alias=remote, set=True)
    assert server.receive("a", Bind(id="10.0.0.1", alias=remote)) == [("a", set_), ("b", set_)]


def test_shutdown_of_a_port_not_held_is_refused_to_the_requester_only(server: Server) -> None:
    join(server, "a", "b")
    before = snapshot(server)
    assert server.receive("a", Shutdown(id="10.0.0.1", alias="10.0.0.1:80")) == [
        ("a", Alias(id="10.0.0.1", alias="10.0.0.1:80", set=True))
    ]
    assert snapshot(server) == before


# -- leave --------------------------------------------------------------------------


def test_leave_sends_goodbye_then_alias_removals_to_the_remaining_members(
    server: Server,
) -> None:
    remote = listening(server)
    join(server, "c")
    join(server, "x", subnet="10.0.1")
    server.receive("a", Bind(id="10.0.0.1", alias="10.0.0.1:7"))
    server.receive("a", Connect(id="10.0.0.1", client_connection_id=CID, remote_alias=remote))
    assert [alias for alias, info in server.aliases.items() if info.owner == "10.0.0.1"] == [
        remote,
        "10.0.0.1:7",
        "10.0.0.1:0",
    ]
    out = server.client_disconnected("a")
    bye = Goodbye(id="10.0.0.1")
    expected: list[tuple[str, Message]] = [("b", bye), ("c", bye)]
    for alias in (remote, "10.0.0.1:7", "10.0.0.1:0"):
        removed = Alias(id="10.0.0.1", alias=alias, set=False)
        expected += [("b", removed), ("c", removed)]
    assert out == expected
    assert server.aliases == {}
    assert server.client_state("a") is ClientState.CLOSED
    assert server.subnets == {"10.0.0": ("10.0.0.2", "10.0.0.3"), "10.0.1": ("10.0.1.1",)}


def test_leave_of_the_last_member_forgets_the_subnet(server: Server) -> None:
    join(server, "a")
    server.receive("a", Bind(id="10.0.0.1", alias="10.0.0.1:7"))
    server.receive("a", Bind(id="10.0.0.1", alias="127.0.0.1:7"))
    assert server.client_disconnected("a") == []
    assert snapshot(server) == ([], [], [], [], [])
    assert server.claimed_addresses("10.0.0") == frozenset()


def test_disconnect_of_an_unjoined_or_unknown_client_sends_nothing(server: Server) -> None:
    join(server, "a")
    server.client_connected("b")
    assert server.client_disconnected("b") == []
    assert server.client_disconnected("b") == []
    assert server.client_disconnected("never") == []
    assert server.clients == {"a": ClientState.JOINED}


def test_a_left_client_is_unknown_and_its_key_can_connect_again(server: Server) -> None:
    join(server, "a", "b")
    server.client_disconnected("a")
    with pytest.raises(LocalProtocolError):
        server.receive("a", Bind(id="10.0.0.1", alias="10.0.0.1:1"))
    assert join(server, "a") == ["10.0.0.1"]


def test_relay_to_a_member_that_left_is_dropped_not_a_violation(server: Server) -> None:
    # The sender had not seen the goodbye yet: a race, not an attack.
    join(server, "a", "b")
    server.client_disconnected("b")
    message = Offer(offerer_id="10.0.0.1", answerer_id="10.0.0.2", offer=SDP)
    assert server.receive("a", message) == []
    assert server.dropped_relays == 1


# -- receive_data -------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        "",
        b"\xff\xfe",
        "not json",
        "[]",
        '{"opcode":"knock"}',
        '{"opcode":"knock","data":{"subnet":"10.0.0.0"}}',
        '{"opcode":"nope","data":{}}',
        '{"opcode":"bind","data":{"id":"10.0.0.1","alias":"10.0.0.1:65536"}}',
    ],
)
def test_receive_data_of_garbage_is_a_violation_and_changes_nothing(
    server: Server, data: str | bytes
) -> None:
    join(server, "a", "b")
    server.client_connected("c")
    for key in ("a", "c"):
        before = snapshot(server)
        with pytest.raises(RemoteProtocolError):
            server.receive_data(key, data)
        assert snapshot(server) == before


def test_receive_data_of_an_oversize_frame_has_close_code_1009(server: Server) -> None:
    join(server, "a")
    with pytest.raises(RemoteProtocolError) as info:
        server.receive_data("a", "x" * (1 << 20))
    assert info.value.close_code == 1009


def test_receive_data_decodes_then_handles(server: Server) -> None:
    server.client_connected("a")
    out = server.receive_data("a", b'{"data":{"subnet":"10.0.0"},"opcode":"knock"}')
    assert out == [("a", Acknowledged(id="10.0.0.1", rejected=False))]


def test_broadcasts_reuse_one_message_object(server: Server) -> None:
    join(server, "a", "b", "c")
    out = server.receive("a", Bind(id="10.0.0.1", alias="10.0.0.1:1"))
    assert len({id(message) for _, message in out}) == 1


def test_no_greeting_between_two_nodes_that_link_lazily() -> None:
    # docs/protocol.md, "Lazy peer links": a join greets only the members of
    # which one of the two links eagerly (an original node always does).
    server: SignalingServerProtocol[str] = SignalingServerProtocol()
    for key in ("lazy1", "eager", "lazy2"):
        server.client_connected(key)
    server.receive("lazy1", Knock(subnet="10.0.0", lazy_links=True))
    assert server.receive("eager", Knock(subnet="10.0.0")) == [
        ("eager", Acknowledged(id="10.0.0.2", rejected=False)),
        ("lazy1", Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2")),
    ]
    assert server.receive("lazy2", Knock(subnet="10.0.0", lazy_links=True)) == [
        ("lazy2", Acknowledged(id="10.0.0.3", rejected=False)),
        ("eager", Greeting(offerer_id="10.0.0.2", answerer_id="10.0.0.3")),
    ]
