"""The cluster's routing without Redis: random interleavings of joins, leaves and deliveries.

Several :class:`ClusterProtocol` instances exchange their items through
in-memory FIFO channels (what Redis pub/sub gives: order per publisher and
subscriber, nothing more). Hypothesis picks the order in which clients join
and leave on any instance, instances route, and channels deliver; whatever
the order, no id is given to two live members, every client learns the id
its owner recorded, and every member is greeted by exactly the members that
joined after it.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from unisockets.protocol import Acknowledged, Greeting, Knock
from unisockets.signaling.cluster.routing import ClusterProtocol, split_key

from .cluster_helpers import RecordingClients


class _Cluster:
    """Instances, their clients, an owner table (``SET NX``) and one FIFO channel per instance."""

    def __init__(self, size: int) -> None:
        self.nodes = [ClusterProtocol(f"i{n}") for n in range(size)]
        self.clients = [RecordingClients() for _ in range(size)]
        for node, clients in zip(self.nodes, self.clients, strict=True):
            node.clients = clients
        self.owner: dict[str, str] = {}
        self.channels: dict[str, deque[list[Any]]] = {node.instance: deque() for node in self.nodes}
        self.connected: list[set[int]] = [set() for _ in range(size)]
        self.next_key = 1

    def node(self, instance: str) -> ClusterProtocol:
        return self.nodes[int(instance[1:])]

    def join(self, index: int) -> None:
        key = self.next_key
        self.next_key += 1
        node = self.nodes[index]
        node.client_connected(key)
        self.connected[index].add(key)
        self.clients[index].deliver(node.receive(key, Knock(subnet="10.0.0")))

    def leave(self, index: int, which: int) -> None:
        keys = sorted(self.connected[index])
        if not keys:
            return
        key = keys[which % len(keys)]
        self.connected[index].discard(key)
        self.clients[index].deliver(self.nodes[index].client_disconnected(key))

    def route(self, index: int) -> None:
        """What the I/O side's round does: route every waiting input, publish the outbox."""
        node = self.nodes[index]
        while node.routing:
            subnet = node.routing[0][0]
            owner = self.owner.setdefault(subnet, node.instance)
            if owner == node.instance and subnet not in node.owned:
                node.own(subnet, None)
            item = node.take_routed()
            if owner == node.instance:
                node.apply_routed(item)
            else:
                node.forward(owner, item)
        outbox, node.outbox = node.outbox, {}
        for instance, items in outbox.items():
            self.channels[instance].append(items)

    def deliver(self, index: int) -> None:
        channel = self.channels[self.nodes[index].instance]
        if channel:
            self.nodes[index].receive_items(channel.popleft())

    def settle(self) -> None:
        while any(node.routing or node.outbox for node in self.nodes) or any(
            self.channels.values()
        ):
            for index in range(len(self.nodes)):
                self.route(index)
                while self.channels[self.nodes[index].instance]:
                    self.deliver(index)


_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["join", "leave", "route", "deliver"]),
        st.integers(0, 2),
        st.integers(0, 50),
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(steps=_STEPS)
def test_any_interleaving_gives_unique_ids_and_the_greetings_of_one_instance(
    steps: list[tuple[str, int, int]],
) -> None:
    cluster = _Cluster(3)
    for action, index, which in steps:
        if action == "join":
            cluster.join(index)
        elif action == "leave":
            cluster.leave(index, which)
        elif action == "route":
            cluster.route(index)
        else:
            cluster.deliver(index)
    cluster.settle()

    owner = cluster.node(cluster.owner["10.0.0"]) if "10.0.0" in cluster.owner else None
    live: dict[str, str] = {}  # global key -> id, from what each client was told
    for index, clients in enumerate(cluster.clients):
        assert not clients.failed
        for key in cluster.connected[index]:
            acks = [m for m in clients.frames.get(key, []) if isinstance(m, Acknowledged)]
            assert len(acks) == 1 and not acks[0].rejected
            live[f"i{index}/{key}"] = acks[0].id
            assert cluster.nodes[index].member_id(key) == acks[0].id
    assert len(set(live.values())) == len(live)  # unique among live members
    if owner is None:
        assert not live
        return
    assert owner.owned["10.0.0"].members == live  # the owner agrees with every client
    # each live member was greeted by every live member that joined after it, in join order
    # (among greetings of members that left since, whose ids may have come back)
    order = list(owner.owned["10.0.0"].subnets.get("10.0.0", ()))
    for gkey, member_id in live.items():
        instance, key = split_key(gkey)
        greeted = [
            m.answerer_id
            for m in cluster.clients[int(instance[1:])].frames.get(key, [])
            if isinstance(m, Greeting)
        ]
        later = order[order.index(member_id) + 1 :]
        rest = iter(greeted)
        assert all(any(g == wanted for g in rest) for wanted in later), (greeted, later)
