"""The in-memory transport: pipes by (peer id, label), backpressure, failures, timeouts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio
import trio.testing

from unisockets.transport.base import PeerTransport
from unisockets.transport.memory import (
    MemoryNetwork,
    MemoryTransport,
    memory_pipe_pair,
    open_memory_transport,
)
from unisockets.transport.stream import PipeStream

A, B, C = "10.0.0.1", "10.0.0.2", "10.0.0.3"


@asynccontextmanager
async def nodes(network: MemoryNetwork, *ids: str) -> AsyncIterator[tuple[MemoryTransport, ...]]:
    async with AsyncExitStack() as stack:
        yield tuple(
            [await stack.enter_async_context(open_memory_transport(network, i)) for i in ids]
        )


# ---- the pipe ------------------------------------------------------------------------


@pytest.mark.trio
async def test_pipe_pair_carries_messages_both_ways_in_order() -> None:
    a, b = memory_pipe_pair("x", ids=(A, B))
    assert (a.label, a.local_id, a.peer_id) == ("x", A, B)
    assert (b.label, b.local_id, b.peer_id) == ("x", B, A)
    for i in range(10):
        await a.send_message(bytes([i]) * (i + 1))
    await b.send_message(bytearray(b"back"))
    assert [await b.receive_message() for _ in range(10)] == [
        bytes([i]) * (i + 1) for i in range(10)
    ]
    assert await a.receive_message() == b"back"


@pytest.mark.trio
async def test_pipe_rejects_empty_and_oversize_messages() -> None:
    a, _ = memory_pipe_pair(max_message_size=8)
    await a.send_message(b"12345678")
    with pytest.raises(ValueError):
        await a.send_message(b"123456789")
    with pytest.raises(ValueError):
        await a.send_message(b"")


@pytest.mark.trio
async def test_close_delivers_what_was_sent_then_end_of_channel() -> None:
    a, b = memory_pipe_pair()
    await a.send_message(b"one")
    await a.send_message(b"two")
    await a.aclose()
    await a.aclose()  # idempotent
    assert await b.receive_message() == b"one"
    assert await b.receive_message() == b"two"
    with pytest.raises(trio.EndOfChannel):
        await b.receive_message()
    with pytest.raises(trio.BrokenResourceError):
        await b.send_message(b"to a closed end")
    with pytest.raises(trio.ClosedResourceError):
        await a.send_message(b"x")
    with pytest.raises(trio.ClosedResourceError):
        await a.receive_message()


async def expect(exc: type[BaseException], afn: Callable[[], Awaitable[object]]) -> None:
    with pytest.raises(exc):
        await afn()


@pytest.mark.trio
async def test_close_wakes_blocked_calls_on_this_end() -> None:
    a, _ = memory_pipe_pair(high_water=0)
    await a.send_message(b"fills the pipe")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(expect, trio.ClosedResourceError, lambda: a.send_message(b"blocked"))
        nursery.start_soon(expect, trio.ClosedResourceError, a.receive_message)
        await trio.testing.wait_all_tasks_blocked()
        await a.aclose()


@pytest.mark.trio
async def test_close_breaks_a_blocked_send_on_the_other_end() -> None:
    a, b = memory_pipe_pair(high_water=0)
    await b.send_message(b"fills the pipe")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(expect, trio.BrokenResourceError, lambda: b.send_message(b"blocked"))
        await trio.testing.wait_all_tasks_blocked()
        await a.aclose()


@pytest.mark.trio
async def test_send_waits_while_buffer_is_above_high_water() -> None:
    a, b = memory_pipe_pair(high_water=10)
    await a.send_message(b"x" * 6)
    await a.send_message(b"x" * 6)  # 6 <= 10: accepted, now 12 buffered
    assert a.buffered_bytes == 12
    done = trio.Event()

    async def third() -> None:
        await a.send_message(b"x" * 6)
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(third)
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()
        await b.receive_message()  # 6 buffered now: the sender may go on
        await done.wait()
    assert a.buffered_bytes == 12


@pytest.mark.trio
async def test_break_pipe_breaks_both_ends_and_chains_the_cause() -> None:
    a, b = memory_pipe_pair()
    await a.send_message(b"lost in flight")
    async with trio.open_nursery() as nursery:

        async def blocked() -> None:
            with pytest.raises(trio.BrokenResourceError) as info:
                await a.receive_message()
            assert isinstance(info.value.__cause__, ConnectionResetError)
            assert "cable cut" in str(info.value.__cause__)

        nursery.start_soon(blocked)
        await trio.testing.wait_all_tasks_blocked()
        b.break_pipe("cable cut")
    with pytest.raises(trio.BrokenResourceError):
        await b.receive_message()
    with pytest.raises(trio.BrokenResourceError):
        await b.send_message(b"x")
    assert a.broken and b.broken
    await a.aclose()
    with pytest.raises(trio.ClosedResourceError):  # our close wins over the failure
        await a.send_message(b"x")


# ---- the transport --------------------------------------------------------------------


@pytest.mark.trio
async def test_transport_is_a_peer_transport() -> None:
    async with nodes(MemoryNetwork(), A) as (a,):
        assert isinstance(a, PeerTransport)
        assert a.local_id == A


@pytest.mark.trio
async def test_pipe_opened_before_accept_is_kept_for_the_claim() -> None:
    network = MemoryNetwork()
    async with nodes(network, A, B) as (a, b):
        pa = await a.open_pipe(B, "conn-1")
        pb = await b.accept_pipe(A, "conn-1")
        assert (pa.peer_id, pb.peer_id, pa.label, pb.label) == (B, A, "conn-1", "conn-1")
        await pa.send_message(b"hi")
        assert await pb.receive_message() == b"hi"
        await pb.send_message(b"hello")
        assert await pa.receive_message() == b"hello"


@pytest.mark.trio
async def test_accept_before_the_pipe_arrives() -> None:
    network = MemoryNetwork()
    async with nodes(network, A, B) as (a, b):
        got = []

        async def accept() -> None:
            got.append(await b.accept_pipe(A, "late"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept)
            await trio.testing.wait_all_tasks_blocked()
            pa = await a.open_pipe(B, "late")
        await pa.send_message(b"x")
        assert await got[0].receive_message() == b"x"


@pytest.mark.trio
async def test_labels_keep_pipes_apart() -> None:
    network = MemoryNetwork()
    async with nodes(network, A, B, C) as (a, b, c):
        p1 = await a.open_pipe(B, "one")
        p2 = await a.open_pipe(B, "two")
        p3 = await c.open_pipe(B, "one")  # same label, other peer
        await p1.send_message(b"1")
        await p2.send_message(b"2")
        await p3.send_message(b"3")
        assert await (await b.accept_pipe(A, "two")).receive_message() == b"2"
        assert await (await b.accept_pipe(C, "one")).receive_message() == b"3"
        assert await (await b.accept_pipe(A, "one")).receive_message() == b"1"


@pytest.mark.trio
async def test_a_node_can_open_a_pipe_to_itself() -> None:
    async with nodes(MemoryNetwork(), A) as (a,):
        out = await a.open_pipe(A, "loop")
        back = await a.accept_pipe(A, "loop")
        await out.send_message(b"self")
        assert await back.receive_message() == b"self"
        assert len(a.pipes) == 2


@pytest.mark.trio
async def test_open_pipe_to_unknown_node_is_broken() -> None:
    async with nodes(MemoryNetwork(), A) as (a,):
        with pytest.raises(trio.BrokenResourceError, match=B):
            await a.open_pipe(B, "x")


@pytest.mark.trio
async def test_unclaimed_pipe_is_closed_after_the_claim_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    network = MemoryNetwork(claim_timeout=5)
    async with nodes(network, A, B) as (a, b):
        pa = await a.open_pipe(B, "nobody wants me")
        start = trio.current_time()
        with pytest.raises(trio.EndOfChannel):
            await pa.receive_message()
        assert trio.current_time() - start == pytest.approx(5)
        with pytest.raises(trio.BrokenResourceError):
            await pa.send_message(b"x")
        assert not b.pipes
        # a claim in time is not reaped
        pa = await a.open_pipe(B, "wanted")
        await trio.sleep(4)
        pb = await b.accept_pipe(A, "wanted")
        await trio.sleep(10)
        await pa.send_message(b"still here")
        assert await pb.receive_message() == b"still here"


@pytest.mark.trio
async def test_accept_times_out(autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork(accept_timeout=3)
    async with nodes(network, A, B) as (_, b):
        with pytest.raises(TimeoutError):
            await b.accept_pipe(A, "never")
        assert trio.current_time() == pytest.approx(3)


@pytest.mark.trio
async def test_cancelled_accept_leaves_no_waiter_behind() -> None:
    network = MemoryNetwork()
    async with nodes(network, A, B) as (a, b):
        with trio.CancelScope() as scope:
            scope.cancel()
            await b.accept_pipe(A, "x")
        pa = await a.open_pipe(B, "x")  # must not vanish into the cancelled waiter
        pb = await b.accept_pipe(A, "x")
        await pa.send_message(b"ok")
        assert await pb.receive_message() == b"ok"


@pytest.mark.trio
async def test_peer_left_keeps_a_live_peers_pipes_and_a_closed_peer_broke_its_own() -> None:
    """Goodbye is not death (docs/protocol.md): signaling's word alone breaks nothing live."""
    network = MemoryNetwork()
    async with nodes(network, A, C) as (a, c):
        async with open_memory_transport(network, B) as b:
            pab = await a.open_pipe(B, "ab")
            pba = await b.accept_pipe(A, "ab")
            pac = await a.open_pipe(C, "ac")
            pca = await c.accept_pipe(A, "ac")
            await a.peer_left(B)  # B's signaling left; its transport lives
            await pab.send_message(b"b is fine")
            assert await pba.receive_message() == b"b is fine"
        # B's transport closed: its pipes broke then, and accepts waiting for it fail.
        with pytest.raises(trio.BrokenResourceError):
            await pab.receive_message()
        async with trio.open_nursery() as nursery:

            async def waiting_accept() -> None:
                with pytest.raises(trio.BrokenResourceError):
                    await a.accept_pipe(B, "never comes")

            nursery.start_soon(waiting_accept)
            await trio.testing.wait_all_tasks_blocked()
            await a.peer_left(B)
        await pac.send_message(b"c is fine")
        assert await pca.receive_message() == b"c is fine"


