"""A peer link: the one RTCPeerConnection between this node and one peer.

A :class:`PeerLink` runs as one trio task in the transport's nursery. Its
signaling inputs (our decision to offer, the peer's offer, answer and
candidates) are queued and handled one at a time in order, so a slow step
never races the next one and the signaling reader never waits for aiortc.
Like the ``_aio_*`` methods of :mod:`unisockets.transport.webrtc_pipe`, the
``_aio_*`` methods here run in the asyncio thread of the transport's bridge
and are the only code touching the :class:`aiortc.RTCPeerConnection`.

Negotiation (docs/protocol.md, "Peer link"): the offerer creates the legacy data
channel ``"channel"`` (see below) and sends the offer, then its candidates
as ``candidate`` messages for trickling peers (aiortc puts them in the SDP
too). Incoming candidates wait until the remote description
is set. Glare, both sides offering at once, is settled by node id: the lower
id's offer wins; the other side drops its own peer connection and answers
(aiortc has no rollback). An offer on a link that is already negotiated means
the peer started over (it restarted, or lost its end of the link): the link
fails and a fresh one answers that offer.

Legacy peers (docs/protocol.md, "Legacy peers"): the original unisockets has one
data channel per pair of nodes, ``"channel"``, and no other. Our offerer
creates ``"channel"`` with the DCEP sub-protocol :data:`MODERN_PROTOCOL`
(the original sets none and ignores it). An answerer that receives
``"channel"`` with that sub-protocol knows the offerer is one of ours and
sends :data:`HELLO` on it once; without it, the offerer is an original node.
An offerer whose peer's answer carries
:data:`~unisockets.protocol.peer_link.MODERN_ANSWER_ATTRIBUTE` (our answerers
add it) knows at once that it talks to a modern node; otherwise, an
offerer whose ``"channel"`` opened and brought no hello within
:data:`HELLO_GRACE` seconds (or brought anything else first) talks to an
original node. :attr:`PeerLink.kind` says which; :meth:`PeerLink.wait_kind`
waits for it. On a legacy link ``"channel"`` is the peer's one byte pipe
(:attr:`PeerLink.legacy_pipe`) and no labelled pipe may be opened (an
original answerer takes the last channel that arrives as its channel); on a
modern link nothing but the hello is ever sent on it and what arrives on it
is dropped.

Pipes are data channels the link opens once connected and the peer's kind is
known (DCEP, in-band), or that the peer opens (the ``datachannel`` event).
A link fails, breaking every pipe on it with
:class:`trio.BrokenResourceError`, when ICE or DTLS fail or close, when it is
not connected within the link timeout, when a signaling step fails, or when
the transport says so (peer left, transport closing).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from ..protocol.consent import ConsentPolicy
from ..protocol.peer_link import (
    HELLO,
    HELLO_GRACE,
    LEGACY_LABEL,
    MODERN_PROTOCOL,
    answer_is_modern,
    candidate_types,
    describe_ice_failure,
    mark_answer,
    offer_wins,
)
from .webrtc_consent import take_over_consent
from .webrtc_ice import candidate_from_json, local_candidates, raise_receive_buffers, remote_ufrags
from .webrtc_pipe import DataChannelPipe

if TYPE_CHECKING:
    from aiortc import RTCIceCandidate

    from .base import SignalSender
    from .bridge import AsyncioBridge

__all__ = [
    "HELLO",
    "HELLO_GRACE",
    "LEGACY_LABEL",
    "LEGACY_RECEIVE_LIMIT",
    "MODERN_PROTOCOL",
    "LegacyPeerError",
    "LinkState",
    "PeerKind",
    "PeerLink",
    "offer_wins",
]

logger = logging.getLogger(__name__)

#: Unread bytes a legacy peer may queue on its channel (it has no flow control); more breaks it.
LEGACY_RECEIVE_LIMIT = 16 * 1024 * 1024
#: Signaling inputs a link queues before it declares itself flooded and fails.
MAX_QUEUED_EVENTS = 256
#: Remote candidates kept while waiting for the remote description; more are dropped.
MAX_PENDING_CANDIDATES = 64
#: Seconds closing a peer connection may take before we stop waiting for it.
CLOSE_TIMEOUT = 10.0
#: Seconds a closing transport waits for sent data and stream resets to be acknowledged.
LINGER_TIMEOUT = 2.0


class LinkState(enum.Enum):
    """Where a peer link is in its life."""

    CONNECTING = "connecting"  # negotiating, ICE/DTLS not up yet
    CONNECTED = "connected"  # DTLS up: pipes can be opened
    FAILED = "failed"  # gone for good; a new link replaces it on demand


class PeerKind(enum.Enum):
    """What kind of node is at the other end of a link (see the module docstring)."""

    MODERN = "modern"  # one data channel per connection, framed byte streams
    LEGACY = "legacy"  # the original unisockets: one raw "channel" per pair of nodes


class LegacyPeerError(trio.BrokenResourceError):
    """A labelled pipe was asked of a legacy peer, which has only its ``"channel"``."""


class PeerLink:
    """The peer connection to one peer, driven from trio (see the module docstring).

    Created and registered by the WebRTC transport; not by users.

    Attributes:
        peer_id: the peer's node id.
        state: a :class:`LinkState`.
        role: ``"offerer"``, ``"answerer"`` or None (nothing negotiated yet).
        failure: why the link failed (a :class:`trio.BrokenResourceError`), or None.
        replaced: whether it failed because a new link to the same peer took over.
        pipes: the open labelled pipes on this link.
        kind: the peer's :class:`PeerKind` once known (after the link connected), else None.
        legacy_pipe: the pipe over the ``"channel"`` data channel once it exists
            (on a legacy link: the peer's one byte pipe), else None.
    """

    def __init__(
        self,
        peer_id: str,
        *,
        bridge: AsyncioBridge,
        signal: SignalSender,
        local_id: Callable[[], str],
        configuration: RTCConfiguration,
        link_timeout: float,
        consent: ConsentPolicy,
        on_incoming: Callable[[PeerLink, DataChannelPipe], object],
        on_failed: Callable[[PeerLink, BaseException], object],
        on_restart: Callable[[PeerLink, str], object],
    ) -> None:
        self.peer_id = peer_id
        self.state = LinkState.CONNECTING
        self.role: str | None = None
        self.failure: BaseException | None = None
        self.replaced = False
        self.pipes: set[DataChannelPipe] = set()
        self.kind: PeerKind | None = None
        self.legacy_pipe: DataChannelPipe | None = None
        self._kind_known = trio.Event()
        self._legacy_arrived = trio.Event()
        self._bridge = bridge
        self._signal = signal
        self._local_id = local_id
        self._configuration = configuration
        self._link_timeout = link_timeout
        self._consent = consent
        self._on_incoming = on_incoming
        self._on_failed = on_failed
        self._on_restart = on_restart
        self._events_send, self._events_receive = trio.open_memory_channel[tuple[str, str]](
            MAX_QUEUED_EVENTS
        )
        self._connected = trio.Event()
        self._cancel_scope = trio.CancelScope()
        self._generation = 0  # which peer connection trio is talking to
        self._signaling = "new"  # "new", "have-local-offer" or "stable" (ours, in order)
        self._remote_set = False
        self._answer_modern = False  # the peer's answer carried MODERN_ANSWER_ATTRIBUTE
        self._pending: list[tuple[RTCIceCandidate, str | None]] = []
        self._linger = False
        # asyncio side
        self._pc: RTCPeerConnection | None = None
        self._aio_generation = 0
        self._aio_ufrags: set[str] = set()
        self._aio_remote_types: set[str] = set()  # candidate types the peer sent
        self._legacy: list[RTCDataChannel] = []

    def __repr__(self) -> str:
        return f"<PeerLink {self.peer_id} {self.state.value} {self.role or '-'}>"

    # --- inputs (trio) ---------------------------------------------------------------------

    def post(self, kind: str, payload: str = "") -> None:
        """Queue a signaling input for the link's task; never blocks.

        A link that has more than :data:`MAX_QUEUED_EVENTS` inputs waiting
        fails instead (a flooding peer cannot grow memory). Ignored once failed.

        Args:
            kind: ``"offer-now"`` (we offer), ``"offer"``, ``"answer"`` or ``"candidate"``.
            payload: the SDP or the candidate JSON (empty for ``"offer-now"``).
        """
        if self.state is LinkState.FAILED:
            return
        try:
            self._events_send.send_nowait((kind, payload))
        except trio.WouldBlock:
            self.fail(trio.BrokenResourceError(f"signaling from {self.peer_id} floods the link"))

    def fail(self, error: BaseException, *, replaced: bool = False, linger: bool = False) -> None:
        """Fail the link: break its pipes, stop its task, close its peer connection.

        Idempotent. The peer connection is closed by the link's task as it ends.

        Args:
            error: the :class:`trio.BrokenResourceError` pipes are broken with (as cause).
            replaced: a new link to the same peer takes over (see :attr:`replaced`).
            linger: before closing, wait (at most :data:`LINGER_TIMEOUT` seconds)
                until the peer acknowledged what was sent and the stream resets of
                closed pipes, so it reads them to their end (a graceful shutdown).
        """
        if self.state is LinkState.FAILED:
            return
        self._linger = linger
        logger.debug("link to %s failed: %s", self.peer_id, error)
        self.state = LinkState.FAILED
        self.failure = error
        self.replaced = replaced
        self._connected.set()
        self._kind_known.set()
        self._legacy_arrived.set()
        for pipe in list(self.pipes):
            pipe._break(error)
        self.pipes.clear()
        if self.legacy_pipe is not None:
            self.legacy_pipe._break(error)
        self._cancel_scope.cancel()
        self._on_failed(self, error)

    async def wait_connected(self) -> None:
        """Wait until the link is connected.

        Raises:
            trio.BrokenResourceError: the link failed (or timed out) first.
        """
        await self._connected.wait()
        if self.state is not LinkState.CONNECTED:
            raise trio.BrokenResourceError(f"no link to {self.peer_id}") from self.failure

    async def wait_kind(self) -> PeerKind:
        """Wait until the link is connected and the peer's kind is known.

        Known when the peer's ``"channel"`` arrives (we answered), or when our
        ``"channel"`` brought the hello, other bytes, or nothing within
        :data:`HELLO_GRACE` seconds after it opened (we offered).

        Returns:
            The peer's :class:`PeerKind`.

        Raises:
            trio.BrokenResourceError: the link failed first.
        """
        await self.wait_connected()
        await self._kind_known.wait()
        if self.state is LinkState.FAILED or self.kind is None:
            raise trio.BrokenResourceError(f"no link to {self.peer_id}") from self.failure
        return self.kind

    async def open_pipe(self, label: str) -> DataChannelPipe:
        """Create a data channel labelled ``label`` once connected and the peer is known modern.

        Args:
            label: the pipe's label (checked by the transport).

        Returns:
            The pipe, still opening: the caller waits for the peer's ack.

        Raises:
            LegacyPeerError: the peer is a legacy node (it would take the new
                channel for its one channel).
            trio.BrokenResourceError: the link failed.
        """
        if await self.wait_kind() is PeerKind.LEGACY:
            raise LegacyPeerError(
                f"{self.peer_id} is a legacy unisockets node: it has one channel, no pipes"
            )
        pipe = DataChannelPipe(
            self._bridge,
            self.peer_id,
            label,
            incoming=False,
            on_close=self._forget,
            on_link_lost=self.fail,
        )
        self.pipes.add(pipe)
        self._bridge.call_soon(self._aio_create_channel, self._generation, pipe)
        return pipe

    # --- the link's task (trio) ------------------------------------------------------------

    async def run(self) -> None:
        """Handle the queued signaling inputs until the link fails; then close it.

        Never raises (failures fail the link); the peer connection is closed on
        the asyncio thread before this returns, even when cancelled.
        """
        try:
            with self._cancel_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._watchdog)
                    nursery.start_soon(self._detect_kind)
                    await self._drive()
        finally:
            self.fail(trio.BrokenResourceError("the transport closed"))
            with trio.CancelScope(shield=True):
                await self._close_pc()

    async def _watchdog(self) -> None:
        with trio.move_on_after(self._link_timeout):
            await self._connected.wait()
            return
        detail = ""
        with trio.move_on_after(CLOSE_TIMEOUT):  # the asyncio side answers at once
            detail = ": " + await self._bridge.run(self._aio_link_timeout_detail, self._generation)
        self.fail(
            trio.BrokenResourceError(
                f"no link to {self.peer_id} within {self._link_timeout} s{detail}"
            )
        )

    async def _detect_kind(self) -> None:
        """Tell a legacy peer from a modern one once connected (see the module docstring)."""
        await self._connected.wait()
        if self.state is not LinkState.CONNECTED:
            return
        if self.role == "offerer" and self._answer_modern:
            self._set_kind(PeerKind.MODERN)  # its answer said so: no hello to wait for
            return
        with trio.move_on_after(self._link_timeout):
            await self._legacy_arrived.wait()
        pipe = self.legacy_pipe
        if self.state is not LinkState.CONNECTED or self.kind is not None:
            return
        if pipe is None:
            # The original always opens "channel"; a peer that opens none is not one.
            logger.info("%s opened no %r: taking it for a modern node", self.peer_id, LEGACY_LABEL)
            self._set_kind(PeerKind.MODERN)
            return
        try:
            with trio.fail_after(self._link_timeout):
                await pipe._wait_open()
        except (TimeoutError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            error = trio.BrokenResourceError(
                f"the {LEGACY_LABEL!r} channel to {self.peer_id} did not open"
            )
            error.__cause__ = exc
            self.fail(error)
            return
        with trio.move_on_after(HELLO_GRACE):
            await self._kind_known.wait()
        if self.kind is None and self.state is LinkState.CONNECTED:
            self._set_kind(PeerKind.LEGACY)

    def _set_kind(self, kind: PeerKind) -> None:
        if self.kind is not None or self.state is LinkState.FAILED:
            return
        self.kind = kind
        if kind is PeerKind.LEGACY and self.legacy_pipe is not None:
            self.legacy_pipe.receive_limit = LEGACY_RECEIVE_LIMIT
        logger.info("%s is a %s unisockets node", self.peer_id, kind.value)
        self._kind_known.set()

    def _inspect_legacy(self, data: bytes) -> bool:
        """Look at a message on ``"channel"`` before it is queued; True: drop it."""
        if self.kind is None:
            if data == HELLO:
                self._set_kind(PeerKind.MODERN)
                return True
            self._set_kind(PeerKind.LEGACY)  # an original answerer's first bytes
            return False
        if self.kind is PeerKind.MODERN:
            logger.debug("dropping %d bytes from %s on %r", len(data), self.peer_id, LEGACY_LABEL)
            return True
        return False

    async def _drive(self) -> None:
        try:
            async for kind, payload in self._events_receive:
                if kind == "offer-now":
                    await self._send_offer()
                elif kind == "offer":
                    await self._take_offer(payload)
                elif kind == "answer":
                    await self._take_answer(payload)
                elif kind == "candidate":
                    await self._take_candidate(payload)
        except Exception as exc:
            error = trio.BrokenResourceError(f"link to {self.peer_id} failed: {exc!r}")
            error.__cause__ = exc
            self.fail(error)

    async def _send_offer(self) -> None:
        if self._signaling != "new":
            return  # already offering or answering
        self.role = "offerer"
        self._generation += 1
        sdp = await self._bridge.run(self._aio_offer, self._generation)
        self._signaling = "have-local-offer"
        await self._signal.send_offer(self.peer_id, sdp)
        await self._send_candidates(sdp)

    async def _take_offer(self, sdp: str) -> None:
        if self._signaling == "have-local-offer":
            if offer_wins(self._local_id(), self.peer_id):
                logger.debug("glare with %s: our offer wins", self.peer_id)
                return
            logger.debug("glare with %s: answering theirs", self.peer_id)
            if self.legacy_pipe is not None:  # our offer's "channel" goes with our offer
                self.legacy_pipe = None
                self._legacy_arrived = trio.Event()
        elif self._signaling == "stable":
            self.fail(
                trio.BrokenResourceError(f"{self.peer_id} renegotiated: it restarted the link"),
                replaced=True,
            )
            self._on_restart(self, sdp)
            return
        self.role = "answerer"
        self._generation += 1
        self._remote_set = False
        answer = await self._bridge.run(self._aio_answer, self._generation, sdp)
        self._signaling = "stable"
        await self._remote_description_set()
        await self._signal.send_answer(self.peer_id, mark_answer(answer))
        await self._send_candidates(answer)

    async def _take_answer(self, sdp: str) -> None:
        if self._signaling != "have-local-offer":
            logger.info("ignoring an unexpected answer from %s", self.peer_id)
            return
        await self._bridge.run(self._aio_set_answer, self._generation, sdp)
        self._signaling = "stable"
        self._answer_modern = answer_is_modern(sdp)
        await self._remote_description_set()

    async def _take_candidate(self, text: str) -> None:
        try:
            parsed = candidate_from_json(text)
        except ValueError as exc:
            logger.warning("ignoring a bad candidate from %s: %s", self.peer_id, exc)
            return
        if parsed is None:
            return  # end-of-candidates: nothing to do for aiortc
        if not self._remote_set:
            if len(self._pending) >= MAX_PENDING_CANDIDATES:
                logger.warning("too many early candidates from %s; dropping", self.peer_id)
                return
            self._pending.append(parsed)
            return
        await self._bridge.run(self._aio_add_candidates, self._generation, [parsed])

    async def _remote_description_set(self) -> None:
        self._remote_set = True
        pending, self._pending = self._pending, []
        if pending:
            await self._bridge.run(self._aio_add_candidates, self._generation, pending)

    async def _send_candidates(self, sdp: str) -> None:
        for candidate in local_candidates(sdp):
            await self._signal.send_candidate(self.peer_id, candidate)

    async def _close_pc(self) -> None:
        if self._bridge.closing:
            return
        try:
            with trio.move_on_after(CLOSE_TIMEOUT) as scope:
                await self._bridge.run(self._aio_close, self._linger)
            if scope.cancelled_caught:  # the bridge's shutdown cancels what is left
                logger.error("closing the peer connection to %s timed out", self.peer_id)
        except Exception:
            logger.exception("closing the peer connection to %s failed", self.peer_id)

    # --- events from the asyncio side (trio) -----------------------------------------------

    def _on_pc_state(self, generation: int, state: str, detail: str | None = None) -> None:
        if generation != self._generation or self.state is LinkState.FAILED:
            return
        if state == "connected":
            self.state = LinkState.CONNECTED
            self._connected.set()
        elif state in ("failed", "closed"):
            self.fail(
                trio.BrokenResourceError(detail or f"the peer connection to {self.peer_id} {state}")
            )

    def _on_incoming_pipe(self, generation: int, pipe: DataChannelPipe) -> None:
        if generation != self._generation or self.state is LinkState.FAILED:
            pipe._close()
            return
        self.pipes.add(pipe)
        self._on_incoming(self, pipe)

    def _on_legacy_pipe(
        self, generation: int, pipe: DataChannelPipe, kind: PeerKind | None
    ) -> None:
        if generation != self._generation or self.state is LinkState.FAILED:
            return  # its peer connection is being closed
        if self.legacy_pipe is not None:
            logger.info("%s opened %r again: using the new one", self.peer_id, LEGACY_LABEL)
        self.legacy_pipe = pipe
        self._legacy_arrived.set()
        if kind is not None:
            self._set_kind(kind)

    def _pipe_link_lost(self, generation: int, error: BaseException) -> None:
        if generation == self._generation:
            self.fail(error)

    def _forget(self, pipe: DataChannelPipe) -> None:
        self.pipes.discard(pipe)

    # --- asyncio side ----------------------------------------------------------------------

    def _aio_new_pc(self, generation: int) -> RTCPeerConnection:
        pc = RTCPeerConnection(self._configuration)
        self._aio_remote_types = set()

        def on_state() -> None:
            try:
                state = pc.connectionState
                if state == "connected":
                    self._aio_connected(generation, pc)
                detail = None
                if state == "failed" and pc.iceConnectionState in ("failed", "checking", "new"):
                    detail = self._aio_ice_failure(pc)  # ICE, not DTLS, failed
                self._bridge.to_trio(self._on_pc_state, generation, state, detail)
            except Exception:  # pragma: no cover - neither raises
                logger.exception("connection state handler failed")

        def on_datachannel(channel: RTCDataChannel) -> None:
            self._aio_on_datachannel(generation, channel)

        pc.on("connectionstatechange", on_state)
        pc.on("datachannel", on_datachannel)
        self._pc = pc
        self._aio_generation = generation
        return pc

    def _aio_connected(self, generation: int, pc: RTCPeerConnection) -> None:
        # Our consent checks replace aioice's on this peer connection only
        # (webrtc_consent); an expiry fails the link with its reason.
        def expired(reason: str) -> None:
            error = trio.BrokenResourceError(f"the link to {self.peer_id} died: {reason}")
            self._bridge.to_trio(self._pipe_link_lost, generation, error)

        if not take_over_consent(pc, self._consent, expired):
            logger.warning("aioice internals changed: the link keeps aioice's consent checks")
        raise_receive_buffers(pc)

    def _aio_ice_failure(self, pc: RTCPeerConnection | None) -> str:
        """Describe why ICE did not connect (state, candidates, a hint)."""
        local = pc.localDescription if pc is not None else None
        return describe_ice_failure(
            self.peer_id,
            pc.iceConnectionState if pc is not None else "new",
            candidate_types(local.sdp) if local is not None else set(),
            set(self._aio_remote_types),
            ice_servers=bool(self._configuration.iceServers),
        )

    async def _aio_link_timeout_detail(self, generation: int) -> str:
        pc = self._pc if generation == self._aio_generation else None
        return self._aio_ice_failure(pc)

    def _aio_current(self, generation: int) -> RTCPeerConnection:
        if self._pc is None or generation != self._aio_generation:
            raise trio.BrokenResourceError("the peer connection was replaced")
        return self._pc

    def _aio_legacy_pipe(
        self, generation: int, channel: RTCDataChannel, *, incoming: bool
    ) -> DataChannelPipe:
        pipe = DataChannelPipe(
            self._bridge,
            self.peer_id,
            LEGACY_LABEL,
            incoming=incoming,
            on_link_lost=lambda error: self._pipe_link_lost(generation, error),
        )
        pipe.inspect = self._inspect_legacy
        pipe._aio_attach(channel)
        self._legacy.append(channel)
        return pipe

    async def _aio_offer(self, generation: int) -> str:
        pc = self._aio_new_pc(generation)
        channel = pc.createDataChannel(LEGACY_LABEL, protocol=MODERN_PROTOCOL)
        pipe = self._aio_legacy_pipe(generation, channel, incoming=False)
        self._bridge.to_trio(self._on_legacy_pipe, generation, pipe, None)
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)

    async def _aio_answer(self, generation: int, sdp: str) -> str:
        old, self._pc = self._pc, None
        if old is not None:  # glare: ours lost; aiortc cannot roll back, so start over
            self._legacy.clear()
            await old.close()
        pc = self._aio_new_pc(generation)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        self._aio_ufrags = remote_ufrags(sdp)
        self._aio_remote_types |= candidate_types(sdp)
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    async def _aio_set_answer(self, generation: int, sdp: str) -> None:
        pc = self._aio_current(generation)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        self._aio_ufrags = remote_ufrags(sdp)
        self._aio_remote_types |= candidate_types(sdp)

    async def _aio_add_candidates(
        self, generation: int, candidates: list[tuple[RTCIceCandidate, str | None]]
    ) -> None:
        pc = self._aio_current(generation)
        for candidate, ufrag in candidates:
            if ufrag and self._aio_ufrags and ufrag not in self._aio_ufrags:
                continue  # for a peer connection that no longer exists (glare)
            self._aio_remote_types.add(candidate.type)
            await pc.addIceCandidate(candidate)

    def _aio_create_channel(self, generation: int, pipe: DataChannelPipe) -> None:
        try:
            pc = self._aio_current(generation)
            pipe._aio_attach(pc.createDataChannel(pipe.label, ordered=True))
        except Exception as exc:
            self._bridge.to_trio(pipe._break, exc)

    def _aio_on_datachannel(self, generation: int, channel: RTCDataChannel) -> None:
        try:
            if channel.label == LEGACY_LABEL:
                modern = channel.protocol == MODERN_PROTOCOL
                if modern:
                    channel.send(HELLO)  # open already: aiortc emits it after the DCEP ACK
                pipe = self._aio_legacy_pipe(generation, channel, incoming=True)
                kind = PeerKind.MODERN if modern else PeerKind.LEGACY
                self._bridge.to_trio(self._on_legacy_pipe, generation, pipe, kind)
                return
            pipe = DataChannelPipe(
                self._bridge,
                self.peer_id,
                channel.label,
                incoming=True,
                on_close=self._forget,
                on_link_lost=self.fail,
            )
            pipe._aio_attach(channel)
            self._bridge.to_trio(self._on_incoming_pipe, generation, pipe)
        except Exception:
            logger.exception("datachannel handler failed")
            try:
                channel.close()
            except Exception:
                logger.exception("could not close a data channel")

    async def _aio_close(self, linger: bool) -> None:
        pc, self._pc = self._pc, None
        self._legacy.clear()
        if pc is None:
            return
        if linger and pc.sctp is not None and pc.sctp.state == "connected":
            loop = asyncio.get_running_loop()
            deadline = loop.time() + LINGER_TIMEOUT
            while not _sctp_settled(pc.sctp) and loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.005)  # aiortc has no event for "all acknowledged"
        await pc.close()


def _sctp_settled(sctp: Any) -> bool:
    """Whether an aiortc SCTP transport has nothing left in flight.

    Nothing queued or unacknowledged, no stream reset pending, and no channel
    half-way through its reset (the peer still has to reset its direction,
    which is how it learns the pipe ended cleanly). Reads aiortc internals;
    if they change, this says True and closing simply does not linger.
    """
    for name in ("_data_channel_queue", "_outbound_queue", "_sent_queue", "_reconfig_queue"):
        if getattr(sctp, name, None):
            return False
    if getattr(sctp, "_reconfig_request", None) is not None:
        return False
    channels = getattr(sctp, "_data_channels", {})
    return not any(channel.readyState == "closing" for channel in channels.values())
