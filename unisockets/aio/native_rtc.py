"""The native WebRTC core (str0m, ``unisockets._rtc``) under asyncio: no thread, no aiortc.

:class:`NativeTransport` is the ``transport=`` of :func:`unisockets.aio.open_node`
that ``webrtc_backend="native"`` (or ``"auto"`` with the extension installed
and no TURN server) picks under asyncio: the asyncio driver
(:mod:`unisockets.driver`) runs unchanged, its negotiation, pipes and streams
included, over :class:`NativePeerConnection` objects in the browser's
``RTCPeerConnection`` shape, each carried by one native peer (the ``rtc/``
crate, as the trio driver's :mod:`unisockets.transport.native_rtc_link`).

Each peer connection has one task (the runtime's, awaited when the node
closes, as aiortc's closes are: :class:`~unisockets.aio.runtime_base.BaseRuntime`)
that waits until the native peer's UDP socket is readable
(:func:`anyio.wait_readable`) or its next timeout comes, then calls
:meth:`Peer.poll_io <unisockets._rtc.Peer.poll_io>` once (every datagram
waiting, ICE, DTLS and SCTP without the GIL, what they output sent) and turns
the events into the W3C events the driver listens to. It runs on any loop
anyio supports with ``wait_readable`` (asyncio's selector loops, uvloop; not
the Windows proactor loop).

What the W3C calls map to:

- ``createDataChannel`` before the offer names the offer's one channel
  (``Peer.create_offer``); after, it opens a channel in band (DCEP);
- ``setRemoteDescription`` of an offer makes the answer at once
  (``Peer.accept_offer``), which ``createAnswer`` returns;
- our host candidate is in the SDP; a server-reflexive one per answering
  ``stun:`` server fires ``icecandidate`` (the driver trickles it, RFC 8838);
- ``connectionState``: ``connected`` once ICE and DTLS are up, ``closed``
  when the peer closed DTLS or SCTP, ``failed`` when consent expired
  (RFC 7675: nothing from the peer for the policy's ``lifetime``, judged right
  after reading the socket, so a starved process reads what came meanwhile
  first; or str0m's ICE said ``disconnected`` after DTLS was up), as in
  :mod:`unisockets.transport.native_rtc_link`;
- ``close()`` lingers up to :data:`~unisockets.transport.webrtc_link_aio.LINGER_TIMEOUT`
  seconds while a channel still has bytes to hand over or a reset under way,
  then sends DTLS close_notify and closes the UDP socket.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import anyio

from ..protocol.consent import ConsentPolicy
from ..transport.native_rtc import native_host
from ..transport.native_rtc_events import candidates_of
from ..transport.native_rtc_ice import STUN_TIMEOUT, resolve_stun_servers, stun_urls
from ..transport.native_rtc_rules import (
    consent_deadline,
    consent_expired,
    due_resets,
    retry_in_order,
)
from ..transport.webrtc_link_aio import LINGER_TIMEOUT
from .memory import SessionDescription
from .native_channel import NativeDataChannel
from .runtime_base import AioTransport, BaseRuntime, EventTarget, RuntimeSettings

if TYPE_CHECKING:
    import ssl

    from aiortc import RTCConfiguration

    from .._rtc import Event, Peer

__all__ = ["NativePeerConnection", "NativeRTCRuntime", "NativeTransport"]

logger = logging.getLogger("unisockets.aio")


@dataclass(frozen=True)
class IceCandidate:
    """An ``RTCIceCandidate`` as the driver reads it (W3C WebRTC 1.0, section 4.8.1).

    Attributes:
        candidate: the ``candidate:...`` line.
        json: it as an ``RTCIceCandidateInit`` with our SDP's mid and ufrag.
    """

    candidate: str
    json: str


class NativePeerConnection(EventTarget):
    """An ``RTCPeerConnection`` over one native peer (see the module docstring).

    Args:
        runtime: the runtime that owns its I/O task.
    """

    def __init__(self, runtime: NativeRTCRuntime) -> None:
        super().__init__()
        self.connectionState = "new"
        self.iceConnectionState = "new"
        self.localDescription: SessionDescription | None = None
        self.native_peer: Peer | None = None
        self._runtime = runtime
        self._first: NativeDataChannel | None = None  # the offer's channel, made before it
        self._answer: str | None = None
        self._channels: dict[int, NativeDataChannel] = {}
        # Channels to retry after the next input, in the order they asked (a FIFO, as
        # the trio link's: str0m's send buffer is one for every channel).
        self._wanting: dict[NativeDataChannel, None] = {}
        self._deferred: set[NativeDataChannel] = set()  # closed, their reset waits
        self._low: set[NativeDataChannel] = set()  # above their low threshold
        self._queued: list[Event] = []
        self._scope: anyio.CancelScope | None = None
        self._wake_at = math.inf
        self._dtls = False
        self._closing = False
        self._linger_until = math.inf

    # --- the W3C calls -----------------------------------------------------------------------

    def createDataChannel(self, label: str, options: Mapping[str, Any]) -> NativeDataChannel:
        """A new channel (options: ``ordered``, ``maxRetransmits``, ``protocol``).

        Raises:
            RuntimeError: the peer connection is closed, or a second channel
                before the offer (the native offer carries one).
        """
        if self._closing:
            raise RuntimeError("the peer connection is closed")
        protocol = str(options.get("protocol", ""))
        peer = self.native_peer
        if peer is None:
            if self._first is not None:
                raise RuntimeError("the native backend offers one data channel")
            self._first = NativeDataChannel(self, label, protocol, -1, incoming=False)
            return self._first
        retransmits = options.get("maxRetransmits")
        number = peer.open_channel(
            label,
            protocol,
            bool(options.get("ordered", True)),
            None if retransmits is None else int(retransmits),
        )
        channel = NativeDataChannel(self, label, protocol, number, incoming=False)
        self._channels[number] = channel
        self.after_call()
        return channel

    async def createOffer(self) -> SessionDescription:
        """An offer carrying the channel made before it.

        Raises:
            RuntimeError: no channel was made first.
            unisockets._rtc.RtcError: the native peer refused.
        """
        first = self._first
        if first is None:
            raise RuntimeError("the native backend offers a data channel: create it first")
        peer = await self._peer()
        sdp, number = peer.create_offer(first.label, first.protocol)
        first.number = number
        self._channels[number] = first
        self.after_call()
        return SessionDescription("offer", sdp)

    async def createAnswer(self) -> SessionDescription:
        """The answer to the offer set as remote.

        Raises:
            RuntimeError: no remote offer was set.
        """
        if self._answer is None:
            raise RuntimeError("createAnswer before setRemoteDescription")
        return SessionDescription("answer", self._answer)

    async def setLocalDescription(self, description: SessionDescription) -> None:
        """Apply our description (the native peer made it already)."""
        self.localDescription = description

    async def setRemoteDescription(self, init: Mapping[str, Any]) -> None:
        """Apply the peer's ``{"type", "sdp"}`` (an offer makes our answer now).

        Raises:
            unisockets._rtc.RtcError: the SDP does not parse or does not fit.
        """
        peer = await self._peer()
        if init["type"] == "offer":
            self._answer = peer.accept_offer(str(init["sdp"]))
        else:
            peer.accept_answer(str(init["sdp"]))
        self.after_call()

    async def addIceCandidate(self, init: Mapping[str, Any]) -> None:
        """Add one trickled candidate (an ``RTCIceCandidateInit``; empty: end of candidates).

        Raises:
            unisockets._rtc.CandidateError: the line does not parse.
        """
        line = str(init.get("candidate") or "")
        peer = self.native_peer
        if line and peer is not None:
            peer.add_remote_candidate(line)
            self.after_call()

    def close(self) -> None:
        """Close (synchronous, as W3C's): linger while sent bytes are unacknowledged, then close.

        The I/O task sends SCTP SHUTDOWN and DTLS close_notify (the peer's
        ``connectionState`` becomes ``closed``) and closes the UDP socket.
        """
        if self._closing:
            return
        self._closing = True
        self.connectionState = self.iceConnectionState = "closed"
        now = self.now()
        self._linger_until = now + LINGER_TIMEOUT
        for channel in self._deferred:  # no new channel can reuse its stream id now
            channel.reset_due = now
        self._wake()
        if self.native_peer is None:
            for channel in list(self._channels.values()):
                channel.closed()

    # --- for the channels --------------------------------------------------------------------

    def now(self) -> float:
        """The loop's clock (s)."""
        return anyio.current_time()

    @property
    def congested(self) -> bool:
        """Whether a channel waits for room in str0m's send buffer (new messages queue behind)."""
        return any(channel.backlog for channel in self._wanting)

    def wants_room(self, channel: NativeDataChannel) -> None:
        """``channel`` has a backlog (or a reset pending): retry it after the next input."""
        self._wanting.setdefault(channel, None)

    def defer_reset(self, channel: NativeDataChannel) -> None:
        """``channel`` resets its stream at ``channel.reset_due`` unless the peer's comes first."""
        self._deferred.add(channel)
        if channel.reset_due is not None:
            self._wake_by(channel.reset_due)

    def watch_low(self, channel: NativeDataChannel) -> None:
        """``channel`` is above its low threshold: check it after each input."""
        self._low.add(channel)

    def after_call(self) -> None:
        """After a call that changed the native peer: take its events and next timeout."""
        peer = self.native_peer
        if peer is not None:
            self.after_events(*peer.events())

    def after_events(self, events: list[Event], delay: float) -> None:
        """The events and delay a call returned: the I/O task handles them (never here)."""
        if events:
            self._queued.extend(events)
            self._wake()
        else:
            self._wake_by(self.now() + delay)

    # --- the I/O task ------------------------------------------------------------------------

    async def _peer(self) -> Peer:
        """The native peer, made (and its I/O task started) on the first call that needs it."""
        if self._closing:
            raise RuntimeError("the peer connection is closed")
        if self.native_peer is None:
            from .._rtc import Peer

            stun = await self._runtime.stun_servers()
            if self._closing:
                raise RuntimeError("the peer connection is closed")
            policy = self._runtime.consent
            self.native_peer = Peer(
                self._runtime.host, policy.interval, policy.lifetime, stun, STUN_TIMEOUT
            )
            self._runtime._track(self._io(self.native_peer))
        return self.native_peer

    def _wake(self) -> None:
        self._wake_by(-math.inf)

    def _wake_by(self, when: float) -> None:
        if when < self._wake_at:
            self._wake_at = when
            scope = self._scope
            if scope is not None:
                scope.deadline = when

    def _settled(self) -> bool:
        """Whether every byte sent was acknowledged and every reset asked for was sent.

        Channels nobody closed end with the association (the peer's link fails).
        """
        return not any(
            channel.backlog or channel.reset_pending or channel.bufferedAmount
            for channel in self._channels.values()
        )

    async def _io(self, peer: Peer) -> None:
        """Move the datagrams of ``peer`` until it closes or dies; then close it."""
        fd = peer.fileno()
        lifetime = self._runtime.consent.lifetime
        try:
            while peer.is_alive():
                if self._closing and (self.now() >= self._linger_until or self._settled()):
                    break
                deadline = -math.inf if self._queued else self._wake_at
                if self._closing:
                    deadline = min(deadline, self._linger_until)
                if self._dtls and not self._closing:  # when the silence reaches the lifetime
                    deadline = min(deadline, consent_deadline(self.now(), lifetime, peer.silence()))
                with anyio.CancelScope(deadline=deadline) as scope:
                    self._scope = scope
                    await anyio.wait_readable(fd)
                self._scope = None
                self._wake_at = math.inf
                queued, self._queued = self._queued, []
                events, delay = peer.poll_io()
                self._wake_at = self.now() + delay
                self._dispatch_events(queued + events if queued else events)
                self._after_input()
                if self._dtls and not self._closing and consent_expired(peer.silence(), lifetime):
                    self._fail(f"ICE consent expired: nothing from the peer for {lifetime} s")
        except Exception:
            logger.exception("the native peer connection failed")
            self._fail("the native peer connection failed")
        finally:
            self._scope = None
            self._set_state("closed")  # died under us (no "closed" event): the link learns it
            self.native_peer = None
            peer.close()  # DTLS close_notify; its UDP socket closes with it
            for channel in list(self._channels.values()):
                channel.closed()
            self._channels.clear()

    def _after_input(self) -> None:
        if self._wanting:  # in order, until str0m refuses one
            wanting, self._wanting = self._wanting, {}
            retry_in_order(wanting, self._wanting, NativeDataChannel.flush, attrgetter("backlog"))
        if self._deferred:
            for channel in due_resets(
                self._deferred, self.now(), attrgetter("reset_due"), attrgetter("gone")
            ):
                channel.flush()  # resets it now, unless the peer's reset came
            for channel in self._deferred:
                if channel.reset_due is not None:
                    self._wake_by(channel.reset_due)
        if self._low:
            self._low = {channel for channel in self._low if not channel.check_low()}

    def _dispatch_events(self, events: list[Event]) -> None:
        for event in events:
            kind = event[0]
            if kind == "data":
                channel = self._channels.get(int(event[1]))  # type: ignore[call-overload]
                if channel is not None and channel.readyState != "closed":
                    channel._dispatch_message(event[2])
            elif kind == "open":
                self._opened(int(event[1]), str(event[2]), str(event[3]))  # type: ignore[call-overload]
            elif kind == "close":
                channel = self._channels.pop(int(event[1]), None)  # type: ignore[call-overload]
                if channel is not None:
                    self._deferred.discard(channel)
                    channel.closed()
            elif kind == "connected":
                self._dtls = True
                self._set_state("connected")
            elif kind == "ice":
                self.iceConnectionState = str(event[1])
                if self.iceConnectionState == "disconnected" and self._dtls:
                    self._fail("ICE disconnected (consent expired)")
            elif kind == "closed":
                self._set_state("closed")
            elif kind == "candidate":
                self._candidate(str(event[1]))

    def _opened(self, number: int, label: str, protocol: str) -> None:
        channel = self._channels.get(number)
        if channel is not None:  # ours: the peer acked it
            channel.opened()
            return
        channel = NativeDataChannel(self, label, protocol, number, incoming=True)
        self._channels[number] = channel
        if not self._closing:
            self._dispatch("datachannel", channel=channel)

    def _candidate(self, line: str) -> None:
        description = self.localDescription
        text = candidates_of(description.sdp if description else "", [line])[0]
        self._dispatch("icecandidate", candidate=IceCandidate(line, text))

    def _set_state(self, state: str) -> None:
        if self._closing or self.connectionState in ("failed", "closed"):
            return
        self.connectionState = state
        self._dispatch("connectionstatechange")

    def _fail(self, reason: str) -> None:
        if self._closing or self.connectionState in ("failed", "closed"):
            return
        logger.info("native peer connection failed: %s", reason)
        self.iceConnectionState = "disconnected"
        self._set_state("failed")


class NativeRTCRuntime(BaseRuntime):
    """The asyncio driver's platform over the native core (a real signaling WebSocket).

    Args:
        host: the IP address each peer's UDP socket binds (its host candidate).
        stun: the ``(host, port)`` of each ``stun:`` server (resolved at the first link).
        consent: the consent-freshness policy (RFC 7675) of every peer connection.
        ssl_context: TLS settings for ``wss://`` signaling.
    """

    def __init__(
        self,
        host: str,
        stun: Sequence[tuple[str, int]] = (),
        *,
        consent: ConsentPolicy | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(ssl_context=ssl_context)
        self.host = host
        self.consent = consent or ConsentPolicy()
        self._stun = list(stun)
        self._resolved: list[tuple[str, int]] | None = None if self._stun else []
        self._stun_urls = [f"stun:{host_}:{port}" for host_, port in self._stun]
        self._pcs: weakref.WeakSet[NativePeerConnection] = weakref.WeakSet()

    async def stun_servers(self) -> list[tuple[str, int]]:
        """The STUN servers' ``(ip, port)``, resolved once (names that fail are left out)."""
        if self._resolved is None:
            resolved = await resolve_stun_servers(self._stun, ipv6=":" in self.host)
            if self._resolved is None:
                self._resolved = resolved
        return self._resolved

    def peer_connection(self, configuration: Mapping[str, Any]) -> NativePeerConnection:
        """A new :class:`NativePeerConnection` (the mapping is the driver's view of the servers)."""
        pc = NativePeerConnection(self)
        self._pcs.add(pc)
        return pc

    async def aclose(self) -> None:
        """Close every peer connection still open, and wait for their I/O tasks to end."""
        for pc in list(self._pcs):
            pc.close()
        await super().aclose()

    def ice_servers(self) -> list[dict[str, Any]]:
        """The ``stun:`` servers as W3C dicts."""
        return [{"urls": url} for url in self._stun_urls]

    def candidate_json(self, candidate: Any) -> str:
        """A srflx candidate of ours as a JSON ``RTCIceCandidateInit`` (W3C 4.8.1.1)."""
        return str(candidate.json)


class NativeTransport(AioTransport):
    """Peer connections over the native core: ``webrtc_backend="native"`` under asyncio.

    Raises (when the node opens):
        ImportError: the native extension is not installed.
        ValueError: a ``turn:``, ``turns:`` or ``stuns:`` server (no TURN
            client: use aiortc), or a bad ICE address.
    """

    def runtime(self, settings: RuntimeSettings) -> NativeRTCRuntime:
        """A :class:`NativeRTCRuntime` with the node's settings.

        Raises:
            ImportError: the native extension is not installed.
            ValueError: a TURN server or a bad ICE address.
        """
        configuration: RTCConfiguration | None = settings.rtc_configuration
        stun = stun_urls(configuration)
        host = native_host(settings.ice_addresses)
        from .. import _rtc  # noqa: F401 - ImportError here, not at the first link

        return NativeRTCRuntime(
            host, stun, consent=settings.consent, ssl_context=settings.ssl_context
        )
