"""A link one side counts as connected when signaling dies comes back (sans-IO, no WebRTC).

The failure this guards against (issue 19, a SIGKILLed instance under 30
nodes, about 1 run in 20): at the kill, a link's peer connection was up on
one side (its DTLS finished first) and still connecting on the other. The
connecting side dropped the link on losing signaling
(:class:`~unisockets.protocol.negotiation_events.SignalingLost`); the
connected side kept it, and kept it again when signaling greeted it about
the other's rejoin ("keeping the link"), so nobody offered again and a
connect over the dead link waited for a data channel until it timed out.

The two-node network of tests/protocol/test_negotiation_rejoin.py, with a
peer connection that comes up on one side only (the first time), a server
that drops what it would relay to a node not back yet, and each node's
:class:`~unisockets.protocol.relinks.Relinks` offering, when its session is
back, a fresh link to the peers whose links its lost session cut (what both
transports do on ``Reconnected``).
"""

from __future__ import annotations

import pytest

from unisockets.protocol import negotiation_events as neg
from unisockets.protocol.negotiation import Negotiation, NegotiationState
from unisockets.protocol.relinks import Relinks

from .test_negotiation_rejoin import Network, Node


class HalfNetwork(Network):
    """The first peer connection comes up on ``half``'s side only; nodes may be away."""

    def __init__(self, half: str) -> None:
        super().__init__()
        self.half: str | None = half
        self.away: set[str] = set()
        self.relinks = {name: Relinks() for name in self.nodes}

    def run(self, node: Node, link: Negotiation, outputs: list[neg.Output]) -> None:
        super().run(node, link, outputs)
        # the server relays only to members that are back (it drops the rest)
        self.wire = [(to, event) for to, event in self.wire if to not in self.away]

    def maybe_connect(self) -> None:
        if self.half is None:
            super().maybe_connect()
            return
        if self.matched(NegotiationState.STABLE, remote_set=True):
            link = self.nodes[self.half].link
            assert link is not None
            link.handle(neg.PcStateChanged("connected", "connected"), 0.0)
            self.half = None  # the other side never gets there: its session dies first

    def lost(self, node: Node) -> None:
        self.away.add(node.name)
        if node.link is not None:
            link = node.link
            outputs = link.handle(neg.SignalingLost(), 0.0)
            self.relinks[node.name].lost(node.peer, outputs)
            self.run(node, link, outputs)

    def back(self, node: Node, *, greeting_first: bool, with_relinks: bool) -> None:
        """``node`` joined again: the other (if present) is greeted about it; ``node`` re-offers."""
        self.away.discard(node.name)
        other = self.other(node)

        def greet() -> None:
            if other.name not in self.away:
                self.greet(other)

        def reoffer() -> None:
            linked = {node.peer} if node.link is not None else set()
            for _peer in self.relinks[node.name].back(linked) if with_relinks else []:
                node.link = None
                self.feed(node, neg.OfferNow())

        for step in (greet, reoffer) if greeting_first else (reoffer, greet):
            step()


def _half_connected(existing: str, half: str) -> HalfNetwork:
    network = HalfNetwork(half)
    network.greet(network.nodes[existing])  # the existing member offers
    network.deliver()
    states = {name: node.link.state for name, node in network.nodes.items() if node.link}
    other = "b" if half == "a" else "a"
    assert states == {half: NegotiationState.CONNECTED, other: NegotiationState.STABLE}
    return network


@pytest.mark.parametrize("greeting_first", [True, False])
@pytest.mark.parametrize("existing", ["a", "b"])
@pytest.mark.parametrize("half", ["a", "b"])
@pytest.mark.parametrize("rejoin", ["a,b", "b,a", "a", "b"])
def test_a_link_up_on_one_side_only_comes_back_after_signaling_dies(
    existing: str, half: str, rejoin: str, greeting_first: bool
) -> None:
    """``rejoin``: whose sessions died, in the order they come back; ``half``: whose side was up."""
    network = _half_connected(existing, half)
    order = [network.nodes[name] for name in rejoin.split(",")]
    for node in order:
        network.lost(node)
    for node in order:
        network.back(node, greeting_first=greeting_first, with_relinks=True)
        network.deliver()
    assert network.matched(NegotiationState.CONNECTED)
    a, b = network.nodes["a"].link, network.nodes["b"].link
    assert a is not None and b is not None
    assert {a.role, b.role} == {"offerer", "answerer"}


@pytest.mark.parametrize("greeting_first", [True, False])
def test_without_the_reoffer_nobody_offers_again(greeting_first: bool) -> None:
    """The failure itself: the connected side (``a``) is back first and keeps its dead link."""
    network = _half_connected("a", "a")
    order = [network.nodes["a"], network.nodes["b"]]
    for node in order:
        network.lost(node)
    for node in order:
        network.back(node, greeting_first=greeting_first, with_relinks=False)
        network.deliver()
    assert network.nodes["b"].link is None
    a = network.nodes["a"].link
    assert a is not None and a.state is NegotiationState.CONNECTED  # kept, and dead
    assert not network.matched(NegotiationState.CONNECTED)


def test_only_a_link_dropped_on_signaling_lost_is_offered_again() -> None:
    relinks = Relinks()
    connected = Negotiation(lambda: "10.0.0.1", "10.0.0.2", 0.0, link_timeout=20.0)
    connected.handle(neg.OfferNow(), 0.0)
    connected.handle(neg.AnswerReceived("v=0\r\na=ice-ufrag:x\r\n"), 0.0)
    connected.handle(neg.PcStateChanged("connected", "connected"), 0.0)
    assert connected.state is NegotiationState.CONNECTED
    relinks.lost("10.0.0.2", connected.handle(neg.SignalingLost(), 0.0))
    negotiating = Negotiation(lambda: "10.0.0.1", "10.0.0.3", 0.0, link_timeout=20.0)
    negotiating.handle(neg.OfferNow(), 0.0)
    outputs = negotiating.handle(neg.SignalingLost(), 0.0)
    assert len(outputs) == 1 and isinstance(outputs[0], neg.Fail)
    assert outputs[0].replaced and outputs[0].reoffer
    relinks.lost("10.0.0.3", outputs)
    relinks.lost("10.0.0.4", [neg.Fail("the peer connection to 10.0.0.4 failed")])
    assert len(relinks) == 1
    assert relinks.back(linked={}) == ["10.0.0.3"]
    assert relinks.back(linked={}) == []  # once


def test_a_peer_linked_again_before_we_are_back_is_left_alone() -> None:
    relinks = Relinks()
    fail = neg.Fail("signaling was lost", replaced=True, reoffer=True)
    for peer in ("10.0.0.5", "10.0.0.3", "10.0.0.4"):
        relinks.lost(peer, [fail])
    assert relinks.back(linked={"10.0.0.3"}) == ["10.0.0.5", "10.0.0.4"]  # in the order cut
