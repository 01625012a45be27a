"""Real nodes on different instances: WebRTC streams, and many joins at once.

Real instances on one real redis-server, real aiortc on loopback
(``ice_addresses=["127.0.0.1"]``).
"""

from __future__ import annotations

import hashlib
import random

import pytest
import trio

import unisockets.net as net
from tests.redis_server import RedisServer
from tests.signaling.server_helpers import open_peer
from unisockets.protocol import Greeting, decode

from .cluster_helpers import instance_process, open_instances

LOOPBACK = ["127.0.0.1"]


@pytest.mark.trio
async def test_nodes_on_two_instances_exchange_checksummed_bytes_over_webrtc(
    redis_server: RedisServer,
) -> None:
    payload = random.Random(19).randbytes(300_000)
    async with (
        open_instances(redis_server.url, 2) as (a, b),
        net.open_node(a.url, ice_addresses=LOOPBACK) as alice,
        net.open_node(b.url, ice_addresses=LOOPBACK) as bob,
        alice.listen(7) as listener,
    ):
        assert (alice.address, bob.address) == ("10.0.0.1", "10.0.0.2")
        assert a.member_ids == [alice.address] and b.member_ids == [bob.address]
        received = bytearray()

        async def echo() -> None:
            stream = await listener.accept()
            async with stream:
                while data := await stream.receive_some(65536):
                    await stream.send_all(data)

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(echo)
                stream = await bob.connect((alice.address, 7))
                async with stream:

                    async def send() -> None:
                        await stream.send_all(payload)
                        await stream.send_eof()

                    nursery.start_soon(send)
                    while data := await stream.receive_some(65536):
                        received += data
    assert hashlib.sha256(received).hexdigest() == hashlib.sha256(payload).hexdigest()


@pytest.mark.trio
@pytest.mark.parametrize("instances", [2, 3])
async def test_a_hundred_concurrent_joins_over_instances_get_unique_ids(
    redis_server: RedisServer, instances: int
) -> None:
    """Ids are 10.0.0.1..100 once each, and each member is greeted by every later one, in order.

    Ids are handed out lowest first and nobody leaves, so the join order is
    the order of the ids: member ``n`` must see greetings from ``n+1..100``.
    """
    count = 100
    greetings: dict[str, list[str]] = {}
    async with open_instances(redis_server.url, instances) as servers:
        all_greeted = trio.Event()

        async def member(index: int) -> None:
            async with open_peer(servers[index % instances].url) as peer:
                own = await peer.knock()
                seen = greetings[own] = []
                suffix = int(own.rsplit(".", 1)[1])
                while len(seen) < count - suffix:
                    frame = decode(await peer.frame())
                    assert isinstance(frame, Greeting) and frame.offerer_id == own, frame
                    seen.append(frame.answerer_id)
                if sum(map(len, greetings.values())) == count * (count - 1) // 2:
                    all_greeted.set()
                await all_greeted.wait()

        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                for index in range(count):
                    nursery.start_soon(member, index)
    assert sorted(greetings, key=_suffix) == [f"10.0.0.{n}" for n in range(1, count + 1)]
    for own, seen in greetings.items():
        assert seen == [f"10.0.0.{n}" for n in range(_suffix(own) + 1, count + 1)]


def _suffix(member_id: str) -> int:
    return int(member_id.rsplit(".", 1)[1])


@pytest.mark.trio
async def test_a_hundred_concurrent_joins_over_instance_processes_get_unique_ids(
    redis_server: RedisServer,
) -> None:
    """The same with the instances as deployed: ``unisockets signaling-server`` processes."""
    count = 100
    ids: list[str] = []
    with instance_process(redis_server.url) as a, instance_process(redis_server.url) as b:
        urls = [a.expect("ws://"), b.expect("ws://")]
        joined = trio.Event()

        async def member(index: int) -> None:
            async with open_peer(urls[index % 2]) as peer:
                ids.append(await peer.knock())
                if len(ids) == count:
                    joined.set()
                await joined.wait()

        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                for index in range(count):
                    nursery.start_soon(member, index)
    assert sorted(ids, key=_suffix) == [f"10.0.0.{n}" for n in range(1, count + 1)]
