"""Peer links in the browser: one ``RTCPeerConnection`` per peer, driven from asyncio.

The same rules as the native transport (:mod:`unisockets.transport.webrtc`,
:mod:`unisockets.transport.webrtc_link`), so a tab and an aiortc node agree:

- *Who offers*: on ``greeting`` the existing member offers (docs/protocol.md,
  "Peer link"); a node that needs a pipe to a peer it has no link with
  offers on demand. The offerer creates the legacy ``"channel"`` data channel
  before its offer, with the DCEP sub-protocol :data:`MODERN_PROTOCOL`; an
  answerer that receives ``"channel"`` with it sends :data:`HELLO` on it once,
  so that native nodes (which tell original unisockets nodes from ours that
  way, see :mod:`unisockets.transport.webrtc_link`) take a tab for a modern
  node. Nothing else is sent on ``"channel"`` and what arrives is ignored: a
  tab does not carry connections with original (legacy) nodes.
- *Glare* (both offer at once): the lower id's offer wins (IPv4 ids compared
  numerically); the other side drops its peer connection and answers.
- *Restart*: an offer on a link already negotiated means the peer started
  over: that link fails and a fresh one answers the offer.
- *Candidates* are trickled as JSON ``RTCIceCandidateInit`` strings
  (``candidate.toJSON()``) once our description was sent; the peer's wait
  until its description is set. A candidate the browser refuses (e.g. for a
  peer connection dropped in a glare) is logged and ignored.
- *Pipes*: each connection is its own data channel, labelled
  ``"<client alias>><bound alias>"``, opened in-band (DCEP) by the connecting
  side once the link is connected; the accepting side matches channels to
  :meth:`PeerLinks.accept_pipe` calls by ``(peer id, label)`` and closes those
  nobody claims within the claim timeout.

*Signaling comes back*: peer links do not go through the server, so they
outlive a lost signaling session. A ``greeting`` for a peer whose link is
still connected (both rejoined a restarted server) keeps that link instead
of starting over; a peer that left while we were away (its ``goodbye`` never
reached us) is noticed by the link failing (its peer connection closes or
fails). While signaling is away, a link that is still negotiating cannot
send its offer (the link fails) and its candidates are dropped.

Each link's signaling inputs are queued and handled one at a time by the
link's task (in the node's task group), so a slow ``createOffer`` never races
the next input. A link fails (breaking its pipes) when ICE or DTLS fail, when
it is not connected within the link timeout, when a step throws, or when the
node says so (peer left, node closing).
"""

from __future__ import annotations

import asyncio
import enum
import json
import math
from collections.abc import Callable, Coroutine, Mapping
from types import MappingProxyType
from typing import Any, Final

from ..protocol.peer_link import HELLO as _HELLO
from ..protocol.peer_link import (
    LEGACY_LABEL,
    MODERN_PROTOCOL,
    candidate_types,
    describe_ice_failure,
    mark_answer,
    offer_wins,
)
from ..protocol.rendezvous import Arrival, ArrivalKind, PipeRendezvous, Waiter
from ._js import Listeners, is_null, js_global, js_object, logger, settle
from .errors import BrokenResourceError, ClosedResourceError, SignalingError
from .pipes import DataChannelPipe, Pipe
from .signaling import BrowserSignaling

__all__ = [
    "HELLO",
    "LEGACY_LABEL",
    "MODERN_PROTOCOL",
    "LinkState",
    "PeerLink",
    "PeerLinks",
    "offer_wins",
]

#: What an answerer sends once on a ``"channel"`` with MODERN_PROTOCOL, as a text message.
HELLO: Final = _HELLO.decode()
#: Signaling inputs a link queues before it declares itself flooded and fails.
MAX_QUEUED_INPUTS: Final = 256
#: Remote candidates kept while waiting for the remote description; more are dropped.
MAX_PENDING_CANDIDATES: Final = 64

Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


