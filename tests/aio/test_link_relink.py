"""The asyncio driver offers a fresh link to the peers its lost signaling cut (issue 19).

:mod:`unisockets.protocol.relinks` has the rule and its proof; this checks
the asyncio driver carries it out: a link dropped on ``Disconnected`` while
negotiating is offered again on ``Reconnected``, with no connect asking for
it, and a connected link is left as it is. Real nodes on the asyncio memory
transport with a real signaling server; the lost session is injected at the
moment it matters (the link's offer), so the test waits on events only.
"""

from __future__ import annotations

import anyio
import pytest

from unisockets.aio.memory import MemoryPeerConnection
from unisockets.driver.errors import BrokenResourceError
from unisockets.driver.peer_link import PeerLink
from unisockets.protocol.events import Disconnected, Reconnected
from unisockets.protocol.negotiation import LinkState

from .test_end_to_end import TIMEOUT, receive_exactly, server
from .test_link_retry import echo_once, on_next_offer, two_nodes
from .trio_thread import TrioThread

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """The asyncio driver (the trio transport: tests/transport/test_webrtc_relink.py)."""
    return "asyncio"


async def test_a_link_cut_with_our_signaling_is_offered_again_when_it_is_back(
    trio_thread: TrioThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    cut: list[PeerLink] = []
    with anyio.fail_after(TIMEOUT):
        async with server(trio_thread) as url, two_nodes(url) as (alice, bob, listener):
            links = bob.driver.links

            def signaling_lost(pc: MemoryPeerConnection) -> None:
                cut.extend(links.links.values())
                bob.driver._on_event(Disconnected(id=bob.address, reason="injected"))

            on_next_offer(monkeypatch, signaling_lost)
            links.handle_greeting(alice.address)  # bob offers alice a link
            with pytest.raises(BrokenResourceError, match="no link"):
                await links.links[alice.address].wait_connected()
            [old] = cut
            assert old.replaced and "signaling was lost" in str(old.failure)
            assert alice.address not in links.links  # nobody offers alice again on its own

            bob.driver._on_event(Reconnected(id=bob.address))  # bob's session is back
            fresh = links.links[alice.address]
            await fresh.wait_connected()
            assert fresh is not old and fresh.role == "offerer"
            client = await bob.connect((alice.address, 80))  # over the fresh link
            accepted = await echo_once(listener, client, b"back")
            assert links.links[alice.address] is fresh
            for stream in (client, accepted):
                await stream.aclose()


async def test_a_connected_link_is_not_offered_again(trio_thread: TrioThread) -> None:
    with anyio.fail_after(TIMEOUT):
        async with server(trio_thread) as url, two_nodes(url) as (alice, bob, listener):
            client = await bob.connect((alice.address, 80))
            accepted = await echo_once(listener, client, b"before")
            link = bob.driver.links.links[alice.address]
            bob.driver._on_event(Disconnected(id=bob.address, reason="injected"))
            bob.driver._on_event(Reconnected(id=bob.address))
            assert bob.driver.links.links[alice.address] is link
            assert link.state is LinkState.CONNECTED
            await accepted.send(b"after")
            assert await receive_exactly(client, 5) == b"after"
            for stream in (client, accepted):
                await stream.aclose()
