"""Overlay nodes through a real signaling server, over the in-memory and WebRTC transports."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import random

import pytest
import trio
import trio.testing

import unisockets.net as net

from .conftest import NodeFactory

pytestmark = pytest.mark.trio


async def test_addresses_are_assigned_and_streams_carry_them(node_factory: NodeFactory) -> None:
    async with node_factory() as alice, node_factory() as bob:
        assert alice.address == "10.0.0.1" and bob.address == "10.0.0.2"
        async with alice.listen(1234) as listener:
            with trio.fail_after(30):
                client = await bob.connect(("10.0.0.1", 1234))
                server = await listener.accept()
            assert client.remote_address == ("10.0.0.1", 1234)
            assert client.local_address[0] == "10.0.0.2"
            assert server.local_address == ("10.0.0.1", 1234)
            assert server.remote_address == client.local_address
            await client.send_all(b"ping")
            assert await server.receive_some(100) == b"ping"
            await server.send_all(b"pong")
            assert await client.receive_some(100) == b"pong"
            await client.aclose()
            assert await server.receive_some(100) == b""
            await server.aclose()


async def test_streams_pass_trio_half_closeable_conformance(node_factory: NodeFactory) -> None:
    async with node_factory() as alice, node_factory() as bob, alice.listen(80) as listener:

        async def stream_maker() -> tuple[net.SocketStream, net.SocketStream]:
            with trio.fail_after(30):
                client = await bob.connect((alice.address, 80))
                server = await listener.accept()
            return client, server

        await trio.testing.check_half_closeable_stream(stream_maker, None)


async def test_many_concurrent_connections_never_mix(
    node_factory: NodeFactory, backend: str
) -> None:
    count = 100 if backend == "memory" else 40
    async with node_factory() as alice, node_factory() as bob, alice.listen(7, count) as listener:

        async def echo(stream: net.SocketStream) -> None:
            async with stream:
                while data := await stream.receive_some(65536):
                    await stream.send_all(data)

        async def client(index: int, results: dict[int, bool]) -> None:
            payload = random.Random(index).randbytes(random.Random(index).randrange(1, 200_000))
            stream = await bob.connect((alice.address, 7))
            async with stream, trio.open_nursery() as nursery:

                async def sender() -> None:
                    await stream.send_all(payload)
                    await stream.send_eof()

                nursery.start_soon(sender)
                received = bytearray()
                while data := await stream.receive_some(65536):
                    received += data
            results[index] = hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()

        results: dict[int, bool] = {}
        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.serve_listeners, echo, [listener])
                async with trio.open_nursery() as clients:
                    for index in range(count):
                        clients.start_soon(client, index, results)
                nursery.cancel_scope.cancel()
        assert results == dict.fromkeys(range(count), True)


async def test_connect_to_unbound_port_is_econnrefused(node_factory: NodeFactory) -> None:
    async with node_factory() as alice, node_factory() as bob:
        with pytest.raises(OSError) as info:
            await bob.connect((alice.address, 4321))
        assert info.value.errno == errno.ECONNREFUSED
        # bound but not listening is refused too
        binding = await alice.bind(4321)
        with pytest.raises(ConnectionRefusedError):
            await bob.connect((alice.address, 4321))
        await binding.aclose()


async def test_bind_twice_is_eaddrinuse(node_factory: NodeFactory) -> None:
    async with node_factory() as alice, alice.listen(1234):
        with pytest.raises(OSError) as info:
            await alice.listen(1234)
        assert info.value.errno == errno.EADDRINUSE
        sock = alice.socket()
        with pytest.raises(OSError) as info:
            await sock.bind(("10.0.0.1", 1234))
        assert info.value.errno == errno.EADDRINUSE
        # an address that is no node's id is an ordinary overlay address
        # (test_bind_addresses.py has the rule: another node's id is refused)
        await sock.bind(("10.0.0.99", 1))
        assert sock.getsockname() == ("10.0.0.99", 1)


async def test_listener_close_releases_the_port(node_factory: NodeFactory) -> None:
    async with node_factory() as alice, node_factory() as bob:
        listener = await alice.listen(1234)
        await listener.aclose()
        listener = await alice.listen(1234)  # the bind waits for the release under way
        async with listener:
            stream = await bob.connect((alice.address, 1234))
            await stream.aclose()


async def test_backlog_keeps_connections_that_arrive_before_accept(
    node_factory: NodeFactory,
) -> None:
    async with node_factory() as alice, node_factory() as bob, alice.listen(1, 3) as listener:
        with trio.fail_after(60):
            streams = [await bob.connect((alice.address, 1)) for _ in range(3)]
            for index, stream in enumerate(streams):
                await stream.send_all(b"%d" % index)
            # nobody called accept yet: all three wait in the backlog, none is lost
            for index in range(3):
                accepted = await listener.accept()
                assert await accepted.receive_some(10) == b"%d" % index
                await accepted.aclose()


async def test_backlog_overflow_closes_the_extra_connection(node_factory: NodeFactory) -> None:
    async with node_factory() as alice, node_factory() as bob, alice.listen(1, 1) as listener:
        with trio.fail_after(60):
            first = await bob.connect((alice.address, 1))
            await first.send_all(b"first")
            second = await bob.connect((alice.address, 1))
            # the second connection does not fit: its stream ends instead of hanging
            try:
                data = await second.receive_some(10)
            except trio.BrokenResourceError:
                data = b""
            assert data == b""
            accepted = await listener.accept()
            assert await accepted.receive_some(10) == b"first"


async def test_connect_to_own_address(node_factory: NodeFactory) -> None:
    async with node_factory() as alice, alice.listen(5) as listener:
        with trio.fail_after(30):
            client = await alice.connect((alice.address, 5))
            server = await listener.accept()
        await client.send_all(b"self")
        assert await server.receive_some(10) == b"self"
        await client.aclose()
        await server.aclose()


async def test_closing_a_node_closes_its_streams(node_factory: NodeFactory) -> None:
    async with node_factory() as alice, alice.listen(9) as listener:
        async with node_factory() as bob:
            with trio.fail_after(30):
                stream = await bob.connect((alice.address, 9))
                server = await listener.accept()
        # bob is gone: its stream is closed, alice's side ends (EOF or broken), never hangs
        with pytest.raises(trio.ClosedResourceError):
            await stream.send_all(b"x")
        with trio.fail_after(30):
            with contextlib.suppress(trio.BrokenResourceError):
                assert await server.receive_some(10) == b""


async def test_socket_objects_over_the_overlay(node_factory: NodeFactory) -> None:
    async with node_factory() as alice, node_factory() as bob:
        with alice.socket() as server_sock, bob.socket() as client:
            await server_sock.bind(("0.0.0.0", 1234))
            assert server_sock.getsockname() == (alice.address, 1234)
            await server_sock.listen(5)  # awaiting waits until signaling knows
            with trio.fail_after(30):
                await client.connect((alice.address, 1234))
                conn, address = await server_sock.accept()
            assert address == client.getsockname()
            assert client.getpeername() == (alice.address, 1234)
            with pytest.raises(OSError) as info:
                await client.connect((alice.address, 1234))
            assert info.value.errno == errno.EISCONN
            await client.sendall(b"x" * 100_000)
            received = b""
            while len(received) < 100_000:
                received += await conn.recv(65536)
            assert received == b"x" * 100_000
            client.shutdown(net.SHUT_WR)
            assert await conn.recv(10) == b""
            await conn.sendall(b"bye")
            assert await client.recv(10) == b"bye"
            await conn.aclose()
            assert await client.recv(10) == b""
        with pytest.raises(OSError) as info:
            await client.recv(1)
        assert info.value.errno == errno.EBADF
