"""The WebRTC transport: message pipes between nodes over aiortc data channels.

:func:`open_webrtc_transport` starts what a node needs to reach its peers over
WebRTC: an asyncio loop thread (:mod:`unisockets.transport.bridge`; its own,
or one its caller owns and shares between transports), one peer
link per peer (:mod:`unisockets.transport.webrtc_link`: one
RTCPeerConnection each; kept by :mod:`unisockets.transport.webrtc_peers`),
and one data channel per pipe
(:mod:`unisockets.transport.webrtc_pipe`). The node feeds it the signaling
events it receives (``handle_greeting``/``offer``/``answer``/``candidate``,
:meth:`~WebRTCTransport.peer_left`) and gives it a
:class:`~unisockets.transport.base.SignalSender` for what it must send.

Links are made when signaling greets a new member (the existing member
offers, as in the original) and on demand when a pipe is opened to a peer
with no link; a failed link is dropped and a new one made on the next demand.
The accepting side matches incoming data channels to
:meth:`~WebRTCTransport.accept_pipe` calls by ``(peer id, label)``; channels
nobody claims within the claim timeout are closed.

A peer may be an original (legacy) unisockets node, which has one data
channel, ``"channel"``, per pair of nodes and no other: each link finds out
(:mod:`unisockets.transport.webrtc_link`), :meth:`~WebRTCTransport.open_pipe`
refuses legacy peers, and :meth:`~WebRTCTransport.legacy_channel` gives the
node that one channel to carry one connection as raw bytes.

See ``docs/transport.md`` for the design, the measurements and the limits.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import trio
from aiortc import RTCConfiguration

from ..protocol.consent import ConsentPolicy
from ..protocol.link_wait import LinkWait, PipeRetry, retry_pipe
from ..protocol.relinks import Relinks
from .base import SignalSender
from .bridge import AsyncioBridge, open_asyncio_bridge
from .rendezvous import TrioRendezvous
from .webrtc_ice import install_aioice_tuning, set_host_addresses
from .webrtc_link import LEGACY_LABEL, LegacyPeerError, LinkState, PeerKind, PeerLink
from .webrtc_peers import WebRTCLinks
from .webrtc_pipe import MAX_MESSAGE_SIZE, DataChannelPipe, ReceiveBudget

__all__ = ["LOOPBACK", "WebRTCTransport", "open_webrtc_transport"]

logger = logging.getLogger(__name__)

#: ``host_addresses`` for peers on one machine: gather only 127.0.0.1 (tests, demos).
LOOPBACK: tuple[str, ...] = ("127.0.0.1",)
#: The longest data channel label, in UTF-8 bytes (DCEP's label length is 16 bits).
MAX_LABEL_BYTES = 65535
#: Pipes from one peer that may wait unaccepted at once; more are closed on arrival.
#: 1,024: a node starved of CPU may see 1,000 connects' data channels before it reads
#: their connect messages (the native backend opens channels that fast); what they
#: queue is bounded together (``webrtc_peers.UNCLAIMED_BYTES_PER_PEER``).
MAX_UNCLAIMED_PER_PEER = 1024


class WebRTCTransport(WebRTCLinks):
    """Message pipes to other nodes over WebRTC data channels (see the module docstring).

    Created by :func:`open_webrtc_transport`; the constructor is internal.

    Attributes:
        max_message_size: the largest message a pipe carries, in bytes.
    """

    max_message_size = MAX_MESSAGE_SIZE

    def __init__(
        self,
        local_id: str,
        signal: SignalSender,
        *,
        bridge: AsyncioBridge,
        nursery: trio.Nursery,
        configuration: RTCConfiguration,
        link_timeout: float,
        claim_timeout: float,
        consent: ConsentPolicy,
        idle_timeout: float | None = None,
    ) -> None:
        self._local_id = local_id
        self._idle_timeout = idle_timeout
        self._signal = signal
        self._bridge = bridge
        self._nursery = nursery
        self._configuration = configuration
        self._link_timeout = link_timeout
        self._consent = consent
        self._links: dict[str, PeerLink] = {}
        self._rendezvous: TrioRendezvous[DataChannelPipe] = TrioRendezvous(
            nursery,
            _close_unclaimed,
            claim_timeout=claim_timeout,
            max_unclaimed_per_peer=MAX_UNCLAIMED_PER_PEER,
        )
        #: peer id -> goodbyes of it seen (PipeRendezvous.peer_left): ids are reused, and a
        #: dead link fails only the accepts that began waiting before the last goodbye.
        self._goodbyes: dict[str, int] = {}
        #: peer id -> what its unaccepted pipes queue together (UNCLAIMED_BYTES_PER_PEER)
        self._unclaimed_budgets: dict[str, ReceiveBudget] = {}
        self._relinks = Relinks()
        self._link_started = trio.lowlevel.ParkingLot()
        self._closed = False

    # --- PeerTransport ---------------------------------------------------------------------

    async def open_pipe(self, peer_id: str, label: str) -> DataChannelPipe:
        """Open a data channel labelled ``label`` to ``peer_id``; wait until the peer acks it.

        Makes the peer link first if there is none (this node offers). If the
        link was up but dies before the pipe opens (it was stale: the peer
        restarted or just closed it), or a new link replaced it while it was
        negotiating (signaling was lost), the pipe is tried once more on a new link.

        Args:
            peer_id: the peer's node id.
            label: the pipe's label, 1..65535 UTF-8 bytes, not ``"channel"``.

        Returns:
            The open pipe.

        Raises:
            ValueError: bad ``peer_id`` or ``label``.
            trio.ClosedResourceError: the transport is closed.
            LegacyPeerError: ``peer_id`` is a legacy node (a
                :class:`trio.BrokenResourceError`; use :meth:`legacy_channel`).
            trio.BrokenResourceError: the link could not be set up (within the link
                timeout) or failed.
            TimeoutError: the peer did not ack the channel within the link timeout.
        """
        self._check_open()
        self._check_peer(peer_id)
        _check_label(label)
        link = self._links.get(peer_id) or self._start_link(peer_id, offer=True)
        stale = link.state is LinkState.CONNECTED
        try:
            return await self._open_on(link, label)
        except LegacyPeerError:
            raise
        except trio.BrokenResourceError as exc:
            # Replaced, or up when we started but dead under us (stale): once more on a new link.
            retry = retry_pipe(link, was_connected=stale, closing=self._closed)
            if retry is PipeRetry.RAISE:
                raise
            if retry is PipeRetry.FAIL_AND_RETRY:
                link.fail(exc)  # a channel cannot fail to open on a live link; this one is dead
        logger.debug("retrying pipe %r to %s on a new link", label, peer_id)
        link = self._links.get(peer_id) or self._start_link(peer_id, offer=True)
        return await self._open_on(link, label)

    async def _open_on(self, link: PeerLink, label: str) -> DataChannelPipe:
        pipe = await link.open_pipe(label)
        try:
            with trio.move_on_after(self._link_timeout) as scope:
                await pipe._wait_open()
        except BaseException:
            pipe._close()
            raise
        if scope.cancelled_caught:
            pipe._close()
            raise TimeoutError(
                f"pipe {label!r} to {link.peer_id} not open after {self._link_timeout} s"
            )
        return pipe

    async def accept_pipe(self, peer_id: str, label: str) -> DataChannelPipe:
        """Return the pipe ``peer_id`` opened, or opens within the link timeout, as ``label``.

        Args:
            peer_id: the peer's node id.
            label: the label the peer opened the pipe with.

        Returns:
            The pipe (open, or already closed by the peer: reading it tells).

        Raises:
            ValueError: bad ``peer_id`` or ``label``.
            trio.ClosedResourceError: the transport is (or got) closed.
            trio.BrokenResourceError: signaling said ``peer_id`` left
                (:meth:`peer_left`) while we waited. A failed link alone does
                not end the wait: the peer may open the pipe on a new link.
            TimeoutError: no such pipe arrived within the link timeout.
        """
        self._check_open()
        self._check_peer(peer_id)
        _check_label(label)
        deadline = trio.current_time() + self._link_timeout
        while True:
            try:
                pipe = await self._rendezvous.claim(
                    peer_id, label, max(0.0, deadline - trio.current_time())
                )
            except TimeoutError:
                raise TimeoutError(
                    f"no pipe {label!r} from {peer_id} within {self._link_timeout} s"
                ) from None
            if pipe.statistics().state != "broken":  # e.g. flooded before anyone accepted it
                pipe.receive_limit = None
                pipe.leave_budget()
                return pipe
            pipe._close()

    async def legacy_channel(self, peer_id: str, *, offer: bool = True) -> DataChannelPipe | None:
        """Return ``peer_id``'s one channel if it is a legacy node, None if it is modern.

        Waits until the link is connected and the peer's kind is known
        (:meth:`PeerLink.wait_kind <unisockets.transport.webrtc_link.PeerLink.wait_kind>`):
        at once on a known link, after up to :data:`~unisockets.transport.webrtc_link.HELLO_GRACE`
        seconds more on a new link to a legacy answerer.

        The pipe returned is shared: it belongs to the link (closing it would
        close the legacy peer's only channel for good) and carries raw bytes
        with no end-of-stream (docs/protocol.md, "Legacy peers"). Messages that
        arrive while nobody reads are queued, at most
        :data:`~unisockets.transport.webrtc_link.LEGACY_RECEIVE_LIMIT` bytes.

        Args:
            peer_id: the peer's node id.
            offer: with no link to ``peer_id``, make one (True: we connect) or
                wait for the peer to offer one (False: it connected to us).

        Returns:
            The legacy channel's pipe, or None for a modern peer.

        Raises:
            ValueError: bad ``peer_id``.
            trio.ClosedResourceError: the transport is (or got) closed.
            trio.BrokenResourceError: the link failed first, and
                :class:`~unisockets.protocol.link_wait.LinkWait` says no next
                link will do (the peer left, or a fresh link of ours failed). A
                link that dies under the wait (a lazy link the peer closed when
                idle) is not the end: the wait goes on to the peer's next link.
            TimeoutError: no link, or no known kind, within the link timeout.
        """
        self._check_open()
        self._check_peer(peer_id)
        wait = LinkWait(offer=offer)
        with trio.move_on_after(self._link_timeout):
            while True:
                found = self._links.get(peer_id)
                if found is None and offer:
                    found = self._start_link(peer_id, offer=True)
                while found is None:
                    await self._link_started.park()
                    self._check_open()
                    found = self._links.get(peer_id)
                link = found
                was_connected = link.state is LinkState.CONNECTED
                try:
                    kind = await link.wait_kind()
                except trio.BrokenResourceError:
                    # A lazy link the peer closed a moment ago dies under us while the
                    # peer connects on its next link: wait there (LinkWait decides).
                    self._check_open()
                    if not wait.go_on(
                        was_connected=was_connected,
                        peer_left=link.peer_gone,
                        replaced=link.replaced,
                    ):
                        raise
                    logger.debug("the link to %s failed under a connection: next link", peer_id)
                    continue
                return link.legacy_pipe if kind is PeerKind.LEGACY else None
        raise TimeoutError(f"no link to {peer_id} (or no kind) within {self._link_timeout} s")

    async def peer_left(self, peer_id: str) -> None:
        """Signaling said ``peer_id`` left: probe its link; if dead, break pipes, fail accepts.

        Goodbye is not death (docs/protocol.md, "Goodbye is not death"): a
        connected link to a modern peer is probed over the data plane first
        (:meth:`PeerLink.peer_left <unisockets.transport.webrtc_link.PeerLink.peer_left>`)
        and stays, pipes and all, if the peer answers: only its signaling
        left. Otherwise (no answer within the probe timeout, a legacy peer,
        no link) its pipes break and the accepts waiting for its pipes fail,
        with the reason ``"<peer> left"``.

        Args:
            peer_id: the node that left.
        """
        self._goodbyes[peer_id] = self._rendezvous.core.peer_left(peer_id)
        link = self._links.get(peer_id)
        if link is None or not link.peer_left():
            self._fail_waiters(peer_id, trio.BrokenResourceError(f"{peer_id} left"))
        await trio.lowlevel.checkpoint()

    # --- internals -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the WebRTC transport is closed")

    def _close(self) -> None:
        """Fail every link and waiter, close unclaimed pipes (the links' tasks close the PCs)."""
        if self._closed:
            return
        self._closed = True
        self._link_started.unpark_all()
        closed = trio.BrokenResourceError("the WebRTC transport closed")
        for link in list(self._links.values()):
            link.fail(closed, linger=True)
        self._rendezvous.fail_waiters(
            None, lambda: trio.ClosedResourceError("the WebRTC transport closed")
        )
        self._rendezvous.drop_queued()


def _close_unclaimed(pipe: DataChannelPipe, reason: str) -> None:
    logger.info("closing pipe %r from %s: %s", pipe.label, pipe.peer_id, reason)
    pipe._close()


def _check_label(label: str) -> None:
    if not isinstance(label, str) or not label:
        raise ValueError(f"a pipe label must be a non-empty string, not {label!r}")
    if label == LEGACY_LABEL:
        raise ValueError(f"{LEGACY_LABEL!r} is the legacy peer channel's label")
    if len(label.encode()) > MAX_LABEL_BYTES:
        raise ValueError(f"a pipe label takes at most {MAX_LABEL_BYTES} UTF-8 bytes")


@asynccontextmanager
async def open_webrtc_transport(
    local_id: str,
    signal: SignalSender,
    *,
    rtc_configuration: RTCConfiguration | None = None,
    link_timeout: float = 15.0,
    claim_timeout: float = 10.0,
    host_addresses: Sequence[str] | None = None,
    consent: ConsentPolicy | None = None,
    bridge: AsyncioBridge | None = None,
    idle_timeout: float | None = None,
) -> AsyncIterator[WebRTCTransport]:
    """Run a WebRTC transport for the node ``local_id`` (see the module docstring).

    Starts its asyncio thread on entry (unless given a ``bridge``). On exit
    (also on error or cancellation) every pipe breaks, every peer connection
    is closed on the asyncio thread, and its own thread is stopped and
    joined: nothing outlives the ``async with``.

    Args:
        local_id: this node's id (from signaling's ``acknowledged``).
        signal: where offers, answers and candidates go.
        rtc_configuration: aiortc's configuration; the default has no ICE
            servers (``iceServers=[]``), so nothing is contacted on the
            internet. Pass STUN/TURN servers here for peers behind NATs.
        link_timeout: seconds a link may take to connect, a pipe to open, and
            :meth:`~WebRTCTransport.accept_pipe` to wait.
        claim_timeout: seconds an incoming pipe waits for ``accept_pipe`` before
            it is closed.
        consent: when ICE consent is checked and when it expires, per peer
            connection (:mod:`unisockets.transport.webrtc_consent`); None for
            RFC 7675's (checks every 4-6 s, expiry 30 s after the last
            response, and not before 3 checks went unanswered).
        idle_timeout: close a link to a modern peer once it carried no pipe
            for this many seconds (lazy links, docs/protocol.md); None: never.
        host_addresses: local IP addresses to gather ICE host candidates on,
            e.g. :data:`LOOPBACK`; None for every non-loopback interface (aioice's
            choice), or 127.0.0.1 on a machine that has none.
        bridge: run aiortc on this bridge (opened and owned by the caller,
            e.g. shared by the nodes of one program, whose ``host_addresses``
            must then agree) instead of a bridge of its own.

    Yields:
        The transport.

    Raises:
        ValueError: a timeout is not a positive number, or a host address is bad.
    """
    for name, value in (("link_timeout", link_timeout), ("claim_timeout", claim_timeout)):
        if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    configuration = rtc_configuration or RTCConfiguration(iceServers=[])
    install_aioice_tuning()
    consent = consent or ConsentPolicy()
    body_error: BaseException | None = None
    async with AsyncExitStack() as stack:
        if bridge is None:
            bridge = await stack.enter_async_context(
                open_asyncio_bridge(name=f"unisockets-asyncio {local_id}")
            )
        set_host_addresses(bridge.loop, host_addresses)
        async with trio.open_nursery() as nursery:
            transport = WebRTCTransport(
                local_id,
                signal,
                bridge=bridge,
                nursery=nursery,
                configuration=configuration,
                link_timeout=link_timeout,
                claim_timeout=claim_timeout,
                consent=consent,
                idle_timeout=idle_timeout,
            )
            try:
                yield transport
            except BaseException as exc:
                body_error = exc  # re-raised below, not wrapped in an ExceptionGroup
            finally:
                transport._close()
                nursery.cancel_scope.cancel()
    if body_error is not None:
        raise body_error
