"""Berkeley socket semantics and the objects users hold.

Nodes (:func:`open_node`), listeners (:class:`trio.abc.Listener`), streams
(:class:`SocketStream`, a :class:`trio.abc.HalfCloseableStream`), socket
objects (:class:`Socket`, whose ``listen`` returns a :class:`Listening`),
anyio adapters, and the one-liners :func:`listen` / :func:`connect`.
"""

from .addresses import Address
from .anyio_adapters import AnyioListener, AnyioSocketStream
from .datagram import SOCK_DGRAM, DatagramSocket
from .datagram_anyio import AnyioConnectedUDPSocket, AnyioUDPSocket
from .listeners import NativeListener, OverlayListener
from .node import NativeNode, Node, OverlayNode, open_node
from .shortcuts import connect, listen
from .sockets import AF_INET, SHUT_RD, SHUT_RDWR, SHUT_WR, SOCK_STREAM, Listening, Socket
from .streams import SocketStream

__all__ = [
    "AF_INET",
    "SHUT_RD",
    "SHUT_RDWR",
    "SHUT_WR",
    "SOCK_DGRAM",
    "SOCK_STREAM",
    "Address",
    "AnyioConnectedUDPSocket",
    "AnyioListener",
    "AnyioSocketStream",
    "AnyioUDPSocket",
    "DatagramSocket",
    "Listening",
    "NativeListener",
    "NativeNode",
    "Node",
    "OverlayListener",
    "OverlayNode",
    "Socket",
    "SocketStream",
    "connect",
    "listen",
    "open_node",
]
