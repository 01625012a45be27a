"""The trio-side life of a peer link, whatever WebRTC stack carries it.

:class:`PeerLinkBase` holds what every backend's link does the same way
(:class:`~unisockets.transport.webrtc_link.PeerLink` over aiortc, and the
native one over str0m): it posts signaling inputs to the link's
:class:`~unisockets.protocol.negotiation.Negotiation`, runs its timer (the
machine's deadlines and the idle timeout of lazy links), drives the queued
inputs one at a time, and fails the link (breaking its pipes). A backend
supplies how outputs are carried out (``_carry_out``, ``_apply``) and how its
peer connection and channels are made; see
:mod:`unisockets.transport.webrtc_link` for the design.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from ..protocol.link_idle import LinkIdle
from ..protocol.negotiation import LinkState, NegotiatedLink, signaling_input
from ..protocol.negotiation_events import (
    Closed,
    Greeting,
    Input,
    Output,
    PeerKind,
    PeerLeft,
    SignalingLost,
    TimePasses,
)

if TYPE_CHECKING:
    from .webrtc_pipe import DataChannelPipe

__all__ = ["PeerLinkBase"]

logger = logging.getLogger("unisockets.transport.webrtc_link")


class PeerLinkBase(NegotiatedLink, abc.ABC):
    """The backend-neutral half of a peer link (see the module docstring).

    Internal: the backend's constructor sets every attribute declared here.

    Attributes:
        failure: why the link failed (a :class:`trio.BrokenResourceError`), or None.
        replaced: whether it failed because a new link to the same peer took over.
        pipes: the open labelled pipes on this link.
        legacy_pipe: the pipe over the ``"channel"`` data channel once it exists.
        peer_gone: signaling said the peer left since this link was made.
        idle: the idle timer of lazy links.
    """

    failure: BaseException | None
    replaced: bool
    pipes: set[DataChannelPipe]
    legacy_pipe: DataChannelPipe | None
    peer_gone: bool
    idle: LinkIdle
    _kind_known: trio.Event
    _on_failed: Callable[[Any, BaseException], object]  # (the link, why it failed)
    _inbox_bell: trio.Event
    _rearm: trio.lowlevel.ParkingLot
    _connected: trio.Event
    _cancel_scope: trio.CancelScope
    _linger: bool
    _opening: int

    @abc.abstractmethod
    def _apply(self, outputs: list[Output]) -> None:
        """Do the outputs that need no waiting."""

    @abc.abstractmethod
    async def _carry_out(self, outputs: list[Output]) -> None:
        """Do what the machine decided, in order, waiting for WebRTC and signaling."""

    # --- inputs (trio) ---------------------------------------------------------------------

    def post(self, kind: str, payload: str = "") -> None:
        """Queue a signaling input for the link's task; never blocks.

        A link that has more than
        :data:`~unisockets.protocol.negotiation.MAX_QUEUED_INPUTS` inputs waiting
        fails instead (a flooding peer cannot grow memory). Ignored once failed.

        Args:
            kind: ``"offer-now"`` (we offer), ``"offer"``, ``"answer"`` or ``"candidate"``.
            payload: the SDP or the candidate JSON (empty for ``"offer-now"``).
        """
        self._apply(self.negotiation.post(signaling_input(kind, payload)))
        self._inbox_bell.set()

    def peer_left(self) -> bool:
        """Signaling said the peer left: probe the link, or fail it (docs/protocol.md).

        A connected modern link sends a probe on ``"channel"`` and fails only
        if no answer comes within
        :data:`~unisockets.protocol.probe.PROBE_TIMEOUT` seconds (the peer's
        signaling alone may have died); any other link fails now
        (:mod:`unisockets.protocol.probe` decides).

        Returns:
            True if the link is probing (it may stay), False if it failed.
        """
        self.peer_gone = True
        self._apply(self._handle(PeerLeft()))
        return self.failure is None

    def greeted(self) -> bool:
        """Signaling greeted the peer again: keep this link (True) or fail it (False).

        A live link stays (the peer rejoined a restarted server); a connected
        link whose peer connection is not connected any more fails (a new node
        may have taken the id), and so does a link still negotiating (what the
        peer's old session carried may be lost): the caller makes a new one.
        """
        self._apply(self._handle(Greeting()))
        return self.state is not LinkState.FAILED

    def signaling_lost(self) -> list[Output]:
        """Our signaling session ended: a link still negotiating fails (``replaced``).

        What it sent may be lost, and what it would send now would meet a peer
        that started over (:mod:`unisockets.protocol.negotiation`); a
        connected link stays.

        Returns:
            The machine's outputs (for :class:`~unisockets.protocol.relinks.Relinks`).
        """
        outputs = self._handle(SignalingLost())
        self._apply(outputs)
        return outputs

    def fail(self, error: BaseException, *, replaced: bool = False, linger: bool = False) -> None:
        """Fail the link: break its pipes, stop its task, close its peer connection.

        Idempotent. The peer connection is closed by the link's task as it ends.

        Args:
            error: the :class:`trio.BrokenResourceError` pipes are broken with (as cause).
            replaced: a new link to the same peer takes over (see :attr:`replaced`).
            linger: before closing, wait (at most
                :data:`~unisockets.transport.webrtc_link_aio.LINGER_TIMEOUT` seconds) until
                the peer acknowledged what was sent and the stream resets of
                closed pipes, so it reads them to their end (a graceful shutdown).
        """
        if self.failure is not None:
            return
        self.negotiation.handle(Closed(), trio.current_time())
        self._linger = linger
        logger.debug("link to %s failed: %s", self.peer_id, error)
        self.failure = error
        self.replaced = replaced
        self._connected.set()
        self._kind_known.set()
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

        Known when the peer's ``"channel"`` arrives (we answered), at once if
        its answer is marked modern, or when our ``"channel"`` brought the
        hello, other bytes, or nothing within
        :data:`~unisockets.protocol.peer_link.HELLO_GRACE` seconds after it opened
        (we offered): :mod:`unisockets.protocol.negotiation` decides.

        Returns:
            The peer's :class:`PeerKind`.

        Raises:
            trio.BrokenResourceError: the link failed first.
        """
        await self.wait_connected()
        await self._kind_known.wait()
        kind = self.kind
        if self.state is LinkState.FAILED or kind is None:
            raise trio.BrokenResourceError(f"no link to {self.peer_id}") from self.failure
        return kind

    # --- the link's task (trio) ------------------------------------------------------------

    async def _timer(self) -> None:
        """Input :class:`TimePasses` at each of the machine's deadlines; close when idle."""
        while True:
            with trio.move_on_at(min(self.negotiation.deadline(), self.idle.deadline())):
                await self._rearm.park()
                continue
            if self.idle.expired(trio.current_time()):
                logger.info("closing the idle link to %s", self.peer_id)
                self.fail(
                    trio.BrokenResourceError(f"the link to {self.peer_id} was idle"), linger=True
                )
                return
            self._apply(self._handle(TimePasses()))

    def _pipes_changed(self) -> None:
        self.idle.connections(len(self.pipes) + self._opening, trio.current_time())
        self._rearm.unpark_all()

    async def _wait_kind_opening(self) -> PeerKind:
        """:meth:`wait_kind` for a pipe about to open: the link is not idle meanwhile."""
        self._opening += 1
        self._pipes_changed()
        try:
            return await self.wait_kind()
        finally:
            self._opening -= 1
            if self.failure is None:
                self._pipes_changed()

    async def _drive(self) -> None:
        try:
            while True:
                event = self.negotiation.next_input()
                if event is None:
                    await self._inbox_bell.wait()
                    self._inbox_bell = trio.Event()
                    continue
                await self._carry_out(self._handle(event))
        except Exception as exc:
            error = trio.BrokenResourceError(f"link to {self.peer_id} failed: {exc!r}")
            error.__cause__ = exc
            self.fail(error)

    def _handle(self, event: Input) -> list[Output]:
        outputs = self.negotiation.handle(event, trio.current_time())
        self._rearm.unpark_all()
        return outputs

    def _forget(self, pipe: DataChannelPipe) -> None:
        self.pipes.discard(pipe)
        if self.failure is None:
            self._pipes_changed()