@pytest.mark.trio
async def test_break_link_injects_a_failure_between_two_nodes_only() -> None:
    network = MemoryNetwork()
    async with nodes(network, A, B, C) as (a, b, c):
        p1 = await a.open_pipe(B, "1")
        p2 = await b.open_pipe(A, "2")
        p3 = await a.open_pipe(C, "3")
        assert network.break_link(A, B) == 2
        for pipe in (p1, p2, await b.accept_pipe(A, "1")):
            with pytest.raises(trio.BrokenResourceError):
                await pipe.send_message(b"x")
        await p3.send_message(b"unaffected")
        assert await (await c.accept_pipe(A, "3")).receive_message() == b"unaffected"
        # the link comes back for new pipes
        p4 = await a.open_pipe(B, "4")
        await p4.send_message(b"again")
        assert await (await b.accept_pipe(A, "4")).receive_message() == b"again"


@pytest.mark.trio
async def test_leaving_the_network_breaks_every_pipe() -> None:
    network = MemoryNetwork()
    async with nodes(network, A, C) as (a, c):
        async with open_memory_transport(network, B) as b:
            pab = await a.open_pipe(B, "x")
            pcb = await c.open_pipe(B, "y")
            assert network.ids == {A, B, C}
            async with trio.open_nursery() as nursery:

                async def waiting_accept() -> None:
                    with pytest.raises(trio.BrokenResourceError):
                        await a.accept_pipe(B, "z")

                nursery.start_soon(waiting_accept)
                await trio.testing.wait_all_tasks_blocked()
                b.close()
        assert network.ids == {A, C}
        for pipe in (pab, pcb):
            with pytest.raises(trio.BrokenResourceError):
                await pipe.receive_message()
        with pytest.raises(trio.ClosedResourceError):
            await b.open_pipe(A, "after")
        with pytest.raises(trio.BrokenResourceError):
            await a.open_pipe(B, "to the departed")


