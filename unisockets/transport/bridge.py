"""One asyncio event loop in a thread of its own, driven from trio.

aiortc runs only on asyncio; a trio node does not. Its WebRTC transport
therefore owns one :class:`AsyncioBridge`: a dedicated thread running an
asyncio loop, started in the transport's ``async with`` (inside the node's)
and stopped and joined when it exits (also on cancellation or error). There
is no registry: a bridge belongs to the ``async with`` that opened it. Nodes
that should share one loop (two nodes in one trio program, as plain aiortc
code shares one loop) are given a bridge their caller opened and owns
(``open_node(asyncio_bridge=...)``). Under asyncio there is no bridge at all
(:mod:`unisockets.aio`).

Why a thread and not trio-asyncio: measured on the project's machines (see
``docs/transport.md`` and ``benchmarks/bridge.py``), the thread bridge moves
data about twice as fast, because trio-asyncio schedules every datagram
through trio.

Hand-offs go both ways in batches: :meth:`AsyncioBridge.call_soon` queues a
plain callable for the loop thread and :meth:`AsyncioBridge.to_trio` queues
one for the trio thread; each side wakes the other at most once per batch, so
a burst of received messages costs one trio wake-up, not one each.
:meth:`AsyncioBridge.run` runs a coroutine function on the loop as a tracked
task and waits for its outcome in trio.

Rules that keep the two worlds apart (docs/transport.md,
"The asyncio bridge"):

- aiortc objects are touched only in the loop thread; trio objects only in
  the trio thread. The only shared state is the two hand-off queues.
- Nothing is fire-and-forget: every task the bridge starts is tracked until
  done, and its outcome reaches the trio side. A queued callable that raises
  is a bug: it is logged and re-raised (as :class:`BridgeError`) when the
  bridge closes.
- Closing cancels every asyncio task still on the loop (aiortc starts its
  own), waits for them, shuts down async generators and the default executor,
  stops the loop and joins the thread. The owner closes its peer connections
  (through :meth:`AsyncioBridge.run`) *before* that, so no late aiortc
  callback runs after trio has moved on.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

import outcome
import trio

__all__ = ["AsyncioBridge", "BridgeError", "open_asyncio_bridge"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

#: How long closing waits for the loop's remaining tasks to end after cancelling them, seconds.
SHUTDOWN_GRACE = 5.0
#: How long a cancelled :meth:`AsyncioBridge.run` waits for its asyncio task to end, seconds.
CANCEL_GRACE = 5.0
#: How long closing waits for the loop thread to stop before giving up on it, seconds.
STOP_TIMEOUT = 30.0

#: A queued hand-off: a callable and its positional arguments.
_Item = tuple[Callable[..., object], tuple[Any, ...]]


class BridgeError(RuntimeError):
    """A callable queued through the bridge raised, or a task's error had no one to go to.

    Raised when the bridge closes; the individual errors are in ``errors``
    (also logged when they happened).

    Attributes:
        errors: the exceptions, oldest first.
    """

    def __init__(self, errors: list[BaseException]) -> None:
        super().__init__(f"{len(errors)} error(s) in asyncio bridge hand-offs: {errors[0]!r}")
        self.errors = errors


class _Call(Generic[T]):
    """One :meth:`AsyncioBridge.run` call: its asyncio task and its outcome."""

    __slots__ = ("abandoned", "done", "result", "task")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.task: asyncio.Task[T] | None = None
        self.result: outcome.Outcome[T] | None = None
        self.abandoned = False


class AsyncioBridge:
    """An asyncio event loop in its own thread, with batched hand-offs to and from trio.

    Create it with :func:`open_asyncio_bridge`; the constructor is internal.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, token: trio.lowlevel.TrioToken) -> None:
        self._loop = loop
        self._token = token
        self._to_loop_lock = threading.Lock()
        self._to_loop: list[_Item] = []
        self._to_loop_scheduled = False
        self._to_trio_lock = threading.Lock()
        self._to_trio: list[_Item] = []
        self._to_trio_scheduled = False
        self._tasks: set[asyncio.Task[Any]] = set()  # loop thread only
        self._errors: list[BaseException] = []  # trio thread only
        self._closing = False
        self.thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The asyncio loop; touch it only from its own thread (or via the bridge)."""
        return self._loop

    @property
    def closing(self) -> bool:
        """Whether the bridge has started closing (no new work is accepted)."""
        return self._closing

    # --- trio -> asyncio -------------------------------------------------------------------

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Queue ``fn(*args)`` to run in the loop thread, in order with other queued calls.

        Call it from the trio thread. ``fn`` must not raise (aiortc freezes when
        a handler raises, see the aiortc notes, pitfall 1); if it does, the
        error is logged and re-raised as :class:`BridgeError` when the bridge
        closes.

        Args:
            fn: a plain (non-async) callable.
            *args: its positional arguments.

        Raises:
            trio.ClosedResourceError: the bridge is closing.
        """
        if self._closing:
            raise trio.ClosedResourceError("the asyncio bridge is closing")
        self._call_soon(fn, args)

    def _call_soon(self, fn: Callable[..., object], args: tuple[Any, ...]) -> None:
        with self._to_loop_lock:
            self._to_loop.append((fn, args))
            if self._to_loop_scheduled:
                return
            self._to_loop_scheduled = True
        self._loop.call_soon_threadsafe(self._drain_to_loop)

    def _drain_to_loop(self) -> None:
        with self._to_loop_lock:
            batch, self._to_loop = self._to_loop, []
            self._to_loop_scheduled = False
        for fn, args in batch:
            try:
                fn(*args)
            except Exception as exc:
                logger.exception("callable %r raised in the asyncio thread", fn)
                self.to_trio(self._record_error, exc)

    async def run(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Run ``await fn(*args)`` as an asyncio task on the loop; return its result in trio.

        The task is tracked until it ends. If the calling trio task is
        cancelled, the asyncio task is cancelled too and waited for (at most
        :data:`CANCEL_GRACE` seconds) before :class:`trio.Cancelled`
        propagates. Cancelling only *requests* cancellation (the aiortc notes,
        pitfall 6): whatever the coroutine did before it saw the request is done.

        Args:
            fn: a coroutine function, run in the loop thread.
            *args: its positional arguments.

        Returns:
            What the coroutine returned.

        Raises:
            trio.ClosedResourceError: the bridge is closing (before or while running).
            Exception: whatever the coroutine raised, unchanged.
        """
        if self._closing:
            raise trio.ClosedResourceError("the asyncio bridge is closing")
        call: _Call[T] = _Call()
        self._call_soon(self._start_task, (call, fn, args))
        try:
            await call.done.wait()
        except trio.Cancelled:
            self._call_soon(self._cancel_task, (call,))
            with trio.move_on_after(CANCEL_GRACE) as scope:
                scope.shield = True
                await call.done.wait()
            if call.result is None:
                call.abandoned = True
            elif isinstance(call.result, outcome.Error) and not isinstance(
                call.result.error, asyncio.CancelledError
            ):
                # The task failed on its own before it saw the cancellation:
                # that error is news to the caller, like one raised in a finally.
                call.result.unwrap()
            raise
        assert call.result is not None
        if isinstance(call.result, outcome.Error) and isinstance(
            call.result.error, asyncio.CancelledError
        ):
            raise trio.ClosedResourceError("the asyncio task was cancelled (bridge closing)")
        return call.result.unwrap()

    def _start_task(
        self, call: _Call[T], fn: Callable[..., Coroutine[Any, Any, T]], args: tuple[Any, ...]
    ) -> None:
        try:
            task = self._loop.create_task(fn(*args))
        except Exception as exc:
            self.to_trio(self._finish_call, call, outcome.Error(exc))
            return
        call.task = task
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._task_done(call, done))

    def _task_done(self, call: _Call[T], task: asyncio.Task[T]) -> None:
        self._tasks.discard(task)
        result: outcome.Outcome[T]
        if task.cancelled():
            result = outcome.Error(asyncio.CancelledError())
        else:
            exc = task.exception()
            result = outcome.Value(task.result()) if exc is None else outcome.Error(exc)
        self.to_trio(self._finish_call, call, result)

    @staticmethod
    def _cancel_task(call: _Call[Any]) -> None:
        if call.task is not None:
            call.task.cancel()

    def _finish_call(self, call: _Call[T], result: outcome.Outcome[T]) -> None:
        call.result = result
        call.done.set()
        if (
            call.abandoned
            and isinstance(result, outcome.Error)
            and not isinstance(result.error, asyncio.CancelledError)
        ):
            self._record_error(result.error)

    # --- asyncio -> trio -------------------------------------------------------------------

    def to_trio(self, fn: Callable[..., object], *args: Any) -> None:
        """Queue ``fn(*args)`` to run in the trio thread, in order with other queued calls.

        Call it from the loop thread (e.g. inside an aiortc event handler).
        Everything queued before the trio side wakes up runs in that one
        wake-up. ``fn`` runs synchronously in trio (it may set events, unpark
        tasks, but not await); it must not raise: if it does, the error is
        logged and re-raised as :class:`BridgeError` when the bridge closes.

        Args:
            fn: a plain (non-async) callable.
            *args: its positional arguments.
        """
        with self._to_trio_lock:
            self._to_trio.append((fn, args))
            if self._to_trio_scheduled:
                return
            self._to_trio_scheduled = True
        try:
            self._token.run_sync_soon(self._drain_to_trio)
        except trio.RunFinishedError:  # the owner left trio without closing us: a bug
            logger.error("trio run finished while the asyncio bridge still had work")

    def _drain_to_trio(self) -> None:
        with self._to_trio_lock:
            batch, self._to_trio = self._to_trio, []
            self._to_trio_scheduled = False
        for fn, args in batch:
            try:
                fn(*args)
            except Exception as exc:
                logger.exception("callable %r raised in the trio thread", fn)
                self._record_error(exc)

    def _record_error(self, exc: BaseException) -> None:
        self._errors.append(exc)

    # --- life cycle ------------------------------------------------------------------------

    def _thread_main(self, stopped: trio.Event) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        loop.set_exception_handler(_log_loop_exception)
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()
                self._token.run_sync_soon(stopped.set)

    def _begin_shutdown(self) -> None:
        task = self._loop.create_task(self._shutdown())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        # Cancelled tasks may start others (aiortc does), so sweep a few times.
        for _ in range(5):
            tasks = [task for task in asyncio.all_tasks() if task is not current]
            if not tasks:
                break
            for task in tasks:
                task.cancel()
            _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
            if pending:
                logger.error("%d asyncio task(s) ignored cancellation: %r", len(pending), pending)
                break
        self._loop.stop()

    async def _aclose(self, stopped: trio.Event) -> None:
        self._closing = True
        self._call_soon(self._begin_shutdown, ())
        with trio.move_on_after(STOP_TIMEOUT):
            await stopped.wait()
        if not stopped.is_set():
            logger.error("the asyncio thread did not stop within %s s; leaving it", STOP_TIMEOUT)
            return
        if self.thread is not None:
            self.thread.join()  # it has finished its last statement: this does not block

    def _raise_errors(self) -> None:
        if self._errors:
            raise BridgeError(list(self._errors))


def _log_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Log asyncio's unhandled errors (aiortc's own fire-and-forget tasks) without raising."""
    exc = context.get("exception")
    logger.warning("asyncio: %s", context.get("message", "error"), exc_info=exc)


def _new_loop() -> asyncio.AbstractEventLoop:
    """A plain asyncio loop, whatever event loop policy is installed.

    Not :func:`asyncio.new_event_loop`: a policy installed by another library
    (trio-asyncio replaces it on import, and refuses inside trio) must not
    decide what runs aiortc.
    """
    if sys.platform == "win32":  # pragma: no cover - the project runs on Linux
        return asyncio.ProactorEventLoop()
    return asyncio.SelectorEventLoop()


def _start_bridge(name: str) -> tuple[AsyncioBridge, trio.Event]:
    """Create a loop and start its thread (synchronous: no checkpoint)."""
    loop = _new_loop()
    bridge = AsyncioBridge(loop, trio.lowlevel.current_trio_token())
    stopped = trio.Event()
    thread = threading.Thread(target=bridge._thread_main, args=(stopped,), name=name, daemon=True)
    bridge.thread = thread
    thread.start()
    return bridge, stopped


@asynccontextmanager
async def open_asyncio_bridge(*, name: str = "unisockets-asyncio") -> AsyncIterator[AsyncioBridge]:
    """Start an asyncio loop in a new thread; stop it and join the thread on exit.

    Exit is shielded from cancellation: it cancels the loop's remaining tasks,
    stops the loop, closes it and joins the thread (giving up after
    :data:`STOP_TIMEOUT` seconds, with an error logged, if the loop hangs).

    Args:
        name: the thread's name (shows in ``threading.enumerate()`` and debuggers).

    Yields:
        The running bridge.

    Raises:
        BridgeError: on a clean exit, when a queued callable raised or a task's
            error could not be delivered (both are bugs in the caller).
    """
    bridge, stopped = _start_bridge(name)
    try:
        yield bridge
    except BaseException:
        with trio.CancelScope(shield=True):
            await bridge._aclose(stopped)
        raise
    with trio.CancelScope(shield=True):
        await bridge._aclose(stopped)
    bridge._raise_errors()
