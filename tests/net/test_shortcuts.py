"""The one-liners ``unisockets.listen`` and ``unisockets.connect`` (shared/DESIGN.md)."""

from __future__ import annotations

import errno

import pytest
import trio

import unisockets
from unisockets.net.node import TransportFactory

from .transports import memory_transport

pytestmark = pytest.mark.trio

LOOPBACK = {"ice_addresses": ["127.0.0.1"]}


async def test_listen_and_connect_one_liners_over_webrtc(signaling_url: str) -> None:
    async with (
        unisockets.listen(("10.0.0.1", 1234), signaling=signaling_url, **LOOPBACK) as listener,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(_echo_one, listener)
        with trio.fail_after(30):
            async with unisockets.connect(
                ("10.0.0.1", 1234), signaling=signaling_url, **LOOPBACK
            ) as stream:
                assert stream.remote_address == ("10.0.0.1", 1234)
                assert stream.local_address[0] == "10.0.0.2"
                await stream.send_all(b"one-liner")
                assert await stream.receive_some(100) == b"one-liner"


async def test_listen_on_an_address_the_server_did_not_assign(signaling_url: str) -> None:
    async with unisockets.open_node(signaling_url, transport=_memory()):
        # 10.0.0.1 is taken by the node above: a new node gets 10.0.0.2
        with pytest.raises(OSError) as info:
            async with unisockets.listen(("10.0.0.1", 80), signaling=signaling_url, **LOOPBACK):
                pass
        assert info.value.errno == errno.EADDRNOTAVAIL


@pytest.mark.parametrize("host", ["0.0.0.0", ""])
async def test_listen_on_any_address_joins_the_default_subnet(
    signaling_url: str, host: str
) -> None:
    """``0.0.0.0`` is "whatever address the server assigns", not subnet ``0.0.0`` (issue 15)."""
    memory = _memory()
    async with (
        unisockets.listen((host, 7000), signaling=signaling_url, transport=memory) as listener,
        trio.open_nursery() as nursery,
    ):
        assert listener.address == ("10.0.0.1", 7000)  # type: ignore[attr-defined]

        nursery.start_soon(_echo_one, listener)
        with trio.fail_after(30):
            async with unisockets.connect(
                ("10.0.0.1", 7000),
                signaling=signaling_url,
                transport=memory,
            ) as stream:
                await stream.send_all(b"any")
                assert await stream.receive_some(100) == b"any"


async def test_one_liners_native() -> None:
    async with unisockets.listen(("127.0.0.1", 0), signaling=None) as listener:
        port = listener.address[1]  # type: ignore[attr-defined]
        async with unisockets.connect(("127.0.0.1", port), signaling=None) as stream:
            server = await listener.accept()
            await stream.send_all(b"native")
            assert await server.receive_some(10) == b"native"
            await server.aclose()
    with pytest.raises(ConnectionRefusedError):
        async with unisockets.connect(("127.0.0.1", port), signaling=None):
            pass


async def _echo_one(listener: trio.abc.Listener[unisockets.net.SocketStream]) -> None:
    """Accept one connection and echo its first message."""
    stream = await listener.accept()
    async with stream:
        await stream.send_all(await stream.receive_some(100))


def _memory() -> TransportFactory:
    from unisockets.transport.memory import MemoryNetwork

    return memory_transport(MemoryNetwork())
