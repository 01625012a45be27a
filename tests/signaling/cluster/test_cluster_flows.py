"""Two instances on one Redis behave as one server: PROTOCOL.md's flows, frame by frame.

Real instances (``open_signaling_server(redis=...)``) on 127.0.0.1, a real
redis-server, raw WebSocket clients (:mod:`tests.signaling.server_helpers`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from tests.redis_server import RedisServer
from tests.signaling.server_helpers import Peer, assert_healthy, open_peer, wait_until
from unisockets.protocol import Alias, Bind, Goodbye, Greeting, Offer

from .cluster_helpers import open_instances

SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.trio
async def test_replay_of_the_original_session_with_ws1_and_ws2_on_two_instances(
    vectors_dir: Path, redis_server: RedisServer
) -> None:
    records = [
        json.loads(line)
        for line in (vectors_dir / "original-session.jsonl").read_text().splitlines()
        if line.strip()
    ]
    expected: dict[str, list[str]] = {}
    for record in records:
        if record.get("dir") == "server->client":
            expected.setdefault(record["conn"], []).append(record["frame"])
    received: dict[str, list[str]] = {conn: [] for conn in expected}
    assert set(expected) == {"ws1", "ws2"}

    async with open_instances(redis_server.url, 2, suffixes=range(0, 256)) as servers:
        where = {"ws1": servers[0], "ws2": servers[1]}
        peers: dict[str, Peer] = {}
        async with trio.open_nursery() as nursery:
            closers: dict[str, trio.Event] = {}
            for record in records:
                conn = record["conn"]
                if record.get("event") == "open":
                    done = trio.Event()
                    closers[conn] = done
                    peers[conn] = await nursery.start(_replay_client, where[conn].url, done)
                elif record.get("event") == "close":
                    closers[conn].set()
                    await wait_until(
                        lambda: (
                            sum(s.client_count for s in servers)
                            == sum(not d.is_set() for d in closers.values())
                        )
                    )
                elif record["dir"] == "client->server":
                    await peers[conn].send(record["frame"])
                else:
                    frame = await peers[conn].frame()
                    received[conn].append(frame)
                    assert frame == record["frame"]
    assert received == expected


async def _replay_client(
    url: str, done: trio.Event, *, task_status: trio.TaskStatus[Peer] = trio.TASK_STATUS_IGNORED
) -> None:
    async with open_peer(url) as peer:
        task_status.started(peer)
        await done.wait()


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
