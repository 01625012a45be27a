"""Unit tests of the sans-IO signaling client, one situation each (shared/PROTOCOL.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from unisockets.protocol import (
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
    LocalProtocolError,
    Message,
    Offer,
    RemoteProtocolError,
    Shutdown,
    decode,
    encode,
)
from unisockets.protocol.client import SignalingClientProtocol
from unisockets.protocol.client_states import (
    JOIN_TRANSITIONS,
    REQUEST_TRANSITIONS,
    JoinState,
    render_mermaid,
)
from unisockets.protocol.events import (
    AliasAdded,
    AliasRemoved,
    AnswerReceived,
    BindRejected,
    BindSucceeded,
    CancelledRequestSucceeded,
    CandidateReceived,
    ConnectRefused,
    ConnectSucceeded,
    Disconnected,
    IdChanged,
    IncomingConnection,
    Joined,
    JoinRejected,
    OfferReceived,
    PeerGreeted,
    PeerLeft,
    Reconnected,
    Request,
    RequestFailed,
    RequestKind,
    ShutdownRejected,
    ShutdownSucceeded,
)

ME = "10.0.0.1"
PEER = "10.0.0.2"
CID = "5b1d2c7e-8a47-4a43-9f3b-0e3c1d2a4b5f"


def joined(node_id: str = ME, subnet: str = "10.0.0") -> SignalingClientProtocol:
    """A client that knocked and was acknowledged as ``node_id``."""
    client = SignalingClientProtocol(subnet=subnet)
    client.knock()
    assert client.receive(Acknowledged(id=node_id, rejected=False)) == [Joined(id=node_id)]
    return client


def snapshot(client: SignalingClientProtocol) -> tuple[Any, ...]:
    """Everything observable about a client, to show that an error changed nothing."""
    return (
        client.join_state,
        client.id,
        dict(client.aliases),
        client.bound_aliases,
        client.connection_aliases,
        client.accepting_aliases,
        client.peers,
        client.pending_requests,
    )


def assert_rejected(client: SignalingClientProtocol, message: Message) -> None:
    """``message`` raises RemoteProtocolError and leaves ``client`` unchanged."""
    before = snapshot(client)
    with pytest.raises(RemoteProtocolError):
        client.receive(message)
    assert snapshot(client) == before


# --- joining --------------------------------------------------------------------------


def test_knock_then_acknowledged_joins() -> None:
    client = SignalingClientProtocol(subnet="10.0.0")
    assert client.join_state is JoinState.IDLE and client.id is None
    assert client.knock() == Knock(subnet="10.0.0")
    assert client.join_state is JoinState.KNOCKING
    assert client.receive(Acknowledged(id=ME, rejected=False)) == [Joined(id=ME)]
    assert client.join_state is JoinState.JOINED and client.id == ME


def test_knock_twice_is_a_local_error() -> None:
    client = SignalingClientProtocol()
    client.knock()
    with pytest.raises(LocalProtocolError):
        client.knock()
    with pytest.raises(LocalProtocolError):
        joined().knock()


def test_original_server_suffix_zero_id() -> None:
    client = joined("10.0.0.0")
    request, messages = client.bind("10.0.0.0:1234")
    assert messages == [Bind(id="10.0.0.0", alias="10.0.0.0:1234")]
    assert client.receive(Alias(id="10.0.0.0", alias="10.0.0.0:1234", set=True)) == [
        BindSucceeded(request=request, alias="10.0.0.0:1234")
    ]


def test_rejected_knock() -> None:
    client = SignalingClientProtocol(subnet="10.0.0")
    client.knock()
    assert client.receive(Acknowledged(id=REJECTED_ID, rejected=True)) == [
        JoinRejected(subnet="10.0.0")
    ]
    assert client.join_state is JoinState.REJECTED and client.id is None
    with pytest.raises(LocalProtocolError):
        client.bind("10.0.0.1:1")
    assert_rejected(client, Greeting(offerer_id=ME, answerer_id=PEER))
    # Only a new session may knock again.
    with pytest.raises(LocalProtocolError):
        client.knock()
    assert client.connection_lost() == []
    assert client.knock() == Knock(subnet="10.0.0")


def test_bad_subnet_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        SignalingClientProtocol(subnet="10.0")


def test_acknowledged_in_another_subnet_is_rejected() -> None:
    client = SignalingClientProtocol(subnet="10.0.0")
    client.knock()
    assert_rejected(client, Acknowledged(id="10.0.1.1", rejected=False))
    assert client.join_state is JoinState.KNOCKING


def test_acknowledged_when_not_knocking_is_rejected() -> None:
    assert_rejected(SignalingClientProtocol(), Acknowledged(id=ME, rejected=False))
    assert_rejected(joined(), Acknowledged(id=PEER, rejected=False))


SERVER_MESSAGES: list[Message] = [
    Greeting(offerer_id=ME, answerer_id=PEER),
    Offer(offerer_id=PEER, answerer_id=ME, offer="v=0"),
    Answer(offerer_id=ME, answerer_id=PEER, answer="v=0"),
    Candidate(offerer_id=PEER, answerer_id=ME, candidate="{}"),
    Alias(id=PEER, alias=f"{PEER}:1", set=True),
    Accept(bound_alias=f"{ME}:1", client_alias=f"{PEER}:0"),
    Goodbye(id=PEER),
]


@pytest.mark.parametrize("message", SERVER_MESSAGES, ids=lambda m: m.OPCODE)
def test_server_messages_before_the_join_are_rejected(message: Message) -> None:
    assert_rejected(SignalingClientProtocol(), message)
    knocking = SignalingClientProtocol()
    knocking.knock()
    assert_rejected(knocking, message)


@pytest.mark.parametrize(
    "message",
    [
        Knock(subnet="10.0.0"),
        Bind(id=PEER, alias=f"{PEER}:1"),
        Accepting(id=PEER, alias=f"{PEER}:1"),
        Connect(id=PEER, client_connection_id=CID, remote_alias=f"{ME}:1"),
        Shutdown(id=PEER, alias=f"{PEER}:1"),
    ],
    ids=lambda m: m.OPCODE,
)
def test_node_opcodes_from_the_server_are_rejected(message: Message) -> None:
    assert_rejected(joined(), message)


def test_receive_data_decodes_and_rejects_garbage() -> None:
    client = SignalingClientProtocol()
    client.knock()
    frame = '{"data":{"id":"10.0.0.1","rejected":false},"opcode":"acknowledged"}'
    assert client.receive_data(frame.encode()) == [Joined(id=ME)]
    for garbage in (b"", b"{", b'{"opcode":"nope","data":{}}', "[]", b"\xff"):
        with pytest.raises(RemoteProtocolError):
            client.receive_data(garbage)
    assert client.id == ME


# --- peers ----------------------------------------------------------------------------


def test_peer_messages() -> None:
    client = joined()
    assert client.receive(Greeting(offerer_id=ME, answerer_id=PEER)) == [PeerGreeted(peer_id=PEER)]
    assert client.receive(Offer(offerer_id="10.0.0.3", answerer_id=ME, offer="o")) == [
        OfferReceived(peer_id="10.0.0.3", sdp="o")
    ]
    assert client.receive(Answer(offerer_id=ME, answerer_id=PEER, answer="a")) == [
        AnswerReceived(peer_id=PEER, sdp="a")
    ]
    assert client.receive(Candidate(offerer_id=PEER, answerer_id=ME, candidate="c")) == [
        CandidateReceived(peer_id=PEER, candidate="c")
    ]
    assert client.peers == {PEER, "10.0.0.3"}


@pytest.mark.parametrize(
    "message",
    [
        Greeting(offerer_id="10.0.0.3", answerer_id=PEER),  # for another member
        Greeting(offerer_id=ME, answerer_id=ME),
        Offer(offerer_id=PEER, answerer_id="10.0.0.3", offer="o"),
        Offer(offerer_id=ME, answerer_id=ME, offer="o"),
        Offer(offerer_id="10.0.1.2", answerer_id=ME, offer="o"),  # another subnet
        Answer(offerer_id=PEER, answerer_id=ME, answer="a"),  # we never offered as PEER
        Candidate(offerer_id=ME, answerer_id=PEER, candidate="c"),  # our own candidate
        Goodbye(id=ME),
    ],
)
def test_peer_messages_meant_for_others_are_rejected(message: Message) -> None:
    assert_rejected(joined(), message)


def test_outgoing_peer_messages() -> None:
    client = joined()
    assert client.offer(PEER, "sdp") == Offer(offerer_id=ME, answerer_id=PEER, offer="sdp")
    assert client.answer(PEER, "sdp") == Answer(offerer_id=PEER, answerer_id=ME, answer="sdp")
    assert client.candidate(PEER, "c") == Candidate(offerer_id=ME, answerer_id=PEER, candidate="c")
    for build in (client.offer, client.answer, client.candidate):
        with pytest.raises(LocalProtocolError):
            build(ME, "x")  # to ourselves
        with pytest.raises(LocalProtocolError):
            build("not an id", "x")
        with pytest.raises(LocalProtocolError):
            build(PEER, "")  # empty SDP / candidate
        with pytest.raises(LocalProtocolError):
            SignalingClientProtocol().offer(PEER, "x")  # not joined


def test_goodbye_removes_the_peer_and_its_aliases_in_either_order() -> None:
    def with_peer_aliases() -> SignalingClientProtocol:
        client = joined()
        client.receive(Greeting(offerer_id=ME, answerer_id=PEER))
        client.receive(Alias(id=PEER, alias=f"{PEER}:80", set=True))
        client.receive(Alias(id=PEER, alias=f"{PEER}:0", set=True))
        return client

    removals = [
        Alias(id=PEER, alias=f"{PEER}:80", set=False),
        Alias(id=PEER, alias=f"{PEER}:0", set=False),
    ]
    goodbye_first = with_peer_aliases()
    events = goodbye_first.receive(Goodbye(id=PEER))
    for message in removals:
        events += goodbye_first.receive(message)
    goodbye_last = with_peer_aliases()
    other_events = []
    for message in removals:
        other_events += goodbye_last.receive(message)
    other_events += goodbye_last.receive(Goodbye(id=PEER))
    expected = {
        AliasRemoved(owner_id=PEER, alias=f"{PEER}:80"),
        AliasRemoved(owner_id=PEER, alias=f"{PEER}:0"),
        PeerLeft(peer_id=PEER),
    }
    assert len(events) == len(other_events) == 3
    assert set(events) == set(other_events) == expected
    for client in (goodbye_first, goodbye_last):
        assert client.aliases == {} and client.peers == frozenset()


# --- the alias table ------------------------------------------------------------------


def test_alias_table_updates() -> None:
    client = joined()
    alias = f"{PEER}:80"
    assert client.receive(Alias(id=PEER, alias=alias, set=True)) == [
        AliasAdded(owner_id=PEER, alias=alias)
    ]
    assert client.receive(Alias(id=PEER, alias=alias, set=True)) == []  # nothing new
    assert client.receive(Alias(id="10.0.0.3", alias=alias, set=True)) == [
        AliasRemoved(owner_id=PEER, alias=alias),
        AliasAdded(owner_id="10.0.0.3", alias=alias),
    ]
    assert client.receive(Alias(id=PEER, alias=alias, set=False)) == []  # not PEER's any more
    assert client.receive(Alias(id="10.0.0.3", alias=alias, set=False)) == [
        AliasRemoved(owner_id="10.0.0.3", alias=alias)
    ]
    assert client.receive(Alias(id=PEER, alias=f"{PEER}:9", set=False)) == []  # never seen
    assert client.aliases == {}


# --- bind and shutdown ----------------------------------------------------------------


def test_bind_succeeds() -> None:
    client = joined()
    request, messages = client.bind(f"{ME}:1234")
    assert request == Request(kind=RequestKind.BIND, alias=f"{ME}:1234", number=request.number)
    assert messages == [Bind(id=ME, alias=f"{ME}:1234")]
    assert client.pending_requests == (request,)
    assert client.receive(Alias(id=ME, alias=f"{ME}:1234", set=True)) == [
        BindSucceeded(request=request, alias=f"{ME}:1234")
    ]
    assert client.bound_aliases == {f"{ME}:1234"}
    assert client.aliases == {f"{ME}:1234": ME}
    assert client.pending_requests == ()


def test_bind_rejected() -> None:
    client = joined()
    request, _ = client.bind(f"{ME}:1234")
    assert client.receive(Alias(id=ME, alias=f"{ME}:1234", set=False)) == [
        BindRejected(request=request, alias=f"{ME}:1234")
    ]
    assert client.bound_aliases == frozenset() and client.pending_requests == ()


def test_bind_rejected_says_when_the_server_named_a_members_address() -> None:
    """Ours adds ``isMemberAddress`` to the refusal; an original server's lacks it."""
    client = joined()
    ours, _ = client.bind("10.0.0.7:80")  # a member we were never introduced to (lazy links)
    refusal = Alias(id=ME, alias="10.0.0.7:80", set=False, is_member_address=True)
    assert client.receive(refusal) == [
        BindRejected(request=ours, alias="10.0.0.7:80", member_address=True)
    ]
    original, _ = client.bind("10.0.0.7:81")
    assert client.receive(Alias(id=ME, alias="10.0.0.7:81", set=False)) == [
        BindRejected(request=original, alias="10.0.0.7:81", member_address=False)
    ]


