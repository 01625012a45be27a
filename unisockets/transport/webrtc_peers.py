"""The peer links of the WebRTC transport: one per peer, made and replaced as signaling says.

:class:`WebRTCLinks` is the half of
:class:`~unisockets.transport.webrtc.WebRTCTransport` that keeps its links
(:class:`~unisockets.transport.webrtc_link.PeerLink`, or a native backend's):
it starts one when signaling greets a member or a peer offers, hands them the
signaling inputs (offer, answer, candidate), replaces a link whose peer
restarted, and queues the pipes a link brings in for
:meth:`~unisockets.transport.webrtc.WebRTCTransport.accept_pipe`. See
:mod:`unisockets.transport.webrtc` for the whole.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable, Mapping
from typing import TypedDict

import trio
from aiortc import RTCConfiguration

from ..protocol.consent import ConsentPolicy
from ..protocol.relinks import Relinks
from .base import PeerTransport, SignalSender
from .bridge import AsyncioBridge
from .rendezvous import TrioRendezvous
from .webrtc_link import PeerLink
from .webrtc_pipe import DataChannelPipe, ReceiveBudget

__all__ = ["UNCLAIMED_BYTES_PER_PEER", "UNCLAIMED_RECEIVE_LIMIT", "WebRTCLinks"]

logger = logging.getLogger("unisockets.transport.webrtc")

#: Bytes an unaccepted pipe may queue (a stream window is 256 KiB); more breaks it.
UNCLAIMED_RECEIVE_LIMIT = 1024 * 1024
#: Bytes the unaccepted pipes of one peer may queue together; the pipe that goes
#: over breaks. 256 MiB: a flood costs what 256 pipes at their own limit cost, while
#: 1,000 connects at once whose first window (256 KiB each) is queued still fit.
UNCLAIMED_BYTES_PER_PEER = 256 * 1024 * 1024


class _LinkOptions(TypedDict):
    """The keyword arguments a transport gives each of its links, whatever the backend."""

    signal: SignalSender
    local_id: Callable[[], str]
    link_timeout: float
    consent: ConsentPolicy
    on_incoming: Callable[[PeerLink, DataChannelPipe], object]
    on_failed: Callable[[PeerLink, BaseException], object]
    on_restart: Callable[[PeerLink, str, tuple[str, ...]], object]
    idle_timeout: float | None


class WebRTCLinks(PeerTransport):
    """The links half of :class:`~unisockets.transport.webrtc.WebRTCTransport` (internal).

    The transport's constructor sets every attribute declared here.
    """

    _local_id: str
    _idle_timeout: float | None
    _signal: SignalSender
    _bridge: AsyncioBridge
    _nursery: trio.Nursery
    _configuration: RTCConfiguration
    _link_timeout: float
    _consent: ConsentPolicy
    _links: dict[str, PeerLink]
    _rendezvous: TrioRendezvous[DataChannelPipe]
    _goodbyes: dict[str, int]
    _unclaimed_budgets: dict[str, ReceiveBudget]
    _relinks: Relinks
    _link_started: trio.lowlevel.ParkingLot
    _closed: bool

    # --- identity and diagnostics ----------------------------------------------------------

    @property
    def local_id(self) -> str:
        """This node's id. Setting a new one (signaling rejoined) fails every link."""
        return self._local_id

    @local_id.setter
    def local_id(self, value: str) -> None:
        if value == self._local_id:
            return
        self._local_id = value
        for link in list(self._links.values()):
            link.fail(trio.BrokenResourceError("our node id changed"))

    @property
    def links(self) -> Mapping[str, PeerLink]:
        """The live peer links by peer id (read-only view, for tests and diagnostics)."""
        return types.MappingProxyType(self._links)

    # --- signaling inputs ------------------------------------------------------------------

    async def handle_greeting(self, peer_id: str) -> None:
        """Signaling greeted a new member ``peer_id``: offer it a link (docs/protocol.md, "Join").

        Returns at once; the offer is made by the link's task. A live link
        to the same id is kept: the server greets again when a member rejoins
        with its id (after a restart of the server or a lost signaling
        connection) while the peer connection itself never stopped. A
        connected link whose peer connection is not connected any more is
        replaced, and so is a link still connecting: its offer, answer or
        candidates may have been lost with the peer's old session
        (:meth:`PeerLink.greeted <unisockets.transport.webrtc_link.PeerLink.greeted>`).
        If a new node took the id instead, that node has no link and offers
        one when it needs it, which replaces ours (a new offer on a stable
        link); a dead peer's link fails its ICE consent checks within seconds.

        Args:
            peer_id: the new member's id.

        Raises:
            ValueError: ``peer_id`` is not a usable peer id.
        """
        await trio.lowlevel.checkpoint()
        if self._closed:
            return
        self._check_peer(peer_id)
        link = self._links.get(peer_id)
        if link is not None and link.greeted():
            logger.info("%s greeted again: keeping the link we have", peer_id)
            return
        self._start_link(peer_id, offer=True)

    def signaling_lost(self) -> None:
        """Our signaling session ended: links still connecting fail, as ``replaced``.

        Their offer, answer or candidates may have been lost with the session
        (a killed server instance), and what they would send now would go to
        the next session, to a peer that started over. Their peers get a
        fresh offer when our session is back (:meth:`signaling_back`), or
        offer one when signaling greets them about us again; a pipe waiting
        on one of them is tried again on a new link (:meth:`open_pipe`).
        Connected links stay.
        """
        for link in list(self._links.values()):
            self._relinks.lost(link.peer_id, link.signaling_lost())

    def signaling_back(self) -> None:
        """Our signaling session is back: offer each peer :meth:`signaling_lost` cut a fresh link.

        The peer's side of such a link may have been connected already, and
        it keeps a connected link when greeted again; our offer replaces it
        there (:mod:`unisockets.protocol.relinks`). Peers we have a link to
        again by now are left alone.
        """
        if self._closed:
            return
        for peer_id in self._relinks.back(self._links):
            logger.debug("offering %s a fresh link: ours was cut with our signaling", peer_id)
            self._start_link(peer_id, offer=True)

    async def handle_offer(self, peer_id: str, sdp: str) -> None:
        """Take ``peer_id``'s SDP offer; the link answers it (or wins the glare).

        Returns at once. A bad SDP fails that link only.

        Args:
            peer_id: the offerer.
            sdp: its session description.

        Raises:
            ValueError: ``peer_id`` is not a usable peer id.
        """
        await trio.lowlevel.checkpoint()
        if self._closed:
            return
        self._check_peer(peer_id)
        link = self._links.get(peer_id) or self._start_link(peer_id, offer=False)
        link.post("offer", sdp)

    async def handle_answer(self, peer_id: str, sdp: str) -> None:
        """Take ``peer_id``'s SDP answer to our offer (ignored if we made none).

        Args:
            peer_id: the answerer.
            sdp: its session description.
        """
        await trio.lowlevel.checkpoint()
        link = self._links.get(peer_id)
        if link is None or self._closed:
            logger.info("ignoring an answer from %s: no link", peer_id)
            return
        link.post("answer", sdp)

    async def handle_candidate(self, peer_id: str, candidate: str) -> None:
        """Take one of ``peer_id``'s ICE candidates (a JSON ``RTCIceCandidateInit`` string).

        Candidates are added once the remote description is set; bad ones are
        logged and ignored; candidates for a peer with no link are dropped.

        Args:
            peer_id: the peer the candidate describes.
            candidate: the JSON string from the ``candidate`` message.
        """
        await trio.lowlevel.checkpoint()
        link = self._links.get(peer_id)
        if link is None or self._closed:
            logger.debug("dropping a candidate from %s: no link", peer_id)
            return
        link.post("candidate", candidate)

    # --- internals -------------------------------------------------------------------------

    def _check_peer(self, peer_id: str) -> None:
        if not isinstance(peer_id, str) or not peer_id:
            raise ValueError(f"bad peer id {peer_id!r}")
        if peer_id == self._local_id:
            raise ValueError(f"{peer_id} is this node; pipes to self need no WebRTC")

    def _start_link(self, peer_id: str, *, offer: bool) -> PeerLink:
        link = self._new_link(peer_id)
        self._links[peer_id] = link
        self._link_started.unpark_all()
        self._nursery.start_soon(link.run, name=f"webrtc link to {peer_id}")
        if offer:
            link.post("offer-now")
        return link

    def _new_link(self, peer_id: str) -> PeerLink:
        """Make (not start) the link to ``peer_id``; the native backend overrides it."""
        return PeerLink(
            peer_id,
            bridge=self._bridge,
            configuration=self._configuration,
            **self._link_options(),
        )

    def _link_options(self) -> _LinkOptions:
        """What every backend's link gets from its transport (callbacks, timeouts, policy)."""
        return _LinkOptions(
            signal=self._signal,
            local_id=lambda: self._local_id,
            link_timeout=self._link_timeout,
            consent=self._consent,
            on_incoming=self._incoming_pipe,
            on_failed=self._link_failed,
            on_restart=self._link_restarted,
            idle_timeout=self._idle_timeout,
        )

    def _link_failed(self, link: PeerLink, error: BaseException) -> None:
        # Accept waiters stay (the peer may open their pipes on its next link), unless
        # signaling said the peer left and the link found it gone: then those that began
        # waiting before that goodbye fail (a later one is for a new node with the id).
        if self._links.get(link.peer_id) is link:
            del self._links[link.peer_id]
            if link.peer_gone and not link.replaced:
                self._fail_waiters(link.peer_id, error, before=self._goodbyes.get(link.peer_id))
        # Only this link's unclaimed pipes: a newer link to the id (a restart, or a new
        # node that took the id of one that left) keeps its own for their callers.
        newer = self._links.get(link.peer_id)
        self._rendezvous.drop_queued(
            link.peer_id, which=lambda pipe: newer is None or pipe not in newer.pipes
        )

    def _link_restarted(self, link: PeerLink, sdp: str, candidates: tuple[str, ...]) -> None:
        # The peer's offer and the candidates queued behind it on the failed link.
        if self._closed:
            return
        logger.debug(
            "answering %s's offer on a fresh link (%d candidates carried over)",
            link.peer_id,
            len(candidates),
        )
        fresh = self._start_link(link.peer_id, offer=False)
        fresh.post("offer", sdp)
        for candidate in candidates:
            fresh.post("candidate", candidate)

    def _fail_waiters(
        self, peer_id: str, error: BaseException, *, before: int | None = None
    ) -> None:
        def failure() -> BaseException:
            failed = trio.BrokenResourceError(f"link to {peer_id} failed")
            failed.__cause__ = error
            return failed

        self._rendezvous.fail_waiters(peer_id, failure, before=before)

    def _incoming_pipe(self, link: PeerLink, pipe: DataChannelPipe) -> None:
        if self._closed:
            pipe._close()
            return
        if self._take_datagram_pipe(pipe):
            return
        pipe.receive_limit = UNCLAIMED_RECEIVE_LIMIT  # lifted when accepted
        budget = self._unclaimed_budgets.get(link.peer_id)
        if budget is None:
            budget = ReceiveBudget(UNCLAIMED_BYTES_PER_PEER)
            self._unclaimed_budgets[link.peer_id] = budget
        pipe.receive_budget = budget  # left when accepted or closed
        self._rendezvous.arrive(link.peer_id, pipe.label, pipe)
