"""Moves bytes between peers; knows node ids and labels, never signaling opcodes.

- :mod:`~unisockets.transport.base`: the interface (message pipes, peer transports).
- :mod:`~unisockets.transport.stream`: a byte stream (half-close, flow control) over any pipe;
  its reader and writer in :mod:`~unisockets.transport.stream_io`, trio's errors for
  streams in :mod:`~unisockets.transport.stream_errors`.
- :mod:`~unisockets.transport.legacy`: the raw byte stream an original unisockets node
  speaks over its one ``"channel"`` (no framing, no EOF).
- :mod:`~unisockets.transport.memory`: an in-process transport for tests, its pipes in
  :mod:`~unisockets.transport.memory_pipe`.
- :mod:`~unisockets.transport.webrtc`: WebRTC data channels through aiortc, run on one
  asyncio thread (:mod:`~unisockets.transport.bridge`); imported on demand, as it loads aiortc.
"""

from .base import MessagePipe, PeerTransport, SignalSender
from .legacy import LegacyStream
from .memory import (
    MemoryNetwork,
    MemoryPipe,
    MemoryTransport,
    memory_pipe_pair,
    open_memory_transport,
)
from .stream import PipeStream

__all__ = [
    "LegacyStream",
    "MemoryNetwork",
    "MemoryPipe",
    "MemoryTransport",
    "MessagePipe",
    "PeerTransport",
    "PipeStream",
    "SignalSender",
    "memory_pipe_pair",
    "open_memory_transport",
]
