"""Consent freshness (RFC 7675) on the asyncio driver: a peer that goes silent is noticed.

The asyncio driver's peer connections get the per-connection consent checks
of :func:`unisockets.transport.webrtc_consent.take_over_consent` (the
policy is :class:`unisockets.protocol.consent.ConsentPolicy`), in the
caller's loop. Here bob's ICE sockets are closed under him without a word
(no SCTP abort, no DTLS close: as if his machine vanished); alice's checks go
unanswered, consent expires, her link fails and her stream breaks.
"""

from __future__ import annotations

import logging

import anyio
import pytest

from unisockets.aio import open_node
from unisockets.protocol.consent import ConsentPolicy
from unisockets.transport.webrtc_ice import ice_connection

from .trio_thread import TrioThread

pytestmark = pytest.mark.anyio

#: Checks every 0.2-0.4 s; expiry 3 s after the last answer, with 3 unanswered.
FAST = ConsentPolicy(interval=0.3, jitter=0.3, lifetime=3.0, unanswered_checks=3)
#: Bound on the whole test, so that a bug fails it instead of hanging it.
TIMEOUT = 60.0


@pytest.fixture
def anyio_backend() -> str:
    """The asyncio driver only (trio's consent has tests/transport/test_webrtc.py)."""
    return "asyncio"


async def test_a_silent_peer_breaks_the_stream_by_consent(
    trio_thread: TrioThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="unisockets.aio")
    server = await anyio.to_thread.run_sync(trio_thread.start_server)
    # aiortc's consent (aioice's sockets are closed under bob); the native backend's
    # consent failure has tests/aio/test_native_rtc.py (a SIGKILLed peer).
    options = {"ice_addresses": ["127.0.0.1"], "consent": FAST, "webrtc_backend": "aiortc"}
    with anyio.fail_after(TIMEOUT):
        async with (
            open_node(server.url, **options) as alice,
            open_node(server.url, **options) as bob,
            alice.listen(9) as listener,
        ):
            client = await bob.connect((alice.address, 9))
            accepted = await listener.accept()
            await client.send(b"alive")
            assert await accepted.receive() == b"alive"

            # bob vanishes: his ICE sockets close, nothing is sent.
            link = bob.driver.links.links[alice.address]
            connection = ice_connection(link._pc._pc)
            assert connection is not None
            for protocol in list(connection._protocols):
                protocol.transport.close()

            with pytest.raises(anyio.BrokenResourceError):
                await accepted.receive()
            assert bob.address not in alice.driver.links.links  # alice dropped the dead link
            # ... because consent expired (not, say, an SCTP timeout).
            assert any("consent expired" in record.getMessage() for record in caplog.records)
    await anyio.to_thread.run_sync(trio_thread.run, server.stop)