class LinkState(enum.Enum):
    """Where a peer link is in its life."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"


class PeerLink:
    """The peer connection to one peer (see the module docstring). Made by :class:`PeerLinks`.

    Attributes:
        peer_id: the peer's node id.
        state: a :class:`LinkState`.
        role: ``"offerer"``, ``"answerer"`` or None (nothing negotiated yet).
        failure: why the link failed, or None.
        pipes: the open pipes on this link.
        connected_after: seconds from the link's creation to ``connected``, or None.
    """

    def __init__(self, peer_id: str, links: PeerLinks) -> None:
        self.peer_id = peer_id
        self.state = LinkState.CONNECTING
        self.role: str | None = None
        self.failure: BaseException | None = None
        self.pipes: set[Pipe] = set()
        self.connected_after: float | None = None
        self._links = links
        loop = asyncio.get_running_loop()
        self._started = loop.time()
        self._inputs: asyncio.Queue[tuple[str, str]] = asyncio.Queue(MAX_QUEUED_INPUTS)
        self._connected: asyncio.Future[None] = loop.create_future()
        self._watchdog = loop.call_later(links.link_timeout, self._timed_out)
        self._task: asyncio.Task[None] | None = None
        self._pc: Any = None
        self._pc_listeners = Listeners(on_error=self.fail)
        self._legacy: list[Any] = []
        self._negotiation = "new"  # "new", "have-local-offer" or "stable"
        self._description_sent = False
        self._local_candidates: list[str] = []
        self._remote_set = False
        self._pending: list[Any] = []
        self._local_types: set[str] = set()  # candidate types gathered here
        self._remote_types: set[str] = set()  # candidate types the peer sent

    def __repr__(self) -> str:
        return f"<PeerLink {self.peer_id} {self.state.value} {self.role or '-'}>"

    # --- control -----------------------------------------------------------------------------

    def start(self, spawn: Spawn) -> None:
        """Start the link's task with ``spawn`` (the node's task group)."""
        self._task = spawn(self._run())

    def post(self, kind: str, payload: str = "") -> None:
        """Queue an input: ``"offer-now"``, ``"offer"``, ``"answer"`` or ``"candidate"``."""
        if self.state is LinkState.FAILED:
            return
        try:
            self._inputs.put_nowait((kind, payload))
        except asyncio.QueueFull:
            self.fail(BrokenResourceError(f"signaling from {self.peer_id} floods the link"))

    def fail(self, error: BaseException, *, replaced: bool = False) -> None:
        """Fail the link: break its pipes, stop its task, close its peer connection. Idempotent.

        Args:
            error: the cause pipes are broken with.
            replaced: a new link to the same peer takes over (accept waiters stay).
        """
        if self.state is LinkState.FAILED:
            return
        logger.debug("link to %s failed: %s", self.peer_id, error)
        self.state = LinkState.FAILED
        self.failure = error
        self._watchdog.cancel()
        settle(self._connected)
        for pipe in list(self.pipes):
            pipe.break_(error)
        self.pipes.clear()
        self._close_pc()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._links._link_failed(self, error, replaced)

    async def wait_connected(self) -> None:
        """Wait until connected.

        Raises:
            BrokenResourceError: the link failed or timed out first.
        """
        await asyncio.shield(self._connected)
        if self.state is not LinkState.CONNECTED:
            raise BrokenResourceError(f"no link to {self.peer_id}") from self.failure

    async def open_pipe(self, label: str) -> DataChannelPipe:
        """Open a data channel labelled ``label`` once connected; return its (opening) pipe.

        Raises:
            BrokenResourceError: the link failed.
        """
        await self.wait_connected()
        channel = self._pc.createDataChannel(label, js_object({"ordered": True}))
        pipe = DataChannelPipe(channel, self.peer_id, incoming=False, link_alive=self._alive)
        self._adopt(pipe)
        return pipe

    # --- the task ----------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while self.state is not LinkState.FAILED:
                kind, payload = await self._inputs.get()
                if kind == "offer-now":
                    await self._send_offer()
                elif kind == "offer":
                    await self._take_offer(payload)
                elif kind == "answer":
                    await self._take_answer(payload)
                elif kind == "candidate":
                    await self._take_candidate(payload)
        except asyncio.CancelledError:
            self._close_pc()
            raise
        except Exception as exc:  # a JsException from the browser, or ours
            error = BrokenResourceError(f"link to {self.peer_id} failed: {exc!r}")
            error.__cause__ = exc
            self.fail(error)

    async def _send_offer(self) -> None:
        if self._negotiation != "new":
            return
        self.role = "offerer"
        pc = self._new_pc()
        options = js_object({"protocol": MODERN_PROTOCOL})
        self._legacy.append(pc.createDataChannel(LEGACY_LABEL, options))
        offer = await pc.createOffer()
        await pc.setLocalDescription(offer)
        self._negotiation = "have-local-offer"
        self._links.signaling.send_offer(self.peer_id, str(pc.localDescription.sdp))
        self._description_sent_now()

    async def _take_offer(self, sdp: str) -> None:
        if self._negotiation == "have-local-offer":
            if offer_wins(self._links.local_id(), self.peer_id):
                logger.debug("glare with %s: our offer wins", self.peer_id)
                return
            logger.debug("glare with %s: answering theirs", self.peer_id)
        elif self._negotiation == "stable":
            self.fail(
                BrokenResourceError(f"{self.peer_id} renegotiated: it restarted the link"),
                replaced=True,
            )
            self._links._start(self.peer_id).post("offer", sdp)
            return
        self.role = "answerer"
        self._close_pc()
        self._description_sent = False
        self._local_candidates.clear()
        pc = self._new_pc()
        self._remote_types |= candidate_types(sdp)
        await pc.setRemoteDescription(js_object({"type": "offer", "sdp": sdp}))
        await self._remote_description_set()
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        self._negotiation = "stable"
        self._links.signaling.send_answer(self.peer_id, mark_answer(str(pc.localDescription.sdp)))
        self._description_sent_now()

    async def _take_answer(self, sdp: str) -> None:
        if self._negotiation != "have-local-offer":
            logger.info("ignoring an unexpected answer from %s", self.peer_id)
            return
        self._remote_types |= candidate_types(sdp)
        await self._pc.setRemoteDescription(js_object({"type": "answer", "sdp": sdp}))
        self._negotiation = "stable"
        await self._remote_description_set()

    async def _take_candidate(self, text: str) -> None:
        try:
            init = json.loads(text)
        except ValueError:
            logger.warning("ignoring a candidate from %s: not JSON", self.peer_id)
            return
        if not isinstance(init, dict) or not isinstance(init.get("candidate"), str):
            logger.warning("ignoring a candidate from %s: no candidate line", self.peer_id)
            return
        if not init["candidate"]:
            return  # end-of-candidates: nothing to do
        if not self._remote_set:
            if len(self._pending) < MAX_PENDING_CANDIDATES:
                self._pending.append(init)
            return
        await self._add_candidates([init])

    async def _remote_description_set(self) -> None:
        self._remote_set = True
        pending, self._pending = self._pending, []
        await self._add_candidates(pending)

    async def _add_candidates(self, inits: list[dict[str, Any]]) -> None:
        for init in inits:
            fields = {k: v for k, v in init.items() if v is not None}
            self._remote_types |= candidate_types(str(init.get("candidate", "")))
            try:
                await self._pc.addIceCandidate(js_object(fields))
            except Exception as exc:  # wrong ufrag (glare), unparsable line
                logger.info("candidate from %s refused: %s", self.peer_id, exc)

    # --- the peer connection -----------------------------------------------------------------

    def _new_pc(self) -> Any:
        pc = js_global("RTCPeerConnection").new(js_object(self._links.rtc_configuration))
        self._pc = pc
        self._remote_set = False
        self._local_types.clear()
        self._remote_types.clear()
        self._pc_listeners.add(pc, "connectionstatechange", lambda _: self._on_state(pc))
        self._pc_listeners.add(pc, "icecandidate", self._on_candidate)
        self._pc_listeners.add(pc, "datachannel", lambda event: self._on_datachannel(event.channel))
        return pc

    def _close_pc(self) -> None:
        pc, self._pc = self._pc, None
        self._pc_listeners.clear()
        for channel in self._legacy:
            _quietly_close(channel)
        self._legacy.clear()
        if pc is not None:
            _quietly_close(pc)

    def _alive(self) -> bool:
        return (
            self.state is LinkState.CONNECTED
            and self._pc is not None
            and str(self._pc.connectionState) == "connected"
        )

    def _on_state(self, pc: Any) -> None:
        if pc is not self._pc or self.state is LinkState.FAILED:
            return
        state = str(pc.connectionState)
        if state == "connected" and self.state is LinkState.CONNECTING:
            self.state = LinkState.CONNECTED
            self.connected_after = asyncio.get_running_loop().time() - self._started
            self._watchdog.cancel()
            settle(self._connected)
        elif state == "failed" and str(pc.iceConnectionState) in ("failed", "checking", "new"):
            self.fail(BrokenResourceError(self._ice_failure()))  # ICE, not DTLS, failed
        elif state in ("failed", "closed"):
            self.fail(BrokenResourceError(f"the peer connection to {self.peer_id} {state}"))

    def _ice_failure(self) -> str:
        """Why ICE did not connect: its state, both sides' candidates, a hint."""
        pc = self._pc
        return describe_ice_failure(
            self.peer_id,
            str(pc.iceConnectionState) if pc is not None else "new",
            self._local_types,
            self._remote_types,
            ice_servers=bool(self._links.rtc_configuration.get("iceServers")),
        )

    def _on_candidate(self, event: Any) -> None:
        candidate = event.candidate
        if is_null(candidate) or not str(candidate.candidate):
            return  # end of gathering
        self._local_types |= candidate_types(str(candidate.candidate))
        text = str(js_global("JSON").stringify(candidate.toJSON()))
        if self._description_sent:
            try:
                self._links.signaling.send_candidate(self.peer_id, text)
            except SignalingError as exc:  # away: the link completes without it, or times out
                logger.debug("candidate for %s dropped: %s", self.peer_id, exc)
        else:
            self._local_candidates.append(text)

    def _description_sent_now(self) -> None:
        self._description_sent = True
        candidates, self._local_candidates = self._local_candidates, []
        for text in candidates:
            self._links.signaling.send_candidate(self.peer_id, text)

    def _on_datachannel(self, channel: Any) -> None:
        if str(channel.label) == LEGACY_LABEL:
            self._legacy.append(channel)  # kept open, as the original does
            if str(channel.protocol) == MODERN_PROTOCOL:
                self._say_hello(channel)
            return
        pipe = DataChannelPipe(channel, self.peer_id, incoming=True, link_alive=self._alive)
        self._adopt(pipe)
        self._links._incoming(pipe)

    def _say_hello(self, channel: Any) -> None:
        """Send the hello on an incoming modern ``"channel"`` (now, or once it is open)."""
        if str(channel.readyState) == "open":
            channel.send(HELLO)  # a text message; native nodes compare its UTF-8 bytes
        else:
            self._pc_listeners.add(channel, "open", lambda _: channel.send(HELLO))

    def _adopt(self, pipe: Pipe) -> None:
        self.pipes.add(pipe)
        pipe.add_close_callback(self.pipes.discard)

    def _timed_out(self) -> None:
        if self.state is LinkState.CONNECTING:
            timeout = self._links.link_timeout
            self.fail(
                BrokenResourceError(
                    f"no link to {self.peer_id} within {timeout} s: {self._ice_failure()}"
                )
            )


