"""A peer link over the native WebRTC core (str0m, ``unisockets._rtc``), driven by our own task.

:class:`NativePeerLink` is a :class:`~unisockets.transport.webrtc_link.PeerLink`:
the same negotiation (:class:`unisockets.protocol.negotiation.Negotiation`
decides offers, glare, restarts, candidates, the legacy verdict, deadlines),
the same inbox and the same failure rules. What differs is the driver: each
step calls the native peer at once instead of an aiortc peer connection in an
asyncio thread, and one more task, :meth:`NativePeerLink._io`, moves the
datagrams. It waits until the native peer's UDP socket is readable
(:func:`trio.lowlevel.wait_readable`) or its next timeout comes, then calls
:meth:`Peer.poll_io <unisockets._rtc.Peer.poll_io>` once, which reads every
datagram waiting (up to a batch), runs ICE, DTLS and SCTP on them without the
GIL, sends what they output, and returns the events, which this task turns
into pipe messages, channel openings and link states. No thread, no asyncio
loop, no hand-off.

Link states: str0m reports ``Connected`` once ICE and DTLS are up (the
``connectionState`` "connected" of the negotiation), ICE states without a
"failed" one (str0m's ICE never gives up while candidates may come), and
``Closed`` when the peer closed DTLS or SCTP ("closed": the link fails).
Consent freshness (RFC 7675): str0m's ICE agent checks the selected pair
every ``interval`` s of the transport's
:class:`~unisockets.protocol.consent.ConsentPolicy`; once the peer has sent
nothing for ``lifetime`` s (no check answered, no check of its own, no data),
the link fails ("ICE consent expired"), as consent expiry fails an aiortc
link. The silence is judged right after reading the socket, so a process
that was starved reads what the peer sent meanwhile before judging it (the
rule :mod:`unisockets.protocol.consent` keeps for the same reason). str0m's
own verdict (ICE "disconnected") fails the link too; it comes later (str0m
keeps a pair alive for 15 s after the peer's last check).

Candidates: one host candidate, the native peer's UDP socket on the
transport's host address, in the SDP; and with ``stun:`` servers, a
server-reflexive one per answering server: the native peer sends each a STUN
Binding request from that socket when it is made and reports the mapped
address as a ``("candidate", line)`` event (RFC 8489, bounded by
:data:`~unisockets.transport.native_rtc_ice.STUN_TIMEOUT`), which the link
trickles once its offer or answer is sent (RFC 8838). TURN is not gathered.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING

import trio
from aiortc import RTCConfiguration

from ..protocol.consent import ConsentPolicy
from ..protocol.negotiation_events import (
    AddCandidates,
    AnswerMade,
    MakeAnswer,
    MakeOffer,
    OfferMade,
    Output,
    PeerKind,
    RemoteDescriptionSet,
    SendAnswer,
    SendHello,
    SendOffer,
    SendOnChannel,
    SetAnswer,
)
from ..protocol.peer_link import HELLO, LEGACY_LABEL, MODERN_PROTOCOL
from .native_rtc_events import NativeLinkEvents, candidates_of
from .native_rtc_ice import STUN_TIMEOUT
from .native_rtc_pipe import INLINE, NativePipe
from .native_rtc_rules import consent_deadline, consent_expired, due_resets, retry_in_order
from .webrtc_link import LINGER_TIMEOUT, LegacyPeerError, PeerLink
from .webrtc_pipe import DataChannelPipe

if TYPE_CHECKING:
    from .._rtc import Event, Peer
    from .base import SignalSender

__all__ = ["NativePeerLink"]

logger = logging.getLogger(__name__)


class NativePeerLink(NativeLinkEvents):
    """The peer connection to one peer over the native core (see the module docstring).

    Created by :class:`~unisockets.transport.native_rtc.NativeRTCTransport`; not by users.

    Args:
        peer_id: the peer's node id.
        host: the IP address the native peer's UDP socket binds (its host candidate).
        signal: where offers, answers and candidates go.
        local_id: returns our node id.
        link_timeout: seconds the link may take to connect.
        consent: its ``lifetime`` is how long ICE may stay disconnected.
        on_incoming: called with each pipe the peer opens.
        on_failed: called once when the link fails.
        on_restart: called with the peer's offer (and the candidates queued behind it)
            when it restarted the link.
        idle_timeout: close the link once it carried no pipe this long (s); None: never.
        stun_servers: the (ip, port) of each STUN server to ask for a srflx candidate.
    """

    def __init__(
        self,
        peer_id: str,
        *,
        host: str,
        signal: SignalSender,
        local_id: Callable[[], str],
        link_timeout: float,
        consent: ConsentPolicy,
        on_incoming: Callable[[PeerLink, DataChannelPipe], object],
        on_failed: Callable[[PeerLink, BaseException], object],
        on_restart: Callable[[PeerLink, str, tuple[str, ...]], object],
        idle_timeout: float | None = None,
        stun_servers: Sequence[tuple[str, int]] = (),
    ) -> None:
        super().__init__(
            peer_id,
            bridge=INLINE,
            signal=signal,
            local_id=local_id,
            configuration=RTCConfiguration(iceServers=[]),
            link_timeout=link_timeout,
            consent=consent,
            on_incoming=on_incoming,
            on_failed=on_failed,
            on_restart=on_restart,
            idle_timeout=idle_timeout,
        )
        self._host = host
        self._stun_servers = list(stun_servers)
        # srflx candidates found, trickled once our SDP of this peer went out (its mid, ufrag).
        self._trickle: list[str] = []
        self._sdp_sent: str | None = None
        self._consent_policy = consent
        self.native_peer: Peer | None = None
        self._channels: dict[int, NativePipe] = {}
        # Pipes to retry after the next input, in the order they asked (a FIFO: see wants_room).
        self._wanting: dict[NativePipe, None] = {}
        self._deferred: set[NativePipe] = set()  # closed, their stream reset waits
        self._queued: list[Event] = []
        self._io_scope = trio.CancelScope()
        self._peer_made = trio.Event()
        self._dtls = False

    # --- PeerLink's steps, done natively ---------------------------------------------------

    async def open_pipe(self, label: str) -> DataChannelPipe:
        """Open a data channel labelled ``label`` once connected and the peer is known modern.

        Args:
            label: the pipe's label (checked by the transport).

        Returns:
            The pipe, still opening: the caller waits for the peer's DCEP ACK.

        Raises:
            LegacyPeerError: the peer is a legacy node.
            trio.BrokenResourceError: the link failed.
        """
        from .._rtc import RtcError

        if await self._wait_kind_opening() is PeerKind.LEGACY:
            raise LegacyPeerError(
                f"{self.peer_id} is a legacy unisockets node: it has one channel, no pipes"
            )
        peer = self.native_peer
        if peer is None or self.failure is not None:
            raise trio.BrokenResourceError(f"no link to {self.peer_id}") from self.failure
        try:
            number = peer.open_channel(label)
        except RtcError as exc:
            raise trio.BrokenResourceError(f"cannot open pipe {label!r}: {exc}") from exc
        pipe = self._pipe(number, label, incoming=False)
        self.pipes.add(pipe)
        self._pipes_changed()
        self.after_call()
        return pipe

    async def run(self) -> None:
        """Handle the queued signaling inputs and move the datagrams until the link fails.

        Never raises (failures fail the link); the native peer is closed (DTLS
        close_notify sent, its UDP socket closed) before this returns.
        """
        try:
            with self._cancel_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._timer)
                    nursery.start_soon(self._io)
                    await self._drive()
        finally:
            self.fail(trio.BrokenResourceError("the transport closed"))
            with trio.CancelScope(shield=True):
                await self._close_pc()

    async def _carry_out(self, outputs: list[Output]) -> None:
        for output in outputs:
            if isinstance(output, MakeOffer):
                peer = self._new_peer()
                sdp, number = peer.create_offer(LEGACY_LABEL, MODERN_PROTOCOL)
                pipe = self._legacy(number, incoming=False)
                self._on_legacy_pipe(self._generation, pipe, None)
                self.after_call()
                await self._carry_out(self._handle(OfferMade(sdp)))
            elif isinstance(output, MakeAnswer):
                if output.drop_pc:  # our offer's "channel" goes with our offer
                    self.legacy_pipe = None
                peer = self._new_peer()
                answer = peer.accept_offer(output.offer)
                self.after_call()
                await self._carry_out(self._handle(RemoteDescriptionSet()))
                await self._carry_out(self._handle(AnswerMade(answer)))
            elif isinstance(output, SetAnswer):
                if self.native_peer is not None:
                    self.native_peer.accept_answer(output.sdp)
                    self.after_call()
                await self._carry_out(self._handle(RemoteDescriptionSet()))
            elif isinstance(output, SendOffer | SendAnswer):
                if isinstance(output, SendOffer):
                    await self._signal.send_offer(self.peer_id, output.sdp)
                else:
                    await self._signal.send_answer(self.peer_id, output.sdp)
                for candidate in candidates_of(output.sdp):
                    await self._signal.send_candidate(self.peer_id, candidate)
                self._sdp_sent = output.sdp
                await self._send_trickle()
            elif isinstance(output, AddCandidates):
                await self._add_candidates(output)
            else:
                self._apply([output])

    def _apply(self, outputs: list[Output]) -> None:
        rest: list[Output] = []
        for output in outputs:
            if isinstance(output, SendHello | SendOnChannel):  # the hello, a probe, its answer
                pipe = self.legacy_pipe
                if isinstance(pipe, NativePipe) and pipe.statistics().state == "open":
                    pipe._aio_send(HELLO if isinstance(output, SendHello) else output.data)
            else:
                rest.append(output)
        if rest:
            super()._apply(rest)

    async def _add_candidates(self, output: AddCandidates) -> None:
        from .._rtc import RtcError

        await trio.lowlevel.checkpoint()
        peer = self.native_peer
        if peer is None:
            return
        for candidate in output.candidates:
            try:
                peer.add_remote_candidate(candidate.line)
            except RtcError as exc:
                logger.warning("ignoring a bad candidate from %s: %s", self.peer_id, exc)
        self.after_call()

    async def _close_pc(self) -> None:
        peer = self.native_peer
        if peer is None:
            return
        if self._linger:
            with trio.move_on_after(LINGER_TIMEOUT):
                while self._unsettled(peer):
                    await self._pump_once(peer, 0.005)
        self._drop_peer()

    # --- the native peer -------------------------------------------------------------------

    def _new_peer(self) -> Peer:
        """A fresh native peer (a new generation); the old one is closed."""
        from .._rtc import Peer

        self._generation += 1  # first: the old peer's pipes close as another generation's
        self._drop_peer()
        self._dtls = False
        self._trickle.clear()
        self._sdp_sent = None
        policy = self._consent_policy
        peer = Peer(self._host, policy.interval, policy.lifetime, self._stun_servers, STUN_TIMEOUT)
        self.native_peer = peer
        self._peer_made.set()
        return peer

    def _drop_peer(self) -> None:
        peer, self.native_peer = self.native_peer, None
        for pipe in list(self._channels.values()):
            pipe._on_closed_natively(clean=False)
        self._channels.clear()
        self._wanting.clear()
        self._deferred.clear()
        self._queued.clear()
        if peer is None:
            return
        trio.lowlevel.notify_closing(peer.fileno())
        peer.close()
        del peer  # its UDP socket closes with it (the link holds the only reference)

    def _unsettled(self, peer: Peer) -> bool:
        """Whether a pipe still has bytes to hand over or deliver, or a stream reset under way.

        A pipe stays in ``_channels`` until str0m reports its channel closed,
        which (for a reset we started) is when the reset completed.
        """
        return peer.is_alive() and any(
            pipe._backlog or pipe._reset_pending or pipe._gone or peer.buffered_amount(pipe.channel)
            for pipe in self._channels.values()
        )

    def after_call(self) -> None:
        """Called after every call that changed the native peer: take its events and timeout.

        The events are handled by the I/O task (never here, so a pipe's call
        never runs another pipe's code), which this wakes; otherwise the I/O
        task's deadline moves to the peer's next timeout if that is sooner.
        """
        peer = self.native_peer
        if peer is None:
            return
        self.after_events(*peer.events())

    def after_events(self, events: list[Event], delay: float) -> None:
        """As :meth:`after_call`, with the events and delay a call returned already."""
        if events:
            self._queued.extend(events)
            self._io_scope.deadline = -math.inf
        else:
            self._io_scope.deadline = min(self._io_scope.deadline, trio.current_time() + delay)

    def defer_reset(self, pipe: NativePipe) -> None:
        """``pipe`` resets its stream at ``pipe.reset_due`` unless the peer's reset comes first."""
        self._deferred.add(pipe)
        if pipe.reset_due is not None:
            self._io_scope.deadline = min(self._io_scope.deadline, pipe.reset_due)

    def wants_room(self, pipe: NativePipe) -> None:
        """``pipe`` has a backlog (or a reset pending): retry it after the next input.

        Pipes are retried in the order they asked, and a retry round stops at
        the first pipe whose message str0m refuses again: its send buffer is
        one for every channel of the peer connection (128 KiB), so the pipes
        behind would be refused too, and each refused write costs str0m a
        pass over every channel. The pipes behind keep their place.
        """
        self._wanting.setdefault(pipe, None)

    @property
    def congested(self) -> bool:
        """Whether a pipe waits for room in str0m's send buffer (new messages queue behind it)."""
        return any(pipe._backlog for pipe in self._wanting)

    def _retry_wanting(self) -> None:
        """Flush the waiting pipes in order until str0m refuses one (see :meth:`wants_room`)."""
        wanting, self._wanting = self._wanting, {}
        retry_in_order(wanting, self._wanting, NativePipe._flush, attrgetter("_backlog"))

    async def _io(self) -> None:
        """Move datagrams between the native peer and its socket, for the link's life."""
        delay = 0.0
        while True:
            peer = self.native_peer
            if peer is None:
                await self._peer_made.wait()
                self._peer_made = trio.Event()
                continue
            delay = await self._pump_once(peer, delay)

    async def _pump_once(self, peer: Peer, delay: float) -> float:
        """Wait (readable, or ``delay`` s), poll the peer once, handle its events."""
        deadline = trio.current_time() + delay
        if self._queued:
            deadline = -math.inf
        for pipe in self._deferred:
            deadline = min(deadline, pipe.reset_due or deadline)
        lifetime = self._consent_policy.lifetime
        if self._dtls:  # wake when the peer's silence would reach the consent lifetime
            deadline = min(
                deadline, consent_deadline(trio.current_time(), lifetime, peer.silence())
            )
        with trio.CancelScope(deadline=deadline) as scope:
            self._io_scope = scope
            try:
                await trio.lowlevel.wait_readable(peer.fileno())
            except trio.ClosedResourceError:
                return 0.0  # the peer was replaced or closed
        self._io_scope = trio.CancelScope()
        if peer is not self.native_peer:
            return 0.0
        queued, self._queued = self._queued, []
        events, delay = peer.poll_io()
        self._dispatch(queued + events if queued else events)
        if self._trickle and self._sdp_sent is not None:
            await self._send_trickle()
        if self._wanting and peer is self.native_peer:
            self._retry_wanting()
        if self._deferred and peer is self.native_peer:
            for pipe in due_resets(
                self._deferred, trio.current_time(), attrgetter("reset_due"), attrgetter("_gone")
            ):
                pipe._flush()  # resets it now, unless the peer's reset came
        if self._dtls and peer is self.native_peer and consent_expired(peer.silence(), lifetime):
            self._consent_expired()
        if self._queued:
            return 0.0
        return delay
