"""Lazy peer links: no eager full mesh between nodes that set links up on demand.

docs/protocol.md, "Lazy peer links". Real signaling server on 127.0.0.1, real
aiortc on loopback. Nodes that knock with ``lazyLinks`` are not greeted with
each other: no link exists until one connects to another, and then only
between those two. A node without it (as an original node) is greeted by
everyone and linked eagerly, as before.
"""

from __future__ import annotations

import pytest
import trio

import unisockets.net as net
from unisockets.net.overlay import OverlayNode

from ..log_events import log_event

pytestmark = pytest.mark.trio

TIMEOUT = 60.0


async def _round_trip(node: net.Node) -> None:
    """One request answered by the server: whatever it sent this node before has arrived."""
    async with node.listen(0):
        pass


def _greeted(node: net.Node) -> frozenset[str]:
    assert isinstance(node, OverlayNode)
    return node.signaling._protocol.peers


def _links(node: net.Node) -> set[str]:
    assert isinstance(node, OverlayNode)
    return set(node.transport.links)  # type: ignore[attr-defined]


async def test_lazy_nodes_link_only_to_the_peers_they_talk_to(signaling_url: str) -> None:
    options = {"ice_addresses": ["127.0.0.1"]}  # lazy links are the default
    async with (
        net.open_node(signaling_url, **options) as alice,
        net.open_node(signaling_url, **options) as bob,
        net.open_node(signaling_url, **options) as carol,
        bob.listen(7) as listener,
    ):
        with trio.fail_after(TIMEOUT):
            for node in (alice, bob, carol):
                await _round_trip(node)
                assert _greeted(node) == frozenset() and _links(node) == set()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(listener.accept)
                stream = await alice.connect((bob.address, 7))
            await stream.send_all(b"hello")
            assert _links(alice) == {bob.address}
            assert _links(bob) == {alice.address}
            assert _links(carol) == set()
            await stream.aclose()

            # a node that links eagerly (as an original node does) is greeted by all
            eager = net.open_node(signaling_url, ice_addresses=["127.0.0.1"], lazy_links=False)
            async with eager as dave:
                for node in (alice, bob, carol):
                    await _round_trip(node)
                    assert dave.address in _greeted(node)


async def test_an_idle_lazy_link_closes_and_the_next_connect_makes_a_new_one(
    signaling_url: str,
) -> None:
    options = {"ice_addresses": ["127.0.0.1"], "lazy_links": True, "link_idle_timeout": 0.5}
    async with (
        net.open_node(signaling_url, **options) as alice,
        net.open_node(signaling_url, **options) as bob,
        bob.listen(7) as listener,
    ):
        with trio.fail_after(TIMEOUT):
            for round_ in range(2):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(listener.accept)
                    stream = await alice.connect((bob.address, 7))
                link = alice.transport.links[bob.address]  # type: ignore[attr-defined]
                closing = f"closing the idle link to {bob.address}"
                with log_event("unisockets.transport", closing) as idle:
                    await stream.send_all(b"round %d" % round_)
                    await stream.aclose()  # no connection left on the link
                    await idle.wait()
                assert link.failure is not None and "idle" in str(link.failure)
                assert bob.address not in _links(alice)
