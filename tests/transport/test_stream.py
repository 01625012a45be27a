"""PipeStream: trio's stream conformance suites and our own behaviour, over memory pipes."""

from __future__ import annotations

import itertools
import random

import pytest
import trio
import trio.testing
from trio.testing import check_half_closeable_stream, check_one_way_stream, check_two_way_stream

from unisockets.protocol.errors import RemoteProtocolError
from unisockets.transport.memory import MemoryPipe, memory_pipe_pair
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


# ---- transfers -----------------------------------------------------------------


async def send_in_chunks(stream: PipeStream, data: bytes, rng: random.Random) -> None:
    view = memoryview(data)
    while view:
        n = rng.randint(1, 50_000)
        await stream.send_all(view[:n])
        view = view[n:]
    await stream.send_eof()


async def receive_all(stream: PipeStream, rng: random.Random) -> bytes:
    got = bytearray()
    while True:
        chunk = await stream.receive_some(rng.choice([None, 1, 100, 5000, 70_000]))
        assert len(chunk) <= stream.window
        if not chunk:
            return bytes(got)
        got += chunk


@pytest.mark.trio
@pytest.mark.parametrize(
    ("max_message_size", "window"),
    [(16384, 256 * 1024), (1000, 5000), (5, 9)],
)
async def test_big_transfers_both_ways(max_message_size: int, window: int) -> None:
    rng = random.Random(max_message_size)
    size = 3_000_000 if max_message_size > 5 else 20_000
    data_ab, data_ba = rng.randbytes(size), rng.randbytes(size // 3)
    a, b = await stream_pair(max_message_size=max_message_size, window=window)
    results: dict[str, bytes] = {}

    async def collect(name: str, stream: PipeStream) -> None:
        results[name] = await receive_all(stream, random.Random(name))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_in_chunks, a, data_ab, random.Random(1))
        nursery.start_soon(send_in_chunks, b, data_ba, random.Random(2))
        nursery.start_soon(collect, "at b", b)
        nursery.start_soon(collect, "at a", a)
    assert results["at b"] == data_ab
    assert results["at a"] == data_ba
    await a.aclose()
    await b.aclose()


@pytest.mark.trio
async def test_half_close_each_direction_in_turn() -> None:
    a, b = await stream_pair()
    await a.send_all(b"request")
    await a.send_eof()
    assert await b.receive_some() == b"request"
    assert await b.receive_some() == b""
    assert await b.receive_some() == b""  # EOF is sticky
    # the other direction still works after a's half-close
    await b.send_all(b"reply, part 1")
    await b.send_all(b"reply, part 2")
    await b.send_eof()
    got = bytearray()
    while chunk := await a.receive_some(5):
        got += chunk
    assert got == b"reply, part 1reply, part 2"
    with pytest.raises(trio.ClosedResourceError):
        await a.send_all(b"more")
    await a.aclose()
    await b.aclose()


@pytest.mark.trio
async def test_aclose_sends_eof_and_peer_reads_everything_first() -> None:
    a, b = await stream_pair()
    await a.send_all(b"last words")
    await a.aclose()
    assert await b.receive_some() == b"last words"
    assert await b.receive_some() == b""
    # a is gone: sending to it breaks, as writing to a closed TCP peer does
    with pytest.raises(trio.BrokenResourceError):
        await b.send_all(b"anyone?")
    await b.aclose()


@pytest.mark.trio
async def test_a_side_that_only_sends_still_sees_credit() -> None:
    """a never calls receive_some, yet its sends complete while b sends to it too."""
    a, b = await stream_pair(window=4096)
    payload = random.Random(0).randbytes(100_000)

    async def b_side() -> None:
        await b.send_all(b"y" * 4096)  # fills a's window; a never reads it
        assert await receive_all(b, random.Random(3)) == payload

    async with trio.open_nursery() as nursery:
        nursery.start_soon(b_side)
        await a.send_all(payload)
        await a.send_eof()
    assert a.buffered_bytes == 4096


# ---- flow control ----------------------------------------------------------------


