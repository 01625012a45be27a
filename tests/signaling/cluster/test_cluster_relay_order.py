"""A burst of relays across instances: per-sender order kept, only the named recipient served.

Relays that cross instances go through Redis in batches (one ``PUBLISH`` per
instance and routing round, docs/signaling-server.md, "How it works"), and the
owner delivers what one batch brings in one write per client. These tests send
bursts without waiting for anything, on every path a relay can take: from the
owner's client to another instance's, back, and between two clients of one
instance that does not own the subnet (two hops); and check that every
recipient gets each sender's messages in the order they were sent, nothing it
was not named in, and nothing twice. Real instances, real redis-server, raw
WebSocket clients.
"""

from __future__ import annotations

import json

import pytest
import trio

from tests.redis_server import RedisServer
from tests.signaling.server_helpers import Peer, open_peer
from unisockets.protocol import Candidate, Greeting, decode

from .cluster_helpers import open_instances

#: Relays per sender in a burst.
BURST = 300


def _candidate(sender: str, recipient: str, number: int) -> Candidate:
    init = {
        "candidate": f"candidate:{number} 1 udp 2122260223 127.0.0.1 {1024 + number} typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": "burst",
    }
    return Candidate(offerer_id=sender, answerer_id=recipient, candidate=json.dumps(init))


async def _burst(sender: Peer, recipient: str) -> None:
    assert sender.id is not None
    for number in range(BURST):
        await sender.send(_candidate(sender.id, recipient, number))


async def _received(peer: Peer, count: int) -> list[tuple[str, int]]:
    """The next ``count`` frames of ``peer``: (sender, number) of each candidate, in order."""
    got = []
    for _ in range(count):
        frame = await peer.frame()
        assert isinstance(frame, str)
        message = decode(frame)
        assert isinstance(message, Candidate), frame
        assert message.answerer_id == peer.id, frame
        number = int(json.loads(message.candidate)["candidate"].split(":")[1].split()[0])
        got.append((message.offerer_id, number))
    return got


@pytest.mark.trio
async def test_a_burst_across_instances_keeps_each_senders_order_and_its_recipient(
    redis_server: RedisServer,
) -> None:
    async with (
        open_instances(redis_server.url, 3) as servers,
        open_peer(servers[0].url) as owner_side,  # its knock makes servers[0] the owner
        open_peer(servers[1].url) as first,
        open_peer(servers[1].url) as second,
        open_peer(servers[2].url) as third,
    ):
        peers = [owner_side, first, second, third]
        for index, peer in enumerate(peers):
            await peer.knock()
            for earlier in peers[:index]:
                assert earlier.id is not None and peer.id is not None
                await earlier.expect(Greeting(offerer_id=earlier.id, answerer_id=peer.id))
        a, b, c, d = (peer.id for peer in peers)
        assert a is not None and b is not None and c is not None and d is not None
        # owner's client -> other instance, back (one hop each); b -> c on the same
        # non-owner instance (two hops); d -> c from a third instance (two hops)
        expected = {owner_side: {b: BURST}, first: {a: BURST}, second: {b: BURST, d: BURST}}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_burst, owner_side, b)
            nursery.start_soon(_burst, first, a)
            nursery.start_soon(_burst, first, c)
            nursery.start_soon(_burst, third, c)
            # the recipients read concurrently (a client that does not read holds up its
            # instance's writes to it, not what the test checks)
            results: dict[Peer, list[tuple[str, int]]] = {}

            async def read(peer: Peer, count: int) -> None:
                results[peer] = await _received(peer, count)

            for peer, senders in expected.items():
                nursery.start_soon(read, peer, sum(senders.values()))
        for peer, senders in expected.items():
            got = results[peer]
            for sender in senders:
                # each sender's burst, whole, once, in the order sent
                assert [n for s, n in got if s == sender] == list(range(BURST)), (peer.id, sender)
            assert {s for s, _ in got} == set(senders)
        # nothing else reached anyone: the next frame of each is a marker sent only now
        for peer in peers:
            sender = owner_side if peer is not owner_side else first
            assert sender.id is not None and peer.id is not None
            marker = _candidate(sender.id, peer.id, BURST)
            await sender.send(marker)
            await peer.expect(marker)