def test_bind_rejected_keeps_an_alias_we_already_hold() -> None:
    client = joined()
    client.bind(f"{ME}:1")
    client.receive(Alias(id=ME, alias=f"{ME}:1", set=True))
    again, _ = client.bind(f"{ME}:1")
    assert client.receive(Alias(id=ME, alias=f"{ME}:1", set=False)) == [
        BindRejected(request=again, alias=f"{ME}:1")
    ]
    assert client.bound_aliases == {f"{ME}:1"}


@pytest.mark.parametrize("alias", [f"{PEER}:1", "10.0.0.1", "10.0.0.1:70000", ""])
def test_bind_and_shutdown_need_an_alias_not_on_a_peers_address(alias: str) -> None:
    client = joined()
    client.receive(Greeting(offerer_id=ME, answerer_id=PEER))
    with pytest.raises(LocalProtocolError):
        client.bind(alias)
    with pytest.raises(LocalProtocolError):
        client.shutdown(alias)
    assert client.pending_requests == ()


def test_binding_an_address_that_is_no_nodes_id() -> None:
    """The original's C server binds 127.0.0.1:1234 whatever its id (docs/protocol.md, "Bind")."""
    client = joined()
    request, messages = client.bind("127.0.0.1:1234")
    assert messages == [Bind(id=ME, alias="127.0.0.1:1234")]
    assert client.receive(Alias(id=ME, alias="127.0.0.1:1234", set=True)) == [
        BindSucceeded(request=request, alias="127.0.0.1:1234")
    ]
    assert client.bound_aliases == {"127.0.0.1:1234"}
    assert client.accept("127.0.0.1:1234") == [Accepting(id=ME, alias="127.0.0.1:1234")]
    # connecting to it from this node: the listener's copy of our connection alias is an echo
    connect, _ = client.connect("127.0.0.1:1234", CID)
    assert (
        client.receive(
            Alias(
                id=ME, alias=f"{ME}:0", set=True, client_connection_id=CID, is_connection_alias=True
            )
        )
        == []
    )
    assert client.receive(Alias(id=ME, alias=f"{ME}:0", set=True)) == []
    assert client.receive(Accept(bound_alias="127.0.0.1:1234", client_alias=f"{ME}:0")) == [
        IncomingConnection(bound_alias="127.0.0.1:1234", client_alias=f"{ME}:0")
    ]
    assert client.receive(
        Alias(id=ME, alias="127.0.0.1:1234", set=True, client_connection_id=CID)
    ) == [
        ConnectSucceeded(
            request=connect, local_alias=f"{ME}:0", remote_alias="127.0.0.1:1234", remote_id=ME
        )
    ]


