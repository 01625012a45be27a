"""A trio loop in a thread of its own, for the trio-only peers of the anyio tests.

The end-to-end tests run the node under test on asyncio *and* on trio
(anyio's pytest plugin); the signaling server and the legacy peer are trio
programs. They run here, in a separate thread with its own ``trio.run``, so
the test's own event loop holds nothing but the node under test (on asyncio:
no trio at all in that loop). Calls from the test go through
:func:`trio.from_thread.run`; an async test makes them with
``await anyio.to_thread.run_sync(thread.run, ...)``.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import trio

from tests.restartable_server import ServerTask, start_server

T = TypeVar("T")

#: Seconds the thread may take to start or stop (a bound, so a bug fails instead of hanging).
THREAD_TIMEOUT = 30.0


class TrioThread:
    """A running trio loop in a thread (``with TrioThread() as thread:``)."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="tests-trio", daemon=True)
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._stop: trio.Event | None = None

    def __enter__(self) -> TrioThread:
        self._thread.start()
        assert self._ready.wait(THREAD_TIMEOUT), "the trio thread did not start"
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._stop is not None
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(THREAD_TIMEOUT)
        assert not self._thread.is_alive(), "the trio thread did not stop"

    def _main(self) -> None:
        async def main() -> None:
            self._token = trio.lowlevel.current_trio_token()
            self._stop = trio.Event()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._ready.set()
                await self._stop.wait()
                nursery.cancel_scope.cancel()

        trio.run(main)

    def run(self, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await function(*args)`` in the trio thread and return its result (blocking)."""
        return trio.from_thread.run(function, *args, trio_token=self._token)

    def start_server(self, port: int = 0) -> ServerTask:
        """Start a real signaling server on 127.0.0.1 (``port`` 0: any free one)."""
        assert self._nursery is not None
        return self.run(start_server, self._nursery, port)

    def enter(self, manager: AbstractAsyncContextManager[T]) -> tuple[T, Callable[[], None]]:
        """Enter ``manager`` in a task of the trio thread.

        Returns:
            ``(what it yields, exit)``; call ``exit()`` (blocking) to leave it.
        """
        assert self._nursery is not None
        nursery = self._nursery

        async def hold(*, task_status: trio.TaskStatus[tuple[T, trio.Event, trio.Event]]) -> None:
            leave, left = trio.Event(), trio.Event()
            try:
                async with manager as value:
                    task_status.started((value, leave, left))
                    await leave.wait()
            finally:
                left.set()

        async def start() -> tuple[T, trio.Event, trio.Event]:
            result: tuple[T, trio.Event, trio.Event] = await nursery.start(hold)
            return result

        value, leave, left = self.run(start)

        def exit_() -> None:
            async def stop() -> None:
                leave.set()
                with trio.fail_after(THREAD_TIMEOUT):
                    await left.wait()

            self.run(stop)

        return value, exit_
