"""Every connect() ends within its bound: the request timeout plus the link timeout.

A listener that never accepts must not make ``connect()`` hang (issue 16 saw
4 of 5,000 calls hang for over a minute under load). Real signaling server on
127.0.0.1. On the in-memory transport, 1,000 concurrent connects to a
listener whose program never calls ``accept()`` (its backlog is full at
once); over real aiortc, connects to a listener that never answers an offer
(a node that joined signaling and bound a port, nothing more), which end
with an error that says which link did not come up within what time.
"""

from __future__ import annotations

import errno

import pytest
import trio

import unisockets.net as net
from unisockets.signaling.client import open_signaling_client
from unisockets.transport.memory import MemoryNetwork

from .transports import memory_transport

pytestmark = pytest.mark.trio

REQUEST_TIMEOUT = 10.0
LINK_TIMEOUT = 3.0
#: What a loaded machine may add to a bound before a call notices it (scheduling).
SLACK = 10.0


async def test_a_thousand_concurrent_connects_to_a_listener_that_never_accepts_end(
    signaling_url: str,
) -> None:
    network = MemoryNetwork()
    options = {
        "transport": memory_transport(network),
        "request_timeout": REQUEST_TIMEOUT,
        "link_timeout": LINK_TIMEOUT,
    }
    outcomes: dict[str, int] = {}
    async with (
        net.open_node(signaling_url, **options) as listening,
        net.open_node(signaling_url, **options) as connecting,
        listening.listen(7, 16),  # never accepted from: the backlog fills at once
    ):

        async def connect_once() -> None:
            with trio.fail_after(REQUEST_TIMEOUT + LINK_TIMEOUT + SLACK):
                try:
                    stream = await connecting.connect((listening.address, 7))
                except OSError as exc:
                    key = errno.errorcode.get(exc.errno or 0, str(exc.errno))
                else:
                    key = "connected"
                    await stream.aclose()
            outcomes[key] = outcomes.get(key, 0) + 1

        async with trio.open_nursery() as nursery:
            for _ in range(1000):
                nursery.start_soon(connect_once)
    assert sum(outcomes.values()) == 1000, outcomes


async def test_connects_to_a_listener_that_never_answers_an_offer_time_out(
    signaling_url: str,
) -> None:
    async with (
        open_signaling_client(signaling_url) as mute,  # joins and listens, no WebRTC at all
        net.open_node(
            signaling_url,
            ice_addresses=["127.0.0.1"],
            request_timeout=REQUEST_TIMEOUT,
            link_timeout=LINK_TIMEOUT,
        ) as node,
    ):
        alias = f"{mute.id}:7"
        await mute.bind(alias)
        await mute.listen(alias)
        errors: list[OSError] = []

        async def connect_once() -> None:
            with trio.fail_after(REQUEST_TIMEOUT + LINK_TIMEOUT + SLACK):
                with pytest.raises(OSError) as failed:
                    await node.connect((mute.id, 7))
            errors.append(failed.value)

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(connect_once)
    assert len(errors) == 20
    for error in errors:
        # the link's own timeout (ICE never started: the peer sent no candidates), or
        # the connect's bound on link and data channel together
        assert error.errno in (errno.ETIMEDOUT, errno.ECONNRESET), error
        assert f"link to {mute.id}" in str(error) and "within" in str(error), error
