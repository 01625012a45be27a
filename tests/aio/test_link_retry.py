"""The asyncio driver's link retry rules, the native transport's (transport/webrtc.py).

- When our signaling session ends, a link still negotiating fails as
  *replaced* (protocol ``SignalingLost``); a connected link stays.
- A connection whose link was replaced while negotiating, or was connected
  and died under it (stale), is tried once more on a new link.

Real nodes on the asyncio memory transport (:mod:`unisockets.aio.memory`)
with a real signaling server; the failures are injected at the moment they
matter (a failed peer connection, a lost signaling session), so the tests
wait on events only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

import unisockets
from unisockets.aio import AioNode, MemoryNetwork
from unisockets.aio.memory import MemoryPeerConnection
from unisockets.driver.errors import BrokenResourceError
from unisockets.driver.peer_link import PeerLink
from unisockets.protocol.events import Disconnected
from unisockets.protocol.negotiation import LinkState

from .test_end_to_end import LOOPBACK, TIMEOUT, receive_exactly, server
from .trio_thread import TrioThread

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """The asyncio driver (the trio transport's own tests are tests/transport)."""
    return "asyncio"


def on_next_offer(
    monkeypatch: pytest.MonkeyPatch, hook: Callable[[MemoryPeerConnection], None]
) -> None:
    """Call ``hook(pc)`` (soon, outside the driver's call) when a peer connection next offers."""
    original = MemoryPeerConnection.createOffer
    armed = [True]

    async def create_offer(pc: MemoryPeerConnection) -> Any:
        if armed[0]:
            armed[0] = False
            asyncio.get_running_loop().call_soon(hook, pc)
        return await original(pc)

    monkeypatch.setattr(MemoryPeerConnection, "createOffer", create_offer)


@asynccontextmanager
async def two_nodes(
    url: str, options: dict[str, Any] | None = None
) -> AsyncIterator[tuple[AioNode, AioNode, Any]]:
    """Alice (listening on port 80) and Bob: asyncio nodes with ``open_node`` ``options``.

    Without options, on one memory network.
    """
    if options is None:
        options = {"transport": MemoryNetwork()}
    async with (
        unisockets.open_node(url, **options) as alice,
        unisockets.open_node(url, **options) as bob,
        alice.listen(80) as listener,
    ):
        assert isinstance(alice, AioNode) and isinstance(bob, AioNode)
        yield alice, bob, listener


async def echo_once(listener: Any, client: Any, payload: bytes) -> Any:
    """Accept the connection of ``client``, send ``payload`` over it; return the accepted end."""
    accepted = await listener.accept()
    await client.send(payload)
    assert await receive_exactly(accepted, len(payload)) == payload
    return accepted


async def test_a_connection_on_a_link_that_dies_under_it_is_tried_on_a_new_link(
    trio_thread: TrioThread,
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with server(trio_thread) as url, two_nodes(url) as (alice, bob, listener):
            first = await bob.connect((alice.address, 80))
            accepted = await echo_once(listener, first, b"first")
            stale = bob.driver.links.links[alice.address]
            assert stale.state is LinkState.CONNECTED
            pc = stale._pc
            assert isinstance(pc, MemoryPeerConnection)
            create = pc.createDataChannel

            def dying(label: str, options: Any) -> Any:
                pc.fail()  # the path is dead; the link learns it after the pipe began
                return create(label, options)

            pc.createDataChannel = dying  # type: ignore[method-assign]
            second = await bob.connect((alice.address, 80))  # on a new link
            accepted_second = await echo_once(listener, second, b"second")
            assert stale.failure is not None
            fresh = bob.driver.links.links[alice.address]
            assert fresh is not stale and fresh.state is LinkState.CONNECTED
            for stream in (first, accepted, second, accepted_second):
                await stream.aclose()


async def test_a_connection_whose_link_was_replaced_while_negotiating_is_tried_again(
    trio_thread: TrioThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    replaced: list[PeerLink] = []
    with anyio.fail_after(TIMEOUT):
        async with server(trio_thread) as url, two_nodes(url) as (alice, bob, listener):

            def signaling_lost(pc: MemoryPeerConnection) -> None:
                links = bob.driver.links.links
                replaced.extend(links.values())
                assert [link._pc for link in replaced] == [pc]  # it is negotiating
                bob.driver._on_event(Disconnected(id=bob.address, reason="injected"))

            on_next_offer(monkeypatch, signaling_lost)
            client = await bob.connect((alice.address, 80))
            accepted = await echo_once(listener, client, b"again")
            [old] = replaced
            assert old.replaced and "signaling was lost" in str(old.failure)
            assert bob.driver.links.links[alice.address] is not old
            for stream in (client, accepted):
                await stream.aclose()


@pytest.mark.parametrize("transport", ["memory", "aiortc"])
async def test_signaling_lost_fails_negotiating_links_as_replaced_and_keeps_connected_ones(
    trio_thread: TrioThread, transport: str
) -> None:
    options = None if transport == "memory" else LOOPBACK
    with anyio.fail_after(TIMEOUT):
        task = await anyio.to_thread.run_sync(trio_thread.start_server)
        try:
            async with two_nodes(task.url, options) as (alice, bob, listener):
                client = await bob.connect((alice.address, 80))
                accepted = await echo_once(listener, client, b"before")
                connected = bob.driver.links.links[alice.address]
                # A link to a member that never answers: it stays negotiating.
                bob.driver.links.handle_greeting("10.0.0.99")
                negotiating = bob.driver.links.links["10.0.0.99"]
                assert negotiating.state is not LinkState.CONNECTED

                await anyio.to_thread.run_sync(trio_thread.run, task.stop)  # signaling is lost
                with pytest.raises(BrokenResourceError):
                    await negotiating.wait_connected()
                assert negotiating.replaced
                assert "signaling was lost" in str(negotiating.failure)
                # The connected link outlives the session: the stream still carries bytes.
                assert bob.driver.links.links[alice.address] is connected
                await accepted.send(b"after")
                assert await receive_exactly(client, 5) == b"after"
                for stream in (client, accepted):
                    await stream.aclose()
        finally:
            await anyio.to_thread.run_sync(trio_thread.run, task.stop)
