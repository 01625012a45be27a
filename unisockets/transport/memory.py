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
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio

from .._nursery import open_owned_nursery
from ..protocol.stream import DEFAULT_MAX_MESSAGE_SIZE
from .base import PeerTransport
from .memory_pipe import DEFAULT_HIGH_WATER, MemoryPipe, memory_pipe_pair
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
