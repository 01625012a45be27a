"""The server's transition tables: the server does what they say, for every state and input.

Like h2's tests/test_state_machines.py: every pair is tried, so a row added
to (or missing from) a table without the server following it fails here.
"""

from __future__ import annotations

import pytest

from unisockets.protocol.errors import RemoteProtocolError
from unisockets.protocol.messages import (
    MESSAGE_TYPES,
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
from unisockets.protocol.server import SignalingServerProtocol
from unisockets.protocol.server_states import (
    ALIAS_MACHINE,
    ALIAS_TRANSITIONS,
    CLIENT_MACHINE,
    CLIENT_TRANSITIONS,
    AliasInput,
    AliasState,
    ClientInput,
    ClientState,
    render_mermaid,
)

Server = SignalingServerProtocol[str]
A, B = "10.0.0.1", "10.0.0.2"
CID = "0d2c7a3e-6a53-4d0c-9a51-0d8d8f4b8a11"

#: One valid message of every opcode, as client a (10.0.0.1) would send it with b (10.0.0.2)
#: joined and listening on 10.0.0.2:1.
VALID_FROM_A: dict[str, Message] = {
    "knock": Knock(subnet="10.0.0"),
    "acknowledged": Acknowledged(id=A, rejected=False),
    "greeting": Greeting(offerer_id=A, answerer_id=B),
    "offer": Offer(offerer_id=A, answerer_id=B, offer="v=0\r\n"),
    "answer": Answer(offerer_id=B, answerer_id=A, answer="v=0\r\n"),
    "candidate": Candidate(offerer_id=A, answerer_id=B, candidate="{}"),
    "bind": Bind(id=A, alias=f"{A}:1"),
    "alias": Alias(id=A, alias=f"{A}:1", set=True),
    "accepting": Accepting(id=A, alias=f"{A}:1"),
    "accept": Accept(bound_alias=f"{B}:1", client_alias=f"{A}:0"),
    "connect": Connect(id=A, client_connection_id=CID, remote_alias=f"{B}:1"),
    "shutdown": Shutdown(id=A, alias=f"{A}:1"),
    "goodbye": Goodbye(id=B),
}


def test_valid_messages_cover_every_opcode() -> None:
    assert set(VALID_FROM_A) == set(MESSAGE_TYPES)


@pytest.mark.parametrize("state", [ClientState.CONNECTED, ClientState.JOINED])
@pytest.mark.parametrize("opcode", sorted(MESSAGE_TYPES))
def test_client_table_decides_every_state_and_opcode(state: ClientState, opcode: str) -> None:
    server: Server = SignalingServerProtocol()
    server.client_connected("a")
    server.client_connected("b")
    if state is ClientState.JOINED:
        server.receive("a", Knock(subnet="10.0.0"))
    server.receive("b", Knock(subnet="10.0.0"))
    b_id = server.member_id("b")
    assert b_id == (B if state is ClientState.JOINED else A)
    server.receive("b", Bind(id=b_id, alias=f"{b_id}:1"))
    server.receive("b", Accepting(id=b_id, alias=f"{b_id}:1"))
    message = VALID_FROM_A[opcode]
    event = next((i for i in ClientInput if i.value == opcode), None)
    target = CLIENT_TRANSITIONS.get((state, event)) if event is not None else None
    if target is None:
        with pytest.raises(RemoteProtocolError):
            server.receive("a", message)
        assert server.client_state("a") is state
    else:
        server.receive("a", message)
        assert server.client_state("a") is target


@pytest.mark.parametrize("joined", [False, True])
def test_client_table_close(joined: bool) -> None:
    server: Server = SignalingServerProtocol()
    server.client_connected("a")
    if joined:
        server.receive("a", Knock(subnet="10.0.0"))
    state = server.client_state("a")
    server.client_disconnected("a")
    assert server.client_state("a") is CLIENT_TRANSITIONS[(state, ClientInput.CLOSE)]


def test_client_table_rejected_knock() -> None:
    server: Server = SignalingServerProtocol(suffixes=range(1, 2))
    for key in ("a", "b"):
        server.client_connected(key)
        out = server.receive(key, Knock(subnet="10.0.0"))
    assert out == [("b", Acknowledged(id=REJECTED_ID, rejected=True))]
    expected = CLIENT_TRANSITIONS[(ClientState.CONNECTED, ClientInput.KNOCK_REJECTED)]
    assert server.client_state("b") is expected


def test_client_table_has_no_server_opcodes_and_every_open_state_can_close() -> None:
    server_only = {"acknowledged", "greeting", "alias", "accept", "goodbye"}
    assert not server_only & {event.value for _, event in CLIENT_TRANSITIONS}
    for state in ClientState:
        if state is not ClientState.CLOSED:
            assert (state, ClientInput.CLOSE) in CLIENT_TRANSITIONS
    assert not any(state is ClientState.CLOSED for state, _ in CLIENT_TRANSITIONS)


# -- alias table ---------------------------------------------------------------------

ALIAS = f"{A}:0"


def _alias_in(state: AliasState) -> Server:
    """a = 10.0.0.1 holds 10.0.0.1:0 in ``state``; b = 10.0.0.2 listens on 10.0.0.2:1."""
    server: Server = SignalingServerProtocol()
    for key in ("a", "b"):
        server.client_connected(key)
        server.receive(key, Knock(subnet="10.0.0"))
    server.receive("b", Bind(id=B, alias=f"{B}:1"))
    server.receive("b", Accepting(id=B, alias=f"{B}:1"))
    if state in (AliasState.BOUND, AliasState.ACCEPTING):
        server.receive("a", Bind(id=A, alias=ALIAS))
    if state is AliasState.ACCEPTING:
        server.receive("a", Accepting(id=A, alias=ALIAS))
    if state is AliasState.CONNECTION:
        server.receive("a", Connect(id=A, client_connection_id=CID, remote_alias=f"{B}:1"))
    assert _state(server) is state
    return server


def _state(server: Server) -> AliasState:
    info = server.aliases.get(ALIAS)
    return AliasState.FREE if info is None else info.state


@pytest.mark.parametrize("state", list(AliasState))
@pytest.mark.parametrize("event", [e for e in AliasInput if e is not AliasInput.CONNECT])
def test_alias_table_decides_every_state_and_input(state: AliasState, event: AliasInput) -> None:
    server = _alias_in(state)
    target = ALIAS_TRANSITIONS.get((state, event))
    if event is AliasInput.BIND:
        out = server.receive("a", Bind(id=A, alias=ALIAS))
        refused = [("a", Alias(id=A, alias=ALIAS, set=False))]
        assert (out == refused) is (target is None)
    elif event is AliasInput.ACCEPTING:
        assert server.receive("a", Accepting(id=A, alias=ALIAS)) == []
    elif event is AliasInput.ACCEPT:
        out = server.receive("b", Connect(id=B, client_connection_id=CID, remote_alias=ALIAS))
        assert len(out) == (1 if target is None else 4)
    elif event is AliasInput.SHUTDOWN:
        out = server.receive("a", Shutdown(id=A, alias=ALIAS))
        refused = [("a", Alias(id=A, alias=ALIAS, set=True))]
        assert (out == refused) is (target is None)
    else:
        out = server.client_disconnected("a")
        told = ("b", Alias(id=A, alias=ALIAS, set=False)) in out
        assert told is (target is not None)
    assert _state(server) is (state if target is None else target)


def test_alias_table_connect_allocates_a_free_port_as_connection_alias() -> None:
    server = _alias_in(AliasState.FREE)
    server.receive("a", Connect(id=A, client_connection_id=CID, remote_alias=f"{B}:1"))
    assert _state(server) is ALIAS_TRANSITIONS[(AliasState.FREE, AliasInput.CONNECT)]


def test_alias_table_every_held_state_is_freed_by_leave_and_shutdown() -> None:
    for state in AliasState:
        if state is not AliasState.FREE:
            assert ALIAS_TRANSITIONS[(state, AliasInput.LEAVE)] is AliasState.FREE
            assert ALIAS_TRANSITIONS[(state, AliasInput.SHUTDOWN)] is AliasState.FREE


# -- rendering ---------------------------------------------------------------------


def test_render_mermaid_client_machine() -> None:
    assert render_mermaid(CLIENT_MACHINE) == (
        "---\n"
        'title: "Signaling server: client connection"\n'
        "---\n"
        "stateDiagram-v2\n"
        "    [*] --> CONNECTED: open\n"
        "    CONNECTED --> JOINED: knock\n"
        "    CONNECTED --> CONNECTED: knock (subnet full)\n"
        "    CONNECTED --> HELD: knock (grace)\n"
        "    CONNECTED --> CLOSED: close\n"
        "    HELD --> JOINED: grace over\n"
        "    HELD --> CONNECTED: knock (subnet full)\n"
        "    HELD --> CLOSED: close\n"
        "    JOINED --> JOINED: offer, answer, candidate, bind, accepting, connect, shutdown\n"
        "    JOINED --> CLOSED: close, replaced\n"
        "    CLOSED --> [*]\n"
    )


def test_render_mermaid_alias_machine_draws_every_transition_once() -> None:
    text = render_mermaid(ALIAS_MACHINE)
    lines = text.splitlines()
    assert lines[:4] == [
        "---",
        'title: "Signaling server: alias (one port of one member)"',
        "---",
        "stateDiagram-v2",
    ]
    assert lines[4] == "    [*] --> FREE"
    drawn = set()
    for line in lines[5:]:
        edge, _, labels = line.strip().partition(": ")
        source, _, target = edge.partition(" --> ")
        for label in labels.split(", "):
            drawn.add((AliasState(source), AliasInput(label), AliasState(target)))
    assert drawn == {(s, e, t) for (s, e), t in ALIAS_TRANSITIONS.items()}
    assert len(lines) == 5 + len({(s, t) for (s, _), t in ALIAS_TRANSITIONS.items()})


def test_render_mermaid_without_argument_draws_both_server_machines() -> None:
    both = render_mermaid()
    assert both == render_mermaid(CLIENT_MACHINE) + "\n" + render_mermaid(ALIAS_MACHINE)
    assert both.count("stateDiagram-v2") == 2
