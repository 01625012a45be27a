"""The peers to offer a fresh link once our signaling session is back (sans-IO).

docs/signaling-server.md, "Faults": when a node's
signaling session ends, its links still negotiating are dropped
(:class:`~unisockets.protocol.negotiation_events.SignalingLost`: what they
sent may have died with the server). The peer's side of such a link may
already be connected (its peer connection came up first) and the peer keeps
it when signaling greets it about us again, as it keeps every connected link
across a rejoin. Nobody would offer then, and a connect over the peer's dead
link would wait for a data channel that never opens. So the side that
dropped the link offers its peer a fresh link as soon as its own session is
back (:class:`~unisockets.protocol.events.Reconnected`); an offer on a link
already negotiated replaces it on the peer's side (*Restart* in
:mod:`unisockets.protocol.negotiation`). If the peer is not back yet, the
server drops the offer, and the greeting about the peer, when it rejoins,
starts that link over (a greeting fails a link still negotiating).

:class:`Relinks` keeps those peers for one node, whatever its driver (trio
over aiortc, asyncio in the browser). It reads no clock and does no I/O.
"""

from __future__ import annotations

from collections.abc import Container, Iterable

from .negotiation_events import Fail, Output

__all__ = ["Relinks"]


class Relinks:
    """The peers whose links our lost signaling session dropped, until the session is back."""

    def __init__(self) -> None:
        self._peers: dict[str, None] = {}  # ordered: offers go out in the order links dropped

    def __len__(self) -> int:
        return len(self._peers)

    def lost(self, peer_id: str, outputs: Iterable[Output]) -> None:
        """Our session ended; ``outputs`` are what the link to ``peer_id`` returned for it.

        Args:
            peer_id: the link's peer.
            outputs: what the link's
                :meth:`~unisockets.protocol.negotiation.Negotiation.handle`
                returned for
                :class:`~unisockets.protocol.negotiation_events.SignalingLost`;
                a :class:`~unisockets.protocol.negotiation_events.Fail` with
                ``reoffer`` marks the peer for an offer once we are back.
        """
        if any(isinstance(output, Fail) and output.reoffer for output in outputs):
            self._peers[peer_id] = None

    def back(self, linked: Container[str]) -> list[str]:
        """Our session is back: the peers to offer a fresh link now, each once.

        Args:
            linked: the ids of the peers we have a link to now. A link made
                since the loss (a connection that tried again on a new link,
                or the peer's own offer) negotiates in the new session
                already: that peer is left alone.

        Returns:
            The peer ids to offer a link, in the order their links dropped;
            the set is empty afterwards.
        """
        peers, self._peers = list(self._peers), {}
        return [peer_id for peer_id in peers if peer_id not in linked]
