"""Stable addresses on the sans-IO server: a knock that asks for its previous id.

docs/protocol.md, "Stable addresses": a node of ours knocks with a rejoin
token, and with its previous id when it had one. The server gives that id
whenever it is free; a live member with that id and the same token is
replaced (no ``goodbye``: the node did not leave); with a rejoin grace,
knocks that do not get the id they ask for wait for the grace to end, and
the id of a member that left is kept for its token.
"""

from __future__ import annotations

import math

import pytest

from unisockets.protocol import RemoteProtocolError
from unisockets.protocol.errors import LocalProtocolError
from unisockets.protocol.messages import (
    Acknowledged,
    Alias,
    Bind,
    Goodbye,
    Greeting,
    Knock,
    Offer,
)
from unisockets.protocol.server import SignalingServerProtocol
from unisockets.protocol.server_states import ClientState


def _server(grace: float = 0.0) -> SignalingServerProtocol[str]:
    return SignalingServerProtocol(rejoin_grace=grace, now=100.0)


def _join(server: SignalingServerProtocol[str], key: str, **knock: str) -> str:
    server.client_connected(key)
    out = server.receive(key, Knock(subnet="10.0.0", **knock))
    assert isinstance(out[0][1], Acknowledged)
    return out[0][1].id


def test_a_free_previous_id_is_given_back_not_the_lowest_free_one() -> None:
    server = _server()
    assert _join(server, "a") == "10.0.0.1"
    assert _join(server, "b", id="10.0.0.7", token="t") == "10.0.0.7"
    assert _join(server, "c") == "10.0.0.2"


def test_an_id_asked_for_that_is_taken_or_out_of_range_gives_the_lowest_free() -> None:
    server = _server()
    assert _join(server, "a", token="mine") == "10.0.0.1"
    # another node's id, another token (or none): not taken from its holder
    assert _join(server, "b", id="10.0.0.1", token="other") == "10.0.0.2"
    assert _join(server, "c", id="10.0.0.1") == "10.0.0.3"
    # another subnet's id, or a suffix the server does not hand out
    assert _join(server, "d", id="10.0.9.9", token="t") == "10.0.0.4"
    assert _join(server, "e", id="10.0.0.255", token="t") == "10.0.0.5"
    assert server.take_replaced() == []


def test_a_knock_with_the_id_and_token_of_a_live_member_replaces_it() -> None:
    # The node's old WebSocket went silent; the server has not noticed yet.
    server = _server()
    assert _join(server, "old", token="secret") == "10.0.0.1"
    assert _join(server, "peer", token="p") == "10.0.0.2"
    server.receive("old", Bind(id="10.0.0.1", alias="10.0.0.1:80"))
    server.client_connected("new")
    out = server.receive("new", Knock(subnet="10.0.0", id="10.0.0.1", token="secret"))
    assert out == [
        # the peer forgets the alias (the node binds it again), but is told of no goodbye
        ("peer", Alias(id="10.0.0.1", alias="10.0.0.1:80", set=False)),
        ("new", Acknowledged(id="10.0.0.1", rejected=False)),
        ("peer", Greeting(offerer_id="10.0.0.2", answerer_id="10.0.0.1")),
    ]
    assert server.take_replaced() == ["old"]
    assert server.take_replaced() == []
    assert server.members == {"peer": "10.0.0.2", "new": "10.0.0.1"}
    assert server.client_state("old") is ClientState.CLOSED
    assert server.aliases == {}
    # the old connection's close changes nothing and tells nobody
    assert server.client_disconnected("old") == []
    # the new one serves as the member: relays reach it, it may bind the alias again
    relay = Offer(offerer_id="10.0.0.2", answerer_id="10.0.0.1", offer="v=0")
    assert server.receive("peer", relay) == [("new", relay)]
    assert server.receive("new", Bind(id="10.0.0.1", alias="10.0.0.1:80"))[0][1].set is True


