"""A negotiation cut by a dying signaling server starts over and connects (sans-IO, no WebRTC).

The failure this guards against (issue 19, a SIGKILLed instance under 30
nodes): a link was negotiating when the server carrying its offer, answer or
candidates died; both nodes rejoined (another instance) with their ids. Kept
across the rejoin, the link waited out its link timeout for messages that no
longer existed, and a connect using it failed "the peer sent no candidates".

Two :class:`Negotiation` machines stand in for two nodes' links, wired by an
in-order signaling wire that a test cuts after any number of messages (what
was in flight dies with the server). The drivers' rules are those of the
transports: a greeting with no link, or one the greeting failed, makes a new
link that offers; a ``Restart`` answers on a new link; a failed link is
forgotten. Whatever the cut, whoever rejoins first (or alone), and even
when an answer of the old negotiation arrives late, the two end with one
connected link.
"""

from __future__ import annotations

import pytest

from unisockets.protocol import negotiation_events as neg
from unisockets.protocol.negotiation import Negotiation, NegotiationState

from .test_negotiation import HIGH, LOW, TIMEOUT, _unmark, candidate, sdp


class Node:
    """One node's link to the other (or none), as a transport drives it."""

    def __init__(self, name: str, local: str, peer: str) -> None:
        self.name, self.local, self.peer = name, local, peer
        self.link: Negotiation | None = None
        self.local_sdp: str | None = None
        self.remote_sdp: str | None = None
        self.generation = 0

    def new_link(self) -> Negotiation:
        self.link = Negotiation(lambda: self.local, self.peer, 0.0, link_timeout=TIMEOUT)
        self.local_sdp = self.remote_sdp = None
        return self.link


class Network:
    """Two nodes and the signaling wire between them (in order; cut = in flight lost)."""

    def __init__(self) -> None:
        self.nodes = {"a": Node("a", LOW, HIGH), "b": Node("b", HIGH, LOW)}
        self.wire: list[tuple[str, neg.Input]] = []

    def other(self, node: Node) -> Node:
        return self.nodes["b" if node.name == "a" else "a"]

    def feed(self, node: Node, event: neg.Input) -> None:
        """Hand ``event`` to ``node``'s link (a new one for an offer, as transports do)."""
        if node.link is None:
            if not isinstance(event, neg.OfferReceived | neg.OfferNow):
                return  # an answer or candidate without a link: dropped
            node.new_link()
        assert node.link is not None
        self.run(node, node.link, node.link.handle(event, 0.0))

    def greet(self, node: Node) -> None:
        """Signaling greets ``node`` about the other (handle_greeting of the transports)."""
        link = node.link
        if link is not None:
            self.run(node, link, link.handle(neg.Greeting(), 0.0))
        if node.link is None or node.link.state is NegotiationState.FAILED:
            node.link = None
            self.feed(node, neg.OfferNow())

    def lost(self, node: Node) -> None:
        """``node``'s own signaling session ended (its transport's signaling_lost)."""
        if node.link is not None:
            self.run(node, node.link, node.link.handle(neg.SignalingLost(), 0.0))

    def run(self, node: Node, link: Negotiation, outputs: list[neg.Output]) -> None:
        other = self.other(node).name
        for output in outputs:
            if isinstance(output, neg.Restart):  # after its Fail: a fresh link answers
                self.feed(node, neg.OfferReceived(output.offer))
                continue
            if node.link is not link:
                return  # replaced meanwhile
            if isinstance(output, neg.Fail):
                node.link = None
            elif isinstance(output, neg.MakeOffer):
                node.generation += 1
                node.local_sdp = sdp(f"{node.name}{node.generation}")
                self.run(node, link, link.handle(neg.OfferMade(node.local_sdp), 0.0))
            elif isinstance(output, neg.SendOffer):
                self.wire.append((other, neg.OfferReceived(output.sdp)))
                self.wire.append(
                    (other, neg.CandidateReceived(candidate(output.sdp.split(":")[1][:2])))
                )
            elif isinstance(output, neg.MakeAnswer):
                node.generation += 1
                node.remote_sdp = output.offer
                self.run(node, link, link.handle(neg.RemoteDescriptionSet(), 0.0))
                node.local_sdp = sdp(f"{node.name}{node.generation}")
                self.run(node, link, link.handle(neg.AnswerMade(node.local_sdp), 0.0))
            elif isinstance(output, neg.SendAnswer):
                self.wire.append((other, neg.AnswerReceived(output.sdp)))
            elif isinstance(output, neg.SetAnswer):
                node.remote_sdp = output.sdp
                self.run(node, link, link.handle(neg.RemoteDescriptionSet(), 0.0))
        self.maybe_connect()

    def maybe_connect(self) -> None:
        """A fake peer connection: up once each side holds the other's current description."""
        if self.matched(NegotiationState.STABLE, remote_set=True):
            for node in self.nodes.values():
                assert node.link is not None
                node.link.handle(neg.PcStateChanged("connected", "connected"), 0.0)

    def matched(self, state: NegotiationState, *, remote_set: bool = False) -> bool:
        """Both links are in ``state`` and each holds the other's current description."""
        return all(
            node.link is not None
            and node.link.state is state
            and (node.link.remote_set or not remote_set)
            and _unmark(node.remote_sdp) == self.other(node).local_sdp
            for node in self.nodes.values()
        )

    def deliver(self, count: int | None = None) -> None:
        """Deliver ``count`` messages in order (``None``: until the wire is quiet)."""
        delivered = 0
        while self.wire and (count is None or delivered < count):
            name, event = self.wire.pop(0)
            self.feed(self.nodes[name], event)
            delivered += 1


