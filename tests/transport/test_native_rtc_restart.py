"""A restarted peer's offer that reaches a dying native link is answered by a fresh link.

Issue 17: after a peer restarted, its offer (and the candidates after it) is
queued on our old link to it; if that link fails before its task handles the
offer (the peer's old peer connection closed DTLS, which str0m reports as
"closed"), the offer went down with the link, nobody answered it, and the
peer's new link timed out ("received from the peer: none").
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from unisockets.transport.native_rtc import native_available, open_native_rtc_transport
from unisockets.transport.webrtc_link import LinkState

from . import conftest
from .conftest import open_mesh
from .test_webrtc import HANG, A, B, _pipe_pair

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, params=["native", "aiortc"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Make open_mesh open native transports, or aiortc ones (the negotiation is shared)."""
    if request.param == "native":
        if not native_available():
            pytest.skip("the native extension is not built")
        monkeypatch.setattr(conftest, "open_webrtc_transport", open_native_rtc_transport)
    yield request.param


@pytest.mark.trio
async def test_an_offer_queued_on_a_link_that_closes_is_answered_by_a_new_link() -> None:
    async with open_mesh(A, B, link_timeout=5.0) as mesh:
        with trio.fail_after(HANG):
            await _pipe_pair(mesh[A], mesh[B], "first")
            old_link = mesh[A].links[B]
            # B "restarted": it forgets its link to A (whose peer connection
            # stays up, so nothing closes A's link early) and offers a new one.
            del mesh[B]._links[A]
            handle_offer = mesh[A].handle_offer

            async def offer_then_close(peer_id: str, sdp: str) -> None:
                await handle_offer(peer_id, sdp)
                # The offer waits in the old link's inbox; before the link's task
                # takes it, the old peer connection reports "closed" (the peer's
                # close_notify, read by the I/O task first).
                assert mesh[A].links[B] is old_link and old_link.failure is None
                old_link._on_pc_state(old_link._generation, "closed", "connected")

            mesh[A].handle_offer = offer_then_close  # type: ignore[method-assign]
            pb2, pa2 = await _pipe_pair(mesh[B], mesh[A], "after-restart")
            assert old_link.state is LinkState.FAILED
            assert mesh[A].links[B] is not old_link
            await pb2.send_message(b"new link")
            assert await pa2.receive_message() == b"new link"