def test_shutdown_only_of_our_id_or_of_an_alias_we_hold() -> None:
    """A stale alias of another address (a previous id's) is never sent: the server would
    close us for spoofing once that address is another node's id."""
    client = joined()
    with pytest.raises(LocalProtocolError):
        client.shutdown("10.0.0.7:8")
    client.bind("127.0.0.1:80")  # pending: a shutdown may follow it
    _, messages = client.shutdown("127.0.0.1:80")
    assert messages == [Shutdown(id=ME, alias="127.0.0.1:80")]
    assert client.pending_requests != ()


def test_a_connect_names_the_holder_of_a_claimed_alias() -> None:
    client = joined()
    connect, _ = client.connect("127.0.0.1:1234", CID)
    client.receive(
        Alias(id=ME, alias=f"{ME}:0", set=True, client_connection_id=CID, is_connection_alias=True)
    )
    events = client.receive(
        Alias(id=PEER, alias="127.0.0.1:1234", set=True, client_connection_id=CID)
    )
    assert events[-1] == ConnectSucceeded(
        request=connect, local_alias=f"{ME}:0", remote_alias="127.0.0.1:1234", remote_id=PEER
    )
    assert client.aliases["127.0.0.1:1234"] == PEER


def test_requests_need_a_join() -> None:
    client = SignalingClientProtocol()
    for call in (
        lambda: client.bind(f"{ME}:1"),
        lambda: client.shutdown(f"{ME}:1"),
        lambda: client.accept(f"{ME}:1"),
        lambda: client.connect(f"{PEER}:1"),
    ):
        with pytest.raises(LocalProtocolError):
            call()


