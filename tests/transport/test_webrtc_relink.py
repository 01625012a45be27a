"""The trio WebRTC transport offers a fresh link to the peers its lost signaling cut (issue 19).

Real aiortc on loopback, two transports wired by the direct signaling relay
of conftest.py. :mod:`unisockets.protocol.relinks` has the rule and its
proof; this checks the transport carries it out: a link dropped on
``signaling_lost`` while negotiating is offered again on ``signaling_back``
(the node's ``Reconnected``), the peer's half of the old negotiation is
replaced by that offer, and pipes work over the new link.
"""

from __future__ import annotations

import pytest
import trio

from unisockets.transport.webrtc_link import LinkState

from .conftest import open_mesh, wait_until
from .test_webrtc import HANG, _pipe_pair

A, B = "10.0.0.1", "10.0.0.2"

pytestmark = [pytest.mark.slow, pytest.mark.trio]


async def test_a_link_cut_with_our_signaling_is_offered_again_when_it_is_back() -> None:
    async with open_mesh(A, B) as mesh:
        with trio.fail_after(HANG):
            # A's offer reaches B, B's answer is lost (with the server, say): A's link negotiates.
            mesh.signals[B].drop = lambda kind, peer_id: kind == "answer"
            await mesh[A].handle_greeting(B)
            cut = mesh[A].links[B]
            await wait_until(lambda: ("answer", A) in mesh.signals[B].sent)
            half = mesh[B].links[A]
            assert cut.state is LinkState.CONNECTING and half.role == "answerer"

            mesh[A].signaling_lost()
            assert cut.replaced and "signaling was lost" in str(cut.failure)
            assert B not in mesh[A].links  # nobody offers B again on its own
            mesh.signals[B].drop = lambda kind, peer_id: False

            mesh[A].signaling_back()  # A joined again: it offers B a fresh link
            fresh = mesh[A].links[B]
            await fresh.wait_connected()
            assert fresh is not cut and fresh.role == "offerer"
            assert half.replaced and mesh[B].links[A] is not half
            pb, pa = await _pipe_pair(mesh[B], mesh[A], "after")
            await pb.send_message(b"back")
            assert await pa.receive_message() == b"back"

            mesh[A].signaling_back()  # once only: the peer is linked, nothing more goes out
            offers = [sent for sent in mesh.signals[A].sent if sent[0] == "offer"]
            assert offers == [("offer", B), ("offer", B)]


async def test_a_connected_link_is_not_offered_again() -> None:
    async with open_mesh(A, B) as mesh:
        with trio.fail_after(HANG):
            await mesh[A].handle_greeting(B)
            link = mesh[A].links[B]
            await link.wait_connected()
            await mesh[B].links[A].wait_connected()
            mesh[A].signaling_lost()
            mesh[A].signaling_back()
            assert mesh[A].links[B] is link and link.state is LinkState.CONNECTED
            assert [sent for sent in mesh.signals[A].sent if sent[0] == "offer"] == [("offer", B)]
