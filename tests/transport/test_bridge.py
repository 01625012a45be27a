"""The asyncio bridge: hand-offs both ways, task tracking, shutdown, errors."""

from __future__ import annotations

import asyncio
import threading

import pytest
import trio

from unisockets.transport.bridge import (
    BridgeError,
    open_asyncio_bridge,
    open_shared_asyncio_bridge,
)


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
async def test_shared_bridges_with_one_key_use_one_loop_until_the_last_leaves() -> None:
    first_done = trio.Event()
    async with trio.open_nursery() as nursery:
        async with (
            open_shared_asyncio_bridge("k") as first,
            open_shared_asyncio_bridge("k") as second,
        ):
            assert second is first
            assert len(_bridge_threads()) == 1

            async def outlive_the_first() -> None:
                async with open_shared_asyncio_bridge("k") as third:
                    assert third is first
                    await first_done.wait()
                    # The first two left: the loop still runs for this one.
                    assert not third.closing
                    assert await third.run(_loop_thread)

            nursery.start_soon(outlive_the_first)
            await trio.sleep(0.01)
        first_done.set()
    # The last user left: the loop stopped and its thread was joined.
    assert _bridge_threads() == []
    assert first.closing


@pytest.mark.trio
async def test_other_keys_get_other_loops_and_a_new_loop_starts_after_the_last_user() -> None:
    async with open_shared_asyncio_bridge("a") as a, open_shared_asyncio_bridge("b") as b:
        assert a is not b
        assert await a.run(_loop_thread) != await b.run(_loop_thread)
        assert len(_bridge_threads()) == 2
    async with open_shared_asyncio_bridge("a") as again:
        assert again is not a  # the old one stopped with its last user
        assert await again.run(_loop_thread)
    assert _bridge_threads() == []


@pytest.mark.trio
async def test_a_shared_bridge_raises_recorded_errors_to_its_last_user() -> None:
    def boom() -> None:
        raise RuntimeError("a bug in a queued callable")

    with pytest.raises(BridgeError, match="a bug in a queued callable"):
        async with open_shared_asyncio_bridge("e") as first:
            async with open_shared_asyncio_bridge("e"):
                first.call_soon(boom)
                await first.run(_loop_thread)  # after boom ran
            # the inner user left cleanly: no error yet, the loop still runs
            assert not first.closing
    assert _bridge_threads() == []
