"""Peer transports for test nodes: ``open_node(url, transport=memory_transport(network))``."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from unisockets.net.node import TransportFactory
from unisockets.transport.base import PeerTransport, SignalSender
from unisockets.transport.memory import MemoryNetwork, open_memory_transport


def memory_transport(network: MemoryNetwork) -> TransportFactory:
    """A :data:`~unisockets.net.node.TransportFactory` putting nodes on an in-process network.

    The nodes of one ``network`` reach each other without WebRTC; signals
    (offers, candidates) are not needed and not sent.
    """

    def factory(node_id: str, signals: SignalSender) -> AbstractAsyncContextManager[PeerTransport]:
        return open_memory_transport(network, node_id)

    return factory
