"""An in-process transport: message pipes between nodes of one :class:`MemoryNetwork`.

For fast, deterministic tests of everything above the transport, and for a
node's connections to itself. It behaves like the WebRTC transport where the
layers above can tell: pipes are found by ``(peer id, label)``, a pipe opened
before the peer asks for it waits to be claimed (and is closed after a claim
timeout), sends wait while the pipe's buffer is above a high-water mark (like
a data channel's ``bufferedAmount``), and a transport exiting breaks its pipes
(:class:`trio.BrokenResourceError` on both ends); signaling's word that a peer
left breaks nothing that still lives (:meth:`MemoryTransport.peer_left`). Faults can
be injected with :meth:`MemoryNetwork.break_link`.

Modelled on :func:`trio.testing.memory_stream_pair` (parking lots, checkpoints
on every call) and ``trio/testing/_fake_net.py`` (one shared fake network
object that endpoints register with).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final

import trio

from .._nursery import open_owned_nursery
from ..protocol.stream import DEFAULT_MAX_MESSAGE_SIZE
from .base import MessagePipe, PeerTransport
from .rendezvous import TrioRendezvous

__all__ = [
    "DEFAULT_HIGH_WATER",
    "MemoryNetwork",
    "MemoryPipe",
    "MemoryTransport",
    "memory_pipe_pair",
    "open_memory_transport",
]

logger = logging.getLogger(__name__)

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


class MemoryNetwork:
    """The shared medium of in-memory transports: one per test or process.

    Args:
        max_message_size: the largest pipe message, in bytes.
        high_water: bytes a pipe direction buffers before sends wait.
        accept_timeout: seconds :meth:`MemoryTransport.accept_pipe` waits.
        claim_timeout: seconds an unclaimed arriving pipe is kept before it is closed.
    """

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        high_water: int = DEFAULT_HIGH_WATER,
        accept_timeout: float = 10.0,
        claim_timeout: float = 10.0,
    ) -> None:
        if max_message_size < 1 or high_water < 0:
            raise ValueError("max_message_size must be >= 1 and high_water >= 0")
        self.max_message_size = max_message_size
        self.high_water = high_water
        self.accept_timeout = accept_timeout
        self.claim_timeout = claim_timeout
        self._nodes: dict[str, MemoryTransport] = {}

    @property
    def ids(self) -> frozenset[str]:
        """The ids of the transports currently on the network."""
        return frozenset(self._nodes)

    def break_link(self, a: str, b: str, reason: str = "link failure (injected)") -> int:
        """Fault injection: break every open pipe between nodes ``a`` and ``b``.

        New pipes between them can be opened afterwards (the link is re-established).

        Args:
            a: one node id. b: the other (may equal ``a`` for loopback pipes).
            reason: the text of the :class:`ConnectionResetError` the errors chain from.

        Returns:
            The number of pipes broken.
        """
        node = self._nodes.get(a)
        if node is None:
            return 0
        pipes = [p for p in node._pipes if p.peer_id == b and not p.broken]
        for pipe in pipes:
            pipe.break_pipe(reason)
        return len(pipes)

    def _register(self, transport: MemoryTransport, local_id: str) -> None:
        if local_id in self._nodes:
            raise ValueError(f"{local_id} is already on this memory network")
        self._nodes[local_id] = transport

    def _unregister(self, transport: MemoryTransport, local_id: str) -> None:
        if self._nodes.get(local_id) is transport:
            del self._nodes[local_id]


class MemoryTransport(PeerTransport):
    """A node's transport on a :class:`MemoryNetwork` (see :class:`PeerTransport`).

    Created by :func:`open_memory_transport`. A node may open pipes to itself
    (its own id).
    """

    def __init__(self, network: MemoryNetwork, local_id: str, nursery: trio.Nursery) -> None:
        self.network = network
        self._local_id = local_id
        self._nursery = nursery
        self._pipes: set[MemoryPipe] = set()
        self._rendezvous: TrioRendezvous[MemoryPipe] = TrioRendezvous(
            nursery, _close_unclaimed, claim_timeout=network.claim_timeout
        )
        self._closed = False
        network._register(self, local_id)

    @property
    def local_id(self) -> str:
        """This node's id; assigning it re-registers the transport under the new id.

        Raises:
            ValueError: (on assignment) another transport has that id.
        """
        return self._local_id

    @local_id.setter
    def local_id(self, value: str) -> None:
        if value == self._local_id:
            return
        if not self._closed:
            self.network._register(self, value)
            self.network._unregister(self, self._local_id)
        self._local_id = value

    @property
    def pipes(self) -> frozenset[MemoryPipe]:
        """This node's pipe ends that are not closed yet (claimed or not, possibly broken)."""
        return frozenset(self._pipes)

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the memory transport was closed")

    def _adopt(self, pipe: MemoryPipe) -> None:
        self._pipes.add(pipe)
        pipe._close_hooks.append(self._pipes.discard)

    async def open_pipe(self, peer_id: str, label: str) -> MemoryPipe:
        """Open a pipe to ``peer_id`` labelled ``label``; the peer claims it with accept_pipe.

        Raises:
            trio.BrokenResourceError: no node ``peer_id`` is on the network.
            trio.ClosedResourceError: this transport was closed.
        """
        await trio.lowlevel.checkpoint()
        self._check_open()
        peer = self.network._nodes.get(peer_id)
        if peer is None:
            raise trio.BrokenResourceError(f"no node {peer_id} on this memory network")
        mine, theirs = memory_pipe_pair(
            label,
            ids=(self._local_id, peer_id),
            max_message_size=self.network.max_message_size,
            high_water=self.network.high_water,
        )
        self._adopt(mine)
        peer._adopt(theirs)
        peer._arrive(theirs)
        return mine

    def _arrive(self, pipe: MemoryPipe) -> None:
        """Hand an arriving pipe to a waiting accept_pipe, or keep it until claimed."""
        if self._closed:
            pipe.close()
            return
        if self._take_datagram_pipe(pipe):
            return
        self._rendezvous.arrive(pipe.peer_id, pipe.label, pipe)

    async def accept_pipe(self, peer_id: str, label: str) -> MemoryPipe:
        """Return the pipe ``peer_id`` opened (or will open) with ``label``.

        Cancel-safe: a pipe handed over as the call is cancelled goes to the
        next caller (:mod:`unisockets.protocol.rendezvous`).

        Raises:
            TimeoutError: none arrived within the network's ``accept_timeout``.
            trio.BrokenResourceError: ``peer_id`` left or its transport closed first.
            trio.ClosedResourceError: this transport was closed.
        """
        await trio.lowlevel.checkpoint()
        self._check_open()
        return await self._rendezvous.claim(peer_id, label, self.network.accept_timeout)

    def _fail_waiters(self, peer_id: str | None, error: Callable[[], BaseException]) -> None:
        self._rendezvous.fail_waiters(peer_id, error)

    async def peer_left(self, peer_id: str) -> None:
        """Signaling said ``peer_id`` left: drop what died with it, keep what lives.

        Goodbye is not death (docs/protocol.md, "Goodbye is not death"): the
        WebRTC transport probes the link before it fails it; here the answer
        is known at once. A node whose transport closed broke its pipes then
        (:meth:`close`), so its unclaimed pipes, broken, are dropped, and
        accept_pipe calls for ``peer_id`` fail if no node has that id now.
        Pipes that are not broken have a live transport at the other end (the
        node whose signaling alone left, or a new node that took the id
        before this goodbye arrived, ids being reused) and stay.
        """
        await trio.lowlevel.checkpoint()
        self._rendezvous.drop_queued(peer_id, which=lambda pipe: pipe.broken)
        if peer_id not in self.network._nodes:
            self._fail_waiters(peer_id, lambda: trio.BrokenResourceError(f"{peer_id} left"))

    def close(self) -> None:
        """Leave the network: break every pipe and fail every waiting accept_pipe.

        Peers see :class:`trio.BrokenResourceError` on their pipes to us and on
        accept_pipe calls waiting for us. Idempotent. Called on exit of
        :func:`open_memory_transport`.
        """
        if self._closed:
            return
        self._closed = True
        reason = f"the transport of {self._local_id} closed"
        for pipe in list(self._pipes):
            pipe.break_pipe(reason)
            pipe.close()
        self._rendezvous.drop_queued()  # closed above already, with every pipe
        self._fail_waiters(None, lambda: trio.ClosedResourceError(reason))
        self.network._unregister(self, self._local_id)
        for node in list(self.network._nodes.values()):
            node._fail_waiters(self._local_id, lambda: trio.BrokenResourceError(reason))

    def __repr__(self) -> str:
        return f"<MemoryTransport {self._local_id} pipes={len(self._pipes)}>"


def _close_unclaimed(pipe: MemoryPipe, reason: str) -> None:
    logger.info("closing pipe %r from %s: %s", pipe.label, pipe.peer_id, reason)
    pipe.close()


@asynccontextmanager
async def open_memory_transport(
    network: MemoryNetwork, local_id: str
) -> AsyncIterator[MemoryTransport]:
    """Join ``network`` as ``local_id`` for the duration of the block.

    Args:
        network: the shared :class:`MemoryNetwork`.
        local_id: this node's id (unique on the network).

    Yields:
        The :class:`MemoryTransport`. Leaving the block breaks every pipe of it
        (peers see :class:`trio.BrokenResourceError`) and cancels its claim timers.

    Raises:
        ValueError: ``local_id`` is already on the network.
    """
    if local_id in network.ids:  # checked here so that the error is not wrapped by the nursery
        raise ValueError(f"{local_id} is already on this memory network")
    async with open_owned_nursery() as nursery:
        transport = MemoryTransport(network, local_id, nursery)
        try:
            yield transport
        finally:
            transport.close()
