"""Datagram sockets (``SOCK_DGRAM``): the same API and errnos natively and on the overlay.

Every test runs on three networks: the native fallback (OS UDP on
127.0.0.1), two overlay nodes on the in-memory transport, and two overlay
nodes over real WebRTC (aiortc on loopback) with a real signaling server.
"""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.abc
import pytest
import trio

import unisockets
import unisockets.net as net
from unisockets.protocol.datagram import DEFAULT_MAX_PAYLOAD

from .conftest import NodeFactory

pytestmark = pytest.mark.trio


@pytest.fixture(params=["native", "memory", "webrtc"])
def kind(request: pytest.FixtureRequest) -> str:
    """Which network the test's two nodes are on."""
    return str(request.param)


@pytest.fixture
def backend(kind: str) -> str:
    """The overlay transport for conftest's node_factory (unused natively)."""
    return "webrtc" if kind == "native" else kind


@asynccontextmanager
async def _two_nodes(
    kind: str, node_factory: NodeFactory
) -> AsyncIterator[tuple[net.Node, net.Node]]:
    if kind == "native":
        async with net.open_node(None) as node:
            yield node, node
        return
    async with node_factory() as a, node_factory() as b:
        yield a, b


async def test_module_exports_the_socket_constants() -> None:
    import socket

    assert unisockets.SOCK_DGRAM == socket.SOCK_DGRAM
    assert unisockets.SOCK_STREAM == socket.SOCK_STREAM
    assert unisockets.AF_INET == socket.AF_INET
    assert unisockets.DatagramSocket is net.DatagramSocket


async def test_echo_between_two_nodes(kind: str, node_factory: NodeFactory) -> None:
    async with _two_nodes(kind, node_factory) as (a, b):
        with a.socket(unisockets.SOCK_DGRAM) as server, b.socket(unisockets.SOCK_DGRAM) as client:
            assert server.family == unisockets.AF_INET and server.type == unisockets.SOCK_DGRAM
            assert server.getsockname() == ("0.0.0.0", 0)
            await server.bind(("", 0))
            host, port = server.getsockname()
            assert host == a.address and port > 0
            with trio.fail_after(30):
                assert await client.sendto(b"ping", (a.address, port)) == 4
                data, sender = await server.recvfrom(100)
                assert data == b"ping"
                assert sender == client.getsockname() and sender[0] == b.address
                await server.sendto(b"pong" * 10, sender)
                assert await client.recvfrom(4) == (b"pong", (a.address, port))  # rest lost
                # An empty datagram is a datagram.
                await client.sendto(b"", (a.address, port))
                assert await server.recvfrom(10) == (b"", sender)


async def test_connected_sockets_send_recv_and_filter(kind: str, node_factory: NodeFactory) -> None:
    async with (
        _two_nodes(kind, node_factory) as (a, b),
        a.socket(unisockets.SOCK_DGRAM) as receiver,
        b.socket(unisockets.SOCK_DGRAM) as friend,
        b.socket(unisockets.SOCK_DGRAM) as stranger,
    ):
        await receiver.bind(("", 0))
        await friend.bind(("", 0))
        await receiver.connect(friend.getsockname())
        await friend.connect(receiver.getsockname())
        assert receiver.getpeername() == friend.getsockname()
        assert friend.getpeername() == receiver.getsockname()
        with trio.fail_after(30):
            await stranger.sendto(b"not for you", receiver.getsockname())
            if kind != "native":
                await a.datagrams.wait_statistics(  # type: ignore[attr-defined]
                    lambda stats: stats.filtered == 1
                )
            await friend.send(b"hello")
            assert await receiver.recv(100) == b"hello"
            await receiver.send(b"back")
            assert await friend.recv(100) == b"back"


