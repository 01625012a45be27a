"""The browser's socket object in CPython: options, timeouts, recv_into, fileno.

``unisockets.browser.Socket`` runs on asyncio; over two in-page loopback
pipes (the pipes a tab uses for connections to itself) it needs no browser,
so its connected calls run here. Its interop with Chromium's WebRTC is in
test_interop.py (``test_tab_errors_and_sockets`` covers these calls in a tab).
"""

from __future__ import annotations

import asyncio
import errno
import io
import socket

import pytest

from unisockets.driver.pipes import loopback_pair
from unisockets.driver.sockets import Socket
from unisockets.driver.streams import Stream


class _Node:
    """What a connected socket asks of its node: somewhere to run closes."""

    address = "10.0.0.2"

    def _spawn(self, coroutine: object) -> asyncio.Future[object]:
        return asyncio.ensure_future(coroutine)  # type: ignore[arg-type]


def connected() -> tuple[Socket, Socket]:
    a, b = loopback_pair("10.0.0.2", "10.0.0.2:49152>10.0.0.2:80")
    near = Stream(a, local_address=("10.0.0.2", 49152), remote_address=("10.0.0.2", 80))
    far = Stream(b, local_address=("10.0.0.2", 80), remote_address=("10.0.0.2", 49152))
    node = _Node()
    return Socket(node, near), Socket(node, far)  # type: ignore[arg-type]


def test_timeouts_recv_into_options_fileno() -> None:
    async def main() -> None:
        client, server = connected()
        server.setblocking(False)
        assert server.gettimeout() == 0.0
        with pytest.raises(BlockingIOError) as info:
            await server.recv(10)
        assert info.value.errno == errno.EAGAIN
        await client.sendall(b"hello")
        server.settimeout(None)
        assert await server.recv(1) == b"h"
        server.settimeout(0)
        assert await server.recv(10) == b"ello"  # there already: no EAGAIN
        server.settimeout(0.05)
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(socket.timeout):
            await server.recv(10)
        assert loop.time() - start >= 0.05
        await client.sendall(b"0123456789")
        buffer = bytearray(4)
        assert await server.recv_into(buffer) == 4 and buffer == b"0123"
        with pytest.raises(ValueError):
            await server.recv_into(buffer, 5)
        assert await server.recv_into(memoryview(buffer), 2) == 2 and buffer == b"4523"
        sol = socket.SOL_SOCKET
        server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 5)
        assert server.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert server.getsockopt(sol, socket.SO_SNDBUF) == 256 * 1024
        with pytest.raises(OSError) as info:
            server.setsockopt(sol, socket.SO_BROADCAST, 1)
        assert info.value.errno == errno.ENOPROTOOPT
        with pytest.raises(io.UnsupportedOperation):
            server.fileno()
        await client.aclose()
        await server.aclose()
        with pytest.raises(OSError) as info:
            server.getsockopt(sol, socket.SO_SNDBUF)
        assert info.value.errno == errno.EBADF

    asyncio.run(main())