def test_shutdown_succeeds_and_is_rejected() -> None:
    client = joined()
    client.bind(f"{ME}:1")
    client.receive(Alias(id=ME, alias=f"{ME}:1", set=True))
    client.accept(f"{ME}:1")
    request, messages = client.shutdown(f"{ME}:1")
    assert messages == [Shutdown(id=ME, alias=f"{ME}:1")]
    assert client.receive(Alias(id=ME, alias=f"{ME}:1", set=False)) == [
        ShutdownSucceeded(request=request, alias=f"{ME}:1")
    ]
    assert client.bound_aliases == client.accepting_aliases == frozenset()
    assert client.aliases == {}
    rejected, _ = client.shutdown(f"{ME}:2")
    assert client.receive(Alias(id=ME, alias=f"{ME}:2", set=True)) == [
        ShutdownRejected(request=rejected, alias=f"{ME}:2")
    ]
    assert client.aliases == {}


def test_answers_for_the_same_alias_match_requests_in_order() -> None:
    client = joined()
    alias = f"{ME}:7"
    bind, _ = client.bind(alias)
    shutdown, _ = client.shutdown(alias)
    rebind, _ = client.bind(alias)
    other, _ = client.bind(f"{ME}:8")
    assert client.receive(Alias(id=ME, alias=f"{ME}:8", set=True)) == [
        BindSucceeded(request=other, alias=f"{ME}:8")
    ]
    assert client.receive(Alias(id=ME, alias=alias, set=True)) == [
        BindSucceeded(request=bind, alias=alias)
    ]
    assert client.receive(Alias(id=ME, alias=alias, set=False)) == [
        ShutdownSucceeded(request=shutdown, alias=alias)
    ]
    assert client.receive(Alias(id=ME, alias=alias, set=True)) == [
        BindSucceeded(request=rebind, alias=alias)
    ]
    assert len({bind, shutdown, rebind, other}) == 4


def test_unsolicited_aliases_of_ours_are_tracked() -> None:
    client = joined()
    assert client.receive(Alias(id=ME, alias=f"{ME}:5", set=True)) == [
        AliasAdded(owner_id=ME, alias=f"{ME}:5")
    ]
    assert client.receive(Alias(id=ME, alias=f"{ME}:5", set=False)) == [
        AliasRemoved(owner_id=ME, alias=f"{ME}:5")
    ]
    assert client.aliases == {} and client.bound_aliases == frozenset()


# --- accept ---------------------------------------------------------------------------


