"""What a peer link hears from its ``RTCPeerConnection`` and data channels (the asyncio driver).

:class:`PeerConnectionEvents` is the half of
:class:`~unisockets.driver.peer_link.PeerLink` that makes the runtime's peer
connection (the page's, or aiortc's), listens to it and to the ``"channel"``
data channels, and turns what they report into inputs of the link's
:class:`~unisockets.protocol.negotiation.Negotiation` (docs/protocol.md,
"Peer link"). The decisions stay in the negotiation; the link carries out its
outputs (:mod:`unisockets.driver.peer_link`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

from ..protocol import negotiation_events as neg
from ..protocol.negotiation import LinkState, NegotiatedLink
from ..protocol.peer_link import HELLO as _HELLO
from ..protocol.peer_link import LEGACY_LABEL, MODERN_PROTOCOL
from .pipes import DataChannelPipe, Pipe
from .runtime import EventListeners, close_quietly, settle
from .trickle import CandidateTrickle

if TYPE_CHECKING:
    from ..protocol.negotiation_events import Input, Output
    from .links import PeerLinks

__all__ = ["HELLO", "PeerConnectionEvents"]

#: What an answerer sends once on a ``"channel"`` with MODERN_PROTOCOL, as a text message.
HELLO: Final = _HELLO.decode()


class PeerConnectionEvents(NegotiatedLink):
    """The peer connection's side of a peer link (a base of ``PeerLink``).

    The link sets the attributes below in its ``__init__`` and provides
    ``_handle`` (an input into the negotiation), ``_apply`` (carry out
    outputs) and ``_adopt`` (a pipe joins the link).
    """

    failure: BaseException | None
    connected_after: float | None
    _links: PeerLinks
    _loop: asyncio.AbstractEventLoop
    _started: float
    _connected: asyncio.Future[None]
    _pc: Any
    _runtime: Any
    _pc_listeners: EventListeners
    _legacy: list[Any]
    _legacy_pipe: DataChannelPipe | None
    _trickle: CandidateTrickle

    if TYPE_CHECKING:

        def _handle(self, event: Input) -> list[Output]: ...

        def _apply(self, outputs: list[Output]) -> None: ...

        def _adopt(self, pipe: Pipe) -> None: ...

    def _new_pc(self) -> Any:
        pc = self._runtime.peer_connection(self._links.rtc_configuration)
        self._pc = pc
        self._trickle.reset()
        self._pc_listeners.add(pc, "connectionstatechange", lambda _: self._on_state(pc))
        self._pc_listeners.add(pc, "icecandidate", self._on_candidate)
        self._pc_listeners.add(pc, "datachannel", lambda event: self._on_datachannel(event.channel))
        return pc

    def _close_pc(self) -> None:
        pc, self._pc = self._pc, None
        self._pc_listeners.clear()
        for channel in self._legacy:
            close_quietly(channel)
        self._legacy.clear()
        if pc is not None:
            close_quietly(pc)

    def _ice_state(self) -> str:
        return str(self._pc.iceConnectionState) if self._pc is not None else "new"

    def _alive(self) -> bool:
        return self.state is LinkState.CONNECTED and self.negotiation.alive

    def _on_state(self, pc: Any) -> None:
        if pc is not self._pc or self.failure is not None:
            return
        connecting = self.state is LinkState.CONNECTING
        self._apply(self._handle(neg.PcStateChanged(str(pc.connectionState), self._ice_state())))
        if connecting and self.state is LinkState.CONNECTED:
            self.connected_after = self._loop.time() - self._started
            settle(self._connected)

    def _on_candidate(self, event: Any) -> None:
        candidate = event.candidate
        if self._runtime.is_null(candidate) or not str(candidate.candidate):
            return  # end of gathering
        self._handle(neg.LocalCandidate(str(candidate.candidate)))
        self._trickle.local(candidate)

    def _watch_own_channel(self, channel: Any) -> None:
        """Input what our ``"channel"`` does (it opens; the hello or other bytes arrive)."""
        self._watch_channel(channel, incoming=False)
        self._pc_listeners.add(
            channel, "open", lambda _: self._apply(self._handle(neg.ChannelOpened()))
        )

    def _on_datachannel(self, channel: Any) -> None:
        if str(channel.label) == LEGACY_LABEL:
            self._watch_channel(channel, incoming=True)
            modern = str(channel.protocol) == MODERN_PROTOCOL
            self._apply(self._handle(neg.ChannelArrived(modern)))
            return
        pipe = DataChannelPipe(
            channel, self.peer_id, incoming=True, link_alive=self._alive, runtime=self._runtime
        )
        self._adopt(pipe)
        self._links._incoming(pipe)

    def _watch_channel(self, channel: Any, *, incoming: bool) -> None:
        """Keep a ``"channel"`` (open, as the original does) and input its messages.

        They are the hello and probes, or a legacy peer's bytes, which its
        pipe also carries (queued until a connection reads them).
        """
        self._legacy.append(channel)
        pipe = DataChannelPipe(
            channel, self.peer_id, incoming=incoming, link_alive=self._alive, runtime=self._runtime
        )
        self._adopt(pipe)
        self._legacy_pipe = pipe
        channel.binaryType = "arraybuffer"
        self._pc_listeners.add(
            channel,
            "message",
            lambda event: self._apply(
                self._handle(neg.ChannelMessage(self._runtime.to_bytes(event.data)))
            ),
        )

    def _say_hello(self, channel: Any) -> None:
        """Send the hello on an incoming modern ``"channel"`` (now, or once it is open)."""
        if str(channel.readyState) == "open":
            channel.send(HELLO)  # a text message; native nodes compare its UTF-8 bytes
        else:
            self._pc_listeners.add(channel, "open", lambda _: channel.send(HELLO))
