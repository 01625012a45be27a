"""Which addresses a node may bind, the same on both drivers (docs/protocol.md, "Bind and listen").

A node may bind its own id or any address that is no other member's id (the
original's C echo server binds ``127.0.0.1:1234`` on every node); another
member's id is ``EADDRNOTAVAIL``, an alias someone holds ``EADDRINUSE``.
Every test runs on the asyncio driver and on the trio driver (conftest.py),
over real aiortc and a real signaling server.
"""

from __future__ import annotations

import errno
from typing import Any

import anyio
import pytest

import unisockets

from .test_end_to_end import LOOPBACK, TIMEOUT, server
from .trio_thread import TrioThread

pytestmark = pytest.mark.anyio


async def listen_on(sock: Any) -> None:
    """``listen(1)``; on trio, wait until the server knows (its ``Listening`` is awaitable)."""
    listening = sock.listen(1)
    if listening is not None:
        await listening


async def test_bind_the_originals_address(trio_thread: TrioThread, anyio_backend: str) -> None:
    """A socket binds ``127.0.0.1:1234``; another node connects to ``127.0.0.1:1234``."""
    with anyio.fail_after(TIMEOUT):
        async with (
            server(trio_thread) as url,
            unisockets.open_node(url, **LOOPBACK) as alice,
            unisockets.open_node(url, **LOOPBACK) as bob,
            alice.socket() as listening,
            bob.socket() as client,
        ):
            await listening.bind(("127.0.0.1", 1234))
            assert listening.getsockname() == ("127.0.0.1", 1234)
            await listen_on(listening)
            await client.connect(("127.0.0.1", 1234))
            accepted, peer = await listening.accept()
            assert peer[0] == bob.address
            assert client.getpeername() == ("127.0.0.1", 1234)
            await client.sendall(b"ping")
            assert await accepted.recv(4) == b"ping"
            await accepted.sendall(b"pong")
            assert await client.recv(4) == b"pong"
            await accepted.aclose()
            assert await client.recv(4) == b""

            # The alias is held: a second bind of it elsewhere is EADDRINUSE.
            async with bob.socket() as second:
                with pytest.raises(OSError) as in_use:
                    await second.bind(("127.0.0.1", 1234))
                assert in_use.value.errno == errno.EADDRINUSE


async def test_bind_another_members_id(trio_thread: TrioThread, anyio_backend: str) -> None:
    """Binding another member's id is ``EADDRNOTAVAIL``; a free id of the subnet binds."""
    with anyio.fail_after(TIMEOUT):
        async with (
            server(trio_thread) as url,
            unisockets.open_node(url, **LOOPBACK) as alice,
            unisockets.open_node(url, **LOOPBACK) as bob,
        ):
            # Alice learnt of Bob (``greeting``) before the answer to her bind: the
            # server sent it first on her WebSocket. (A newer node may not know an
            # older one yet and gets EADDRINUSE, docs/protocol.md, "Bind and listen".)
            async with alice.socket() as sock:
                with pytest.raises(OSError) as not_ours:
                    await sock.bind((bob.address, 5000))
                assert not_ours.value.errno == errno.EADDRNOTAVAIL
            subnet = bob.address.rpartition(".")[0]
            free_id = f"{subnet}.200"
            async with bob.socket() as sock:
                await sock.bind((free_id, 5000))
                assert sock.getsockname() == (free_id, 5000)