async def test_errnos_of_misuse(kind: str, node_factory: NodeFactory) -> None:
    async with _two_nodes(kind, node_factory) as (a, _):
        sock = a.socket(unisockets.SOCK_DGRAM)
        other = a.socket(unisockets.SOCK_DGRAM)

        async def errno_of(call: object) -> int:
            assert callable(call)
            with pytest.raises(OSError) as info:
                result = call()
                if hasattr(result, "__await__"):
                    await result
            assert info.value.errno is not None
            return info.value.errno

        assert await errno_of(lambda: sock.send(b"x")) == errno.EDESTADDRREQ
        assert await errno_of(sock.getpeername) == errno.ENOTCONN
        too_big = bytes(sock.max_payload + 1)
        assert await errno_of(lambda: sock.sendto(too_big, (a.address, 9))) == errno.EMSGSIZE
        assert await errno_of(lambda: sock.sendto(b"x", ("nonsense", 9))) == errno.EINVAL
        assert await errno_of(lambda: sock.sendto(b"x", (a.address, 0))) == errno.EINVAL
        assert await errno_of(lambda: sock.bind(("10.9.9.9", 0))) == errno.EADDRNOTAVAIL
        await sock.bind(("", 0))
        assert await errno_of(lambda: sock.bind(("", 0))) == errno.EINVAL
        assert await errno_of(lambda: other.bind(sock.getsockname())) == errno.EADDRINUSE
        assert await errno_of(lambda: a.socket(99)) == errno.EINVAL  # type: ignore[call-overload]
        with pytest.raises(ValueError):
            await sock.recvfrom(-1)
        port = sock.getsockname()[1]
        sock.close()
        sock.close()  # idempotent
        for call in (
            sock.getsockname,
            sock.getpeername,
            lambda: sock.sendto(b"x", (a.address, 9)),
            lambda: sock.send(b"x"),
            lambda: sock.recvfrom(1),
            lambda: sock.bind(("", 0)),
            lambda: sock.connect((a.address, 9)),
        ):
            assert await errno_of(call) == errno.EBADF
        await other.bind(("", port))  # the port was freed at close
        async with trio.open_nursery() as nursery:

            async def close_soon() -> None:
                await trio.testing.wait_all_tasks_blocked()
                other.close()

            nursery.start_soon(close_soon)
            assert await errno_of(lambda: other.recvfrom(10)) == errno.EBADF


async def test_datagram_ports_are_not_stream_ports(kind: str, node_factory: NodeFactory) -> None:
    async with _two_nodes(kind, node_factory) as (a, _), a.listen(0) as listener:
        port = listener.address[1]  # type: ignore[attr-defined]
        with a.socket(unisockets.SOCK_DGRAM) as sock:
            await sock.bind(("", port))
            assert sock.getsockname()[1] == port


async def test_anyio_udp_sockets(kind: str, node_factory: NodeFactory) -> None:
    async with _two_nodes(kind, node_factory) as (a, b):
        server = net.AnyioUDPSocket(a.socket(unisockets.SOCK_DGRAM))
        await server.socket.bind(("", 0))
        client_socket = b.socket(unisockets.SOCK_DGRAM)
        await client_socket.connect(server.socket.getsockname())
        client = net.AnyioConnectedUDPSocket(client_socket)
        assert isinstance(server, anyio.abc.UDPSocket)
        assert isinstance(client, anyio.abc.ConnectedUDPSocket)
        attribute = anyio.abc.SocketAttribute
        local = server.extra(attribute.local_address)
        assert local == server.socket.getsockname()
        assert server.extra(attribute.local_port) == local[1]
        assert client.extra(attribute.remote_address) == local
        assert client.extra(attribute.remote_port) == local[1]
        with trio.fail_after(30):
            await client.send(b"hi")
            data, source = await server.receive()
            assert data == b"hi" and source == client.extra(attribute.local_address)
            await server.sendto(b"ho", *source)
            assert await client.receive() == b"ho"
        await server.aclose()
        await client.aclose()
        with pytest.raises(anyio.ClosedResourceError):
            await server.receive()
        with pytest.raises(anyio.ClosedResourceError):
            await client.send(b"x")


async def test_overlay_limit_and_larger_payloads_on_request(
    kind: str, node_factory: NodeFactory
) -> None:
    if kind == "native":
        pytest.skip("the OS decides a native socket's limit (65,507 bytes)")
    async with _two_nodes(kind, node_factory) as (a, b):
        with a.socket(unisockets.SOCK_DGRAM) as server, b.socket(unisockets.SOCK_DGRAM) as client:
            await server.bind(("", 0))
            assert client.max_payload == DEFAULT_MAX_PAYLOAD
            with pytest.raises(OSError) as info:
                client.max_payload = 70000  # type: ignore[misc]
            assert info.value.errno == errno.EINVAL
            client.max_payload = 60000  # type: ignore[misc]
            payload = bytes(range(256)) * 234
            with trio.fail_after(30):
                await client.sendto(payload, server.getsockname())
                assert await server.recv(65536) == payload


async def test_timeouts_of_receiving_calls(kind: str, node_factory: NodeFactory) -> None:
    async with _two_nodes(kind, node_factory) as (a, _):
        with a.socket(unisockets.SOCK_DGRAM) as sock:
            await sock.bind(("", 0))
            assert sock.gettimeout() is None and sock.getblocking()
            sock.setblocking(False)
            assert sock.gettimeout() == 0.0 and not sock.getblocking()
            with pytest.raises(BlockingIOError) as info:
                await sock.recvfrom(10)
            assert info.value.errno == errno.EAGAIN
            sock.settimeout(0.05)
            with pytest.raises(TimeoutError):
                await sock.recv(10)
            sock.settimeout(30)  # a bound against hangs: the datagram is there at once
            await sock.sendto(b"to myself", sock.getsockname())
            assert await sock.recvfrom(100) == (b"to myself", sock.getsockname())
            with pytest.raises(OSError):  # io.UnsupportedOperation: no descriptor to give
                sock.fileno()
