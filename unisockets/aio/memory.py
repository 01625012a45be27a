"""In-process peer connections for the asyncio driver: the memory transport under asyncio.

:class:`MemoryNetwork` is what ``open_node(transport=...)`` takes under
asyncio to put nodes of one process (one event loop) on in-memory peer
connections instead of aiortc, as trio's
:class:`unisockets.transport.memory.MemoryNetwork` does for the trio driver.
Signaling is unchanged (a real WebSocket to a real server): offers, answers,
glare, restarts, the legacy verdict, pipes and streams all run the asyncio
driver's code; only ICE, DTLS and SCTP are replaced.

The objects have the W3C shapes the driver uses (``RTCPeerConnection``,
``RTCDataChannel``), with the behaviour it relies on:

- an SDP description names its peer connection (``a=x-unisockets-memory:<id>``);
  two peer connections connect once each has its local description and the
  other's as remote (``connectionstatechange`` to ``connected`` on both);
- a data channel created before that is announced to the peer when they
  connect, one created after at once: the peer gets ``datachannel`` (the
  channel already ``open``), then ours fires ``open`` (as after a DCEP ACK);
- messages keep their boundaries and order; each is delivered one event-loop
  step after ``send`` and counts in ``bufferedAmount`` until then
  (``bufferedamountlow`` fires when it falls to the threshold);
- :meth:`MemoryPeerConnection.fail` injects a link failure (both ends ``failed``);
- ``close()`` on a channel reaches the peer after every message sent before
  it (as an SCTP stream reset, RFC 6525); closing a peer connection closes its
  channels on both ends and the peer's ``connectionState`` becomes ``closed``
  (as aiortc's does when the peer's DTLS closes).
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .runtime_base import AioTransport, BaseRuntime, EventTarget, RuntimeSettings

__all__ = ["MemoryDataChannel", "MemoryNetwork", "MemoryPeerConnection", "MemoryRuntime"]

#: The SDP attribute that names a memory peer connection.
SDP_ATTRIBUTE: Final = "a=x-unisockets-memory:"


@dataclass(frozen=True)
class SessionDescription:
    """An ``RTCSessionDescription`` (``type`` and ``sdp``)."""

    type: str
    sdp: str


class MemoryDataChannel(EventTarget):
    """One end of an in-memory ``RTCDataChannel`` (see the module docstring).

    Args:
        pc: the peer connection it belongs to.
        label: the channel's label.
        protocol: its DCEP sub-protocol.
        ready_state: ``"connecting"`` (ours, not announced yet) or ``"open"``.
    """

    def __init__(
        self, pc: MemoryPeerConnection, label: str, protocol: str, ready_state: str
    ) -> None:
        super().__init__()
        self.label = label
        self.protocol = protocol
        self.readyState = ready_state
        self.binaryType = "arraybuffer"
        self.bufferedAmount = 0
        self.bufferedAmountLowThreshold = 0
        self._pc = pc
        self._other: MemoryDataChannel | None = None

    def send(self, data: bytes | str) -> None:
        """Queue one message for the peer (delivered one loop step later).

        Raises:
            RuntimeError: the channel is not open (a browser's ``InvalidStateError``).
        """
        if self.readyState != "open":
            raise RuntimeError(f"data channel {self.label!r} is {self.readyState}")
        message = data if isinstance(data, str) else bytes(data)
        self.bufferedAmount += len(message)
        self._pc.loop.call_soon(self._deliver, message)

    def _deliver(self, message: bytes | str) -> None:
        before = self.bufferedAmount
        self.bufferedAmount -= len(message)
        other = self._other
        if other is not None and other.readyState == "open":
            other._dispatch_message(message)
        threshold = self.bufferedAmountLowThreshold
        if before > threshold >= self.bufferedAmount and self.readyState != "closed":
            self._dispatch("bufferedamountlow")

    def close(self) -> None:
        """Close both ends, after every message already sent (``close`` on both)."""
        if self.readyState in ("closing", "closed"):
            return
        self.readyState = "closing"
        self._pc.loop.call_soon(self._closed)

    def _closed(self) -> None:
        for end in (self, self._other):
            if end is not None and end.readyState != "closed":
                end.readyState = "closed"
                end.bufferedAmount = 0
                end._pc._channels.discard(end)
                end._dispatch("close")


class MemoryPeerConnection(EventTarget):
    """An in-memory ``RTCPeerConnection`` (see the module docstring).

    Args:
        network: the network its peer must be on.
    """

    def __init__(self, network: MemoryNetwork) -> None:
        super().__init__()
        self.loop = asyncio.get_running_loop()
        self.id = network._register(self)
        self.connectionState = "new"
        self.iceConnectionState = "new"
        self.localDescription: SessionDescription | None = None
        self._network = network
        self._remote_id: str | None = None
        self._peer: MemoryPeerConnection | None = None
        self._channels: set[MemoryDataChannel] = set()
        self._unannounced: list[MemoryDataChannel] = []

    def createDataChannel(self, label: str, options: Mapping[str, Any]) -> MemoryDataChannel:
        """A new channel (``options``: ``protocol``; ordering and retransmits are moot here).

        Raises:
            RuntimeError: the peer connection is closed.
        """
        if self.connectionState == "closed":
            raise RuntimeError("the peer connection is closed")
        channel = MemoryDataChannel(self, label, str(options.get("protocol", "")), "connecting")
        self._channels.add(channel)
        if self._peer is None:
            self._unannounced.append(channel)
        else:
            self._announce(channel)
        return channel

    async def createOffer(self) -> SessionDescription:
        """An offer naming this peer connection."""
        return SessionDescription("offer", self._sdp())

    async def createAnswer(self) -> SessionDescription:
        """An answer naming this peer connection.

        Raises:
            RuntimeError: no remote offer was set.
        """
        if self._remote_id is None:
            raise RuntimeError("createAnswer before setRemoteDescription")
        return SessionDescription("answer", self._sdp())

    async def setLocalDescription(self, description: SessionDescription) -> None:
        """Apply our description; connect if the peer has applied it too."""
        self.localDescription = description
        self._maybe_connect()

    async def setRemoteDescription(self, init: Mapping[str, Any]) -> None:
        """Apply the peer's ``{"type", "sdp"}``.

        Raises:
            ValueError: the SDP names no memory peer connection (e.g. aiortc's).
        """
        for line in str(init["sdp"]).splitlines():
            if line.startswith(SDP_ATTRIBUTE):
                self._remote_id = line[len(SDP_ATTRIBUTE) :].strip()
                self._maybe_connect()
                return
        raise ValueError("not a memory peer connection's description")

    async def addIceCandidate(self, init: Mapping[str, Any]) -> None:
        """Nothing to do: there is no ICE."""

    def close(self) -> None:
        """Close: our channels end on both sides, the peer's state becomes ``closed``."""
        if self.connectionState == "closed":
            return
        self.connectionState = self.iceConnectionState = "closed"
        self._network._unregister(self)
        for channel in list(self._channels):
            channel.close()
        peer, self._peer = self._peer, None
        if peer is not None:
            self.loop.call_soon(peer._peer_closed)

    def fail(self) -> None:
        """Fault injection: the link fails (as when consent expires, RFC 7675).

        Both ends' channels close and both peer connections turn ``failed``
        (``connectionstatechange`` on each), as a WebRTC stack reports a dead path.
        """
        peer = self._peer
        for pc in (self, peer):
            if pc is not None and pc.connectionState != "closed":
                pc._failed()

    def _failed(self) -> None:
        self._peer = None
        for channel in list(self._channels):
            channel.close()
        self.connectionState, self.iceConnectionState = "failed", "disconnected"
        self.loop.call_soon(self._state_changed)

    def _sdp(self) -> str:
        # The ufrag lets an answer say which offer it answers (as a real stack's does).
        return f"v=0\r\ns=-\r\na=ice-ufrag:{self.id}\r\n{SDP_ATTRIBUTE}{self.id}\r\n"

    def _maybe_connect(self) -> None:
        if self.localDescription is None or self._remote_id is None or self._peer is not None:
            return
        peer = self._network._pcs.get(self._remote_id)
        if peer is None or peer._remote_id != self.id or peer.localDescription is None:
            return
        self._peer, peer._peer = peer, self
        for pc in (self, peer):
            pc.connectionState = "connected"
            pc.iceConnectionState = "connected"
            self.loop.call_soon(pc._state_changed)
        for pc in (self, peer):
            unannounced, pc._unannounced = pc._unannounced, []
            for channel in unannounced:
                pc._announce(channel)

    def _announce(self, channel: MemoryDataChannel) -> None:
        peer = self._peer
        assert peer is not None
        other = MemoryDataChannel(peer, channel.label, channel.protocol, "open")
        channel._other, other._other = other, channel
        peer._channels.add(other)
        self.loop.call_soon(peer._datachannel, other)
        self.loop.call_soon(self._opened, channel)

    def _datachannel(self, channel: MemoryDataChannel) -> None:
        if self.connectionState != "closed":
            self._dispatch("datachannel", channel=channel)

    def _state_changed(self) -> None:
        if self.connectionState != "closed":
            self._dispatch("connectionstatechange")

    def _opened(self, channel: MemoryDataChannel) -> None:
        if channel.readyState == "connecting":
            channel.readyState = "open"
            channel._dispatch("open")

    def _peer_closed(self) -> None:
        if self.connectionState == "closed":
            return
        self._peer = None
        for channel in list(self._channels):
            channel.close()
        self.connectionState = self.iceConnectionState = "closed"
        self._network._unregister(self)
        self._dispatch("connectionstatechange")


class MemoryRuntime(BaseRuntime):
    """The asyncio driver's platform with in-memory peer connections (a real WebSocket).

    Args:
        network: the network whose nodes this one can link to.
        ssl_context: TLS settings for ``wss://`` signaling.
    """

    def __init__(self, network: MemoryNetwork, *, ssl_context: ssl.SSLContext | None = None):
        super().__init__(ssl_context=ssl_context)
        self.network = network

    def peer_connection(self, configuration: Mapping[str, Any]) -> MemoryPeerConnection:
        """A new :class:`MemoryPeerConnection` on :attr:`network`."""
        return MemoryPeerConnection(self.network)

    def ice_servers(self) -> list[dict[str, Any]]:
        """None: there is no ICE."""
        return []


class MemoryNetwork(AioTransport):
    """Nodes of one process linked in memory: ``open_node(url, transport=MemoryNetwork())``.

    Give the same network to every node that should reach the others
    (docs/concepts.md, "asyncio and trio"). The signaling server is real; a
    node on a memory network cannot link to an aiortc node, a browser or an
    original node (their descriptions are not memory ones: the link fails).
    """

    def __init__(self) -> None:
        self._pcs: dict[str, MemoryPeerConnection] = {}
        self._ids = itertools.count(1)

    def runtime(self, settings: RuntimeSettings) -> MemoryRuntime:
        """A :class:`MemoryRuntime` on this network (only ``ssl_context`` is used)."""
        return MemoryRuntime(self, ssl_context=settings.ssl_context)

    @property
    def peer_connections(self) -> int:
        """How many peer connections are open on the network (both ends count)."""
        return len(self._pcs)

    def _register(self, pc: MemoryPeerConnection) -> str:
        pc_id = f"pc{next(self._ids)}"
        self._pcs[pc_id] = pc
        return pc_id

    def _unregister(self, pc: MemoryPeerConnection) -> None:
        self._pcs.pop(pc.id, None)