def data_in(pipe: MemoryPipe) -> int:
    """Stream bytes queued in a pipe that carries only DATA frames (1 header byte each)."""
    return pipe.buffered_bytes - pipe.buffered_messages


@pytest.mark.trio
async def test_slow_reader_bounds_memory_and_blocks_the_sender() -> None:
    window = 8192
    pipe_a, pipe_b = memory_pipe_pair(max_message_size=1000)
    a, b = PipeStream(pipe_a, window=window), PipeStream(pipe_b, window=window)
    payload = random.Random(5).randbytes(20 * window)
    sent = trio.Event()

    async def sender() -> None:
        await a.send_all(payload)
        sent.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        # b has not read anything: exactly one window is in flight, the sender waits
        assert not sent.is_set()
        assert a.send_credit == 0
        assert data_in(pipe_a) == window
        got = bytearray()
        rng = random.Random(6)
        while len(got) < len(payload):
            got += await b.receive_some(rng.randint(1, 3000))
            assert b.buffered_bytes <= window
            assert b.buffered_bytes + data_in(pipe_a) <= window
            await trio.testing.wait_all_tasks_blocked()
    assert got == payload
    assert sent.is_set()


@pytest.mark.trio
async def test_wait_send_all_might_not_block_waits_for_credit() -> None:
    a, b = await clogged_pair()
    assert a.send_credit == 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(a.wait_send_all_might_not_block)
        await trio.testing.wait_all_tasks_blocked()
        assert await b.receive_some() == b"x" * SMALL_WINDOW
        # the grant goes out with b's next call on the stream
        nursery.start_soon(b.receive_some)
        await trio.testing.wait_all_tasks_blocked()
        assert a.send_credit == SMALL_WINDOW
        nursery.cancel_scope.cancel()
    # with credit, it returns at once
    await a.wait_send_all_might_not_block()


# ---- failures --------------------------------------------------------------------


@pytest.mark.trio
async def test_peer_violating_credit_breaks_only_that_stream() -> None:
    window = 4096
    raw, pipe = memory_pipe_pair()
    victim = PipeStream(pipe, window=window)
    other_a, other_b = await stream_pair()
    await victim.send_all(b"v" * window)  # out of credit: the rogue never grants any
    # the rogue ignores flow control: two windows without waiting for credit
    for _ in range(8):
        await raw.send_message(b"\x00" + b"z" * 1024)
    # waiting for credit, the victim reads the rogue's frames and stops at the excess
    with pytest.raises(trio.BrokenResourceError) as info:
        await victim.send_all(b"more")
    assert isinstance(info.value.__cause__, RemoteProtocolError)
    assert "exceeded its credit" in str(info.value.__cause__)
    assert victim.buffered_bytes == 0  # what it sent is discarded, as with a TCP reset
    # the rogue got the victim's data, then a RESET saying why, then the end of the pipe
    frames = []
    with pytest.raises(trio.EndOfChannel):
        while True:
            frames.append(await raw.receive_message())
    assert frames[0] == b"\x00" + b"v" * window
    assert frames[1].startswith(b"\x03") and b"exceeded its credit" in frames[1]
    assert len(frames) == 2
    # the stream stays broken in both directions; closing it is fine
    with pytest.raises(trio.BrokenResourceError):
        await victim.send_all(b"x")
    with pytest.raises(trio.BrokenResourceError):
        await victim.receive_some()
    await victim.aclose()
    # another stream is unaffected
    await other_a.send_all(b"still fine")
    assert await other_b.receive_some() == b"still fine"


@pytest.mark.trio
@pytest.mark.parametrize("frame", [b"\x07what", b"\x02\x00\x00", b"\x01eof with payload", b"\x00"])
async def test_malformed_frame_breaks_the_stream(frame: bytes) -> None:
    raw, pipe = memory_pipe_pair()
    stream = PipeStream(pipe)
    await raw.send_message(frame)
    with pytest.raises(trio.BrokenResourceError) as info:
        await stream.receive_some()
    assert isinstance(info.value.__cause__, RemoteProtocolError)
    assert (await raw.receive_message()).startswith(b"\x03")


