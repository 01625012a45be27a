"""aiortc in the browser's shape: the native :class:`~unisockets.driver.runtime.Runtime`.

The asyncio driver (:mod:`unisockets.driver`: node, links, pipes and
signaling) speaks the W3C/WHATWG API: ``addEventListener``, promise methods,
``readyState``, ``bufferedAmount``. aiortc's ``RTCPeerConnection`` and
``RTCDataChannel`` mirror that API closely (aiortc's docs: "The API closely
follows its Javascript counterpart"); the differences bridged here are small:

- events come from pyee (``pc.on("datachannel", handler)``) with the payload
  as argument; here they become ``addEventListener`` listeners called with an
  event object (``event.channel``, ``event.data``), as in a browser;
- ``close()`` is a coroutine in aiortc and synchronous in a browser: the
  close runs in a task that :meth:`NativeRuntime.aclose` awaits, so no peer
  connection outlives its node;
- aiortc gathers every candidate inside ``setLocalDescription`` (they are in
  the SDP) and never fires ``icecandidate``; candidates a peer trickles are
  parsed with :func:`unisockets.transport.webrtc_ice.candidate_from_json`;
- aioice's consent checks are replaced, on our peer connections only, by the
  per-connection ones of :func:`unisockets.transport.webrtc_consent.take_over_consent`
  (RFC 7675 via :class:`unisockets.protocol.consent.ConsentFreshness`), and
  host candidates are gathered on ``ice_addresses`` in our own calls only
  (:func:`unisockets.transport.webrtc_ice.gather_on`): other aiortc users in
  the same event loop are not affected.

Everything runs in the caller's event loop: no thread, no bridge.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from ..protocol.consent import ConsentPolicy
from ..transport.webrtc_consent import take_over_consent
from ..transport.webrtc_ice import (
    candidate_from_json,
    gather_on,
    gather_reset,
    raise_receive_buffers,
)
from .runtime_base import AioTransport, BaseRuntime, EventTarget, RuntimeSettings

__all__ = ["AiortcTransport", "DataChannel", "NativeRuntime", "PeerConnection"]

logger = logging.getLogger("unisockets.aio")


class DataChannel(EventTarget):
    """An aiortc ``RTCDataChannel`` with the browser's events (``message`` gives ``event.data``)."""

    def __init__(self, channel: RTCDataChannel) -> None:
        super().__init__()
        self._channel = channel
        self.binaryType = "arraybuffer"  # what the driver asks for; aiortc gives bytes anyway
        channel.on("open", lambda: self._dispatch("open"))
        channel.on("message", self._dispatch_message)
        channel.on("bufferedamountlow", lambda: self._dispatch("bufferedamountlow"))
        channel.on("close", lambda: self._dispatch("close"))

    @property
    def label(self) -> str:
        """The channel's label."""
        return self._channel.label

    @property
    def protocol(self) -> str:
        """The DCEP sub-protocol."""
        return self._channel.protocol

    @property
    def readyState(self) -> str:
        """``connecting``, ``open``, ``closing`` or ``closed``."""
        return self._channel.readyState

    @property
    def bufferedAmount(self) -> int:
        """Bytes queued by :meth:`send` and not yet handed to SCTP."""
        return self._channel.bufferedAmount

    @property
    def bufferedAmountLowThreshold(self) -> int:
        """``bufferedamountlow`` fires when :attr:`bufferedAmount` falls to this (bytes)."""
        return self._channel.bufferedAmountLowThreshold

    @bufferedAmountLowThreshold.setter
    def bufferedAmountLowThreshold(self, value: int) -> None:
        self._channel.bufferedAmountLowThreshold = value

    def send(self, data: bytes | str) -> None:
        """Queue one message (binary, or text such as the legacy hello)."""
        self._channel.send(data)

    def close(self) -> None:
        """Close the channel (an SCTP stream reset)."""
        self._channel.close()


