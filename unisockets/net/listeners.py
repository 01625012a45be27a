"""Listeners: :class:`trio.abc.Listener` of :class:`~unisockets.net.streams.SocketStream`.

:class:`OverlayListener` accepts connections that signaling announces for one
bound alias and keeps up to ``backlog`` established connections waiting for
:meth:`~OverlayListener.accept`, like a kernel's accept queue: a connection
that arrives while nobody is in ``accept`` is *not* lost (the original
unisockets lost it while telling the client it had connected). A connection
that arrives while the queue is full is closed at once, so its client sees
the stream end instead of waiting forever.

:class:`NativeListener` does the same over an OS TCP listening socket.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from ..protocol.planner import AcceptQueue, Take
from .addresses import Address
from .streams import SocketStream

__all__ = ["NativeListener", "OverlayListener"]

logger = logging.getLogger("unisockets.net")


class OverlayListener(trio.abc.Listener[SocketStream]):
    """Accepts overlay connections to one bound address.

    Created by :meth:`unisockets.net.OverlayNode.listen`; implements
    :class:`trio.abc.Listener`. Its queue and admission rule are
    :class:`unisockets.protocol.planner.AcceptQueue`'s.

    Attributes:
        address: the bound ``(host, port)``.
        backlog: how many established connections may wait for :meth:`accept`.
    """

    def __init__(
        self,
        address: Address,
        backlog: int,
        on_close: Callable[[], trio.Event | None],
    ) -> None:
        self.address = address
        self.backlog = backlog
        self._queue: AcceptQueue[SocketStream] = AcceptQueue(backlog)
        self._lot = trio.lowlevel.ParkingLot()
        self._on_close = on_close
        self._released: trio.Event | None = None
        self._unaccepted: list[SocketStream] = []
        self._ready = trio.Event()
        # Cancelled on close: the node's accept loop for this listener runs inside it.
        self._cancel_scope = trio.CancelScope()

    def _set_ready(self) -> None:
        """Signaling was told we accept (``accepting`` sent): connects will not be refused."""
        self._ready.set()

    def _fail(self, error: BaseException) -> None:
        """The listener cannot go on (the alias was lost): ``accept`` raises ``error``."""
        self._queue.fail(error)
        self._ready.set()
        self._lot.unpark_all()

    async def wait_ready(self) -> None:
        """Wait until signaling knows we accept.

        Raises:
            OSError: listening failed (e.g. the alias was lost, signaling is gone).
        """
        await self._ready.wait()
        if self._queue.failure is not None:
            raise self._queue.failure

    def _offer(self, stream: SocketStream) -> bool:
        """Queue an established connection for :meth:`accept`.

        Returns:
            False (and the caller must close ``stream``) when the backlog is
            full or the listener is closed.
        """
        if not self._queue.offer(stream):
            return False
        self._lot.unpark()
        return True

    async def accept(self) -> SocketStream:
        """Wait for the next connection (trio ``Listener.accept``).

        Returns:
            The connected stream; its ``remote_address`` is the connecting
            socket's address.

        Raises:
            trio.ClosedResourceError: the listener was closed (before or while waiting).
            unisockets.signaling.SignalingError: the bound address was lost (the
                signaling connection came back with another id, or rebinding
                failed); a ``ConnectionError``, hence an ``OSError``.

        Several tasks may accept concurrently; each connection goes to one of them.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            taken = self._queue.take()
            if taken is Take.CLOSED:
                raise trio.ClosedResourceError("the listener is closed")
            if taken is Take.FAILED:
                assert self._queue.failure is not None
                raise self._queue.failure
            if taken is not Take.WAIT:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return taken
            await self._lot.park()

    def close(self) -> None:
        """Stop listening and release the address (a ``bind`` of it waits for the release).

        Connections still queued are closed by :meth:`aclose`. Idempotent.
        """
        if self._queue.closed:
            return
        self._unaccepted = self._queue.close()
        self._cancel_scope.cancel()
        self._lot.unpark_all()
        self._released = self._on_close()

    async def aclose(self) -> None:
        """Stop listening, close every queued connection; return once the address is released.

        When this returns, a ``bind`` of the address on this node succeeds
        at once (the signaling server has answered the release, or it failed
        and was given up: while signaling is away, after the node's request
        timeout at the most). Idempotent.
        """
        self.close()
        unaccepted, self._unaccepted = self._unaccepted, []
        with trio.CancelScope(shield=True):
            for stream in unaccepted:
                await stream.aclose()
        if self._released is not None:
            await self._released.wait()
        else:
            await trio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        return f"<OverlayListener {self.address[0]}:{self.address[1]}>"


class NativeListener(trio.abc.Listener[SocketStream]):
    """A listener over an OS TCP listening socket (the native fallback).

    Attributes:
        address: the bound ``(host, port)`` (the real port when 0 was asked for).
    """

    def __init__(
        self,
        listener: trio.SocketListener,
        track: Callable[[SocketStream], SocketStream] = lambda stream: stream,
    ) -> None:
        self._listener = listener
        self._track = track
        host, port = listener.socket.getsockname()[:2]
        self.address: Address = (host, port)

    async def wait_ready(self) -> None:
        """Return at once: the OS accepts connections as soon as ``listen`` returned."""
        await trio.lowlevel.checkpoint()

    async def accept(self) -> SocketStream:
        """Wait for the next connection (trio ``Listener.accept``).

        Raises:
            trio.ClosedResourceError: the listener was closed.
            trio.BusyResourceError: another task is already in ``accept``.
        """
        stream = await self._listener.accept()
        return self._track(wrap_native_stream(stream))

    @property
    def socket(self) -> trio.socket.SocketType:
        """The OS listening socket."""
        return self._listener.socket

    def close(self) -> None:
        """Close the listening socket now: the port is free when this returns. Idempotent."""
        self._listener.socket.close()

    async def aclose(self) -> None:
        """Close the listening socket."""
        await self._listener.aclose()

    def __repr__(self) -> str:
        return f"<NativeListener {self.address[0]}:{self.address[1]}>"


def wrap_native_stream(stream: trio.SocketStream) -> SocketStream:
    """Wrap an OS TCP :class:`trio.SocketStream` as a :class:`SocketStream`."""
    local = stream.socket.getsockname()[:2]
    remote = stream.socket.getpeername()[:2]
    return SocketStream(stream, local_address=(local[0], local[1]), remote_address=remote)
