"""PipeStream: trio's stream conformance suites and our own behaviour, over memory pipes."""

from __future__ import annotations

import pytest
from trio.testing import check_half_closeable_stream, check_one_way_stream, check_two_way_stream

from unisockets.transport.memory import memory_pipe_pair
from unisockets.transport.stream import PipeStream

SMALL_WINDOW = 1024


async def stream_pair(**kwargs: int) -> tuple[PipeStream, PipeStream]:
    window = kwargs.pop("window", None)
    a, b = memory_pipe_pair(**kwargs)
    if window is None:
        return PipeStream(a), PipeStream(b)
    return PipeStream(a, window=window), PipeStream(b, window=window)


async def clogged_pair() -> tuple[PipeStream, PipeStream]:
    """Both directions out of credit: sends block until the other side receives."""
    s1, s2 = await stream_pair(window=SMALL_WINDOW)
    await s1.send_all(b"x" * SMALL_WINDOW)
    await s2.send_all(b"x" * SMALL_WINDOW)
    return s1, s2


@pytest.mark.trio
async def test_half_closeable_stream_conformance() -> None:
    await check_half_closeable_stream(stream_pair, clogged_pair)


@pytest.mark.trio
async def test_two_way_stream_conformance_small_messages() -> None:
    async def small() -> tuple[PipeStream, PipeStream]:
        return await stream_pair(max_message_size=100, window=3000)

    await check_two_way_stream(small, None)


@pytest.mark.trio
async def test_one_way_stream_conformance_with_pipe_backpressure() -> None:
    async def tight() -> tuple[PipeStream, PipeStream]:
        return await stream_pair(high_water=0)

    await check_one_way_stream(tight, clogged_pair)