class PeerLinks:
    """Every peer link of one node, and the pipes waiting to be claimed.

    Args:
        signaling: the node's signaling session (offers, answers, candidates go out there).
        spawn: starts a task in the node's task group.
        rtc_configuration: the ``RTCConfiguration`` as a dict; ``iceServers``
            defaults to ``[]`` (loopback and LAN only, no STUN).
        link_timeout: seconds a link may take to connect, and a pipe to open.
        claim_timeout: seconds an incoming pipe waits for its ``accept_pipe``.
    """

    def __init__(
        self,
        signaling: BrowserSignaling,
        spawn: Spawn,
        *,
        rtc_configuration: Mapping[str, Any] | None = None,
        link_timeout: float = 20.0,
        claim_timeout: float = 20.0,
    ) -> None:
        self.signaling = signaling
        self.rtc_configuration = {"iceServers": [], **(rtc_configuration or {})}
        self.link_timeout = link_timeout
        self.claim_timeout = claim_timeout
        self._spawn = spawn
        self._links: dict[str, PeerLink] = {}
        self._rendezvous: PipeRendezvous[Pipe] = PipeRendezvous(claim_timeout=claim_timeout)
        self._reaper: asyncio.TimerHandle | None = None
        self._closed = False

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
        if link is not None and link.state is LinkState.CONNECTED:
            if link._alive():
                logger.info("%s greeted us again: keeping its live link", peer_id)
                return
            link.fail(BrokenResourceError(f"{peer_id} joined again"))
            link = None
        if link is None:
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
        """``peer_id`` left the network: fail its link and its waiters."""
        error = BrokenResourceError(f"{peer_id} left")
        link = self._links.get(peer_id)
        if link is not None:
            link.fail(error)
        else:
            self._fail_waiters(peer_id, error)

    # --- pipes -------------------------------------------------------------------------------

    async def open_pipe(self, peer_id: str, label: str) -> Pipe:
        """Open a pipe labelled ``label`` to ``peer_id`` (making the link if needed).

        Raises:
            ClosedResourceError: the node is closing.
            BrokenResourceError: the link failed or could not be made.
            TimeoutError: the peer did not acknowledge the channel in time.
        """
        self._check_open()
        link = self._links.get(peer_id)
        if link is None:
            link = self._start(peer_id)
            link.post("offer-now")
        pipe = await link.open_pipe(label)
        try:
            async with asyncio.timeout(self.link_timeout):
                await pipe.wait_open()
        except BaseException:
            pipe.close()
            raise
        return pipe

    async def accept_pipe(self, peer_id: str, label: str) -> Pipe:
        """Return the pipe ``peer_id`` opened (or opens) as ``label``.

        Raises:
            ClosedResourceError: the node is closing.
            BrokenResourceError: the link to ``peer_id`` failed first.
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

    # --- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedResourceError("the node is closed")

    def _start(self, peer_id: str) -> PeerLink:
        link = PeerLink(peer_id, self)
        self._links[peer_id] = link
        link.start(self._spawn)
        return link

    def _link_failed(self, link: PeerLink, error: BaseException, replaced: bool) -> None:
        if self._links.get(link.peer_id) is link:
            del self._links[link.peer_id]
        for pipe in self._rendezvous.drop_queued(link.peer_id):
            pipe.close()
        if not replaced:
            self._fail_waiters(link.peer_id, error)

    def _fail_waiters(self, peer_id: str, error: BaseException) -> None:
        def failure() -> BaseException:
            failed = BrokenResourceError(f"link to {peer_id} failed")
            failed.__cause__ = error
            return failed

        for waiter in self._rendezvous.fail_waiters(peer_id, failure):
            settle(waiter.handle, error=waiter.error)  # type: ignore[arg-type]

    def _incoming(self, pipe: Pipe) -> None:
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


def _quietly_close(js_object_with_close: Any) -> None:
    try:
        js_object_with_close.close()
    except Exception:
        logger.debug("close failed", exc_info=True)
