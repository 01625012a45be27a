"""Instances as real processes (``unisockets signaling-server --redis``): a SIGKILLed one.

A node whose instance is killed reconnects to another instance (the client
tries its URLs in turn) and gets its id back; a member on the surviving
instance keeps its connection and sees the dead instance's member leave and
come back. Redis down at start is a one-line error, no traceback.
"""

from __future__ import annotations

import signal

import pytest
import trio

from tests.cli.processes import child
from tests.redis_server import RedisServer, start_redis, stop_redis
from unisockets.protocol.events import Disconnected, PeerGreeted, PeerLeft, Reconnected
from unisockets.signaling import open_signaling_client

from .cluster_helpers import instance_process, open_instances

#: Bound on the take-over: the 5 s lease of the dead owner, plus a loaded machine.
TAKEOVER_TIMEOUT = 60.0


@pytest.mark.trio
async def test_a_sigkilled_instances_node_comes_back_through_another_with_its_id(
    redis_server: RedisServer,
) -> None:
    with instance_process(redis_server.url) as a, instance_process(redis_server.url) as b:
        url_a, url_b = a.expect("ws://"), b.expect("ws://")
        backoff = (0.05, 0.5)
        async with (
            open_signaling_client([url_a, url_b], backoff=backoff) as x,
            open_signaling_client([url_b, url_a], backoff=backoff) as y,
        ):
            assert (x.id, y.id) == ("10.0.0.1", "10.0.0.2")  # x's knock made a the owner
            await x.bind("10.0.0.1:80")
            a.process.send_signal(signal.SIGKILL)
            a.wait()
            seen_by_x: list[object] = []
            seen_by_y: list[object] = []
            with trio.fail_after(TAKEOVER_TIMEOUT):
                async for event in x.events:
                    seen_by_x.append(event)
                    if isinstance(event, Reconnected):
                        break
                async for event in y.events:
                    seen_by_y.append(event)
                    if isinstance(event, PeerGreeted) and event.peer_id == "10.0.0.1":
                        break
            assert x.id == "10.0.0.1" and x.connected
            assert any(isinstance(e, Disconnected) for e in seen_by_x)
            # y stayed connected to b all along, and saw x leave with a and come back
            assert y.id == "10.0.0.2" and y.connected
            assert not any(isinstance(e, Disconnected) for e in seen_by_y)
            assert PeerLeft(peer_id="10.0.0.1") in seen_by_y
            # the bound alias came back with the id: nobody else gets it
            await y.bind("10.0.0.2:80")
        assert b.process.poll() is None


def test_redis_unreachable_at_start_is_one_line_without_traceback() -> None:
    with child(
        "signaling-server", "--host", "127.0.0.1", "--port", "0", "--redis", "redis://127.0.0.1:1/0"
    ) as server:
        assert server.wait() == 1
    # coredis logs its retries; then the one error line, and no traceback
    assert not any("Traceback" in line for line in server.stderr), server.report()
    assert server.stderr[-1].startswith("Error: cannot use Redis at redis://127.0.0.1:1/0: ")


@pytest.mark.trio
async def test_redis_restarting_keeps_clients_connected_and_ids_unique() -> None:
    """Redis goes away (and comes back empty): members stay, the next join still gets a new id."""
    redis = start_redis()
    try:
        async with (
            open_instances(redis.url, 2) as (a, b),
            open_signaling_client(a.url) as x,
            open_signaling_client(b.url) as y,
        ):
            assert (x.id, y.id) == ("10.0.0.1", "10.0.0.2")
            stop_redis(redis)
            redis = start_redis(port=redis.port)
            # no sleep: the join waits for the owner to be back, as long as it takes
            with trio.fail_after(TAKEOVER_TIMEOUT):
                async with open_signaling_client(b.url, request_timeout=30) as z:
                    assert z.id == "10.0.0.3"
                    async for event in x.events:
                        if isinstance(event, PeerGreeted) and event.peer_id == z.id:
                            break
            assert x.connected and y.connected
            assert (x.id, y.id) == ("10.0.0.1", "10.0.0.2")
    finally:
        stop_redis(redis)


@pytest.mark.trio
async def test_killing_the_owner_breaks_no_stream_between_members_of_other_instances(
    redis_server: RedisServer,
) -> None:
    """The subnet's owner is SIGKILLed while members on two other instances stream."""
    import hashlib
    import random

    import unisockets.net as net
    from tests.signaling.server_helpers import open_member

    loopback = ["127.0.0.1"]
    with (
        instance_process(redis_server.url) as a,
        instance_process(redis_server.url) as b,
        instance_process(redis_server.url) as c,
    ):
        url_a, url_b, url_c = a.expect("ws://"), b.expect("ws://"), c.expect("ws://")
        async with open_member(url_a) as first:  # a owns 10.0.0 from here on
            assert first.id == "10.0.0.1"
            async with (
                net.open_node(url_b, ice_addresses=loopback) as alice,
                net.open_node(url_c, ice_addresses=loopback) as bob,
                alice.listen(7) as listener,
            ):
                assert (alice.address, bob.address) == ("10.0.0.2", "10.0.0.3")
                rng = random.Random(17)
                sent = hashlib.sha256()
                echoed = hashlib.sha256()
                taken_over = trio.Event()
                killed = trio.Event()

                async def echo() -> None:
                    stream = await listener.accept()
                    async with stream:
                        while data := await stream.receive_some(65536):
                            await stream.send_all(data)

                with trio.fail_after(TAKEOVER_TIMEOUT):
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(echo)
                        stream = await bob.connect((alice.address, 7))
                        async with stream:

                            async def send() -> None:
                                chunks = 0
                                while not taken_over.is_set() or chunks < 40:
                                    chunk = rng.randbytes(16384)
                                    sent.update(chunk)
                                    await stream.send_all(chunk)
                                    chunks += 1
                                    if chunks == 20:
                                        a.process.send_signal(signal.SIGKILL)
                                        killed.set()
                                await stream.send_eof()

                            async def take_over() -> None:
                                # a join through b waits for b or c to take the subnet over
                                await killed.wait()
                                await trio.to_thread.run_sync(a.wait)
                                async with open_member(url_b) as late:
                                    assert late.id == "10.0.0.1"  # the dead member's id, free
                                taken_over.set()

                            nursery.start_soon(send)
                            nursery.start_soon(take_over)
                            while data := await stream.receive_some(65536):
                                echoed.update(data)
                assert echoed.hexdigest() == sent.hexdigest()
                assert (alice.address, bob.address) == ("10.0.0.2", "10.0.0.3")
        assert b.process.poll() is None and c.process.poll() is None
