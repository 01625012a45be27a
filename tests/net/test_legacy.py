"""One connection per pair with an original (legacy) unisockets node, over real WebRTC.

The legacy node is :mod:`tests.net.legacy_peer` (aiortc + our signaling
client, behaving like the original's transporter and runner); our node is
:func:`unisockets.net.open_node` on the same real signaling server on
127.0.0.1. Each test runs with the legacy node as the link's offerer (it
joined first, so the server greets it) and as its answerer (our node joined
first and offers).
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio

from unisockets.net import Node, open_node
from unisockets.transport.webrtc_link import MODERN_PROTOCOL, PeerKind

from ..transport.conftest import wait_until
from .legacy_peer import LegacyPeer, open_legacy_peer

pytestmark = pytest.mark.trio

#: Generous limit per test, only to turn a hang into a failure.
TEST_TIMEOUT = 60
#: 200 KiB + 3: several messages of the pipe's maximum size and a ragged last one.
PAYLOAD = bytes(range(256)) * 800 + b"end"


@pytest.fixture(params=["legacy-offers", "legacy-answers"])
def legacy_offers(request: pytest.FixtureRequest) -> bool:
    """Whether the legacy node offers the peer link (it joined first) or answers ours."""
    return bool(request.param == "legacy-offers")


@pytest.fixture(params=["eager", "lazy"])
def lazy(request: pytest.FixtureRequest) -> bool:
    """Whether our node asks for lazy peer links (an original node is linked eagerly anyway)."""
    return bool(request.param == "lazy")


@asynccontextmanager
async def legacy_and_node(
    url: str, legacy_offers: bool, lazy: bool = False
) -> AsyncIterator[tuple[LegacyPeer, Node]]:
    """A legacy node and one of ours on ``url``, joined in the order the test asks for.

    Yields once their peer link is up on our side, as an original node's
    runner waits for its links before its program talks. Our node may ask
    for lazy links (docs/protocol.md, "Lazy peer links"): the server still
    greets an original node with it, and the link is made eagerly.
    """
    async with AsyncExitStack() as stack:
        ours = open_node(url, ice_addresses=["127.0.0.1"], lazy_links=lazy)
        if legacy_offers:
            legacy = await stack.enter_async_context(open_legacy_peer(url))
            node = await stack.enter_async_context(ours)
        else:
            node = await stack.enter_async_context(ours)
            legacy = await stack.enter_async_context(open_legacy_peer(url))
        links = node.transport.links  # type: ignore[attr-defined]
        await wait_until(lambda: legacy.id in links)
        await links[legacy.id].wait_connected()
        yield legacy, node


def check_link(legacy: LegacyPeer, node: Node, legacy_offers: bool) -> None:
    """The link is legacy on our side; the legacy node only ever saw ``"channel"``."""
    link = node.transport.links[legacy.id]  # type: ignore[attr-defined]
    assert link.kind is PeerKind.LEGACY
    assert link.role == ("answerer" if legacy_offers else "offerer")
    assert not link.pipes  # no labelled pipe was opened to it
    expected = ("channel", "") if legacy_offers else ("channel", MODERN_PROTOCOL)
    assert legacy.channel_labels[node.address] == [expected]


async def legacy_echo(legacy: LegacyPeer, alias: str, n: int) -> None:
    """Read ``n`` bytes from ``alias``'s owner message by message, sending each one back."""
    got = 0
    while got < n:
        data = await legacy.recv(alias)
        got += len(data)
        await legacy.send(alias, data)


