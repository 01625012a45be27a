"""The transport interface: what moves bytes between two nodes.

A transport knows node ids and opaque labels, never signaling opcodes. It
offers *message pipes*: reliable, ordered, message-preserving duplex pipes
(one WebRTC data channel, one in-memory channel pair). Byte-stream semantics
(splitting, end-of-stream, flow control) are built once on top of any pipe by
:mod:`unisockets.transport.stream` with the sans-IO framing of
:mod:`unisockets.protocol.stream`.

A connection is set up like this (see :mod:`unisockets.net`): the connecting
node calls :meth:`PeerTransport.open_pipe` with the peer's id and a label
naming the connection; the accepting node, told by signaling that a connection
arrived, calls :meth:`PeerTransport.accept_pipe` with the same peer id and
label, and gets that pipe whether it arrived before or after the call.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import trio

from ..protocol.datagram import DATAGRAM_LABEL

__all__ = ["MessagePipe", "PeerTransport", "SignalSender"]


class MessagePipe(ABC):
    """A reliable, ordered, message-preserving duplex pipe between two nodes.

    Error vocabulary (trio's): :class:`trio.ClosedResourceError` when *this*
    side closed the pipe, :class:`trio.BrokenResourceError` when the pipe or
    its peer link failed, :class:`trio.EndOfChannel` when the remote side
    closed the pipe and every message before the close was received.

    Attributes:
        label: the label both sides know the pipe by (opaque to the transport).
        peer_id: the id of the node at the other end.
        max_message_size: the largest message :meth:`send_message` takes, in bytes.
    """

    label: str
    peer_id: str
    max_message_size: int

    @abstractmethod
    async def send_message(self, data: bytes) -> None:
        """Send one message (1..``max_message_size`` bytes).

        Waits while the pipe's outgoing buffer is above its high-water mark
        (backpressure), so a fast sender cannot make the process grow
        without bound.

        Raises:
            trio.ClosedResourceError: this side closed the pipe.
            trio.BrokenResourceError: the pipe or the peer link failed, or
                the remote side closed the pipe.
            ValueError: ``data`` is empty or larger than ``max_message_size``.
        """

    def send_nowait(self, data: bytes) -> bool:
        """Send one message if that needs no waiting (datagrams take this path).

        The default never can; a pipe that can overrides it.

        Returns:
            True if the message was queued for the peer; False if it was not
            (nothing happened: use :meth:`send_message`).
        """
        return False

    @abstractmethod
    async def receive_message(self) -> bytes:
        """Receive the next message, waiting for one.

        Returns:
            The message's bytes (never empty).

        Raises:
            trio.EndOfChannel: the remote side closed the pipe cleanly.
            trio.ClosedResourceError: this side closed the pipe.
            trio.BrokenResourceError: the pipe or its peer link failed.
        """

    @abstractmethod
    async def aclose(self) -> None:
        """Close the pipe; idempotent. Messages already sent are still delivered."""


class PeerTransport(ABC):
    """Opens message pipes to other nodes, by node id. One per node.

    Attributes:
        local_id: this node's id (it may change when signaling rejoins).
    """

    local_id: str

    #: Where incoming pipes labelled :data:`~unisockets.protocol.datagram.DATAGRAM_LABEL`
    #: go (the node's datagram layer, :mod:`unisockets.net.datagram_overlay`), instead
    #: of waiting for :meth:`accept_pipe`; with none set they wait like any other
    #: pipe, and are closed unclaimed.
    datagram_sink: Callable[[MessagePipe], object] | None = None

    def _take_datagram_pipe(self, pipe: MessagePipe) -> bool:
        """Hand an incoming datagram pipe to :attr:`datagram_sink`; True if taken.

        Transports call it with each incoming pipe before their rendezvous
        (docs/protocol.md, "Datagrams").
        """
        if pipe.label != DATAGRAM_LABEL or self.datagram_sink is None:
            return False
        self.datagram_sink(pipe)
        return True

    @abstractmethod
    async def open_pipe(self, peer_id: str, label: str) -> MessagePipe:
        """Open a new pipe to ``peer_id`` labelled ``label`` and wait until it is open.

        Sets up the peer link on demand when there is none yet.

        Raises:
            trio.BrokenResourceError: the peer link could not be set up or failed.
            TimeoutError: the pipe did not open within the transport's timeout.
        """

    @abstractmethod
    async def accept_pipe(self, peer_id: str, label: str) -> MessagePipe:
        """Return the pipe ``peer_id`` opened (or will open) with ``label``.

        Pipes that arrive before anyone asks for them are kept for a while
        (the transport's claim timeout) and then closed.

        Raises:
            trio.BrokenResourceError: the peer link failed first.
            TimeoutError: no such pipe arrived within the transport's timeout.
        """

    async def peer_left(self, peer_id: str) -> None:  # noqa: B027 - optional hook
        """Signaling said ``peer_id`` left: break its pipes and drop its link.

        The default does nothing; transports with peer links override it.
        """

    def signaling_lost(self) -> None:  # noqa: B027 - optional hook
        """Our signaling session ended (the connection to the server was lost).

        The default does nothing; transports with peer links override it
        (links still negotiating start over: docs/transport.md, "Peer links").
        """

    def signaling_back(self) -> None:  # noqa: B027 - optional hook
        """Our signaling session is back after :meth:`signaling_lost` (we joined again).

        The default does nothing; transports with peer links override it (the
        peers of links that were cut get a fresh offer: docs/signaling-server.md).
        """

    async def legacy_channel(self, peer_id: str, *, offer: bool = True) -> MessagePipe | None:
        """``peer_id``'s one raw channel if it is an original unisockets node, else None.

        docs/protocol.md, "Legacy peers": a legacy peer carries one connection per
        pair, raw, over its ``"channel"``. The default (transports without
        legacy peers, e.g. the in-memory one) answers None at once; the WebRTC
        transport overrides it.

        Args:
            peer_id: the peer's node id.
            offer: with no link to ``peer_id`` yet, make one (we connect) or
                wait for the peer's (it connected to us).

        Returns:
            The legacy channel's pipe (shared, never to be closed by a
            connection), or None for a peer that speaks our data plane.
        """
        await trio.lowlevel.checkpoint()
        return None


class SignalSender(ABC):
    """Where a WebRTC transport sends its offers, answers and ICE candidates.

    Implemented by the node over its signaling client; the transport never
    sees an opcode. Each method raises whatever the signaling client raises
    when it cannot send (e.g. the signaling connection is down).
    """

    @abstractmethod
    async def send_offer(self, peer_id: str, sdp: str) -> None:
        """Send our SDP offer to ``peer_id``."""

    @abstractmethod
    async def send_answer(self, peer_id: str, sdp: str) -> None:
        """Send our SDP answer to ``peer_id``."""

    @abstractmethod
    async def send_candidate(self, peer_id: str, candidate: str) -> None:
        """Send one ICE candidate (a JSON RTCIceCandidateInit string) to ``peer_id``."""