@pytest.mark.trio
async def test_reset_from_peer_breaks_both_directions() -> None:
    raw, pipe = memory_pipe_pair()
    stream = PipeStream(pipe)
    await raw.send_message(b"\x00buffered, then discarded")
    await raw.send_message(b"\x03disk on fire")
    with pytest.raises(trio.BrokenResourceError, match="disk on fire"):
        while True:
            await stream.receive_some()
    with pytest.raises(trio.BrokenResourceError, match="disk on fire"):
        await stream.send_all(b"x")
    with pytest.raises(trio.EndOfChannel):  # we closed our end, sending nothing back
        await raw.receive_message()


@pytest.mark.trio
async def test_pipe_ending_without_eof_is_broken() -> None:
    raw, pipe = memory_pipe_pair()
    stream = PipeStream(pipe)
    await raw.send_message(b"\x00partial")
    await raw.aclose()
    assert await stream.receive_some() == b"partial"
    with pytest.raises(trio.BrokenResourceError, match="without an end-of-stream"):
        await stream.receive_some()


@pytest.mark.trio
async def test_link_failure_is_broken_and_chained() -> None:
    a, b = await stream_pair()
    async with trio.open_nursery() as nursery:

        async def blocked_receive() -> None:
            with pytest.raises(trio.BrokenResourceError) as info:
                await b.receive_some()
            assert isinstance(info.value.__cause__, trio.BrokenResourceError)
            assert isinstance(info.value.__cause__.__cause__, ConnectionResetError)

        nursery.start_soon(blocked_receive)
        await trio.testing.wait_all_tasks_blocked()
        assert isinstance(a.pipe, MemoryPipe)
        a.pipe.break_pipe("cable cut")
    with pytest.raises(trio.BrokenResourceError):
        await a.send_all(b"x")
    with pytest.raises(trio.BrokenResourceError):
        await a.send_eof()
    await a.aclose()
    await b.aclose()


def test_pipe_too_small_for_frames() -> None:
    pipe, _ = memory_pipe_pair(max_message_size=4)
    with pytest.raises(ValueError):
        PipeStream(pipe)


# ---- closing and cancellation ----------------------------------------------------------


@pytest.mark.trio
async def test_closing_while_blocked_on_credit_resets_the_peer() -> None:
    a, b = await stream_pair(window=SMALL_WINDOW)

    async def blocked_send() -> None:
        with pytest.raises(trio.ClosedResourceError):
            await a.send_all(b"x" * (3 * SMALL_WINDOW))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(blocked_send)
        await trio.testing.wait_all_tasks_blocked()
        await a.aclose()
    # b gets what fit in the window, then learns the rest was lost
    got = bytearray()
    with pytest.raises(trio.BrokenResourceError, match="closed with unsent data"):
        while True:
            got += await b.receive_some()
    assert got == b"x" * SMALL_WINDOW


@pytest.mark.trio
async def test_closing_while_blocked_on_pipe_backpressure() -> None:
    a, b = await stream_pair(high_water=0)

    async def blocked_send() -> None:
        with pytest.raises(trio.ClosedResourceError):
            await a.send_all(b"x" * 100_000)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(blocked_send)
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as scope:
            scope.cancel()  # forceful: the goodbye cannot get through a full pipe
            await a.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await a.send_all(b"x")
    # b reads what was queued, then sees the pipe end without EOF
    with pytest.raises(trio.BrokenResourceError):
        while await b.receive_some():
            pass


@pytest.mark.trio
async def test_closing_wakes_a_blocked_receive_and_the_peer_reads_eof() -> None:
    a, b = await stream_pair()

    async def blocked_receive() -> None:
        with pytest.raises(trio.ClosedResourceError):
            await a.receive_some()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(blocked_receive)
        await trio.testing.wait_all_tasks_blocked()
        await a.aclose()
    assert await b.receive_some() == b""