async def read_exactly(stream: trio.abc.ReceiveStream, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = await stream.receive_some()
        assert chunk, f"EOF after {len(data)} of {n} bytes"
        data += chunk
    return bytes(data)


async def test_our_client_legacy_listener(
    signaling_url: str, legacy_offers: bool, lazy: bool
) -> None:
    """We connect to a legacy listener: bytes go both ways raw over its one channel."""
    with trio.fail_after(TEST_TIMEOUT):
        async with legacy_and_node(signaling_url, legacy_offers, lazy) as (legacy, node):
            alias = await legacy.bind(1234)
            async with trio.open_nursery() as nursery:
                accepted: list[str] = []

                async def serve() -> None:
                    client_alias = await legacy.accept(alias)
                    accepted.append(client_alias)
                    await legacy_echo(legacy, client_alias, len(PAYLOAD))
                    await legacy.send(client_alias, b"bye from legacy")

                await legacy.signaling.listen(alias)  # "accepting" is out: connects find it
                nursery.start_soon(serve)
                stream = await node.connect((legacy.id, 1234))
                async with trio.open_nursery() as inner:
                    inner.start_soon(stream.send_all, PAYLOAD)
                    echoed = await read_exactly(stream, len(PAYLOAD))
                assert echoed == PAYLOAD
                assert await read_exactly(stream, 15) == b"bye from legacy"
            assert stream.remote_address == (legacy.id, 1234)
            assert accepted == ["{}:{}".format(*stream.local_address)]
            check_link(legacy, node, legacy_offers)
            await stream.aclose()


async def test_legacy_client_our_listener(
    signaling_url: str, legacy_offers: bool, lazy: bool
) -> None:
    """A legacy node connects to our listener: the accepted stream is its raw channel."""
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            legacy_and_node(signaling_url, legacy_offers, lazy) as (legacy, node),
            node.listen(4321) as listener,
        ):
            remote_alias = await legacy.connect((node.address, 4321))
            await legacy.send(remote_alias, b"hello from legacy")
            stream = await listener.accept()
            assert await read_exactly(stream, 17) == b"hello from legacy"
            await stream.send_all(PAYLOAD)
            assert await legacy.recv_exactly(remote_alias, len(PAYLOAD)) == PAYLOAD
            assert stream.local_address == (node.address, 4321)
            assert stream.remote_address[0] == legacy.id
            check_link(legacy, node, legacy_offers)

            # It leaves: our side reads the end of the stream, not an error.
            await legacy.send(remote_alias, b"last words")
            assert await read_exactly(stream, 10) == b"last words"
            await legacy.leave()
            assert await stream.receive_some() == b""
            await stream.aclose()


async def test_second_connection_to_legacy_peer_refused(signaling_url: str) -> None:
    """One connection per legacy peer: a second connect fails clearly; after a close, it works."""
    with trio.fail_after(TEST_TIMEOUT):
        async with legacy_and_node(signaling_url, legacy_offers=False) as (legacy, node):
            alias = await legacy.bind(1234)
            async with trio.open_nursery() as nursery:

                async def serve() -> None:
                    while True:
                        client_alias = await legacy.accept(alias)
                        await legacy_echo(legacy, client_alias, 5)

                await legacy.signaling.listen(alias)  # "accepting" is out: connects find it
                nursery.start_soon(serve)
                first = await node.connect((legacy.id, 1234))
                with pytest.raises(ConnectionRefusedError) as refused:
                    await node.connect((legacy.id, 1234))
                assert refused.value.errno == errno.ECONNREFUSED
                assert "legacy" in str(refused.value)
                await first.send_all(b"first")
                assert await read_exactly(first, 5) == b"first"
                await first.aclose()

                second = await node.connect((legacy.id, 1234))
                await second.send_all(b"again")
                assert await read_exactly(second, 5) == b"again"
                await second.aclose()
                nursery.cancel_scope.cancel()


async def test_modern_peers_use_labelled_pipes_and_say_hello(signaling_url: str) -> None:
    """Two of our nodes: the answerer's hello makes both modern; connections are own pipes."""
    with trio.fail_after(TEST_TIMEOUT):
        async with (
            open_node(signaling_url, ice_addresses=["127.0.0.1"]) as first,
            open_node(signaling_url, ice_addresses=["127.0.0.1"]) as second,
            second.listen(80) as listener,
        ):
            stream = await first.connect((second.address, 80))
            accepted = await listener.accept()
            await stream.send_all(b"ping")
            assert await read_exactly(accepted, 4) == b"ping"
            await accepted.send_all(b"pong")
            await accepted.send_eof()
            assert await read_exactly(stream, 4) == b"pong"
            assert await stream.receive_some() == b""  # framing: a real end of stream

            offerer = first.transport.links[second.address]  # type: ignore[attr-defined]
            answerer = second.transport.links[first.address]  # type: ignore[attr-defined]
            assert (offerer.role, answerer.role) == ("offerer", "answerer")
            # The offerer only learns "modern" from the hello on "channel".
            assert offerer.kind is answerer.kind is PeerKind.MODERN
            assert [pipe.label for pipe in offerer.pipes] == [
                f"{stream.local_address[0]}:{stream.local_address[1]}>{second.address}:80"
            ]
            assert offerer.legacy_pipe.statistics().queued_messages == 0  # hello consumed
            await stream.aclose()
            await accepted.aclose()
