"""The asyncio driver's memory transport (:mod:`unisockets.aio.memory`).

The objects keep the WebRTC semantics the driver relies on (tested here
without a server); a node on a :class:`~unisockets.aio.MemoryNetwork` really
links in memory, and a link failure breaks its streams and is replaced by
the next connect (with a real signaling server). The end-to-end suites run
on it in tests/aio/test_end_to_end.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest
import trio

import unisockets
from unisockets.aio import AioNode, MemoryNetwork, RuntimeSettings
from unisockets.aio.memory import MemoryDataChannel, MemoryPeerConnection

from .test_end_to_end import TIMEOUT, receive_exactly, server
from .trio_thread import TrioThread

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """The memory runtime's objects are asyncio's."""
    return "asyncio"


def record(target: Any, *events: str) -> list[tuple[str, Any]]:
    """Append ``(event, payload)`` to the returned list on each of ``events``."""
    seen: list[tuple[str, Any]] = []
    for event in events:
        target.addEventListener(event, lambda e, name=event: seen.append((name, e)))
    return seen


async def settle_loop() -> None:
    """Let every callback already scheduled run (deliveries take one loop step each)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def connected_pair(network: MemoryNetwork) -> tuple[MemoryPeerConnection, ...]:
    """Two peer connections that made an offer/answer exchange, as the driver does."""
    runtime = network.runtime(RuntimeSettings())
    offerer = runtime.peer_connection({})
    answerer = runtime.peer_connection({})
    await offerer.setLocalDescription(await offerer.createOffer())
    assert offerer.localDescription is not None
    await answerer.setRemoteDescription({"type": "offer", "sdp": offerer.localDescription.sdp})
    await answerer.setLocalDescription(await answerer.createAnswer())
    assert offerer.connectionState == "new"  # the offerer has not applied the answer yet
    assert answerer.localDescription is not None
    await offerer.setRemoteDescription({"type": "answer", "sdp": answerer.localDescription.sdp})
    return offerer, answerer


async def test_channels_carry_ordered_messages_and_close_after_them() -> None:
    network = MemoryNetwork()
    runtime = network.runtime(RuntimeSettings())
    offerer = runtime.peer_connection({})
    early = offerer.createDataChannel("channel", {"protocol": "unisockets/2"})
    states = record(offerer, "connectionstatechange")
    opened = record(early, "open")
    answerer = runtime.peer_connection({})
    arrived = record(answerer, "datachannel")
    await offerer.setLocalDescription(await offerer.createOffer())
    assert offerer.localDescription is not None
    await answerer.setRemoteDescription({"type": "offer", "sdp": offerer.localDescription.sdp})
    await answerer.setLocalDescription(await answerer.createAnswer())
    assert answerer.localDescription is not None
    await offerer.setRemoteDescription({"type": "answer", "sdp": answerer.localDescription.sdp})
    await settle_loop()
    assert offerer.connectionState == answerer.connectionState == "connected"
    assert len(states) == 1 and len(opened) == 1 and early.readyState == "open"
    # The channel made before the connection was announced, open, with its sub-protocol.
    ((_, event),) = arrived
    theirs: MemoryDataChannel = event.channel
    assert (theirs.label, theirs.protocol, theirs.readyState) == ("channel", "unisockets/2", "open")

    messages = record(theirs, "message", "close")
    low = record(early, "bufferedamountlow", "close")
    early.bufferedAmountLowThreshold = 4
    early.send(b"one")
    early.send("two")  # text stays text (the hello is a text message)
    early.send(b"three")
    assert early.bufferedAmount == 11  # queued until delivered
    early.close()  # reaches the peer after every message sent before it
    with pytest.raises(RuntimeError):
        early.send(b"after close")
    await settle_loop()
    assert [(name, getattr(e, "data", None)) for name, e in messages] == [
        ("message", b"one"),
        ("message", "two"),
        ("message", b"three"),
        ("close", None),
    ]
    assert [name for name, _ in low] == ["bufferedamountlow", "close"]
    assert early.bufferedAmount == 0 and theirs.readyState == "closed"


async def test_closing_a_peer_connection_closes_the_peers() -> None:
    network = MemoryNetwork()
    offerer, answerer = await connected_pair(network)
    await settle_loop()
    late = answerer.createDataChannel("late", {})  # after connecting: announced at once
    arrived = record(offerer, "datachannel")
    await settle_loop()
    assert [e.channel.label for _, e in arrived] == ["late"] and late.readyState == "open"
    theirs = arrived[0][1].channel
    states = record(offerer, "connectionstatechange")
    closes = record(theirs, "close")
    assert network.peer_connections == 2
    answerer.close()
    await settle_loop()
    assert offerer.connectionState == "closed" and [n for n, _ in states] == [
        "connectionstatechange"
    ]
    assert len(closes) == 1 and network.peer_connections == 0


async def test_a_description_that_is_not_a_memory_one_is_refused() -> None:
    pc = MemoryNetwork().runtime(RuntimeSettings()).peer_connection({})
    with pytest.raises(ValueError, match="not a memory peer connection"):
        await pc.setRemoteDescription({"type": "offer", "sdp": "v=0\r\ns=-\r\n"})


async def test_nodes_link_in_memory_and_a_failed_link_is_replaced(
    trio_thread: TrioThread,
) -> None:
    network = MemoryNetwork()
    with anyio.fail_after(TIMEOUT):
        async with (
            server(trio_thread) as url,
            unisockets.open_node(url, transport=network) as alice,
            unisockets.open_node(url, transport=network) as bob,
            alice.listen(80) as listener,
        ):
            assert isinstance(alice, AioNode) and isinstance(bob, AioNode)
            client = await bob.connect((alice.address, 80))
            accepted = await listener.accept()
            await client.send(b"in memory")
            assert await receive_exactly(accepted, 9) == b"in memory"
            link = bob.driver.links.links[alice.address]
            assert isinstance(link._pc, MemoryPeerConnection)
            assert network.peer_connections == 2

            link._pc.fail()  # the link fails under both streams
            with pytest.raises(anyio.BrokenResourceError):
                await accepted.receive()
            with pytest.raises(anyio.BrokenResourceError):
                await client.receive()
            # The next connect sets a new link up.
            again = await bob.connect((alice.address, 80))
            accepted_again = await listener.accept()
            await again.send(b"again")
            assert await receive_exactly(accepted_again, 5) == b"again"
            for stream in (client, accepted, again, accepted_again):
                await stream.aclose()


async def test_an_asyncio_transport_under_trio_is_a_clear_error() -> None:
    async def main() -> None:
        async with unisockets.open_node("ws://127.0.0.1:1", transport=MemoryNetwork()):
            pass  # pragma: no cover - it raises first

    with pytest.raises(TypeError, match="TransportFactory"):
        await anyio.to_thread.run_sync(trio.run, main)
