"""Nodes outlive a restart of their signaling server: streams, listeners and addresses.

A real signaling server on 127.0.0.1 is stopped and started again on the same
port while two nodes have a stream open. The stream's bytes never pass
through the server, so it keeps working; the nodes rejoin with their ids
(the one that reconnects first gets the lowest free id, so the test gives the
listening node the shorter backoff), bind their listeners again, and accept
new connections. Over real WebRTC this also checks that the repeated
greeting at rejoin keeps the live peer link instead of replacing it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

import unisockets.net as net
from unisockets.transport.memory import MemoryNetwork

from ..restartable_server import start_server
from .transports import memory_transport

pytestmark = pytest.mark.trio

#: Generous bound on each step, so that a bug fails the test instead of hanging it.
TIMEOUT = 30.0


async def _echo(a: trio.abc.Stream, b: trio.abc.Stream, data: bytes) -> None:
    await a.send_all(data)
    received = b""
    while len(received) < len(data):
        received += await b.receive_some(len(data) - len(received))
    assert received == data


@pytest.mark.parametrize("backend", ["memory", "webrtc"])
async def test_streams_and_listeners_survive_a_signaling_server_restart(backend: str) -> None:
    network = MemoryNetwork()
    options: dict[str, Any] = (
        {"transport": memory_transport(network)}
        if backend == "memory"
        else {"ice_addresses": ["127.0.0.1"]}
    )

    @asynccontextmanager
    async def node(url: str, backoff: tuple[float, float]) -> AsyncIterator[net.Node]:
        async with net.open_node(url, signaling_backoff=backoff, **options) as opened:
            yield opened

    async with trio.open_nursery() as nursery:
        first = await start_server(nursery)
        async with (
            node(first.url, (0.05, 0.05)) as alice,
            node(first.url, (0.5, 0.5)) as bob,
            alice.listen(1234) as listener,
        ):
            assert (alice.address, bob.address) == ("10.0.0.1", "10.0.0.2")
            with trio.fail_after(TIMEOUT):
                client = await bob.connect(("10.0.0.1", 1234))
                server = await listener.accept()
                await _echo(client, server, b"before")

                await first.stop()
                # The server is gone: the stream does not need it.
                await _echo(client, server, b"while the server is down")
                await _echo(server, client, b"both ways")

                second = await start_server(nursery, first.port)
                # bob's connect waits for its next session; alice rejoined first
                # and bound 1234 again.
                again = await bob.connect(("10.0.0.1", 1234))
                accepted = await listener.accept()
                await _echo(again, accepted, b"a new connection")
                await _echo(client, server, b"and the old stream still works")
                assert (alice.address, bob.address) == ("10.0.0.1", "10.0.0.2")
                for stream in (client, server, again, accepted):
                    await stream.aclose()
            await second.stop()


async def test_closing_a_stream_of_an_ended_session_leaves_a_newer_connection_alone() -> None:
    # bob's stream from before the restart has local address 10.0.0.2:0; after it, his
    # next connection gets 10.0.0.2:0 again. Closing the old stream must not release the
    # new connection's alias (the server forgot the old one with bob's old session).
    network = MemoryNetwork()
    options: dict[str, Any] = {"transport": memory_transport(network)}
    async with trio.open_nursery() as nursery:
        first = await start_server(nursery)
        async with (
            net.open_node(first.url, signaling_backoff=(0.05, 0.05), **options) as alice,
            net.open_node(first.url, signaling_backoff=(0.5, 0.5), **options) as bob,
            alice.listen(1234) as listener,
        ):
            with trio.fail_after(TIMEOUT):
                old = await bob.connect(("10.0.0.1", 1234))
                await listener.accept()
                await first.stop()
                await start_server(nursery, first.port)
                again = await bob.connect(("10.0.0.1", 1234))  # waits for bob's rejoin
                await listener.accept()
                assert again.local_address == old.local_address == ("10.0.0.2", 0)
                await old.aclose()
                # whatever the close sends goes out before the next connect (one WebSocket)
                await trio.testing.wait_all_tasks_blocked()
                third = await bob.connect(("10.0.0.1", 1234))
                await listener.accept()
                assert third.local_address == ("10.0.0.2", 1)  # :0 is still the new one's
        nursery.cancel_scope.cancel()