def _messages_of_a_whole_negotiation() -> int:
    network = Network()
    network.greet(network.nodes["a"])
    count = 0
    while network.wire:
        network.deliver(1)
        count += 1
    return count


@pytest.mark.parametrize("late_answers", [False, True])
@pytest.mark.parametrize("existing", ["a", "b"])
@pytest.mark.parametrize("rejoin", ["a,b", "b,a", "a", "b"])
@pytest.mark.parametrize("cut", range(_messages_of_a_whole_negotiation()))
def test_a_link_cut_by_a_dying_server_starts_over_and_connects(
    existing: str, rejoin: str, cut: int, late_answers: bool
) -> None:
    """``rejoin``: whose sessions died, in the order they come back (one: only its own).

    ``late_answers``: the answers in flight are not lost but delivered after
    the greeting (a node that sent one before it noticed the loss, into the
    next session), to an offerer that made a new offer meanwhile.
    """
    network = Network()
    network.greet(network.nodes[existing])  # the existing member offers
    network.deliver(cut)
    late = [(to, e) for to, e in network.wire if isinstance(e, neg.AnswerReceived)]
    network.wire.clear()  # the server died with what it was carrying
    order = [network.nodes[name] for name in rejoin.split(",")]
    for node in order:
        network.lost(node)
    # the last to rejoin is greeted to the other (the existing member then)
    network.greet(network.other(order[-1]))
    if late_answers:
        network.wire[:0] = late
    network.deliver()
    a, b = network.nodes["a"].link, network.nodes["b"].link
    assert a is not None and b is not None
    assert a.state is b.state is NegotiationState.CONNECTED
    assert {a.role, b.role} == {"offerer", "answerer"}


def test_the_whole_negotiation_is_cut_somewhere() -> None:
    assert _messages_of_a_whole_negotiation() >= 3  # offer, its candidate, the answer


@pytest.mark.parametrize("rejoin_first", [True, False])
def test_a_connected_link_outlives_lost_signaling(rejoin_first: bool) -> None:
    network = Network()
    network.greet(network.nodes["a"])
    network.deliver()
    links = [network.nodes[name].link for name in "ab"]
    assert all(link is not None and link.state is NegotiationState.CONNECTED for link in links)
    if rejoin_first:
        network.lost(network.nodes["a"])
    network.lost(network.nodes["b"])
    network.greet(network.nodes["a"])
    assert [network.nodes[name].link for name in "ab"] == links  # the same links, kept
    assert network.wire == []
