"""Stable addresses across instances: replacement, kept ids and the rejoin grace over Redis.

docs/signaling-server.md, "Several instances over Redis". Real instances on
127.0.0.1 share a real ``redis-server``; the clients are raw WebSockets
speaking the wire, so every frame the instances send is seen.
"""

from __future__ import annotations

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from tests.redis_server import RedisServer
from unisockets.protocol import Acknowledged, Alias, Bind, Greeting, Knock, decode, encode
from unisockets.signaling.limits import ServerLimits

from .cluster_helpers import open_instances

pytestmark = pytest.mark.trio

#: Generous bound on each step, so that a bug fails the test instead of hanging it.
TIMEOUT = 30.0
#: The rejoin grace of the instances, seconds.
GRACE = 1.0
TOKEN = "a" * 32


async def _knock(ws: WebSocketConnection, **fields: str) -> Acknowledged:
    await ws.send_message(encode(Knock(subnet="10.0.0", **fields)))
    answer = decode(await ws.get_message())
    assert isinstance(answer, Acknowledged), answer
    return answer


async def test_a_node_on_another_instance_replaces_its_old_connection_without_goodbye(
    redis_server: RedisServer,
) -> None:
    """The owner replaces the member; the instance holding the old connection closes it."""
    limits = ServerLimits(rejoin_grace=GRACE)
    async with open_instances(redis_server.url, 2, limits=limits) as (a, b):
        with trio.fail_after(TIMEOUT):
            async with (
                open_websocket_url(a.url) as peer,
                open_websocket_url(b.url) as old,
                open_websocket_url(a.url) as new,
            ):
                # the peer's knock makes a the owner; asked-for free ids are given at
                # once, though the grace after the start holds the subnet
                assert (await _knock(peer, id="10.0.0.2", token="b" * 32)).id == "10.0.0.2"
                assert (await _knock(old, id="10.0.0.1", token=TOKEN)).id == "10.0.0.1"
                assert decode(await peer.get_message()) == Greeting(
                    offerer_id="10.0.0.2", answerer_id="10.0.0.1"
                )
                # the same node (its token) on a newer connection, on another instance
                assert (await _knock(new, id="10.0.0.1", token=TOKEN)).id == "10.0.0.1"
                assert decode(await peer.get_message()) == Greeting(
                    offerer_id="10.0.0.2", answerer_id="10.0.0.1"
                )
                with pytest.raises(ConnectionClosed) as closed:
                    await old.get_message()  # closed by b, told by the owner a
                assert closed.value.reason is not None
                assert closed.value.reason.code == 1000
                assert closed.value.reason.reason == "replaced by a newer connection of this node"
                # the peer heard no goodbye: its next frame is the new connection's bind
                await new.send_message(encode(Bind(id="10.0.0.1", alias="10.0.0.1:80")))
                assert decode(await peer.get_message()) == Alias(
                    id="10.0.0.1", alias="10.0.0.1:80", set=True
                )
                assert sorted(a.member_ids + b.member_ids) == ["10.0.0.1", "10.0.0.2"]


async def test_a_left_nodes_id_is_kept_for_its_token_by_the_owner_and_held_knocks_wait(
    redis_server: RedisServer,
) -> None:
    """Kept ids and held knocks live in the owner's machine; its instance runs their timers."""
    limits = ServerLimits(rejoin_grace=GRACE)
    async with open_instances(redis_server.url, 2, limits=limits) as (a, b):
        with trio.fail_after(TIMEOUT):
            async with open_websocket_url(a.url) as first:
                assert (await _knock(first, id="10.0.0.1", token=TOKEN)).id == "10.0.0.1"
            async with open_websocket_url(b.url) as newcomer, open_websocket_url(b.url) as back:
                # no id asked: it waits for the end of the grace after the owner's
                # start (answered by the owner's timer), and is not given the kept id
                assert (await _knock(newcomer)).id == "10.0.0.2"
                assert (await _knock(back, id="10.0.0.1", token=TOKEN)).id == "10.0.0.1"
