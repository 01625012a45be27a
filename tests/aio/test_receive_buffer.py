"""The asyncio driver's receive buffer: messages kept as they came, read in any sizes.

:class:`unisockets.driver.stream_base.StreamBase` buffers each received
message's ``bytes`` without copying and hands a whole message out as it came;
whatever the message and read sizes, the bytes read are the bytes received,
in order, each read ``min(buffered, max_bytes)`` long (as the ``bytearray`` it
replaced), over a real stream pair too.
"""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from unisockets.driver.pipes import loopback_pair
from unisockets.driver.stream_base import DEFAULT_RECEIVE_SIZE, StreamBase
from unisockets.driver.streams import Stream


def _base() -> StreamBase:
    async def make() -> StreamBase:
        pipe, _ = loopback_pair("10.0.0.1", "10.0.0.1:0>10.0.0.1:7")
        return StreamBase(pipe, local_address=("10.0.0.1", 0), remote_address=("10.0.0.1", 7))

    return asyncio.run(make())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("push"), st.binary(max_size=40)),
            st.tuples(st.just("take"), st.one_of(st.none(), st.integers(1, 50))),
            st.tuples(st.just("clear"), st.none()),
        ),
        max_size=60,
    )
)
def test_reads_match_a_bytearray(ops: list[tuple[str, object]]) -> None:
    stream = _base()
    model = bytearray()
    received = 0
    for op, arg in ops:
        if op == "push":
            assert isinstance(arg, bytes)
            stream._push(arg)
            model += arg
        elif op == "clear":
            stream._clear()
            model.clear()
        elif model:
            assert arg is None or isinstance(arg, int)
            n = min(len(model), arg or DEFAULT_RECEIVE_SIZE)
            got = stream._take(arg)
            assert type(got) is bytes
            assert got == model[:n]
            del model[:n]
            received += n
        assert stream.buffered_bytes == len(model)
        assert stream.bytes_received == received


def test_a_whole_message_is_handed_out_as_it_came() -> None:
    stream = _base()
    message = b"x" * 100
    stream._push(message)
    assert stream._take(None) is message


def test_a_stream_reads_in_any_sizes() -> None:
    async def main() -> None:
        a, b = loopback_pair("10.0.0.1", "10.0.0.1:0>10.0.0.1:7")
        client = Stream(a, local_address=("10.0.0.1", 0), remote_address=("10.0.0.1", 7))
        server = Stream(b, local_address=("10.0.0.1", 7), remote_address=("10.0.0.1", 0))
        sent = bytes(range(256)) * 40
        for start in range(0, len(sent), 1000):
            await client.send_all(sent[start : start + 1000])
        await client.send_eof()
        got = bytearray()
        sizes = [1, 7, 1000, 3, 65536, 999]
        while chunk := await server.receive_some(sizes[len(got) % len(sizes)]):
            got += chunk
        assert got == sent
        assert server.bytes_received == len(sent)
        await client.aclose()
        await server.aclose()

    asyncio.run(main())
