"""Two instances on one Redis behave as one server: PROTOCOL.md's flows, frame by frame.

Real instances (``open_signaling_server(redis=...)``) on 127.0.0.1, a real
redis-server, raw WebSocket clients (:mod:`tests.signaling.server_helpers`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.redis_server import RedisServer
from tests.signaling.server_helpers import (
    assert_healthy,
    open_member,
    open_peer,
    replay_original_session,
)
from unisockets.protocol import Accept, Accepting, Alias, Bind, Connect, Goodbye, Greeting, Offer

from .cluster_helpers import instance_process, open_instances

SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.trio
async def test_replay_of_the_original_session_with_ws1_and_ws2_on_two_instances(
    vectors_dir: Path, redis_server: RedisServer
) -> None:
    async with open_instances(redis_server.url, 2, suffixes=range(0, 256)) as servers:
        where = {"ws1": servers[0].url, "ws2": servers[1].url}
        await replay_original_session(
            vectors_dir, where.__getitem__, lambda: sum(s.client_count for s in servers)
        )


@pytest.mark.trio
async def test_join_bind_accept_connect_across_two_instances(redis_server: RedisServer) -> None:
    async with open_instances(redis_server.url, 2) as (a, b):
        # the helper's two members join through one URL: run it both ways and mixed
        await assert_healthy(a.url)
        await assert_healthy(b.url)


@pytest.mark.trio
async def test_relay_only_to_the_named_member_and_goodbye_across_instances(
    redis_server: RedisServer,
) -> None:
    async with (
        open_instances(redis_server.url, 3) as servers,
        open_peer(servers[0].url) as p1,
        open_peer(servers[1].url) as p2,
        open_peer(servers[2].url) as p3,
    ):
        first = await p1.knock()
        second = await p2.knock()
        await p1.expect(Greeting(offerer_id=first, answerer_id=second))
        third = await p3.knock()
        await p1.expect(Greeting(offerer_id=first, answerer_id=third))
        await p2.expect(Greeting(offerer_id=second, answerer_id=third))
        assert [first, second, third] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        offer = Offer(offerer_id=third, answerer_id=first, offer=SDP)
        await p3.send(offer)
        await p1.expect(offer)
        # p2's next frame is the answer to its own bind, not the offer
        await p2.send(Bind(id=second, alias=f"{second}:80"))
        bound = Alias(id=second, alias=f"{second}:80", set=True)
        await p2.expect(bound)
        await p1.expect(bound)
        await p3.expect(bound)
        await p2.ws.aclose()
        await p1.expect(Goodbye(id=second))
        await p3.expect(Goodbye(id=second), Alias(id=second, alias=f"{second}:80", set=False))


@pytest.mark.trio
async def test_a_connect_right_after_accepting_through_other_instances_is_accepted(
    redis_server: RedisServer,
) -> None:
    """``accepting`` and ``connect`` reach the owner through two instances: still in order.

    The instances are processes, as deployed: in one process their tasks
    take turns in an order that hides the race.

    On one instance a connect sent after the listener's ``accepting`` was
    written finds the alias accepting; through two other instances the
    connect may overtake it, so the owner waits for it a little before it
    refuses. A bound alias that never accepts is still refused.
    """
    with (
        instance_process(redis_server.url) as owner,
        instance_process(redis_server.url) as b,
        instance_process(redis_server.url) as c,
    ):
        urls = [server.expect("ws://") for server in (owner, b, c)]
        await _accept_after_accepting(*urls)


async def _accept_after_accepting(owner: str, b: str, c: str) -> None:
    async with (
        open_member(owner),
        open_member(b) as listener,
        open_member(c) as connector,
    ):
        assert (listener.id, connector.id) == ("10.0.0.2", "10.0.0.3")
        await listener.expect(Greeting(offerer_id="10.0.0.2", answerer_id="10.0.0.3"))
        for port in range(20):
            alias = f"10.0.0.2:{100 + port}"
            await listener.send(Bind(id="10.0.0.2", alias=alias))
            bound = Alias(id="10.0.0.2", alias=alias, set=True)
            await listener.expect(bound)
            await connector.expect(bound)
            cid = f"c{port}"
            await listener.send(Accepting(id="10.0.0.2", alias=alias))
            await connector.send(
                Connect(id="10.0.0.3", client_connection_id=cid, remote_alias=alias)
            )
            local = f"10.0.0.3:{port}"
            await connector.expect(
                Alias(
                    id="10.0.0.3",
                    alias=local,
                    set=True,
                    client_connection_id=cid,
                    is_connection_alias=True,
                ),
                Alias(id="10.0.0.2", alias=alias, set=True, client_connection_id=cid),
            )
            await listener.expect(
                Alias(id="10.0.0.3", alias=local, set=True),
                Accept(bound_alias=alias, client_alias=local),
            )
        await listener.send(Bind(id="10.0.0.2", alias="10.0.0.2:99"))
        await listener.expect(Alias(id="10.0.0.2", alias="10.0.0.2:99", set=True))
        await connector.expect(Alias(id="10.0.0.2", alias="10.0.0.2:99", set=True))
        await connector.send(
            Connect(id="10.0.0.3", client_connection_id="x", remote_alias="10.0.0.2:99")
        )
        await connector.expect(
            Alias(id="10.0.0.3", alias="10.0.0.3:20", set=False, client_connection_id="x")
        )
