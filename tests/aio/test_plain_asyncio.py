"""Plain asyncio code (``asyncio.run``) uses unisockets with aiortc in its own loop, no thread."""

from __future__ import annotations

import asyncio
import threading

import anyio

import unisockets
from unisockets.aio import AioNode

from .trio_thread import TrioThread

#: Bound on the whole exchange, so that a bug fails the test instead of hanging it.
TIMEOUT = 60.0


def test_asyncio_run_echo_without_a_thread(trio_thread: TrioThread) -> None:
    server = trio_thread.start_server()
    threads_before = set(threading.enumerate())
    seen: dict[str, object] = {}

    async def main() -> None:
        async with asyncio.timeout(TIMEOUT):
            async with (
                unisockets.open_node(server.url, ice_addresses=["127.0.0.1"]) as alice,
                unisockets.open_node(server.url, ice_addresses=["127.0.0.1"]) as bob,
                alice.listen(1234) as listener,
            ):
                assert isinstance(alice, AioNode)
                client = await bob.connect((alice.address, 1234))
                accepted = await listener.accept()
                await client.send(b"ping")
                assert await accepted.receive() == b"ping"
                await accepted.send(b"pong")
                assert await client.receive() == b"pong"
                # Everything above ran in this thread: the node started none.
                seen["threads"] = set(threading.enumerate()) - threads_before
                await client.aclose()
                try:
                    await accepted.receive()
                except anyio.EndOfStream:
                    seen["eof"] = True
                await accepted.aclose()

    asyncio.run(main())
    assert seen == {"threads": set(), "eof": True}
    assert set(threading.enumerate()) == threads_before
    trio_thread.run(server.stop)


def test_what_is_trio_only_is_a_clear_error_under_asyncio() -> None:
    async def main() -> list[str]:
        errors = []
        for args, options in (((None,), {}), (("ws://127.0.0.1:1",), {"transport": object()})):
            try:
                async with unisockets.open_node(*args, **options):
                    pass
            except TypeError as exc:
                errors.append(str(exc))
        return errors

    errors = asyncio.run(main())
    assert len(errors) == 2
    assert "under asyncio" in errors[0] and "anyio.connect_tcp" in errors[0]
    # transport= takes the asyncio driver's transports (an AioTransport), not any object.
    assert "under asyncio, transport= takes a unisockets.aio.AioTransport" in errors[1]
