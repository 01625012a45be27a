"""Consent freshness on real aiortc peer connections (loopback, no STUN/TURN).

Ours replaces aioice's on our peer connections only; a blocked event loop
does not expire a healthy link; a link whose peer stops answering fails with
the reason. The policy's own timing is tested in tests/protocol/test_consent.py.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import aioice.ice
import pytest
import trio
from aiortc import RTCConfiguration, RTCPeerConnection

from unisockets.protocol.consent import ConsentPolicy
from unisockets.transport.webrtc import WebRTCTransport
from unisockets.transport.webrtc_ice import ice_connection

from .conftest import open_mesh
from .test_webrtc import _pipe_pair

A, B = "10.0.0.1", "10.0.0.2"
HANG = 60  # seconds: only to turn a hang into a failure

pytestmark = pytest.mark.slow


def _consent_task_name(transport: WebRTCTransport, peer: str) -> str:
    pc = transport.links[peer]._aio._pc
    connection = ice_connection(pc)
    assert connection is not None
    task = connection._query_consent_task
    assert task is not None and not task.done()
    return str(task.get_coro().__qualname__)  # type: ignore[union-attr]


async def _raw_aiortc_pair() -> tuple[str, tuple[int, int]]:
    """Connect two plain aiortc peer connections; name their consent task, read aioice globals."""
    offerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    opened = asyncio.Event()
    try:
        channel = offerer.createDataChannel("plain")
        channel.on("open", opened.set)
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        await asyncio.wait_for(opened.wait(), HANG)
        connection = ice_connection(offerer)
        task = connection._query_consent_task
        name = task.get_coro().__qualname__
        return name, (aioice.ice.CONSENT_INTERVAL, aioice.ice.CONSENT_FAILURES)
    finally:
        await offerer.close()
        await answerer.close()


@pytest.mark.trio
async def test_our_consent_checks_run_on_our_peer_connections_only() -> None:
    defaults = (aioice.ice.CONSENT_INTERVAL, aioice.ice.CONSENT_FAILURES)
    async with open_mesh(A, B) as mesh:
        with trio.fail_after(HANG):
            pa, pb = await _pipe_pair(mesh[A], mesh[B], "one")
            await pa.send_message(b"x")
            assert await pb.receive_message() == b"x"
            assert _consent_task_name(mesh[A], B) == "_check_consent"
            assert _consent_task_name(mesh[B], A) == "_check_consent"
            # another aiortc user in the same process, on its own loop: aioice as shipped
            name, settings = await trio.to_thread.run_sync(asyncio.run, _raw_aiortc_pair())
    assert name == "Connection.query_consent"
    assert settings == defaults == (5, 6)


@pytest.mark.trio
async def test_a_blocked_event_loop_does_not_expire_a_healthy_link() -> None:
    # Consent would expire 1 s after the last answer with a single unanswered check,
    # yet the loop that runs both peer connections stops for 4 s: nobody answered
    # because nobody could ask, so the link must live.
    policy = ConsentPolicy(interval=0.2, lifetime=1.0, unanswered_checks=1)
    async with open_mesh(A, B, consent=policy) as mesh:
        with trio.fail_after(HANG):
            pa, pb = await _pipe_pair(mesh[A], mesh[B], "before")
            await pa.send_message(b"ping")
            assert await pb.receive_message() == b"ping"
            link = mesh[A].links[B]

            async def block_the_loop() -> None:
                time.sleep(4.0)  # noqa: ASYNC251 - the point: a starved asyncio loop

            for _ in range(2):
                await link._bridge.run(block_the_loop)
                await pb.send_message(b"still there?")
                assert await pa.receive_message() == b"still there?"
            # the link, its pipes and a new pipe all work
            qa, qb = await _pipe_pair(mesh[B], mesh[A], "after")
            await qa.send_message(b"yes")
            assert await qb.receive_message() == b"yes"
            assert mesh[A].links[B] is link and link.failure is None


@pytest.mark.trio
async def test_a_peer_that_stops_answering_loses_consent_with_the_reason() -> None:
    # B's ICE agent stops answering STUN (as a vanished host would), its process lives on.
    policy = ConsentPolicy(interval=0.2, lifetime=1.0, unanswered_checks=2)
    async with AsyncExitStack() as stack:
        mesh = await stack.enter_async_context(open_mesh(A, B, consent=policy))
        with trio.fail_after(HANG):
            pa, _pb = await _pipe_pair(mesh[A], mesh[B], "doomed")
            link_b = mesh[B].links[A]

            async def mute_b() -> None:
                connection = ice_connection(link_b._aio._pc)
                connection.request_received = lambda *args: None  # no more STUN answers
                task = connection._query_consent_task
                connection._query_consent_task = None
                task.cancel()  # and B stops checking A, so only A's checks decide

            await link_b._bridge.run(mute_b)
            with pytest.raises(trio.BrokenResourceError) as caught:
                await pa.receive_message()
            assert "ICE consent expired" in str(caught.value.__cause__)
            assert "RFC 7675" in str(caught.value.__cause__)
