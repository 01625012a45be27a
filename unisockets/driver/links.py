"""The peer links of one node in the asyncio driver, and the pipes waiting to be claimed.

One :class:`~unisockets.driver.peer_link.PeerLink` per peer (its negotiation
and ``RTCPeerConnection``: :mod:`unisockets.driver.peer_link`); this module
keeps the set of them, routes signaling's ``greeting``, ``offer``,
``answer``, ``candidate`` and leaves to them, and hands pipes to their
callers:

- *Pipes*: each connection is its own data channel, labelled
  ``"<client alias>><bound alias>"``, opened in-band (DCEP) by the connecting
  side once the link is connected; the accepting side matches channels to
  :meth:`PeerLinks.accept_pipe` calls by ``(peer id, label)`` (one
  :class:`unisockets.protocol.rendezvous.PipeRendezvous`, the native
  transports' rule) and closes those nobody claims within the claim timeout.

*Signaling comes back*: peer links do not go through the server, so they
outlive a lost signaling session; a ``greeting`` for a peer whose link is
live keeps it. A peer that left while we were away is noticed by the link
failing. When our signaling session ends, a link that is still negotiating
fails as replaced (:meth:`PeerLinks.signaling_lost`): what it sent may be
lost with the session. A pipe whose link was replaced, or was connected and
died under it (stale: the peer restarted, or a new node took its id), is
tried once more on a new link (:meth:`PeerLinks.open_pipe`), as in the
native transport.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from ..protocol.datagram import DATAGRAM_LABEL
from ..protocol.link_wait import LinkWait, PipeRetry, retry_pipe
from ..protocol.negotiation import LinkState
from ..protocol.negotiation_events import PeerKind
from ..protocol.peer_link import LEGACY_LABEL, MODERN_PROTOCOL, offer_wins
from ..protocol.relinks import Relinks
from ..protocol.rendezvous import Arrival, ArrivalKind, PipeRendezvous, Waiter
from .errors import BrokenResourceError, ClosedResourceError
from .peer_link import HELLO, PeerLink, Spawn
from .pipes import Pipe
from .runtime import Runtime, logger, settle
from .signaling import DriverSignaling

__all__ = [
    "HELLO",
    "LEGACY_LABEL",
    "MODERN_PROTOCOL",
    "LinkState",
    "PeerKind",
    "PeerLink",
    "PeerLinks",
    "offer_wins",
]


class PeerLinks:
    """Every peer link of one node, and the pipes waiting to be claimed.

    Args:
        signaling: the node's signaling session (offers, answers, candidates go out there).
        spawn: starts a task in the node's task group.
        rtc_configuration: the ``RTCConfiguration`` as a dict; ``iceServers``
            defaults to ``[]`` (loopback and LAN only, no STUN).
        link_timeout: seconds a link may take to connect, and a pipe to open.
        claim_timeout: seconds an incoming pipe waits for its ``accept_pipe``.
        runtime: the platform that makes the peer connections.
        idle_timeout: lazy links: seconds after which a link to a modern peer
            that carries no connection closes (:mod:`unisockets.driver.idle`);
            None keeps links until they fail.
    """

    def __init__(
        self,
        signaling: DriverSignaling,
        spawn: Spawn,
        *,
        rtc_configuration: Mapping[str, Any] | None = None,
        link_timeout: float = 20.0,
        claim_timeout: float = 20.0,
        runtime: Runtime,
        idle_timeout: float | None = None,
    ) -> None:
        self.signaling = signaling
        self.runtime = runtime
        self.rtc_configuration = {"iceServers": [], **(rtc_configuration or {})}
        self.link_timeout = link_timeout
        self.claim_timeout = claim_timeout
        self.idle_timeout = idle_timeout
        self._spawn = spawn
        self._links: dict[str, PeerLink] = {}
        self._rendezvous: PipeRendezvous[Pipe] = PipeRendezvous(claim_timeout=claim_timeout)
        #: link -> the goodbye (PipeRendezvous.peer_left's count) it was told of: ids are
        #: reused, and its failure fails only the waits that began before that goodbye.
        self._goodbyes: dict[PeerLink, int] = {}
        self._relinks = Relinks()  # peers whose links lost signaling cut: offered when back
        self._reaper: asyncio.TimerHandle | None = None
        self._closed = False
        #: Where incoming ``unisockets/datagram`` pipes go (the node's datagram layer).
        self.datagram_sink: Callable[[Pipe], object] | None = None
        self._link_started = asyncio.Event()  # set (and replaced) when a link starts

    @property
    def links(self) -> Mapping[str, PeerLink]:
        """The live links by peer id (read-only view, for status displays and tests)."""
        return MappingProxyType(self._links)

    def local_id(self) -> str:
        """This node's id."""
        return self.signaling.id

    # --- signaling inputs --------------------------------------------------------------------

    def handle_greeting(self, peer_id: str) -> None:
        """A new member joined: offer it a link.

        A link to that id whose peer connection is still connected is kept:
        the peer rejoined a restarted server, it did not leave (we would
        have had its ``goodbye``). A connected link whose peer connection is
        not is stale (that node left and a new one took its id) and is replaced.
        """
        if self._closed:
            return
        link = self._links.get(peer_id)
        if link is None or not link.greeted():
            self._start(peer_id).post("offer-now")

    def handle_offer(self, peer_id: str, sdp: str) -> None:
        """Take ``peer_id``'s offer (answer it, or win the glare)."""
        if not self._closed:
            (self._links.get(peer_id) or self._start(peer_id)).post("offer", sdp)

    def handle_answer(self, peer_id: str, sdp: str) -> None:
        """Take ``peer_id``'s answer to our offer (ignored without a link)."""
        link = self._links.get(peer_id)
        if link is not None and not self._closed:
            link.post("answer", sdp)

    def handle_candidate(self, peer_id: str, candidate: str) -> None:
        """Take one of ``peer_id``'s candidates (dropped without a link)."""
        link = self._links.get(peer_id)
        if link is not None and not self._closed:
            link.post("candidate", candidate)

    def peer_left(self, peer_id: str) -> None:
        """``peer_id`` left: probe its link (it may stay), or fail it and its waiters."""
        goodbye = self._rendezvous.peer_left(peer_id)
        link = self._links.get(peer_id)
        if link is not None:
            self._goodbyes[link] = goodbye
            link.peer_gone = True
            link.peer_left()  # a modern peer is probed first: goodbye is not death
        else:
            self._fail_waiters(peer_id, BrokenResourceError(f"{peer_id} left"))

    def signaling_lost(self) -> None:
        """Our signaling session ended: links still negotiating fail, as replaced.

        Their offer, answer or candidates may have been lost with the session
        (a killed server instance: docs/signaling-server.md), and what they
        would send now would go to a peer that started over
        (:class:`unisockets.protocol.negotiation_events.SignalingLost`).
        Connected links stay; a pipe waiting on a failed one is tried again
        on a new link (:meth:`open_pipe`). Their peers get a fresh offer when
        our session is back (:meth:`signaling_back`).
        """
        for link in list(self._links.values()):
            self._relinks.lost(link.peer_id, link.signaling_lost())

    def signaling_back(self) -> None:
        """Our session is back: each peer :meth:`signaling_lost` cut gets a fresh offer.

        Its side of the link may be connected, and kept when it is greeted
        about us; our offer replaces it (:mod:`unisockets.protocol.relinks`).
        """
        if self._closed:
            return
        for peer_id in self._relinks.back(self._links):
            logger.debug("offering %s a fresh link: ours was cut with our signaling", peer_id)
            self._start(peer_id).post("offer-now")

    # --- pipes -------------------------------------------------------------------------------

    async def open_pipe(self, peer_id: str, label: str) -> Pipe:
        """Open a pipe labelled ``label`` to ``peer_id`` (making the link if needed).

        If the link was connected but dies before the pipe opens (it was
        stale: the peer restarted, or a new node took its id and the probe of
        the old link fails, which a pipe on a probed link waits for:
        docs/protocol.md, "Goodbye is not death"), or it
        was replaced while negotiating (signaling was lost), the pipe is
        tried once more on a new link, as the native transport does.

        Raises:
            ClosedResourceError: the node is closing.
            BrokenResourceError: the link failed or could not be made (twice,
                for a stale or replaced link), or the peer is a legacy node.
            TimeoutError: the peer did not acknowledge the channel in time.
        """
        self._check_open()
        link = self._link_to(peer_id)
        stale = link.state is LinkState.CONNECTED
        try:
            return await self._open_on(link, label)
        except BrokenResourceError as exc:
            if not self._retry(link, stale, exc):
                raise
        logger.debug("retrying pipe %r to %s on a new link", label, peer_id)
        return await self._open_on(self._link_to(peer_id), label)

    def _link_to(self, peer_id: str) -> PeerLink:
        """The live link to ``peer_id``, or a new one that offers."""
        link = self._links.get(peer_id)
        if link is None:
            link = self._start(peer_id)
            link.post("offer-now")
        return link

    def _retry(self, link: PeerLink, stale: bool, error: BaseException) -> bool:
        """Whether a pipe that failed on ``link`` with ``error`` is tried on a new link.

        Yes if the link was replaced, or was connected when the pipe began
        (stale); not on a live legacy link (it has no pipes) or a closing node.
        A stale link still up is failed: a channel cannot fail to open on a live link
        (:func:`unisockets.protocol.link_wait.retry_pipe` decides).
        """
        retry = retry_pipe(link, was_connected=stale, closing=self._closed)
        if retry is PipeRetry.FAIL_AND_RETRY:
            link.fail(error)
        return retry is not PipeRetry.RAISE

    async def _open_on(self, link: PeerLink, label: str) -> Pipe:
        pipe = await link.open_pipe(label)
        try:
            async with asyncio.timeout(self.link_timeout):
                await pipe.wait_open()
        except BaseException:
            pipe.close()
            raise
        return pipe

    async def legacy_pipe(self, peer_id: str, *, offer: bool) -> Pipe | None:
        """Return ``peer_id``'s one channel if it is a legacy node, None if it is modern.

        The pipe belongs to the link (it is the legacy node's only channel
        to us): a connection over it must not close it
        (:class:`unisockets.driver.legacy.LegacyStream` does not).

        Args:
            peer_id: the peer.
            offer: with no link, make one (we connect) or wait for the
                peer's offer (it connected to us). A link replaced while we
                wait on it (signaling was lost, or the peer restarted it) is
                followed to the next link
                (:class:`~unisockets.protocol.link_wait.LinkWait`).

        Raises:
            ClosedResourceError: the node is closing.
            BrokenResourceError: the link failed, and
                :class:`~unisockets.protocol.link_wait.LinkWait` says no next link
                will do (the peer left, or a fresh link of ours failed). A link
                that dies under the wait (a lazy link the peer closed when idle)
                is not the end: the wait goes on to the peer's next link.
            TimeoutError: no link, or no known kind, within the link timeout.
        """
        self._check_open()
        wait = LinkWait(offer=offer)
        async with asyncio.timeout(self.link_timeout):
            while True:
                link = self._links.get(peer_id)
                if link is None and offer:
                    link = self._start(peer_id)
                    link.post("offer-now")
                while link is None:
                    await self._link_started.wait()
                    self._check_open()
                    link = self._links.get(peer_id)
                was_connected = link.state is LinkState.CONNECTED
                try:
                    return await link.legacy_pipe()
                except BrokenResourceError:
                    # A lazy link the peer closed a moment ago dies under us while the
                    # peer connects on its next link: wait there (LinkWait decides).
                    self._check_open()
                    if link.failure is None or not wait.go_on(
                        was_connected=was_connected,
                        peer_left=link.peer_gone,
                        replaced=link.replaced,
                    ):
                        raise

    async def accept_pipe(self, peer_id: str, label: str) -> Pipe:
        """Return the pipe ``peer_id`` opened (or opens) as ``label``.

        Raises:
            ClosedResourceError: the node is closing.
            BrokenResourceError: signaling said ``peer_id`` left and its link
                then failed. A failed link alone does not end the wait (as
                :mod:`unisockets.protocol.rendezvous` says): the peer may open the
                pipe on its next link (a lazy link closed when idle under the
                accept, :mod:`unisockets.protocol.link_wait`).
        """
        self._check_open()
        loop = asyncio.get_running_loop()
        got = self._rendezvous.claim(peer_id, label, loop.create_future())
        if not isinstance(got, Waiter):
            return got
        future: asyncio.Future[Pipe] = got.handle  # type: ignore[assignment]
        try:
            return await future
        except BaseException:
            # Cancelled after the pipe was handed over: the next accept gets it.
            pipe = got.pipe if future.done() and not future.cancelled() else None
            arrival = self._rendezvous.withdraw(got, loop.time())
            if arrival is not None and pipe is not None:
                self._settle(arrival, pipe)
            raise

    def deliver(self, pipe: Pipe) -> None:
        """Hand an incoming pipe to its ``accept_pipe`` (also used for loopback pipes)."""
        self._incoming(pipe)

    def close(self) -> None:
        """Fail every link and waiter, close unclaimed pipes (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for link in list(self._links.values()):
            link.fail(BrokenResourceError("the node closed"))
        for waiter in self._rendezvous.fail_waiters(
            None, lambda: ClosedResourceError("the node closed")
        ):
            settle(waiter.handle, error=waiter.error)  # type: ignore[arg-type]
        for pipe in self._rendezvous.drop_queued():
            pipe.close()
        if self._reaper is not None:
            self._reaper.cancel()
        self._link_started.set()  # waiters see the node closed

    # --- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedResourceError("the node is closed")

    def _start(self, peer_id: str) -> PeerLink:
        link = PeerLink(peer_id, self)
        self._links[peer_id] = link
        link.start(self._spawn)
        started, self._link_started = self._link_started, asyncio.Event()
        started.set()
        return link

    def _link_failed(self, link: PeerLink, error: BaseException, replaced: bool) -> None:
        if self._links.get(link.peer_id) is link:
            del self._links[link.peer_id]
        newer = self._links.get(link.peer_id)  # a restart's, or a new node's with a reused id
        for pipe in self._rendezvous.drop_queued(
            link.peer_id, which=lambda pipe: newer is None or pipe not in newer.pipes
        ):
            pipe.close()
        goodbye = self._goodbyes.pop(link, None)
        # A failed link alone ends no wait (protocol.rendezvous, protocol.link_wait): the peer
        # may open the pipe on its next link (a lazy link closed when idle under an accept).
        # A goodbye does, for the waits that began before it (a later one is a new node's).
        if not replaced and goodbye is not None:
            self._fail_waiters(link.peer_id, error, before=goodbye)

    def _fail_waiters(
        self, peer_id: str, error: BaseException, *, before: int | None = None
    ) -> None:
        def failure() -> BaseException:
            failed = BrokenResourceError(f"link to {peer_id} failed")
            failed.__cause__ = error
            return failed

        for waiter in self._rendezvous.fail_waiters(peer_id, failure, before=before):
            settle(waiter.handle, error=waiter.error)  # type: ignore[arg-type]

    def _incoming(self, pipe: Pipe) -> None:
        if pipe.label == DATAGRAM_LABEL and self.datagram_sink is not None:
            self.datagram_sink(pipe)  # the node's datagram layer (.datagrams)
            return
        now = asyncio.get_running_loop().time()
        self._settle(self._rendezvous.arrive(pipe.peer_id, pipe.label, pipe, now), pipe)

    def _settle(self, arrival: Arrival[Pipe], pipe: Pipe) -> None:
        """Carry out what the rendezvous decided for an arriving (or returned) pipe."""
        if arrival.kind is ArrivalKind.HANDED:
            assert arrival.waiter is not None
            settle(arrival.waiter.handle, pipe)  # type: ignore[arg-type]
        elif arrival.kind is ArrivalKind.QUEUED:
            self._arm_reaper()
        else:
            pipe.close()

    def _arm_reaper(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        deadline = self._rendezvous.next_expiry()
        if deadline != math.inf and not self._closed:
            self._reaper = asyncio.get_running_loop().call_at(deadline, self._reap)

    def _reap(self) -> None:
        self._reaper = None
        for pipe in self._rendezvous.expire(asyncio.get_running_loop().time()):
            logger.info("closing pipe %r from %s: nobody claimed it", pipe.label, pipe.peer_id)
            pipe.close()
        self._arm_reaper()