def test_accept_and_incoming_connection() -> None:
    client = joined()
    with pytest.raises(LocalProtocolError):
        client.accept(f"{ME}:80")  # not bound
    client.bind(f"{ME}:80")
    client.receive(Alias(id=ME, alias=f"{ME}:80", set=True))
    assert client.accept(f"{ME}:80") == [Accepting(id=ME, alias=f"{ME}:80")]
    assert client.accepting_aliases == {f"{ME}:80"}
    # The server tells the listener about the connection alias, then accepts.
    assert client.receive(Alias(id=PEER, alias=f"{PEER}:0", set=True)) == [
        AliasAdded(owner_id=PEER, alias=f"{PEER}:0")
    ]
    assert client.receive(Accept(bound_alias=f"{ME}:80", client_alias=f"{PEER}:0")) == [
        IncomingConnection(bound_alias=f"{ME}:80", client_alias=f"{PEER}:0")
    ]
    assert client.accepting_aliases == frozenset()
    # A server that keeps the alias accepting (the original) may send more: never lost.
    assert client.receive(Accept(bound_alias=f"{ME}:80", client_alias=f"{PEER}:1")) == [
        IncomingConnection(bound_alias=f"{ME}:80", client_alias=f"{PEER}:1")
    ]
    assert_rejected(client, Accept(bound_alias=f"{ME}:81", client_alias=f"{PEER}:2"))


# --- connect --------------------------------------------------------------------------


def connect_answers(local: str = f"{ME}:0", remote: str = f"{PEER}:80") -> tuple[Alias, Alias]:
    """The two aliases the connecting node gets for an accepted connect (local, remote)."""
    return (
        Alias(id=ME, alias=local, set=True, client_connection_id=CID, is_connection_alias=True),
        Alias(id=PEER, alias=remote, set=True, client_connection_id=CID),
    )


@pytest.mark.parametrize("reverse", [False, True], ids=["local-first", "remote-first"])
def test_connect_succeeds_after_two_aliases(reverse: bool) -> None:
    client = joined()
    request, messages = client.connect(f"{PEER}:80", connection_id=CID)
    assert request.kind is RequestKind.CONNECT and request.connection_id == CID
    assert messages == [Connect(id=ME, client_connection_id=CID, remote_alias=f"{PEER}:80")]
    local, remote = connect_answers()
    first, second = (remote, local) if reverse else (local, remote)
    first_events = client.receive(first)
    assert client.pending_requests == (request,)
    events = first_events + client.receive(second)
    assert events == [
        AliasAdded(owner_id=PEER, alias=f"{PEER}:80"),
        ConnectSucceeded(
            request=request, local_alias=f"{ME}:0", remote_alias=f"{PEER}:80", remote_id=PEER
        ),
    ]
    assert client.connection_aliases == {f"{ME}:0"}
    assert client.pending_requests == ()
    # The connection alias is ours to shut down.
    shutdown, _ = client.shutdown(f"{ME}:0")
    assert client.receive(Alias(id=ME, alias=f"{ME}:0", set=False)) == [
        ShutdownSucceeded(request=shutdown, alias=f"{ME}:0")
    ]
    assert client.connection_aliases == frozenset()


def test_connect_picks_a_uuid() -> None:
    client = joined()
    first, _ = client.connect(f"{PEER}:80")
    second, _ = client.connect(f"{PEER}:80")
    assert first.connection_id != second.connection_id
    assert first.connection_id is not None and len(first.connection_id) == 36
    with pytest.raises(LocalProtocolError):
        client.connect(f"{PEER}:80", connection_id=first.connection_id)


def test_connect_refused() -> None:
    client = joined()
    request, _ = client.connect(f"{PEER}:80", connection_id=CID)
    refusal = Alias(id=ME, alias=f"{ME}:0", set=False, client_connection_id=CID)
    assert client.receive(refusal) == [ConnectRefused(request=request, remote_alias=f"{PEER}:80")]
    assert client.connection_aliases == frozenset() and client.pending_requests == ()
    assert_rejected(client, refusal)  # answered already


def test_connect_nonsense_is_rejected() -> None:
    client = joined()
    client.connect(f"{PEER}:80", connection_id=CID)
    local, remote = connect_answers()
    assert_rejected(client, Alias(id=ME, alias=f"{ME}:0", set=True, client_connection_id="other"))
    assert_rejected(client, connect_answers(remote=f"{PEER}:81")[1])  # not what we asked for
    assert_rejected(client, connect_answers(local=f"{PEER}:0")[0])  # a local alias not ours
    assert_rejected(client, Alias(id=PEER, alias=f"{ME}:0", set=False, client_connection_id=CID))
    client.receive(local)
    assert_rejected(client, local)  # twice
    assert_rejected(client, Alias(id=ME, alias=f"{ME}:0", set=False, client_connection_id=CID))
    assert [type(e) for e in client.receive(remote)] == [AliasAdded, ConnectSucceeded]


