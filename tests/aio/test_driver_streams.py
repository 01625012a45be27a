"""The asyncio driver's streams keep trio's checkpoint rule with one yield per call."""

from __future__ import annotations

import asyncio

from unisockets.driver.pipes import loopback_pair
from unisockets.driver.streams import Stream


def _pair() -> tuple[Stream, Stream]:
    a, b = loopback_pair("10.0.0.1", "10.0.0.1:0>10.0.0.1:7")
    return (
        Stream(a, local_address=("10.0.0.1", 0), remote_address=("10.0.0.1", 7)),
        Stream(b, local_address=("10.0.0.1", 7), remote_address=("10.0.0.1", 0)),
    )


async def _until_buffered(stream: Stream, size: int) -> None:
    while stream.buffered_bytes < size:  # noqa: ASYNC110 - loopback delivery is call_soon
        await asyncio.sleep(0)


def test_receive_with_data_buffered_is_still_a_checkpoint() -> None:
    async def main() -> None:
        client, server = _pair()
        await client.send_all(b"ready")
        await _until_buffered(server, 5)
        ran: list[str] = []

        async def other() -> None:
            ran.append("other task")

        task = asyncio.ensure_future(other())
        assert await server.receive_some() == b"ready"
        assert ran == ["other task"]  # receive_some yielded although it had data
        await task

        # A cancelled receive loses nothing: the data waits for the next call.
        await client.send_all(b"kept")
        await _until_buffered(server, 4)
        cancelled = asyncio.ensure_future(server.receive_some())
        await asyncio.sleep(0)
        cancelled.cancel()
        try:
            await cancelled
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("the receive finished before the cancel")  # pragma: no cover
        assert await server.receive_some() == b"kept"
        await client.aclose()
        assert await server.receive_some() == b""
        await server.aclose()

    asyncio.run(main())


def test_send_all_with_credit_hands_over_first_and_still_yields() -> None:
    async def main() -> None:
        client, server = _pair()
        ran: list[int] = []

        async def other() -> None:
            ran.append(client.bytes_sent)

        task = asyncio.ensure_future(other())
        await client.send_all(b"12345")
        assert ran == [5]  # the other task ran inside send_all, after the bytes went out
        await task
        await _until_buffered(server, 5)
        assert await server.receive_some() == b"12345"
        await client.aclose()
        await server.aclose()

    asyncio.run(main())
