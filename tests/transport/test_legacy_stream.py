"""LegacyStream: raw bytes over a pipe it does not own (the original unisockets' data plane).

Over in-memory pipe pairs: the far end is read and written as a legacy node
does, one raw message at a time. The WebRTC path is covered end to end in
tests/net/test_legacy.py.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from unisockets.transport.legacy import LegacyStream
from unisockets.transport.memory import memory_pipe_pair

pytestmark = pytest.mark.trio


async def test_send_all_splits_into_raw_messages_of_the_pipe_size() -> None:
    ours, theirs = memory_pipe_pair(max_message_size=10, high_water=1 << 20)
    stream = LegacyStream(ours)
    await stream.send_all(b"0123456789abcdefghijXYZ")
    await stream.send_all(b"")  # nothing goes out
    messages = [await theirs.receive_message() for _ in range(3)]
    assert messages == [b"0123456789", b"abcdefghij", b"XYZ"]
    with trio.testing.assert_checkpoints():
        await stream.send_all(memoryview(b"mv"))
    assert await theirs.receive_message() == b"mv"


async def test_receive_some_returns_raw_bytes_then_eof_when_the_pipe_ends() -> None:
    ours, theirs = memory_pipe_pair()
    stream = LegacyStream(ours)
    await theirs.send_message(b"hello ")
    await theirs.send_message(b"world")
    assert await stream.receive_some(3) == b"hel"
    assert await stream.receive_some() == b"lo "
    assert await stream.receive_some() == b"world"
    await theirs.aclose()
    assert await stream.receive_some() == b""
    assert await stream.receive_some() == b""


async def test_a_broken_pipe_is_an_error_unless_the_peer_left() -> None:
    ours, theirs = memory_pipe_pair()
    stream = LegacyStream(ours)
    await theirs.send_message(b"before")
    assert await stream.receive_some() == b"before"
    ours.break_pipe()
    with pytest.raises(trio.BrokenResourceError):
        await stream.receive_some()
    with pytest.raises(trio.BrokenResourceError):
        await stream.send_all(b"x")

    ours, theirs = memory_pipe_pair()
    stream = LegacyStream(ours)
    await theirs.send_message(b"bye")
    assert await stream.receive_some() == b"bye"
    stream.peer_left()
    ours.break_pipe("the peer left")
    assert await stream.receive_some() == b""


async def test_send_eof_and_close_are_local_only() -> None:
    ours, theirs = memory_pipe_pair()
    stream = LegacyStream(ours)
    await stream.send_eof()
    await stream.send_eof()  # idempotent
    with pytest.raises(trio.ClosedResourceError):
        await stream.send_all(b"x")
    await theirs.send_message(b"still readable")
    assert await stream.receive_some() == b"still readable"

    await theirs.send_message(b"unread")
    await stream.aclose()
    await stream.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await stream.receive_some()
    with pytest.raises(trio.ClosedResourceError):
        await stream.send_all(b"x")
    # The pipe stays open for the next connection: it carries both ways still.
    await ours.send_message(b"pipe alive")
    assert await theirs.receive_message() == b"pipe alive"
    assert await ours.receive_message() == b"unread"


async def test_close_wakes_a_blocked_receive_and_two_receivers_are_busy() -> None:
    ours, _theirs = memory_pipe_pair()
    stream = LegacyStream(ours)
    async with trio.open_nursery() as nursery:

        async def receive_closed() -> None:
            with pytest.raises(trio.ClosedResourceError):
                await stream.receive_some()

        nursery.start_soon(receive_closed)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await stream.receive_some()
        await stream.aclose()


async def test_bad_arguments() -> None:
    ours, _ = memory_pipe_pair()
    with pytest.raises(ValueError, match="receive_size"):
        LegacyStream(ours, receive_size=0)
    stream = LegacyStream(ours)
    with pytest.raises(ValueError, match="max_bytes"):
        await stream.receive_some(0)
    with pytest.raises(TypeError):
        await stream.receive_some(1.5)  # type: ignore[arg-type]