def test_connect_to_ourselves() -> None:
    """Connecting to our own listener: the server's four messages all come to us."""
    client = joined()
    client.bind(f"{ME}:80")
    client.receive(Alias(id=ME, alias=f"{ME}:80", set=True))
    client.accept(f"{ME}:80")
    request, _ = client.connect(f"{ME}:80", connection_id=CID)
    events = []
    for message in (
        Alias(id=ME, alias=f"{ME}:0", set=True, client_connection_id=CID, is_connection_alias=True),
        Alias(id=ME, alias=f"{ME}:0", set=True),
        Accept(bound_alias=f"{ME}:80", client_alias=f"{ME}:0"),
        Alias(id=ME, alias=f"{ME}:80", set=True, client_connection_id=CID),
    ):
        events += client.receive(message)
    assert events == [
        IncomingConnection(bound_alias=f"{ME}:80", client_alias=f"{ME}:0"),
        ConnectSucceeded(
            request=request, local_alias=f"{ME}:0", remote_alias=f"{ME}:80", remote_id=ME
        ),
    ]
    assert client.bound_aliases == {f"{ME}:80"} and client.connection_aliases == {f"{ME}:0"}


def test_connect_to_ourselves_with_a_bind_of_the_same_port_in_flight() -> None:
    """The listener copy of our connection alias is not the answer to our bind of it."""
    client = joined()
    client.bind(f"{ME}:80")
    client.receive(Alias(id=ME, alias=f"{ME}:80", set=True))
    client.accept(f"{ME}:80")
    connect, _ = client.connect(f"{ME}:80", connection_id=CID)
    bind, _ = client.bind(f"{ME}:0")  # sent after the connect: the server refuses it
    events = []
    for message in (
        Alias(id=ME, alias=f"{ME}:0", set=True, client_connection_id=CID, is_connection_alias=True),
        Alias(id=ME, alias=f"{ME}:0", set=True),
        Accept(bound_alias=f"{ME}:80", client_alias=f"{ME}:0"),
        Alias(id=ME, alias=f"{ME}:80", set=True, client_connection_id=CID),
        Alias(id=ME, alias=f"{ME}:0", set=False),
    ):
        events += client.receive(message)
    assert events == [
        IncomingConnection(bound_alias=f"{ME}:80", client_alias=f"{ME}:0"),
        ConnectSucceeded(
            request=connect, local_alias=f"{ME}:0", remote_alias=f"{ME}:80", remote_id=ME
        ),
        BindRejected(request=bind, alias=f"{ME}:0"),
    ]
    assert client.connection_aliases == {f"{ME}:0"}


# --- cancellation ---------------------------------------------------------------------


def test_cancelled_bind_late_success_is_undone() -> None:
    client = joined()
    request, _ = client.bind(f"{ME}:1")
    assert client.cancel(request) == []
    assert client.cancel(request) == []  # idempotent
    assert client.pending_requests == ()
    events = client.receive(Alias(id=ME, alias=f"{ME}:1", set=True))
    undo = Shutdown(id=ME, alias=f"{ME}:1")
    assert events == [CancelledRequestSucceeded(request=request, alias=f"{ME}:1", undo=undo)]
    assert client.bound_aliases == {f"{ME}:1"}  # until the undo is answered
    assert client.receive(Alias(id=ME, alias=f"{ME}:1", set=False)) == []
    assert client.bound_aliases == frozenset() and client.aliases == {}
    with pytest.raises(LocalProtocolError):
        client.cancel(request)  # finished


def test_cancelled_bind_late_rejection_is_absorbed() -> None:
    client = joined()
    request, _ = client.bind(f"{ME}:1")
    client.cancel(request)
    assert client.receive(Alias(id=ME, alias=f"{ME}:1", set=False)) == []
    # The next answer for that alias is an ordinary one again.
    assert client.receive(Alias(id=ME, alias=f"{ME}:1", set=True)) == [
        AliasAdded(owner_id=ME, alias=f"{ME}:1")
    ]


def test_cancelled_shutdown_still_takes_effect() -> None:
    client = joined()
    client.bind(f"{ME}:1")
    client.receive(Alias(id=ME, alias=f"{ME}:1", set=True))
    request, _ = client.shutdown(f"{ME}:1")
    assert client.cancel(request) == []
    assert client.receive(Alias(id=ME, alias=f"{ME}:1", set=False)) == [
        AliasRemoved(owner_id=ME, alias=f"{ME}:1")
    ]
    assert client.bound_aliases == frozenset()
    rejected, _ = client.shutdown(f"{ME}:2")
    client.cancel(rejected)
    assert client.receive(Alias(id=ME, alias=f"{ME}:2", set=True)) == []


@pytest.mark.parametrize("reverse", [False, True], ids=["local-first", "remote-first"])
def test_cancelled_connect_late_success_is_undone(reverse: bool) -> None:
    client = joined()
    request, _ = client.connect(f"{PEER}:80", connection_id=CID)
    assert client.cancel(request) == []
    local, remote = connect_answers()
    events = []
    for message in (remote, local) if reverse else (local, remote):
        events += client.receive(message)
    undo = Shutdown(id=ME, alias=f"{ME}:0")
    assert CancelledRequestSucceeded(request=request, alias=f"{ME}:0", undo=undo) in events
    assert not any(isinstance(e, ConnectSucceeded) for e in events)
    assert client.receive(Alias(id=ME, alias=f"{ME}:0", set=False)) == []
    assert client.connection_aliases == frozenset()
    assert client.pending_requests == ()


