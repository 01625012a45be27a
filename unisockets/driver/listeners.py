"""Listeners of the asyncio driver: accept queues with backlog admission, release on close.

A :class:`Listener` is what :meth:`unisockets.driver.node.DriverNode.listen`
gives (the shape of :class:`trio.abc.Listener`, on asyncio). Which
connection waits and which is closed is
:class:`unisockets.protocol.planner.AcceptQueue`'s decision; the node's
accept loop offers connections to it, and closing it releases the address
through the node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from ..protocol.planner import AcceptQueue, Take
from .errors import ClosedResourceError, SignalingError
from .legacy import AnyStream
from .runtime import settle
from .streams import Address

if TYPE_CHECKING:
    from .node import DriverNode

__all__ = ["Listener"]


class Listener:
    """Accepts connections on one bound address (the shape of :class:`trio.abc.Listener`).

    Made by :meth:`DriverNode.listen`. Usable as ``async with listener:``.

    Attributes:
        address: the bound ``(host, port)``.
    """

    def __init__(self, node: DriverNode, address: Address, backlog: int) -> None:
        self.address = address
        self._node = node
        self._queue: AcceptQueue[AnyStream] = AcceptQueue(backlog)
        self._unaccepted: list[AnyStream] = []
        self._released: asyncio.Event | None = None
        self._waiters: set[asyncio.Future[None]] = set()
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<Listener {self.address[0]}:{self.address[1]}>"

    async def __aenter__(self) -> Listener:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def accept(self) -> AnyStream:
        """Wait for the next connection.

        Returns:
            The connected stream; its ``remote_address`` is the client's
            connection alias, e.g. ``("10.0.0.2", 0)``.

        Raises:
            ClosedResourceError: the listener (or node) was closed, also while waiting.
            SignalingError: the address was lost (our id changed while
                signaling was away, another node took it, or signaling closed):
                no more connections can arrive.
        """
        while True:
            taken = self._queue.take()
            if taken is Take.CLOSED:
                raise ClosedResourceError("the listener was closed")
            if taken is Take.FAILED:
                failure = self._queue.failure
                raise SignalingError(str(failure)) from failure
            if taken is not Take.WAIT:
                return taken
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.add(waiter)
            try:
                await waiter
            finally:
                self._waiters.discard(waiter)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            settle(waiter)

    def _offer(self, stream: AnyStream) -> bool:
        if not self._queue.offer(stream):
            return False
        self._wake()
        return True

    def _ended(self, error: BaseException) -> None:
        self._queue.fail(error)
        self._wake()

    def close(self) -> None:
        """Stop listening and release the address now (a ``bind`` of it waits for the release).

        Connections not yet accepted are closed by :meth:`aclose`. Idempotent.
        """
        if self._queue.closed:
            return
        self._unaccepted = self._queue.close()
        self._wake()
        if self._task is not None:
            self._task.cancel()
        self._released = self._node._listener_closed(self)

    async def aclose(self) -> None:
        """Stop listening, close connections not yet accepted; return once the address is released.

        When this returns, a ``bind`` of the address succeeds at once (the
        signaling server answered the release, or it failed). Idempotent.
        """
        self.close()
        await asyncio.sleep(0)
        unaccepted, self._unaccepted = self._unaccepted, []
        for stream in unaccepted:
            await stream.aclose()
        if self._released is not None:
            await self._released.wait()


class _ListenCall:
    """What :meth:`DriverNode.listen` returns: awaitable, and an async context manager."""

    def __init__(self, node: DriverNode, port: int, backlog: int) -> None:
        self._node, self._port, self._backlog = node, port, backlog
        self._listener: Listener | None = None

    def __await__(self) -> Generator[Any, None, Listener]:
        return self._node._listen(self._port, self._backlog).__await__()

    async def __aenter__(self) -> Listener:
        self._listener = await self._node._listen(self._port, self._backlog)
        return self._listener

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._listener is not None
        await self._listener.aclose()
