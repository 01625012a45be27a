"""The asyncio bridge: hand-offs both ways, task tracking, shutdown, errors."""

from __future__ import annotations

import asyncio
import threading

import pytest
import trio

from unisockets.transport.base import MessagePipe
from unisockets.transport.bridge import BridgeError, open_asyncio_bridge

from .conftest import open_mesh


def _bridge_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("unisockets-asyncio")]


@pytest.mark.trio
async def test_run_returns_result_from_the_loop_thread() -> None:
    async def where() -> tuple[str, bool]:
        await asyncio.sleep(0)
        return threading.current_thread().name, asyncio.get_running_loop().is_running()

    async with open_asyncio_bridge() as bridge:
        name, running = await bridge.run(where)
    assert name == "unisockets-asyncio"
    assert running
    assert _bridge_threads() == []


@pytest.mark.trio
async def test_run_propagates_the_coroutines_exception() -> None:
    async def boom() -> None:
        raise KeyError("inside asyncio")

    async with open_asyncio_bridge() as bridge:
        with pytest.raises(KeyError, match="inside asyncio"):
            await bridge.run(boom)
        # A synchronous failure to even create the coroutine is delivered too.
        with pytest.raises(TypeError):
            await bridge.run(boom, "unexpected argument")


@pytest.mark.trio
async def test_cancelling_run_cancels_the_asyncio_task() -> None:
    seen: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async with open_asyncio_bridge() as bridge:
        with trio.move_on_after(0.05):
            await bridge.run(forever)
        # run() waited for the asyncio task to end before letting Cancelled out.
        assert seen == ["cancelled"]
        assert await bridge.run(_tasks_left) == 0


async def _tasks_left() -> int:
    return len([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])


@pytest.mark.trio
async def test_hand_offs_keep_order_and_batch() -> None:
    received: list[int] = []
    wakeups = 0

    async with open_asyncio_bridge() as bridge:
        done = trio.Event()

        def on_trio(value: int) -> None:
            received.append(value)
            if value == 999:
                done.set()

        def burst() -> None:  # in the loop thread: 1000 hand-offs in one go
            for value in range(1000):
                bridge.to_trio(on_trio, value)

        original = bridge._drain_to_trio

        def counting_drain() -> None:
            nonlocal wakeups
            wakeups += 1
            original()

        bridge._drain_to_trio = counting_drain  # type: ignore[method-assign]
        bridge.call_soon(burst)
        with trio.fail_after(10):
            await done.wait()
    assert received == list(range(1000))
    assert 1 <= wakeups < 1000  # batched: far fewer wake-ups than hand-offs


@pytest.mark.trio
async def test_shutdown_cancels_stray_asyncio_tasks() -> None:
    cancelled = threading.Event()

    async def stray() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def spawn_stray() -> None:
        # like aiortc's ensure_future: a task nobody tracks
        asyncio.ensure_future(stray())  # noqa: RUF006 - on purpose
        await asyncio.sleep(0)

    async with open_asyncio_bridge() as bridge:
        await bridge.run(spawn_stray)
        loop = bridge.loop
    assert cancelled.is_set()
    assert loop.is_closed()
    assert _bridge_threads() == []


@pytest.mark.trio
async def test_exit_on_cancellation_and_on_error_stops_the_thread() -> None:
    with trio.move_on_after(0.05):
        async with open_asyncio_bridge():
            await trio.sleep_forever()
    assert _bridge_threads() == []

    with pytest.raises(ZeroDivisionError):
        async with open_asyncio_bridge():
            1 / 0  # noqa: B018
    assert _bridge_threads() == []


@pytest.mark.trio
async def test_a_raising_callable_is_reported_at_exit() -> None:
    def bad() -> None:
        raise ValueError("a bug in a hand-off")

    with pytest.raises(BridgeError) as info:
        async with open_asyncio_bridge() as bridge:
            bridge.call_soon(bad)
            await bridge.run(asyncio.sleep, 0)  # runs after bad(): FIFO
    assert isinstance(info.value.errors[0], ValueError)


@pytest.mark.trio
async def test_no_new_work_after_close() -> None:
    async with open_asyncio_bridge() as bridge:
        pass
    with pytest.raises(trio.ClosedResourceError):
        bridge.call_soon(print)
    with pytest.raises(trio.ClosedResourceError):
        await bridge.run(asyncio.sleep, 0)


async def _loop_thread() -> str:
    await asyncio.sleep(0)
    return threading.current_thread().name + str(id(asyncio.get_running_loop()))


@pytest.mark.trio
async def test_each_transport_owns_its_bridge_and_joins_it_on_exit() -> None:
    async with open_mesh("10.0.0.1", "10.0.0.2") as mesh:
        a, b = mesh["10.0.0.1"], mesh["10.0.0.2"]
        assert a._bridge is not b._bridge  # no registry: each has its own
        assert sorted(t.name for t in _bridge_threads()) == [
            "unisockets-asyncio 10.0.0.1",
            "unisockets-asyncio 10.0.0.2",
        ]
    assert _bridge_threads() == []


@pytest.mark.trio
@pytest.mark.slow
async def test_transports_given_one_bridge_share_its_loop_and_leave_it_to_its_owner() -> None:
    async with open_asyncio_bridge() as bridge:
        async with open_mesh("10.0.0.1", "10.0.0.2", bridge=bridge) as mesh:
            a, b = mesh["10.0.0.1"], mesh["10.0.0.2"]
            assert a._bridge is b._bridge is bridge
            assert len(_bridge_threads()) == 1
            with trio.fail_after(30):  # a real link over the one loop
                async with trio.open_nursery() as nursery:
                    accepted: list[MessagePipe] = []

                    async def accept() -> None:
                        accepted.append(await b.accept_pipe(a.local_id, "shared"))

                    nursery.start_soon(accept)
                    opened = await a.open_pipe(b.local_id, "shared")
                await opened.send_message(b"one loop")
                assert await accepted[0].receive_message() == b"one loop"
        # The transports left; the bridge is its owner's until its block ends.
        assert not bridge.closing
        assert await bridge.run(_loop_thread)
    assert bridge.closing
    assert _bridge_threads() == []
