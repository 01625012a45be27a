"""The native fallback (``open_node(None)``): the same API over OS TCP on loopback."""

from __future__ import annotations

import errno

import pytest
import trio
import trio.testing

import unisockets.net as net

pytestmark = pytest.mark.trio


async def test_native_streams_pass_trio_half_closeable_conformance() -> None:
    async with net.open_node(None) as node, node.listen(0) as listener:

        async def stream_maker() -> tuple[net.SocketStream, net.SocketStream]:
            client = await node.connect(listener.address)  # type: ignore[attr-defined]
            server = await listener.accept()
            return client, server

        await trio.testing.check_half_closeable_stream(stream_maker, None)


async def test_native_addresses_and_echo() -> None:
    async with net.open_node(None) as node, node.listen(0) as listener:
        host, port = listener.address  # type: ignore[attr-defined]
        assert host == "127.0.0.1" and port > 0
        client = await node.connect(("127.0.0.1", port))
        server = await listener.accept()
        assert client.remote_address == (host, port)
        assert server.remote_address == client.local_address
        await client.send_all(b"ping")
        assert await server.receive_some(10) == b"ping"
        await client.send_eof()
        assert await server.receive_some(10) == b""
        await server.send_all(b"still open")
        assert await client.receive_some(100) == b"still open"
        await client.aclose()
        await server.aclose()


async def test_native_connect_refused_is_econnrefused() -> None:
    async with net.open_node(None) as node:
        binding = await node.bind(0)
        port = binding.address[1]
        await binding.aclose()  # bound, then released: nobody listens there
        with pytest.raises(OSError) as info:
            await node.connect(("127.0.0.1", port))
        assert info.value.errno == errno.ECONNREFUSED


async def test_native_socket_objects_berkeley_flow() -> None:
    async with net.open_node(None) as node:
        server_sock = node.socket()
        await server_sock.bind(("127.0.0.1", 0))
        server_sock.listen(5)
        address = server_sock.getsockname()
        with pytest.raises(OSError) as info:
            server_sock.getpeername()
        assert info.value.errno == errno.ENOTCONN

        client = node.socket()
        with pytest.raises(OSError) as info:
            await client.recv(10)
        assert info.value.errno == errno.ENOTCONN
        await client.connect(address)
        conn, peer = await server_sock.accept()
        assert peer == client.getsockname()
        assert conn.getpeername() == client.getsockname()

        assert await client.send(b"hello") == 5
        assert await conn.recv(1024) == b"hello"
        client.shutdown(net.SHUT_WR)
        assert await conn.recv(1024) == b""
        with pytest.raises(OSError) as info:
            await client.send(b"late")
        assert info.value.errno == errno.EPIPE
        await conn.sendall(b"reply")
        assert await client.recv(1024) == b"reply"

        client.close()
        with pytest.raises(OSError) as info:
            await client.recv(1)
        assert info.value.errno == errno.EBADF
        conn.close()
        server_sock.close()


async def test_native_bind_twice_is_eaddrinuse() -> None:
    async with net.open_node(None) as node:
        first = node.socket()
        await first.bind(("127.0.0.1", 0))
        first.listen()
        second = node.socket()
        with pytest.raises(OSError) as info:
            await second.bind(first.getsockname())
        assert info.value.errno == errno.EADDRINUSE
        first.close()


async def test_closing_native_node_closes_its_streams() -> None:
    async with net.open_node(None) as outer, outer.listen(0) as listener:
        async with net.open_node(None) as inner:
            stream = await inner.connect(listener.address)  # type: ignore[attr-defined]
        server = await listener.accept()
        with pytest.raises(trio.ClosedResourceError):
            await stream.send_all(b"x")
        assert await server.receive_some(10) == b""


async def test_body_exception_is_not_wrapped() -> None:
    with pytest.raises(KeyError):
        async with net.open_node(None):
            raise KeyError("mine")
