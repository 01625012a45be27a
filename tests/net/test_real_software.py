"""Unmodified third-party trio and anyio code runs over unisockets streams.

The proof of shared/DESIGN.md's promise: a trio-websocket server and client
(their own code, untouched) exchange messages over our listener and stream,
and anyio code drives our anyio adapters on the trio backend.
"""

from __future__ import annotations

import anyio
import anyio.abc
import pytest
import trio
import trio_websocket

import unisockets.net as net

from .conftest import NodeFactory

pytestmark = pytest.mark.trio


async def test_trio_websocket_server_and_client_over_unisockets(
    node_factory: NodeFactory,
) -> None:
    async with node_factory() as alice, node_factory() as bob, alice.listen(80) as listener:

        async def handler(request: trio_websocket.WebSocketRequest) -> None:
            ws = await request.accept()
            try:
                while True:
                    message = await ws.get_message()
                    await ws.send_message(f"echo: {message}")
            except trio_websocket.ConnectionClosed:
                pass

        server = trio_websocket.WebSocketServer(handler, [listener])  # type: ignore[list-item]
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                await nursery.start(server.run)
                stream = await bob.connect((alice.address, 80))
                ws = await trio_websocket.wrap_client_stream(
                    nursery,
                    stream,  # type: ignore[arg-type]
                    alice.address,
                    "/chat",
                )
                for text in ["hello", "über", "x" * 100_000]:
                    await ws.send_message(text)
                    assert await ws.get_message() == f"echo: {text}"
                await ws.aclose()
                nursery.cancel_scope.cancel()


async def test_anyio_code_over_the_adapters(node_factory: NodeFactory) -> None:
    async with node_factory() as alice, node_factory() as bob:
        listener = net.AnyioListener(await alice.listen(443))
        received: list[bytes] = []

        async def handle(stream: anyio.abc.ByteStream) -> None:
            async with stream:
                try:
                    while True:
                        received.append(await stream.receive())
                except anyio.EndOfStream:
                    await stream.send(b"bye")

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                group.start_soon(listener.serve, handle)
                client = net.AnyioSocketStream(await bob.connect((alice.address, 443)))
                remote = client.extra(anyio.abc.SocketAttribute.remote_address)
                assert remote == (alice.address, 443)
                assert client.extra(anyio.abc.SocketAttribute.local_address)[0] == bob.address
                await client.send(b"one ")
                await client.send(b"two")
                await client.send_eof()
                assert await client.receive() == b"bye"
                with pytest.raises(anyio.EndOfStream):
                    await client.receive()
                await client.aclose()
                with pytest.raises(anyio.ClosedResourceError):
                    await client.send(b"late")
                group.cancel_scope.cancel()
        assert b"".join(received) == b"one two"
        await listener.aclose()
