"""Stable addresses across instances: replacement, kept ids and the rejoin grace over Redis.

docs/signaling-server.md, "Several instances over Redis". Real instances on
127.0.0.1 share a real ``redis-server``; the clients are raw WebSockets
speaking the wire, so every frame the instances send is seen.
"""

from __future__ import annotations

import signal
from contextlib import AsyncExitStack

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from tests.redis_server import RedisServer
from unisockets.protocol import Acknowledged, Alias, Bind, Greeting, Knock, decode, encode
from unisockets.protocol.events import Reconnected
from unisockets.signaling import open_signaling_client
from unisockets.signaling.limits import ServerLimits

from .cluster_helpers import instance_process, open_instances
from .test_cluster_faults import TAKEOVER_TIMEOUT

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


async def test_every_instance_restarted_gives_the_same_ids_and_bindings_back(
    redis_server: RedisServer,
) -> None:
    """Both instance processes SIGKILLed and started again on their ports: the state is in Redis.

    A newcomer knocks before the nodes are back: the grace keeps their ids
    (kept for their tokens when the new owner removes the dead instances'
    members) and their bindings (rebound by the nodes) from it.
    """
    backoff = (0.05, 0.5)
    with instance_process(redis_server.url, "5") as a, instance_process(redis_server.url, "5") as b:
        url_a, url_b = a.expect("ws://"), b.expect("ws://")
        async with AsyncExitStack() as stack:
            nodes = [
                await stack.enter_async_context(
                    open_signaling_client([url, other], backoff=backoff, request_timeout=30)
                )
                for url, other in [(url_a, url_b), (url_b, url_a)] * 3
            ]
            ids = [node.id for node in nodes]
            assert sorted(ids) == [f"10.0.0.{n}" for n in range(1, 7)]
            for node in nodes:
                await node.bind(f"{node.id}:80")
            for process in (a, b):
                process.process.send_signal(signal.SIGKILL)
                process.wait()
            port_a, port_b = (int(url.rsplit(":", 1)[1]) for url in (url_a, url_b))
            with (
                instance_process(redis_server.url, "5", port_a) as a2,
                instance_process(redis_server.url, "5", port_b) as b2,
            ):
                assert a2.expect("ws://") == url_a and b2.expect("ws://") == url_b
                with trio.fail_after(TAKEOVER_TIMEOUT):
                    async with open_websocket_url(url_a) as newcomer:
                        await newcomer.send_message(encode(Knock(subnet="10.0.0")))
                        for node in nodes:
                            async for event in node.events:
                                if isinstance(event, Reconnected):
                                    break
                        answer = decode(await newcomer.get_message())
                    assert answer == Acknowledged(id="10.0.0.7", rejected=False)
                    assert [node.id for node in nodes] == ids
                    # every binding is back: binding it again is refused (EADDRINUSE)
                    for node in nodes:
                        with pytest.raises(OSError):
                            await node.bind(f"{node.id}:80")
                        await node.bind(f"{node.id}:81")  # a free one is bound