def test_cancel_after_the_local_alias_returns_the_undo() -> None:
    client = joined()
    request, _ = client.connect(f"{PEER}:80", connection_id=CID)
    local, remote = connect_answers()
    assert client.receive(local) == []
    assert client.cancel(request) == [Shutdown(id=ME, alias=f"{ME}:0")]
    assert client.cancel(request) == []
    assert client.receive(remote) == [AliasAdded(owner_id=PEER, alias=f"{PEER}:80")]
    assert client.receive(Alias(id=ME, alias=f"{ME}:0", set=False)) == []
    assert client.connection_aliases == frozenset()


def test_cancelled_connect_late_refusal_is_absorbed() -> None:
    client = joined()
    request, _ = client.connect(f"{PEER}:80", connection_id=CID)
    client.cancel(request)
    assert client.receive(Alias(id=ME, alias=f"{ME}:0", set=False, client_connection_id=CID)) == []
    with pytest.raises(LocalProtocolError):
        client.cancel(request)


def test_a_later_bind_adopts_a_cancelled_bind() -> None:
    """bind, cancel, bind again: the server refuses the second bind because of the first."""
    client = joined()
    first, _ = client.bind(f"{ME}:1")
    client.cancel(first)
    second, _ = client.bind(f"{ME}:1")
    assert client.receive(Alias(id=ME, alias=f"{ME}:1", set=True)) == []  # no undo
    assert client.receive(Alias(id=ME, alias=f"{ME}:1", set=False)) == [
        BindSucceeded(request=second, alias=f"{ME}:1")
    ]
    assert client.bound_aliases == {f"{ME}:1"} and client.pending_requests == ()


def test_an_adopting_bind_cancelled_too_is_undone() -> None:
    client = joined()
    first, _ = client.bind(f"{ME}:1")
    client.cancel(first)
    second, _ = client.bind(f"{ME}:1")
    client.receive(Alias(id=ME, alias=f"{ME}:1", set=True))
    client.cancel(second)
    undo = Shutdown(id=ME, alias=f"{ME}:1")
    assert client.receive(Alias(id=ME, alias=f"{ME}:1", set=False)) == [
        CancelledRequestSucceeded(request=second, alias=f"{ME}:1", undo=undo)
    ]
    assert client.receive(Alias(id=ME, alias=f"{ME}:1", set=False)) == []
    assert client.bound_aliases == frozenset()


def test_a_later_shutdown_releases_a_cancelled_bind() -> None:
    client = joined()
    bind, _ = client.bind(f"{ME}:1")
    client.cancel(bind)
    shutdown, _ = client.shutdown(f"{ME}:1")
    assert client.receive(Alias(id=ME, alias=f"{ME}:1", set=True)) == []  # no undo
    assert client.receive(Alias(id=ME, alias=f"{ME}:1", set=False)) == [
        ShutdownSucceeded(request=shutdown, alias=f"{ME}:1")
    ]
    assert client.bound_aliases == frozenset()


def test_a_later_shutdown_releases_a_cancelled_connection() -> None:
    """connect, cancel, then shutdown and bind of the port the server gave the connection."""
    client = joined()
    connect, _ = client.connect(f"{PEER}:80", connection_id=CID)
    client.cancel(connect)
    shutdown, _ = client.shutdown(f"{ME}:0")
    bind, _ = client.bind(f"{ME}:0")
    local, remote = connect_answers()
    events = client.receive(local) + client.receive(remote)
    assert events == [AliasAdded(owner_id=PEER, alias=f"{PEER}:80")]  # no undo: see below
    assert client.receive(Alias(id=ME, alias=f"{ME}:0", set=False)) == [
        ShutdownSucceeded(request=shutdown, alias=f"{ME}:0")
    ]
    assert client.receive(Alias(id=ME, alias=f"{ME}:0", set=True)) == [
        BindSucceeded(request=bind, alias=f"{ME}:0")
    ]
    assert client.bound_aliases == {f"{ME}:0"} and client.connection_aliases == frozenset()


def test_cancel_unknown_request() -> None:
    with pytest.raises(LocalProtocolError):
        joined().cancel(Request(kind=RequestKind.BIND, alias=f"{ME}:1", number=99))


# --- losing the connection ------------------------------------------------------------


def test_connection_lost_fails_pending_requests() -> None:
    client = joined()
    client.receive(Greeting(offerer_id=ME, answerer_id=PEER))
    client.bind(f"{ME}:1")
    client.receive(Alias(id=ME, alias=f"{ME}:1", set=True))
    bind, _ = client.bind(f"{ME}:2")
    connect, _ = client.connect(f"{PEER}:80", connection_id=CID)
    cancelled, _ = client.bind(f"{ME}:3")
    client.cancel(cancelled)
    assert client.connection_lost("gone") == [
        Disconnected(id=ME, reason="gone"),
        RequestFailed(request=bind, reason="gone"),
        RequestFailed(request=connect, reason="gone"),
    ]
    assert client.join_state is JoinState.IDLE and client.id is None
    assert client.aliases == {} and client.bound_aliases == frozenset()
    assert client.peers == frozenset() and client.pending_requests == ()
    assert client.connection_lost() == []  # idempotent
    with pytest.raises(LocalProtocolError):
        client.cancel(bind)


