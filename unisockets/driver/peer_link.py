"""One peer link in the asyncio driver: one ``RTCPeerConnection`` to one peer.

Every decision of the negotiation (docs/protocol.md, "Peer link": who
offers, glare, restarts, when the peer's candidates are added, repeated
greetings, the legacy verdict, the link timeout, flooding) is made by
:class:`unisockets.protocol.negotiation.Negotiation`, as in the native
transport (:mod:`unisockets.transport.webrtc_link`), so a tab and an aiortc
node agree. :class:`PeerLink` carries out its outputs with the runtime's
WebRTC (the page's, or aiortc's) and the node's signaling session, and
inputs what the peer connection reports:

- The offerer creates the legacy ``"channel"`` data channel before its offer,
  with the DCEP sub-protocol :data:`MODERN_PROTOCOL`; an answerer that
  receives it says :data:`HELLO` on it once. With a modern peer nothing
  else is sent on ``"channel"``; with an original (legacy) node it carries
  that node's one raw byte connection (:meth:`PeerLink.legacy_pipe`,
  :mod:`unisockets.driver.legacy`), and a labelled pipe to it fails.
- *Candidates* are trickled as JSON ``RTCIceCandidateInit`` strings
  (``candidate.toJSON()``) once our description was sent
  (:mod:`unisockets.driver.trickle`).

Each link's signaling inputs are queued and handled one at a time by the
link's task (in the node's task group), so a slow ``createOffer`` never races
the next input. The set of links and the pipe rendezvous are
:mod:`unisockets.driver.links`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ..protocol import negotiation_events as neg
from ..protocol.datagram import DATAGRAM_LABEL
from ..protocol.negotiation import LinkState, Negotiation, signaling_input
from ..protocol.negotiation_events import Input, Output, PeerKind
from ..protocol.peer_link import LEGACY_LABEL, MODERN_PROTOCOL
from .errors import BrokenResourceError
from .idle import IdleTimer
from .peer_connection import HELLO, PeerConnectionEvents
from .pipes import DataChannelPipe, Pipe
from .runtime import EventListeners, logger, settle
from .trickle import CandidateTrickle

if TYPE_CHECKING:
    from .links import PeerLinks

__all__ = ["HELLO", "PeerLink", "Spawn"]

Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


class PeerLink(PeerConnectionEvents):
    """The peer connection to one peer (see the module docstring). Made by :class:`PeerLinks`.

    Attributes:
        peer_id: the peer's node id.
        failure: why the link failed, or None.
        replaced: whether it failed because a new link to the same peer takes over
            (a restart, or signaling lost while it negotiated): a pipe waiting
            on it is tried once more on a new link (:meth:`PeerLinks.open_pipe
            <unisockets.driver.links.PeerLinks.open_pipe>`).
        pipes: the open pipes on this link.
        connected_after: seconds from the link's creation to ``connected``, or None.
    """

    def __init__(self, peer_id: str, links: PeerLinks) -> None:
        self.peer_id = peer_id
        self.failure: BaseException | None = None
        #: Whether it failed because a new link to the same peer took over.
        self.replaced = False
        #: Signaling said the peer left since this link was made (set by PeerLinks).
        self.peer_gone = False
        self.pipes: set[Pipe] = set()
        self.connected_after: float | None = None
        self._links = links
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._started = loop.time()
        self.negotiation = Negotiation(
            links.local_id,
            peer_id,
            self._started,
            link_timeout=links.link_timeout,
            ice_servers=bool(links.rtc_configuration.get("iceServers")),
        )
        self._inbox_bell = asyncio.Event()  # set when the machine's inbox may have inputs
        self._connected: asyncio.Future[None] = loop.create_future()
        self._kind_known: asyncio.Future[None] = loop.create_future()
        self._probe_over: asyncio.Future[None] | None = None  # set while a probe runs
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._pc: Any = None
        self._runtime = links.runtime
        self._pc_listeners = EventListeners(self._runtime, on_error=self.fail)
        self._legacy: list[Any] = []
        self._legacy_pipe: DataChannelPipe | None = None  # the newest "channel", as a pipe
        self._trickle = CandidateTrickle(peer_id, links.signaling, self._runtime)
        self.idle = IdleTimer(  # lazy links (.idle)
            peer_id,
            links.idle_timeout,
            lambda: self.fail(BrokenResourceError(f"the link to {peer_id} was idle")),
        )
        self._rearm()

    # --- control -----------------------------------------------------------------------------

    def start(self, spawn: Spawn) -> None:
        """Start the link's task with ``spawn`` (the node's task group)."""
        self._task = spawn(self._run())

    def post(self, kind: str, payload: str = "") -> None:
        """Queue an input: ``"offer-now"``, ``"offer"``, ``"answer"`` or ``"candidate"``."""
        self._apply(self.negotiation.post(signaling_input(kind, payload)))
        self._inbox_bell.set()

    def peer_left(self) -> None:
        """Signaling said the peer left: probe a modern link, fail any other (protocol.probe)."""
        self._apply(self._handle(neg.PeerLeft()))
        if self.negotiation.probing and self.failure is None and self._probe_over is None:
            self._probe_over = self._loop.create_future()  # new pipes wait for the verdict

    def greeted(self) -> bool:
        """Signaling greeted the peer again: keep this link (True) or fail it (False)."""
        self._apply(self._handle(neg.Greeting()))
        return self.state is not LinkState.FAILED

    def signaling_lost(self) -> list[Output]:
        """Our signaling session ended: a link still negotiating fails (``replaced``).

        What it sent may be lost with the session, and what it would send now
        would meet a peer that started over (:mod:`unisockets.protocol.negotiation`,
        the native transport's rule); a connected link stays.

        Returns:
            The machine's outputs (for :class:`~unisockets.protocol.relinks.Relinks`).
        """
        outputs = self._handle(neg.SignalingLost())
        self._apply(outputs)
        return outputs

    def fail(self, error: BaseException, *, replaced: bool = False) -> None:
        """Fail the link: break its pipes, stop its task, close its peer connection (idempotent).

        Args:
            error: the cause pipes are broken with.
            replaced: a new link to the same peer takes over (accept waiters stay).
        """
        if self.failure is not None:
            return
        self.negotiation.handle(neg.Closed(), self._loop.time())
        logger.debug("link to %s failed: %s", self.peer_id, error)
        self.failure = error
        self.replaced = replaced
        if self._timer is not None:
            self._timer.cancel()
        self.idle.stop()
        settle(self._connected)
        settle(self._kind_known)
        self._end_probe()
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

        While the link is probed (the peer left: docs/protocol.md, "Goodbye is
        not death"), the channel waits for the probe's verdict: a browser
        opens a channel without the peer's acknowledgement, so on a dead link
        it would seem to open and its connection fail only with the probe.

        Raises:
            BrokenResourceError: the link failed, or the peer is a legacy node
                (it has one channel, no pipes).
        """
        with self.idle.opening():
            await self.wait_connected()
            await asyncio.shield(self._kind_known)
            if self._probe_over is not None:
                await asyncio.shield(self._probe_over)
        if self.state is not LinkState.CONNECTED:
            raise BrokenResourceError(f"no link to {self.peer_id}") from self.failure
        if self.kind is PeerKind.LEGACY:
            raise BrokenResourceError(
                f"{self.peer_id} is a legacy unisockets node: it has one channel, no pipes"
            )
        options: dict[str, bool | int] = {"ordered": True}
        if label == DATAGRAM_LABEL:  # docs/protocol.md, "Datagrams"
            options = {"ordered": False, "maxRetransmits": 0}
        channel = self._pc.createDataChannel(label, self._runtime.options(options))
        pipe = DataChannelPipe(
            channel,
            self.peer_id,
            incoming=False,
            link_alive=self._alive,
            runtime=self._runtime,
        )
        self._adopt(pipe)
        return pipe

    async def legacy_pipe(self) -> Pipe | None:
        """The peer's one ``"channel"`` as a pipe if it is a legacy node, None if modern.

        Waits until the link is connected and the peer's kind is known.

        Raises:
            BrokenResourceError: the link failed first.
        """
        await self.wait_connected()
        await asyncio.shield(self._kind_known)
        if self.state is not LinkState.CONNECTED:
            raise BrokenResourceError(f"no link to {self.peer_id}") from self.failure
        if self.kind is not PeerKind.LEGACY:
            return None
        pipe = self._legacy_pipe
        if pipe is None:
            raise BrokenResourceError(f"the legacy node {self.peer_id} has no channel")
        await pipe.wait_open()
        return pipe

    # --- the task ----------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while self.state is not LinkState.FAILED:
                event = self.negotiation.next_input()
                if event is None:
                    await self._inbox_bell.wait()
                    self._inbox_bell.clear()
                    continue
                await self._carry_out(self._handle(event))
        except asyncio.CancelledError:
            self._close_pc()
            raise
        except Exception as exc:  # a JsException from the browser, or ours
            error = BrokenResourceError(f"link to {self.peer_id} failed: {exc!r}")
            error.__cause__ = exc
            self.fail(error)

    def _handle(self, event: Input) -> list[Output]:
        outputs = self.negotiation.handle(event, self._loop.time())
        self._rearm()
        if not self.negotiation.probing:
            self._end_probe()
        return outputs

    def _end_probe(self) -> None:
        """The probe is over (answered, or the link failed): pipes waiting for it go on."""
        probe, self._probe_over = self._probe_over, None
        if probe is not None:
            settle(probe)

    def _rearm(self) -> None:
        """Input :class:`~unisockets.protocol.negotiation.TimePasses` at the machine's deadline."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.negotiation.deadline()
        if deadline != math.inf:
            self._timer = self._loop.call_at(
                deadline, lambda: self._apply(self._handle(neg.TimePasses()))
            )

    async def _carry_out(self, outputs: list[Output]) -> None:
        """Do what the machine decided, in order (the steps that await the browser)."""
        for output in outputs:
            if isinstance(output, neg.MakeOffer):
                pc = self._new_pc()
                channel = pc.createDataChannel(
                    LEGACY_LABEL, self._runtime.options({"protocol": MODERN_PROTOCOL})
                )
                self._watch_own_channel(channel)
                await pc.setLocalDescription(await pc.createOffer())
                await self._carry_out(self._handle(neg.OfferMade(str(pc.localDescription.sdp))))
            elif isinstance(output, neg.MakeAnswer):
                self._close_pc()
                pc = self._new_pc()
                await pc.setRemoteDescription(
                    self._runtime.options({"type": "offer", "sdp": output.offer})
                )
                await self._carry_out(self._handle(neg.RemoteDescriptionSet()))
                await pc.setLocalDescription(await pc.createAnswer())
                await self._carry_out(self._handle(neg.AnswerMade(str(pc.localDescription.sdp))))
            elif isinstance(output, neg.SetAnswer):
                await self._pc.setRemoteDescription(
                    self._runtime.options({"type": "answer", "sdp": output.sdp})
                )
                await self._carry_out(self._handle(neg.RemoteDescriptionSet()))
            elif isinstance(output, neg.SendOffer):
                self._links.signaling.send_offer(self.peer_id, output.sdp)
                self._trickle.description_sent()
            elif isinstance(output, neg.SendAnswer):
                self._links.signaling.send_answer(self.peer_id, output.sdp)
                self._trickle.description_sent()
            elif isinstance(output, neg.AddCandidates):
                await self._trickle.add_remote(self._pc, output)
            else:
                self._apply([output])

    def _apply(self, outputs: list[Output]) -> None:
        """Do the outputs that need no waiting (the others only come from :meth:`_carry_out`)."""
        for output in outputs:
            if isinstance(output, neg.Fail):
                text = output.reason
                if output.describe_ice:
                    detail = self.negotiation.ice_failure(self._ice_state())
                    text = f"{text}: {detail}" if text else detail
                self.fail(BrokenResourceError(text), replaced=output.replaced)
            elif isinstance(output, neg.Restart):
                fresh = self._links._start(self.peer_id)
                fresh.post("offer", output.offer)
                for candidate in output.candidates:  # queued behind it: a trickling peer's
                    fresh.post("candidate", candidate)
            elif isinstance(output, neg.SetKind):
                logger.info("%s is a %s node (%s)", self.peer_id, output.kind.value, output.reason)
                if output.kind is PeerKind.MODERN:
                    self.idle.became_modern()
                settle(self._kind_known)
            elif isinstance(output, neg.SendHello):
                for channel in self._legacy[-1:]:
                    self._say_hello(channel)
            elif isinstance(output, neg.SendOnChannel):  # a probe or its answer
                for channel in self._legacy[-1:]:
                    if str(channel.readyState) == "open":
                        channel.send(self._runtime.to_wire(output.data))
            elif isinstance(output, neg.Ignored):
                logger.info("%s", output.reason)

    def _adopt(self, pipe: Pipe) -> None:
        self.pipes.add(pipe)
        pipe.add_close_callback(self._forget)
        self.idle.pipes_changed(pipe.label for pipe in self.pipes)

    def _forget(self, pipe: Pipe) -> None:
        self.pipes.discard(pipe)
        self.idle.pipes_changed(pipe.label for pipe in self.pipes)