class PeerConnection(EventTarget):
    """An aiortc ``RTCPeerConnection`` with the browser's events and a synchronous close.

    Args:
        runtime: the runtime that awaits the close.
    """

    def __init__(self, runtime: NativeRuntime) -> None:
        super().__init__()
        self._runtime = runtime
        self._pc = pc = RTCPeerConnection(runtime.configuration)
        self._channels: dict[int, DataChannel] = {}
        self._consent_taken = False
        pc.on("connectionstatechange", self._on_state)
        pc.on(
            "datachannel",
            lambda channel: self._dispatch("datachannel", channel=self._wrap(channel)),
        )

    def _wrap(self, channel: RTCDataChannel) -> DataChannel:
        wrapped = self._channels.get(id(channel))
        if wrapped is None:
            wrapped = self._channels[id(channel)] = DataChannel(channel)
            channel.on("close", lambda: self._channels.pop(id(channel), None))
        return wrapped

    def _on_state(self) -> None:
        if self._pc.connectionState == "connected" and not self._consent_taken:
            self._consent_taken = True
            if not take_over_consent(self._pc, self._runtime.consent, self._expired):
                logger.warning("aioice internals changed: the link keeps aioice's consent checks")
            raise_receive_buffers(self._pc)
        self._dispatch("connectionstatechange")

    def _expired(self, reason: str) -> None:
        logger.info("consent expired: %s", reason)  # the ICE agent closes: the state follows

    @property
    def connectionState(self) -> str:
        """The peer connection's state (``new`` ... ``connected``, ``failed``, ``closed``)."""
        return self._pc.connectionState

    @property
    def iceConnectionState(self) -> str:
        """The ICE transport's state."""
        return self._pc.iceConnectionState

    @property
    def localDescription(self) -> RTCSessionDescription:
        """Our description (``.sdp``), candidates included."""
        return self._pc.localDescription

    def createDataChannel(self, label: str, options: Mapping[str, Any]) -> DataChannel:
        """Create a data channel (options: ``ordered``, ``maxRetransmits``, ``protocol``)."""
        channel = self._pc.createDataChannel(
            label,
            ordered=bool(options.get("ordered", True)),
            maxRetransmits=options.get("maxRetransmits"),
            protocol=options.get("protocol", ""),
        )
        return self._wrap(channel)

    async def createOffer(self) -> RTCSessionDescription:
        """An offer."""
        return await self._pc.createOffer()

    async def createAnswer(self) -> RTCSessionDescription:
        """An answer to the remote offer."""
        return await self._pc.createAnswer()

    async def setLocalDescription(self, description: RTCSessionDescription) -> None:
        """Apply our description; aiortc gathers candidates here (on the runtime's addresses)."""
        token = gather_on(self._runtime.ice_addresses)
        try:
            await self._pc.setLocalDescription(description)
        finally:
            gather_reset(token)

    async def setRemoteDescription(self, init: Mapping[str, Any]) -> None:
        """Apply the peer's ``{"type", "sdp"}``."""
        await self._pc.setRemoteDescription(
            RTCSessionDescription(sdp=init["sdp"], type=init["type"])
        )

    async def addIceCandidate(self, init: Mapping[str, Any]) -> None:
        """Add one trickled candidate (an ``RTCIceCandidateInit``).

        Raises:
            ValueError: the candidate line does not parse.
        """
        found = candidate_from_json(json.dumps(dict(init)))
        if found is not None:
            await self._pc.addIceCandidate(found[0])

    def close(self) -> None:
        """Close the peer connection (in a task the runtime awaits)."""
        self._runtime._track(self._pc.close())


class NativeRuntime(BaseRuntime):
    """The asyncio driver's platform natively: aiortc and a WebSocket client, in this loop.

    Args:
        configuration: aiortc's configuration for every peer connection.
        ice_addresses: local IP addresses to gather host candidates on, or
            None for aioice's choice (127.0.0.1 on a machine without another).
        consent: the consent-freshness policy of every connected peer connection.
        ssl_context: TLS settings for ``wss://`` signaling (default: the system's).

    Raises:
        ValueError: an ICE address is not a local IP address.
    """

    def __init__(
        self,
        configuration: RTCConfiguration | None = None,
        *,
        ice_addresses: Sequence[str] | None = None,
        consent: ConsentPolicy | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(ssl_context=ssl_context)
        self.configuration = configuration or RTCConfiguration(iceServers=[])
        self.ice_addresses = None if ice_addresses is None else tuple(ice_addresses)
        if self.ice_addresses is not None:
            gather_reset(gather_on(self.ice_addresses))  # validates them now
        self.consent = consent or ConsentPolicy()

    def peer_connection(self, configuration: Mapping[str, Any]) -> PeerConnection:
        """A new peer connection with :attr:`configuration` (the mapping is the driver's view)."""
        return PeerConnection(self)

    def ice_servers(self) -> list[dict[str, Any]]:
        """The configuration's ICE servers as W3C dicts (the driver's view of them)."""
        return [{"urls": server.urls} for server in self.configuration.iceServers or ()]


class AiortcTransport(AioTransport):
    """Peer connections over aiortc: :func:`unisockets.aio.open_node`'s default ``transport``."""

    def runtime(self, settings: RuntimeSettings) -> NativeRuntime:
        """A :class:`NativeRuntime` with the node's settings.

        Raises:
            ValueError: an ICE address is not a local IP address.
        """
        return NativeRuntime(
            settings.rtc_configuration,
            ice_addresses=settings.ice_addresses,
            consent=settings.consent,
            ssl_context=settings.ssl_context,
        )