@pytest.mark.trio
async def test_cancelled_send_all_keeps_its_bytes_in_order() -> None:
    a, b = await stream_pair(window=SMALL_WINDOW)
    first = bytes(range(256)) * 20
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.send_all, first)
            await trio.testing.wait_all_tasks_blocked()  # out of credit
            scope.cancel()
    assert scope.cancelled_caught

    async def finish() -> None:
        await a.send_all(b"second")
        await a.send_eof()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(finish)
        got = await receive_all(b, random.Random(0))
    assert got == first + b"second"


async def yield_some(rng: random.Random, most: int = 4) -> None:
    for _ in range(rng.randint(0, most)):
        await trio.lowlevel.checkpoint()


@pytest.mark.trio
@pytest.mark.parametrize("seed", range(16))
async def test_cancellations_never_lose_or_duplicate_bytes(seed: int) -> None:
    """A chaos task cancels sends and receives at random checkpoints.

    A cancelled ``send_all`` sends all of its data or none of it (none when the
    cancel hits its first checkpoint); everything else arrives once, in order.
    """
    rng = random.Random(seed)
    if seed % 2:
        a, b = await stream_pair(max_message_size=rng.randint(5, 300), window=rng.randint(1, 2000))
    else:
        a, b = await stream_pair(high_water=rng.randint(0, 500), window=rng.randint(1, 5000))
    chunks = [rng.randbytes(rng.randint(16, 3000)) for _ in range(80)]
    scopes: dict[str, trio.CancelScope] = {}
    cancelled = {"send": 0, "receive": 0}
    sent_cancelled: list[bool] = []

    async def sender() -> None:
        for chunk in chunks:
            with trio.CancelScope() as scopes["send"]:
                await a.send_all(chunk)
            sent_cancelled.append(scopes["send"].cancelled_caught)
            cancelled["send"] += scopes["send"].cancelled_caught
            await yield_some(rng)
        await a.send_eof()

    async def chaos() -> None:
        while True:
            await yield_some(rng, 30)
            scope = scopes.get(rng.choice(["send", "receive"]))
            if scope is not None:
                scope.cancel()

    got = bytearray()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        nursery.start_soon(chaos)
        while True:
            with trio.CancelScope() as scopes["receive"]:
                chunk = await b.receive_some(rng.randint(1, 4000))
                if not chunk:
                    break
                got += chunk
                assert b.buffered_bytes <= b.window
            cancelled["receive"] += scopes["receive"].cancelled_caught
        nursery.cancel_scope.cancel()
    position = 0
    for chunk, was_cancelled in zip(chunks, sent_cancelled, strict=True):
        if got.startswith(chunk, position):
            position += len(chunk)
        else:
            assert was_cancelled, "a completed send_all lost its data"
    assert position == len(got)
    assert cancelled["send"] and cancelled["receive"]  # both paths were exercised


# ---- over real WebRTC data channels -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.trio
async def test_half_closeable_stream_conformance_over_webrtc_data_channels() -> None:
    from .conftest import open_mesh

    labels = itertools.count()
    async with open_mesh("10.0.0.1", "10.0.0.2") as mesh:

        async def webrtc_pair(window: int | None = None) -> tuple[PipeStream, PipeStream]:
            label = f"conn-{next(labels)}"
            near = await mesh["10.0.0.1"].open_pipe("10.0.0.2", label)
            far = await mesh["10.0.0.2"].accept_pipe("10.0.0.1", label)
            if window is None:
                return PipeStream(near), PipeStream(far)
            return PipeStream(near, window=window), PipeStream(far, window=window)

        async def clogged_webrtc_pair() -> tuple[PipeStream, PipeStream]:
            s1, s2 = await webrtc_pair(SMALL_WINDOW)
            await s1.send_all(b"x" * SMALL_WINDOW)
            await s2.send_all(b"x" * SMALL_WINDOW)
            return s1, s2

        with trio.fail_after(120):
            await check_half_closeable_stream(webrtc_pair, clogged_webrtc_pair)
