"""In-memory message pipes: the pipes of :mod:`unisockets.transport.memory`, or a bare pair.

A :class:`MemoryPipe` behaves like a WebRTC data channel where the layers above
can tell: messages keep their boundaries and order, sends wait while the
direction's buffer is above a high-water mark (like a data channel's
``bufferedAmount``), and a broken pipe raises :class:`trio.BrokenResourceError`
on both ends. :func:`memory_pipe_pair` makes two connected ends with no
network, like :func:`trio.testing.memory_stream_pair`, whose parking lots and
checkpoints on every call it follows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final

import trio

from ..protocol.stream import DEFAULT_MAX_MESSAGE_SIZE
from .base import MessagePipe

__all__ = ["DEFAULT_HIGH_WATER", "MemoryPipe", "memory_pipe_pair"]

#: Default high-water mark of a pipe direction, in bytes: sends wait while more is buffered.
#: It exceeds the default stream window (256 KiB), so flow-controlled streams never hit it.
DEFAULT_HIGH_WATER: Final = 1024 * 1024


class _Direction:
    """One direction of a pipe: a FIFO of messages bounded by a high-water mark in bytes."""

    def __init__(self, high_water: int) -> None:
        self.high_water = high_water
        self.messages: deque[bytes] = deque()
        self.size = 0
        self.sender_closed = False  # the sending end closed: EndOfChannel after the queue
        self.receiver_closed = False  # the receiving end closed: sends are broken
        self.lot = trio.lowlevel.ParkingLot()

    def discard(self) -> None:
        self.messages.clear()
        self.size = 0


class _Link:
    """What both ends of one pipe share: the two directions and the failure, if any."""

    def __init__(self, high_water: int) -> None:
        self.directions = (_Direction(high_water), _Direction(high_water))
        self.failure: BaseException | None = None

    def wake(self) -> None:
        for direction in self.directions:
            direction.lot.unpark_all()


class MemoryPipe(MessagePipe):
    """One end of an in-memory message pipe (see :class:`~unisockets.transport.base.MessagePipe`).

    Created by :func:`memory_pipe_pair` or by a :class:`MemoryTransport`.

    Attributes:
        label: the label both ends know the pipe by.
        local_id: the id of the node at this end.
        peer_id: the id of the node at the other end.
        max_message_size: the largest message, in bytes.
    """

    def __init__(
        self,
        link: _Link,
        index: int,
        *,
        label: str,
        local_id: str,
        peer_id: str,
        max_message_size: int,
    ) -> None:
        self._link = link
        self._outgoing = link.directions[index]
        self._incoming = link.directions[1 - index]
        self.label = label
        self.local_id = local_id
        self.peer_id = peer_id
        self.max_message_size = max_message_size
        self._closed = False
        self._close_hooks: list[Callable[[MemoryPipe], None]] = []

    @property
    def closed(self) -> bool:
        """True once this end was closed."""
        return self._closed

    @property
    def broken(self) -> bool:
        """True once the pipe failed (:meth:`break_pipe`, a peer left, a transport exited)."""
        return self._link.failure is not None

    @property
    def buffered_bytes(self) -> int:
        """Bytes sent from this end that the other end has not received yet."""
        return self._outgoing.size

    @property
    def buffered_messages(self) -> int:
        """Messages sent from this end that the other end has not received yet."""
        return len(self._outgoing.messages)

    def _check_usable(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("this end of the pipe was closed") from None
        if self._link.failure is not None:
            raise trio.BrokenResourceError(
                f"pipe {self.label!r} to {self.peer_id} broke"
            ) from self._link.failure

    async def send_message(self, data: bytes | bytearray | memoryview) -> None:
        """Queue one message for the other end, waiting while the buffer is above its mark.

        Args:
            data: 1..``max_message_size`` bytes.

        Raises:
            ValueError: ``data`` is empty or too large.
            TypeError: ``data`` is not bytes-like.
            trio.ClosedResourceError: this end was closed (also while waiting).
            trio.BrokenResourceError: the pipe broke, or the other end was closed.
        """
        message = bytes(data)
        if not 0 < len(message) <= self.max_message_size:
            raise ValueError(f"message of {len(message)} bytes: 1..{self.max_message_size} allowed")
        await trio.lowlevel.checkpoint()
        out = self._outgoing
        while True:
            self._check_usable()
            if out.receiver_closed:
                raise trio.BrokenResourceError(f"{self.peer_id} closed pipe {self.label!r}")
            if out.size <= out.high_water:
                out.messages.append(message)
                out.size += len(message)
                out.lot.unpark_all()
                return
            await out.lot.park()

    async def receive_message(self) -> bytes:
        """Receive the next message, waiting for one.

        Returns:
            The message (1..``max_message_size`` bytes).

        Raises:
            trio.EndOfChannel: the other end closed and every message was received.
            trio.ClosedResourceError: this end was closed (also while waiting).
            trio.BrokenResourceError: the pipe broke.
        """
        await trio.lowlevel.checkpoint()
        incoming = self._incoming
        while True:
            self._check_usable()
            if incoming.messages:
                message = incoming.messages.popleft()
                incoming.size -= len(message)
                incoming.lot.unpark_all()
                return message
            if incoming.sender_closed:
                raise trio.EndOfChannel
            await incoming.lot.park()

    def close(self) -> None:
        """Close this end now (the synchronous part of :meth:`aclose`); idempotent."""
        if self._closed:
            return
        self._closed = True
        self._outgoing.sender_closed = True
        self._incoming.receiver_closed = True
        self._incoming.discard()
        self._link.wake()
        hooks, self._close_hooks = self._close_hooks, []
        for hook in hooks:
            hook(self)

    async def aclose(self) -> None:
        """Close this end; idempotent. The other end still receives what was sent.

        Blocked calls on this end raise :class:`trio.ClosedResourceError`; the
        other end's sends raise :class:`trio.BrokenResourceError`.
        """
        self.close()
        await trio.lowlevel.checkpoint()

    def break_pipe(self, reason: str = "link failure (injected)") -> None:
        """Break the pipe (both ends): every call raises :class:`trio.BrokenResourceError`.

        Messages in flight are lost. Chained from a :class:`ConnectionResetError`
        carrying ``reason``. Idempotent; does nothing to a pipe already broken.
        """
        if self._link.failure is None:
            self._link.failure = ConnectionResetError(reason)
            for direction in self._link.directions:
                direction.discard()
            self._link.wake()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "broken" if self.broken else "open"
        return f"<MemoryPipe {self.local_id} -> {self.peer_id} {self.label!r} {state}>"


def memory_pipe_pair(
    label: str = "pipe",
    *,
    ids: tuple[str, str] = ("a", "b"),
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    high_water: int = DEFAULT_HIGH_WATER,
) -> tuple[MemoryPipe, MemoryPipe]:
    """Make two connected :class:`MemoryPipe` ends (like :func:`trio.testing.memory_stream_pair`).

    Args:
        label: the pipe's label.
        ids: the node ids of the two ends.
        max_message_size: the largest message, in bytes (at least 1).
        high_water: bytes each direction may buffer before sends wait (0: one
            message at a time).

    Returns:
        ``(end at ids[0], end at ids[1])``.

    Raises:
        ValueError: ``max_message_size`` < 1 or ``high_water`` < 0.
    """
    if max_message_size < 1 or high_water < 0:
        raise ValueError("max_message_size must be >= 1 and high_water >= 0")
    link = _Link(high_water)
    first = MemoryPipe(
        link, 0, label=label, local_id=ids[0], peer_id=ids[1], max_message_size=max_message_size
    )
    second = MemoryPipe(
        link, 1, label=label, local_id=ids[1], peer_id=ids[0], max_message_size=max_message_size
    )
    return first, second
