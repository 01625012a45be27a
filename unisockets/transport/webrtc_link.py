"""A peer link: the one RTCPeerConnection between this node and one peer.

A :class:`PeerLink` runs as one trio task in the transport's nursery. Its
signaling inputs (our decision to offer, the peer's offer, answer and
candidates) are queued and handled one at a time in order, so a slow step
never races the next one and the signaling reader never waits for aiortc.
Like the ``_aio_*`` methods of :mod:`unisockets.transport.webrtc_pipe`, the
``_aio_*`` methods here run in the asyncio thread of the transport's bridge
and are the only code touching the :class:`aiortc.RTCPeerConnection`.

Negotiation (PROTOCOL.md, "Peer link"): the offerer creates the legacy data
channel ``"channel"`` (kept open, its messages ignored) and sends the offer,
then its candidates as ``candidate`` messages for trickling peers (aiortc puts
them in the SDP too). Incoming candidates wait until the remote description
is set. Glare, both sides offering at once, is settled by node id: the lower
id's offer wins; the other side drops its own peer connection and answers
(aiortc has no rollback). An offer on a link that is already negotiated means
the peer started over (it restarted, or lost its end of the link): the link
fails and a fresh one answers that offer.

Pipes are data channels the link opens once connected (DCEP, in-band), or
that the peer opens (the ``datachannel`` event). A link fails, breaking every
pipe on it with :class:`trio.BrokenResourceError`, when ICE or DTLS fail or
close, when it is not connected within the link timeout, when a signaling
step fails, or when the transport says so (peer left, transport closing).
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from .webrtc_ice import candidate_from_json, local_candidates, remote_ufrags
from .webrtc_pipe import DataChannelPipe

if TYPE_CHECKING:
    from aiortc import RTCIceCandidate

    from .base import SignalSender
    from .bridge import AsyncioBridge

__all__ = ["LEGACY_LABEL", "LinkState", "PeerLink", "offer_wins"]

logger = logging.getLogger(__name__)

#: The label of the peer-level data channel the original unisockets opens (PROTOCOL.md).
LEGACY_LABEL = "channel"
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


def _id_key(node_id: str) -> tuple[int, int, str]:
    """Order node ids: IP addresses numerically, anything else after them as text."""
    try:
        return (0, int(ipaddress.ip_address(node_id)), "")
    except ValueError:
        return (1, 0, node_id)


def offer_wins(local_id: str, peer_id: str) -> bool:
    """Whether our offer beats the peer's when both offer at once (the lower id wins).

    Args:
        local_id: our node id.
        peer_id: the peer's node id.

    Returns:
        True if ``local_id`` orders before ``peer_id``.
    """
    return _id_key(local_id) < _id_key(peer_id)


class PeerLink:
    """The peer connection to one peer, driven from trio (see the module docstring).

    Created and registered by the WebRTC transport; not by users.

    Attributes:
        peer_id: the peer's node id.
        state: a :class:`LinkState`.
        role: ``"offerer"``, ``"answerer"`` or None (nothing negotiated yet).
        failure: why the link failed (a :class:`trio.BrokenResourceError`), or None.
        replaced: whether it failed because a new link to the same peer took over.
        pipes: the open pipes on this link.
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
        self._bridge = bridge
        self._signal = signal
        self._local_id = local_id
        self._configuration = configuration
        self._link_timeout = link_timeout
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
        self._pending: list[tuple[RTCIceCandidate, str | None]] = []
        self._linger = False
        # asyncio side
        self._pc: RTCPeerConnection | None = None
        self._aio_generation = 0
        self._aio_ufrags: set[str] = set()
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
        for pipe in list(self.pipes):
            pipe._break(error)
        self.pipes.clear()
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

    async def open_pipe(self, label: str) -> DataChannelPipe:
        """Create a data channel labelled ``label`` once connected.

        Args:
            label: the pipe's label (checked by the transport).

        Returns:
            The pipe, still opening: the caller waits for the peer's ack.

        Raises:
            trio.BrokenResourceError: the link failed.
        """
        await self.wait_connected()
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
                    await self._drive()
        finally:
            self.fail(trio.BrokenResourceError("the transport closed"))
            with trio.CancelScope(shield=True):
                await self._close_pc()

    async def _watchdog(self) -> None:
        with trio.move_on_after(self._link_timeout):
            await self._connected.wait()
            return
        self.fail(
            trio.BrokenResourceError(f"no link to {self.peer_id} within {self._link_timeout} s")
        )

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
        await self._signal.send_answer(self.peer_id, answer)
        await self._send_candidates(answer)

    async def _take_answer(self, sdp: str) -> None:
        if self._signaling != "have-local-offer":
            logger.info("ignoring an unexpected answer from %s", self.peer_id)
            return
        await self._bridge.run(self._aio_set_answer, self._generation, sdp)
        self._signaling = "stable"
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

    def _on_pc_state(self, generation: int, state: str) -> None:
        if generation != self._generation or self.state is LinkState.FAILED:
            return
        if state == "connected":
            self.state = LinkState.CONNECTED
            self._connected.set()
        elif state in ("failed", "closed"):
            self.fail(trio.BrokenResourceError(f"the peer connection to {self.peer_id} {state}"))

    def _on_incoming_pipe(self, generation: int, pipe: DataChannelPipe) -> None:
        if generation != self._generation or self.state is LinkState.FAILED:
            pipe._close()
            return
        self.pipes.add(pipe)
        self._on_incoming(self, pipe)

    def _forget(self, pipe: DataChannelPipe) -> None:
        self.pipes.discard(pipe)

    # --- asyncio side ----------------------------------------------------------------------

    def _aio_new_pc(self, generation: int) -> RTCPeerConnection:
        pc = RTCPeerConnection(self._configuration)

        def on_state() -> None:
            try:
                self._bridge.to_trio(self._on_pc_state, generation, pc.connectionState)
            except Exception:  # pragma: no cover - to_trio does not raise
                logger.exception("connection state handler failed")

        def on_datachannel(channel: RTCDataChannel) -> None:
            self._aio_on_datachannel(generation, channel)

        pc.on("connectionstatechange", on_state)
        pc.on("datachannel", on_datachannel)
        self._pc = pc
        self._aio_generation = generation
        return pc

    def _aio_current(self, generation: int) -> RTCPeerConnection:
        if self._pc is None or generation != self._aio_generation:
            raise trio.BrokenResourceError("the peer connection was replaced")
        return self._pc

    async def _aio_offer(self, generation: int) -> str:
        pc = self._aio_new_pc(generation)
        self._legacy.append(pc.createDataChannel(LEGACY_LABEL))
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
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    async def _aio_set_answer(self, generation: int, sdp: str) -> None:
        pc = self._aio_current(generation)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        self._aio_ufrags = remote_ufrags(sdp)

    async def _aio_add_candidates(
        self, generation: int, candidates: list[tuple[RTCIceCandidate, str | None]]
    ) -> None:
        pc = self._aio_current(generation)
        for candidate, ufrag in candidates:
            if ufrag and self._aio_ufrags and ufrag not in self._aio_ufrags:
                continue  # for a peer connection that no longer exists (glare)
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
                self._legacy.append(channel)  # keep it open, as the original does
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