@pytest.mark.trio
async def test_exceptions_leave_the_context_unwrapped() -> None:
    with pytest.raises(KeyError):
        async with open_memory_transport(MemoryNetwork(), A):
            raise KeyError("mine")


@pytest.mark.trio
async def test_ids_are_unique_and_can_change() -> None:
    network = MemoryNetwork()
    async with nodes(network, A, B) as (a, b):
        with pytest.raises(ValueError):
            async with open_memory_transport(network, A):
                pass  # pragma: no cover
        with pytest.raises(ValueError):
            a.local_id = B
        a.local_id = C  # a rejoined signaling under a new id
        assert network.ids == {B, C}
        pipe = await b.open_pipe(C, "x")
        assert (await a.accept_pipe(B, "x")).peer_id == B
        assert pipe.peer_id == C


@pytest.mark.trio
async def test_streams_over_transport_pipes() -> None:
    network = MemoryNetwork(max_message_size=1200)
    async with nodes(network, A, B) as (a, b):
        client = PipeStream(await a.open_pipe(B, "s"))
        server = PipeStream(await b.accept_pipe(A, "s"))
        payload = bytes(range(256)) * 2000
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send_all, payload)
            got = bytearray()
            while len(got) < len(payload):
                got += await server.receive_some()
        assert got == payload
        await client.aclose()
        assert await server.receive_some() == b""
        await server.aclose()


@pytest.mark.trio
async def test_a_pipe_handed_to_an_accept_being_cancelled_goes_to_the_next_accept() -> None:
    # The accept is cancelled, and before its task runs again the pipe arrives and is
    # handed to it: the pipe must not be lost with the cancelled call (one rule for
    # every transport: protocol.rendezvous).
    network = MemoryNetwork()
    async with nodes(network, A, B) as (a, b), trio.open_nursery() as nursery:
        scope = trio.CancelScope()

        async def cancelled_accept() -> None:
            with scope:
                await b.accept_pipe(A, "x")
                raise AssertionError("the cancelled accept returned a pipe")

        nursery.start_soon(cancelled_accept)
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()  # the accept's task is now scheduled to see Cancelled...
        mine, theirs = memory_pipe_pair("x", ids=(A, B))  # ...and the pipe arrives first
        a._adopt(mine)
        b._adopt(theirs)
        b._arrive(theirs)
        await trio.testing.wait_all_tasks_blocked()
        assert await b.accept_pipe(A, "x") is theirs  # queued again, not lost