def test_a_token_alone_or_no_token_never_replaces_anybody() -> None:
    server = _server()
    assert _join(server, "a") == "10.0.0.1"  # an original node: no token
    assert _join(server, "b", id="10.0.0.1") == "10.0.0.2"
    assert _join(server, "c", id="10.0.0.1", token="guess") == "10.0.0.3"
    assert server.take_replaced() == []
    assert server.members["a"] == "10.0.0.1"


def test_during_the_grace_returning_nodes_get_their_ids_and_newcomers_wait() -> None:
    server = _server(grace=5.0)
    assert server.holding and server.next_deadline() == 105.0
    server.client_connected("newcomer")
    assert server.receive("newcomer", Knock(subnet="10.0.0")) == []
    assert server.client_state("newcomer") is ClientState.HELD
    with pytest.raises(RemoteProtocolError, match="before the answer to the knock"):
        server.receive("newcomer", Knock(subnet="10.0.0"))
    # a returning node asks for 10.0.0.1, the newcomer's would-be id
    assert _join(server, "back", id="10.0.0.1", token="t") == "10.0.0.1"
    # one asking for a taken id waits like a newcomer
    server.client_connected("late")
    assert server.receive("late", Knock(subnet="10.0.0", id="10.0.0.1", token="u")) == []
    server.client_connected("gone")
    assert server.receive("gone", Knock(subnet="10.0.0")) == []
    assert server.client_disconnected("gone") == []
    assert server.expire(104.9) == []
    assert server.expire(105.0) == [
        ("newcomer", Acknowledged(id="10.0.0.2", rejected=False)),
        ("back", Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.2")),
        ("late", Acknowledged(id="10.0.0.3", rejected=False)),
        ("back", Greeting(offerer_id="10.0.0.1", answerer_id="10.0.0.3")),
        ("newcomer", Greeting(offerer_id="10.0.0.2", answerer_id="10.0.0.3")),
    ]
    assert not server.holding and server.next_deadline() == math.inf
    assert _join(server, "after") == "10.0.0.4"  # no waiting once the grace is over


def test_the_id_of_a_member_that_left_is_kept_for_its_token() -> None:
    server = _server(grace=5.0)
    assert _join(server, "a", id="10.0.0.1", token="ta") == "10.0.0.1"
    assert _join(server, "b", id="10.0.0.2", token="tb") == "10.0.0.2"
    server.expire(105.0)
    assert server.client_disconnected("a", now=110.0) == [("b", Goodbye(id="10.0.0.1"))]
    assert server.kept_ids == {"10.0.0.1": 115.0}
    assert server.next_deadline() == 115.0
    # neither a newcomer nor another token gets it meanwhile
    assert _join(server, "c") == "10.0.0.3"
    assert _join(server, "d", id="10.0.0.1", token="thief") == "10.0.0.4"
    # its node does
    assert _join(server, "a2", id="10.0.0.1", token="ta") == "10.0.0.1"
    assert server.kept_ids == {}
    # once the time is up, the id is free for anyone
    server.client_disconnected("a2", now=120.0)
    assert server.expire(125.0) == []
    assert server.kept_ids == {}
    assert _join(server, "e") == "10.0.0.1"


def test_without_a_grace_nothing_waits_and_no_id_is_kept() -> None:
    server = _server()
    assert not server.holding and server.next_deadline() == math.inf
    assert _join(server, "a", token="t") == "10.0.0.1"
    server.client_disconnected("a", now=101.0)
    assert server.kept_ids == {}
    assert _join(server, "b") == "10.0.0.1"


@pytest.mark.parametrize("grace", [-1.0, math.inf, math.nan, "5"])
def test_a_bad_grace_is_a_local_error(grace: object) -> None:
    with pytest.raises(LocalProtocolError, match="rejoin_grace"):
        SignalingServerProtocol(rejoin_grace=grace)  # type: ignore[arg-type]
