"""The public API end to end on both anyio backends and two transports, with a real server.

Every test runs on both backends (``anyio_backend``, tests/aio/conftest.py):
under asyncio, :func:`unisockets.open_node` gives the asyncio driver in the
test's own loop (:mod:`unisockets.aio`); under trio, the trio driver
(:mod:`unisockets.net`). Each runs over real aiortc and over its memory
transport (``node_options``); the legacy-peer test over aiortc only (an
original node speaks real WebRTC). The test code is the same, written against anyio's
interfaces (trio's streams are wrapped in :class:`unisockets.AnyioSocketStream`).
The signaling server and the legacy peer run in a trio thread of their own.
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
import trio

import unisockets
from unisockets.aio import AioListener, AioNode, AioStream
from unisockets.net.anyio_adapters import AnyioListener, AnyioSocketStream

from ..net.legacy_peer import open_legacy_peer
from .trio_thread import TrioThread

pytestmark = pytest.mark.anyio

#: Generous bound on each test's steps, so that a bug fails the test instead of hanging it.
TIMEOUT = 60.0
#: Nodes of these tests gather ICE candidates on loopback only.
LOOPBACK: dict[str, Any] = {"ice_addresses": ["127.0.0.1"]}


def stream_of(stream: Any) -> anyio.abc.ByteStream:
    """The anyio stream a test uses: the asyncio driver's as is, trio's wrapped."""
    if isinstance(stream, anyio.abc.ByteStream):
        return stream
    assert isinstance(stream, trio.abc.HalfCloseableStream)
    return AnyioSocketStream(stream)  # type: ignore[arg-type]


def listener_of(listener: Any) -> anyio.abc.Listener[Any]:
    """The anyio listener a test uses."""
    if isinstance(listener, anyio.abc.Listener):
        return listener
    return AnyioListener(listener)


async def receive_exactly(stream: anyio.abc.ByteStream, n: int) -> bytes:
    """Receive exactly ``n`` bytes (fails on an early EOF)."""
    data = bytearray()
    while len(data) < n:
        data += await stream.receive(n - len(data))
    return bytes(data)


async def echo_until_eof(stream: anyio.abc.ByteStream) -> None:
    """Send back everything received, then EOF, then close."""
    async with stream:
        while True:
            try:
                data = await stream.receive()
            except anyio.EndOfStream:
                break
            await stream.send(data)
        await stream.send_eof()


@asynccontextmanager
async def server(trio_thread: TrioThread) -> AsyncIterator[str]:
    """A real signaling server (in the trio thread); yields its URL."""
    task = await anyio.to_thread.run_sync(trio_thread.start_server)
    try:
        yield task.url
    finally:
        await anyio.to_thread.run_sync(trio_thread.run, task.stop)


async def test_echo_with_the_objects_of_the_running_library(
    trio_thread: TrioThread, anyio_backend: str, node_options: dict[str, Any]
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with (
            server(trio_thread) as url,
            unisockets.open_node(url, **node_options) as alice,
            unisockets.open_node(url, **node_options) as bob,
            alice.listen(1234) as raw_listener,
            anyio.create_task_group() as group,
        ):
            if anyio_backend == "asyncio":
                assert isinstance(alice, AioNode) and isinstance(raw_listener, AioListener)
            else:
                assert isinstance(alice, unisockets.Node)
                assert isinstance(raw_listener, trio.abc.Listener)
            listener = listener_of(raw_listener)
            address = listener.extra(anyio.abc.SocketAttribute.local_address)
            assert address == (alice.address, 1234)

            async def serve() -> None:
                await echo_until_eof(stream_of(await listener.accept()))

            group.start_soon(serve)
            raw = await bob.connect((alice.address, 1234))
            expected_type = AioStream if anyio_backend == "asyncio" else unisockets.SocketStream
            assert isinstance(raw, expected_type)
            client = stream_of(raw)
            assert client.extra(anyio.abc.SocketAttribute.remote_address) == (alice.address, 1234)
            assert client.extra(anyio.abc.SocketAttribute.local_address)[0] == bob.address
            for message in (b"hello", b"x" * 200_000, b"bye"):
                await client.send(message)
                assert await receive_exactly(client, len(message)) == message
            await client.send_eof()
            with pytest.raises(anyio.EndOfStream):
                await client.receive()
            await client.aclose()


async def test_the_one_liners(
    trio_thread: TrioThread, anyio_backend: str, node_options: dict[str, Any]
) -> None:
    """``unisockets.listen`` and ``unisockets.connect`` on the running library."""
    with anyio.fail_after(TIMEOUT):
        async with (
            server(trio_thread) as url,
            unisockets.listen(("", 80), signaling=url, **node_options) as raw_listener,
            anyio.create_task_group() as group,
        ):
            listener = listener_of(raw_listener)
            host = listener.extra(anyio.abc.SocketAttribute.local_address)[0]

            async def serve() -> None:
                await echo_until_eof(stream_of(await listener.accept()))

            group.start_soon(serve)
            async with unisockets.connect((host, 80), signaling=url, **node_options) as raw:
                client = stream_of(raw)
                await client.send(b"one line")
                await client.send_eof()
                assert await receive_exactly(client, 8) == b"one line"
                with pytest.raises(anyio.EndOfStream):
                    await client.receive()


async def test_half_close_both_ways(
    trio_thread: TrioThread, anyio_backend: str, node_options: dict[str, Any]
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with (
            server(trio_thread) as url,
            unisockets.open_node(url, **node_options) as alice,
            unisockets.open_node(url, **node_options) as bob,
            alice.listen(0) as raw_listener,
        ):
            listener = listener_of(raw_listener)
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            client = stream_of(await bob.connect((alice.address, port)))
            accepted = stream_of(await listener.accept())

            await client.send(b"request")
            await client.send_eof()
            with pytest.raises(anyio.ClosedResourceError):
                await client.send(b"after EOF")
            assert await receive_exactly(accepted, 7) == b"request"
            with pytest.raises(anyio.EndOfStream):
                await accepted.receive()
            # The other direction is still open.
            await accepted.send(b"response")
            await accepted.send_eof()
            assert await receive_exactly(client, 8) == b"response"
            with pytest.raises(anyio.EndOfStream):
                await client.receive()
            await client.aclose()
            await accepted.aclose()
            with pytest.raises(anyio.ClosedResourceError):
                await client.receive()


async def test_errnos(
    trio_thread: TrioThread, anyio_backend: str, node_options: dict[str, Any]
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with (
            server(trio_thread) as url,
            unisockets.open_node(url, **node_options) as alice,
            unisockets.open_node(url, **node_options) as bob,
        ):
            with pytest.raises(OSError) as refused:
                await bob.connect((alice.address, 4000))
            assert refused.value.errno == errno.ECONNREFUSED
            async with alice.listen(4000):
                with pytest.raises(OSError) as in_use:
                    await alice.listen(4000)
                assert in_use.value.errno == errno.EADDRINUSE
            # Closed: the port is free again at once.
            async with alice.listen(4000):
                pass
            with pytest.raises(OSError) as bad_port:
                await bob.connect((alice.address, 70000))
            assert bad_port.value.errno == errno.EINVAL

            sock = bob.socket()
            with pytest.raises(OSError) as not_connected:
                await sock.recv(10)
            assert not_connected.value.errno == errno.ENOTCONN
            with pytest.raises(OSError) as refused_socket:
                await sock.connect((alice.address, 4001))
            assert refused_socket.value.errno == errno.ECONNREFUSED
            await sock.aclose()


async def test_backlog_closes_connections_beyond_it(
    trio_thread: TrioThread, anyio_backend: str, node_options: dict[str, Any]
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with (
            server(trio_thread) as url,
            unisockets.open_node(url, **node_options) as alice,
            unisockets.open_node(url, **node_options) as bob,
            alice.listen(80, backlog=1) as raw_listener,
        ):
            clients = [stream_of(await bob.connect((alice.address, 80))) for _ in range(3)]
            # One connection waits in the backlog; the others were closed by the listener.
            ended = 0
            for client in clients[1:]:
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await client.receive()
                ended += 1
            assert ended == 2
            accepted = stream_of(await listener_of(raw_listener).accept())
            await accepted.send(b"you made it")
            assert await receive_exactly(clients[0], 11) == b"you made it"
            for stream in (*clients, accepted):
                await stream.aclose()


async def test_one_hundred_concurrent_streams(
    trio_thread: TrioThread, anyio_backend: str, node_options: dict[str, Any]
) -> None:
    count, size = 100, 4096
    with anyio.fail_after(TIMEOUT):
        async with (
            server(trio_thread) as url,
            unisockets.open_node(url, **node_options) as alice,
            unisockets.open_node(url, **node_options) as bob,
            alice.listen(7, backlog=count) as raw_listener,
            anyio.create_task_group() as group,
        ):
            listener = listener_of(raw_listener)
            done: list[int] = []

            async def serve() -> None:
                for _ in range(count):
                    group.start_soon(echo_until_eof, stream_of(await listener.accept()))

            async def client(index: int) -> None:
                stream = stream_of(await bob.connect((alice.address, 7)))
                payload = bytes([index % 256]) * size
                async with stream:
                    await stream.send(payload)
                    await stream.send_eof()
                    assert await receive_exactly(stream, size) == payload
                    with pytest.raises(anyio.EndOfStream):
                        await stream.receive()
                done.append(index)

            group.start_soon(serve)
            async with anyio.create_task_group() as clients:
                for index in range(count):
                    clients.start_soon(client, index)
            assert sorted(done) == list(range(count))


async def test_reconnect_after_a_server_restart(
    trio_thread: TrioThread, anyio_backend: str, node_options: dict[str, Any]
) -> None:
    with anyio.fail_after(TIMEOUT):
        first = await anyio.to_thread.run_sync(trio_thread.start_server)
        async with AsyncExitStack() as stack:
            # alice rejoins first (shorter backoff), so both get their ids back.
            alice = await stack.enter_async_context(
                unisockets.open_node(first.url, signaling_backoff=(0.05, 0.05), **node_options)
            )
            bob = await stack.enter_async_context(
                unisockets.open_node(first.url, signaling_backoff=(0.5, 0.5), **node_options)
            )
            listener = listener_of(await stack.enter_async_context(alice.listen(1234)))
            assert (alice.address, bob.address) == ("10.0.0.1", "10.0.0.2")
            client = stream_of(await bob.connect(("10.0.0.1", 1234)))
            accepted = stream_of(await listener.accept())

            await anyio.to_thread.run_sync(trio_thread.run, first.stop)
            # The stream's bytes never pass through the server.
            await client.send(b"while the server is down")
            assert await receive_exactly(accepted, 24) == b"while the server is down"

            second = await anyio.to_thread.run_sync(trio_thread.start_server, first.port)
            # bob's connect waits for his next session; alice bound 1234 again.
            again = stream_of(await bob.connect(("10.0.0.1", 1234)))
            accepted_again = stream_of(await listener.accept())
            await again.send(b"new")
            assert await receive_exactly(accepted_again, 3) == b"new"
            await accepted.send(b"old")
            assert await receive_exactly(client, 3) == b"old"
            assert (alice.address, bob.address) == ("10.0.0.1", "10.0.0.2")
            for stream in (client, accepted, again, accepted_again):
                await stream.aclose()
        await anyio.to_thread.run_sync(trio_thread.run, second.stop)


async def wait_for_link(node: Any, peer_id: str) -> None:
    """Wait until ``node``'s peer link to ``peer_id`` is connected.

    As an original node's runner waits for its links before its program
    talks: a connect before the legacy node's offer arrived would offer too,
    and an original node cannot resolve that glare.
    """
    links = node.driver.links.links if isinstance(node, AioNode) else node.transport.links
    while peer_id not in links:  # noqa: ASYNC110 - no event announces a link the peer offers
        await anyio.sleep(0.01)
    await links[peer_id].wait_connected()


@pytest.mark.parametrize("legacy_offers", [False, True], ids=["we-offer", "legacy-offers"])
async def test_a_legacy_peer(
    trio_thread: TrioThread, anyio_backend: str, legacy_offers: bool
) -> None:
    """An original (legacy) node: one raw byte connection each way over its one channel.

    The member that joined first offers the link (docs/protocol.md, "Peer link").
    """

    def on_legacy(function: Any, *args: Any) -> Any:
        return anyio.to_thread.run_sync(trio_thread.run, function, *args)

    with anyio.fail_after(TIMEOUT):
        async with server(trio_thread) as url, AsyncExitStack() as stack:

            async def start_legacy() -> Any:
                peer, leave = await anyio.to_thread.run_sync(
                    trio_thread.enter, open_legacy_peer(url)
                )
                stack.push_async_callback(anyio.to_thread.run_sync, leave)
                return peer

            legacy = await start_legacy() if legacy_offers else None
            node = await stack.enter_async_context(unisockets.open_node(url, **LOOPBACK))
            raw_listener = await stack.enter_async_context(node.listen(4321))
            legacy = legacy or await start_legacy()
            await wait_for_link(node, legacy.id)

            # We connect to the legacy node's listener.
            alias = await on_legacy(legacy.bind, 1234)
            await on_legacy(legacy.signaling.listen, alias)
            stream = stream_of(await node.connect((legacy.id, 1234)))
            client_alias = await on_legacy(legacy.accept, alias)
            await stream.send(b"to legacy")
            assert await on_legacy(legacy.recv_exactly, client_alias, 9) == b"to legacy"
            await on_legacy(legacy.send, client_alias, b"from legacy")
            assert await receive_exactly(stream, 11) == b"from legacy"
            # One connection per legacy peer at a time: its bytes would mix.
            with pytest.raises(OSError) as second:
                await node.connect((legacy.id, 1234))
            assert second.value.errno == errno.ECONNREFUSED
            await stream.aclose()

            # The legacy node connects to our listener (the connection above is closed).
            remote_alias = await on_legacy(legacy.connect, (node.address, 4321))
            await on_legacy(legacy.send, remote_alias, b"hello from legacy")
            accepted = stream_of(await listener_of(raw_listener).accept())
            assert await receive_exactly(accepted, 17) == b"hello from legacy"
            await accepted.send(b"raw reply")
            assert await on_legacy(legacy.recv_exactly, remote_alias, 9) == b"raw reply"
            # It leaves: our side reads the end of the stream, not an error.
            await on_legacy(legacy.leave)
            with pytest.raises(anyio.EndOfStream):
                await accepted.receive()
            await accepted.aclose()
