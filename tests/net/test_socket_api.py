"""What a porter expects of a socket object: options, timeouts, recv_into, fileno, close + bind.

Over the in-memory transport (the calls do not depend on it), over real
WebRTC where the transport matters (releasing an address), and over the
native fallback, whose options must reach the OS socket.
"""

from __future__ import annotations

import errno
import io
import socket
import struct

import pytest
import trio

import unisockets.net as net

from .conftest import NodeFactory

pytestmark = pytest.mark.trio

memory_only = pytest.mark.parametrize("backend", ["memory"])


async def connected_pair(node: net.Node, port: int) -> tuple[net.Socket, net.Socket, net.Socket]:
    """``(listening, client, accepted)`` sockets on ``node``, connected to itself."""
    listening = node.socket()
    await listening.bind(("", port))
    await listening.listen(5)
    client = node.socket()
    with trio.fail_after(30):
        await client.connect(listening.getsockname())
        accepted, _ = await listening.accept()
    return listening, client, accepted


# --- setsockopt / getsockopt -----------------------------------------------------------------


@memory_only
async def test_options_are_stored_normalised_and_inherited(node_factory: NodeFactory) -> None:
    async with node_factory() as alice:
        sock = alice.socket()
        sol, tcp = socket.SOL_SOCKET, socket.IPPROTO_TCP
        # defaults: Linux's for the flags, the stream window for the buffers
        assert sock.getsockopt(sol, socket.SO_REUSEADDR) == 0
        assert sock.getsockopt(tcp, socket.TCP_NODELAY) == 0
        assert sock.getsockopt(sol, socket.SO_RCVBUF) == 256 * 1024
        assert sock.getsockopt(sol, socket.SO_TYPE) == socket.SOCK_STREAM
        assert sock.getsockopt(sol, socket.SO_ERROR) == 0
        # flags read back 0 or 1 (as Linux); sizes as given; bytes-like values too
        sock.setsockopt(sol, socket.SO_REUSEADDR, 7)
        sock.setsockopt(sol, socket.SO_KEEPALIVE, True)
        sock.setsockopt(tcp, socket.TCP_NODELAY, struct.pack("i", 1))
        sock.setsockopt(sol, socket.SO_RCVBUF, 4096)
        sock.setsockopt(sol, socket.SO_SNDBUF, 0)
        assert sock.getsockopt(sol, socket.SO_REUSEADDR) == 1
        assert sock.getsockopt(sol, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(tcp, socket.TCP_NODELAY) == 1
        assert sock.getsockopt(sol, socket.SO_RCVBUF) == 4096
        assert sock.getsockopt(sol, socket.SO_SNDBUF) == 0
        assert sock.getsockopt(sol, socket.SO_RCVBUF, 4) == struct.pack("i", 4096)
        assert sock.getsockopt(sol, socket.SO_RCVBUF, 2) == struct.pack("i", 4096)[:2]
        # the errors
        for level, name in [(sol, socket.SO_BROADCAST), (tcp, socket.TCP_MAXSEG), (99, 1)]:
            with pytest.raises(OSError) as info:
                sock.setsockopt(level, name, 1)
            assert info.value.errno == errno.ENOPROTOOPT
            assert "SO_REUSEADDR" in str(info.value)  # says what is supported
            with pytest.raises(OSError) as info:
                sock.getsockopt(level, name)
            assert info.value.errno == errno.ENOPROTOOPT
        with pytest.raises(OSError) as info:
            sock.setsockopt(sol, socket.SO_TYPE, 1)
        assert info.value.errno == errno.ENOPROTOOPT
        with pytest.raises(OSError) as info:
            sock.setsockopt(sol, socket.SO_RCVBUF, -1)
        assert info.value.errno == errno.EINVAL
        with pytest.raises(OSError) as info:
            sock.setsockopt(sol, socket.SO_RCVBUF, b"\x01")
        assert info.value.errno == errno.EINVAL
        with pytest.raises(OSError) as info:
            sock.getsockopt(sol, socket.SO_RCVBUF, 2000)
        assert info.value.errno == errno.EINVAL
        with pytest.raises(TypeError):
            sock.setsockopt(sol, socket.SO_RCVBUF, "big")  # type: ignore[arg-type]
        with pytest.raises(OverflowError):
            sock.setsockopt(sol, socket.SO_RCVBUF, 2**40)
        # an accepted socket starts with the listening socket's options
        await sock.bind(("", 80))
        await sock.listen(1)
        client = alice.socket()
        with trio.fail_after(30):
            await client.connect((alice.address, 80))
            conn, _ = await sock.accept()
        assert conn.getsockopt(tcp, socket.TCP_NODELAY) == 1
        assert conn.getsockopt(sol, socket.SO_RCVBUF) == 4096
        assert client.getsockopt(tcp, socket.TCP_NODELAY) == 0
        conn.setsockopt(sol, socket.SO_RCVBUF, 1)  # its own copy
        assert sock.getsockopt(sol, socket.SO_RCVBUF) == 4096
        for each in (conn, client, sock):
            await each.aclose()
        with pytest.raises(OSError) as info:
            sock.setsockopt(sol, socket.SO_REUSEADDR, 1)
        assert info.value.errno == errno.EBADF
        with pytest.raises(OSError) as info:
            sock.getsockopt(sol, socket.SO_REUSEADDR)
        assert info.value.errno == errno.EBADF


async def test_native_options_reach_the_os_socket() -> None:
    sol, tcp = socket.SOL_SOCKET, socket.IPPROTO_TCP
    async with net.open_node(None) as node:
        listening = node.socket()
        listening.setsockopt(sol, socket.SO_REUSEADDR, 0)  # before bind: on the OS socket it makes
        listening.setsockopt(sol, socket.SO_RCVBUF, 8192)
        await listening.bind(("", 0))
        assert listening.getsockopt(sol, socket.SO_REUSEADDR) == 0  # not the default 1
        rcvbuf = listening.getsockopt(sol, socket.SO_RCVBUF)
        assert rcvbuf in (8192, 16384)  # Linux reports twice the value set
        await listening.listen(1)
        client = node.socket()
        client.setsockopt(tcp, socket.TCP_NODELAY, 1)  # before connect
        await client.connect(listening.getsockname())
        conn, _ = await listening.accept()
        assert client.getsockopt(tcp, socket.TCP_NODELAY) == 1
        assert conn.getsockopt(sol, socket.SO_KEEPALIVE) == 0
        conn.setsockopt(sol, socket.SO_KEEPALIVE, 1)  # after connect: at once
        assert conn.getsockopt(sol, socket.SO_KEEPALIVE) == 1
        conn.setsockopt(sol, socket.SO_SNDBUF, 16384)
        assert conn.getsockopt(sol, socket.SO_SNDBUF) in (16384, 32768)
        assert conn.getsockopt(sol, socket.SO_TYPE) == socket.SOCK_STREAM
        with pytest.raises(OSError) as info:
            conn.setsockopt(sol, socket.SO_BROADCAST, 1)  # refused before the OS sees it
        assert info.value.errno == errno.ENOPROTOOPT
        for each in (conn, client, listening):
            await each.aclose()


# --- settimeout / gettimeout -----------------------------------------------------------------


@memory_only
async def test_timeouts_follow_python_sockets(node_factory: NodeFactory) -> None:
    async with node_factory() as alice:
        listening, client, conn = await connected_pair(alice, 81)
        assert conn.gettimeout() is None and conn.getblocking()
        with pytest.raises(ValueError):
            conn.settimeout(-1)
        with pytest.raises(ValueError):
            conn.settimeout(float("nan"))
        with pytest.raises(TypeError):
            conn.settimeout("1")  # type: ignore[arg-type]
        conn.setblocking(False)
        assert conn.gettimeout() == 0.0 and not conn.getblocking()
        # non-blocking: a call that would wait raises EAGAIN; what is there is returned
        with pytest.raises(BlockingIOError) as info:
            await conn.recv(10)
        assert info.value.errno == errno.EAGAIN
        await client.sendall(b"hello")
        conn.settimeout(None)
        assert await conn.recv(1) == b"h"  # the rest is buffered now
        conn.settimeout(0)
        assert await conn.recv(10) == b"ello"
        await conn.sendall(b"room to send")  # timeout 0: a send takes the data
        # a positive timeout: TimeoutError (socket.timeout) when it expires, no byte lost
        conn.settimeout(0.05)
        start = trio.current_time()
        with pytest.raises(socket.timeout):
            await conn.recv(10)
        assert trio.current_time() - start >= 0.05
        await client.sendall(b"later")
        assert await conn.recv(10) == b"later"
        assert await client.recv(100) == b"room to send"
        # accept and connect
        listening.settimeout(0)
        with pytest.raises(BlockingIOError):
            await listening.accept()
        other = alice.socket()
        other.settimeout(0)
        with pytest.raises(BlockingIOError):
            await other.connect((alice.address, 81))  # needs a round trip
        other.settimeout(5)
        await other.connect((alice.address, 81))  # fresh again after the refusal
        listening.settimeout(10)
        queued, _ = await listening.accept()  # a timeout that does not expire
        assert queued.gettimeout() is None  # accepted sockets block, as in socket
        for each in (queued, other, conn, client, listening):
            await each.aclose()


async def test_native_timeouts() -> None:
    async with net.open_node(None) as node:
        listening, client, conn = await connected_pair(node, 0)
        conn.settimeout(0)
        with pytest.raises(BlockingIOError):
            await conn.recv(10)
        conn.settimeout(0.05)
        with pytest.raises(TimeoutError):
            await conn.recv(10)
        await client.sendall(b"ok")
        conn.settimeout(None)
        assert await conn.recv(1) == b"o"
        for each in (conn, client, listening):
            await each.aclose()


# --- recv_into, fileno -----------------------------------------------------------------------


@memory_only
async def test_recv_into_and_fileno(node_factory: NodeFactory) -> None:
    async with node_factory() as alice:
        listening, client, conn = await connected_pair(alice, 82)
        await client.sendall(b"0123456789")
        buffer = bytearray(4)
        assert await conn.recv_into(buffer) == 4 and buffer == b"0123"
        view = memoryview(bytearray(10))
        assert await conn.recv_into(view[2:], 3) == 3 and view[2:5] == b"456"
        assert await conn.recv_into(bytearray(0)) == 0
        with pytest.raises(ValueError, match="negative"):
            await conn.recv_into(buffer, -1)
        with pytest.raises(ValueError, match="too small"):
            await conn.recv_into(buffer, 5)
        with pytest.raises(TypeError):
            await conn.recv_into(b"read-only")
        rest = bytearray(100)
        assert await conn.recv_into(rest) == 3 and rest[:3] == b"789"
        client.shutdown(net.SHUT_WR)
        assert await conn.recv_into(rest) == 0  # EOF
        for sock in (conn, alice.socket()):
            with pytest.raises(io.UnsupportedOperation, match="no OS file descriptor"):
                sock.fileno()
        with pytest.raises(OSError):
            conn.fileno()  # UnsupportedOperation is an OSError (and a ValueError)
        for each in (conn, client, listening):
            await each.aclose()
        with pytest.raises(OSError) as info:
            await conn.recv_into(buffer)
        assert info.value.errno == errno.EBADF


# --- close, then bind at once ----------------------------------------------------------------


async def test_close_then_bind_the_same_port_at_once(node_factory: NodeFactory) -> None:
    """Over memory and real WebRTC: ``close()`` (not awaited) releases the address."""
    async with node_factory() as alice, node_factory() as bob:
        for round in range(3):
            sock = alice.socket()
            await sock.bind(("", 7000))
            listening = sock.listen(5)
            assert isinstance(listening, net.Listening)
            assert isinstance(listening.listener, net.OverlayListener)
            await listening
            if round == 1:  # a bound socket that never listened
                sock.close()
                sock = alice.socket()
                await sock.bind(("", 7000))
            sock.close()  # synchronous: no checkpoint before the next bind
        again = alice.socket()
        await again.bind(("", 7000))
        await again.listen(5)
        client = bob.socket()
        with trio.fail_after(30):
            await client.connect((alice.address, 7000))
            conn, _ = await again.accept()
        await client.sendall(b"after rebinding")
        assert await conn.recv(100) == b"after rebinding"
        # the node-level API too: leaving a listener's block, then listening at once
        async with alice.listen(7001):
            pass
        async with alice.listen(7001):
            pass
        for each in (conn, client, again):
            await each.aclose()


async def test_native_close_then_bind_at_once() -> None:
    async with net.open_node(None) as node:
        sock = node.socket()
        await sock.bind(("", 0))
        address = sock.getsockname()
        await sock.listen(1)
        sock.close()
        again = node.socket()
        await again.bind(address)
        await again.aclose()