def test_connection_lost_while_knocking() -> None:
    client = SignalingClientProtocol()
    client.knock()
    assert client.connection_lost() == []
    assert client.join_state is JoinState.IDLE


def test_rejoin_with_the_same_id() -> None:
    client = joined()
    client.connection_lost()
    client.knock()
    assert client.receive(Acknowledged(id=ME, rejected=False)) == [
        Joined(id=ME),
        Reconnected(id=ME),
    ]


def test_rejoin_with_another_id_after_a_failed_attempt() -> None:
    client = joined()
    client.connection_lost()
    client.knock()
    client.receive(Acknowledged(id=REJECTED_ID, rejected=True))
    client.connection_lost()
    client.knock()
    assert client.receive(Acknowledged(id=PEER, rejected=False)) == [
        Joined(id=PEER),
        IdChanged(old_id=ME, new_id=PEER),
        Reconnected(id=PEER),
    ]
    client.connection_lost()
    client.knock()
    assert client.receive(Acknowledged(id=PEER, rejected=False)) == [
        Joined(id=PEER),
        Reconnected(id=PEER),
    ]


# --- events and tables ----------------------------------------------------------------


def test_events_validate_their_fields() -> None:
    with pytest.raises(LocalProtocolError):
        Joined(id="nope")
    with pytest.raises(LocalProtocolError):
        Request(kind=RequestKind.BIND, alias=f"{ME}:1", number=1, connection_id=CID)
    with pytest.raises(LocalProtocolError):
        Request(kind=RequestKind.CONNECT, alias=f"{ME}:1", number=1)
    with pytest.raises(LocalProtocolError):
        Request(kind=RequestKind.BIND, alias=f"{ME}:1", number=0)
    with pytest.raises(LocalProtocolError):
        OfferReceived(peer_id=PEER, sdp="")


def test_render_mermaid_draws_every_transition() -> None:
    text = render_mermaid()
    assert text.count("stateDiagram-v2") == 2
    for table in (JOIN_TRANSITIONS, REQUEST_TRANSITIONS):
        for (state, event), target in table.items():
            assert f"{state.value} --> {target.value}: " in text
            assert event.value in text


# --- the recorded session of the original implementation ------------------------------


def test_replays_the_original_session(vectors_dir: Path) -> None:
    """Both recorded nodes: we send the same frames, byte for byte, and understand theirs."""
    lines = (vectors_dir / "original-session.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    clients = {"ws1": SignalingClientProtocol(subnet="10.0.0"), "ws2": SignalingClientProtocol()}
    events: dict[str, list[Any]] = {"ws1": [], "ws2": []}
    for record in records:
        conn, client = record["conn"], clients[record["conn"]]
        if record.get("event") == "close":
            client.connection_lost()
            continue
        if "frame" not in record:
            continue
        if record["dir"] == "server->client":
            events[conn] += client.receive_data(record["frame"])
            continue
        sent = decode(record["frame"])
        ours: Message
        if isinstance(sent, Knock):
            ours = client.knock()
        elif isinstance(sent, Bind):
            ours = client.bind(sent.alias)[1][0]
        elif isinstance(sent, Accepting):
            ours = client.accept(sent.alias)[0]
        elif isinstance(sent, Connect):
            ours = client.connect(sent.remote_alias, sent.client_connection_id)[1][0]
        elif isinstance(sent, Offer):
            ours = client.offer(sent.answerer_id, sent.offer)
        elif isinstance(sent, Answer):
            ours = client.answer(sent.offerer_id, sent.answer)
        else:
            assert isinstance(sent, Candidate)
            ours = client.candidate(sent.answerer_id, sent.candidate)
        assert encode(ours) == record["frame"]
    kinds = {conn: [type(e).__name__ for e in evs] for conn, evs in events.items()}
    assert kinds["ws1"][:5] == [
        "Joined",
        "BindSucceeded",
        "PeerGreeted",
        "AliasAdded",
        "IncomingConnection",
    ]
    assert kinds["ws1"][-2:] == ["AliasRemoved", "PeerLeft"]  # goodbye came first
    assert kinds["ws2"][:4] == ["Joined", "AliasAdded", "ConnectSucceeded", "OfferReceived"]
    connected = next(e for e in events["ws2"] if isinstance(e, ConnectSucceeded))
    assert (connected.local_alias, connected.remote_alias) == ("10.0.0.1:0", "10.0.0.0:1234")
    assert (
        IncomingConnection(bound_alias="10.0.0.0:1234", client_alias="10.0.0.1:0") in events["ws1"]
    )
    assert "AnswerReceived" in kinds["ws1"] and "CandidateReceived" in kinds["ws2"]
