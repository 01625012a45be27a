"""The asyncio driver's own WebSocket client (wsproto over asyncio streams): TLS and bad URLs."""

from __future__ import annotations

import ssl

import anyio
import pytest
import trustme

from unisockets.aio import open_node
from unisockets.driver.errors import SignalingError
from unisockets.signaling.server import open_signaling_server

from .trio_thread import TrioThread

pytestmark = pytest.mark.anyio

#: Bound on each test, so that a bug fails it instead of hanging it.
TIMEOUT = 30.0


@pytest.fixture
def anyio_backend() -> str:
    """The asyncio driver only (the trio client has tests/signaling/test_client.py)."""
    return "asyncio"


async def test_wss_with_the_callers_trust(trio_thread: TrioThread) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    server, leave = await anyio.to_thread.run_sync(
        trio_thread.enter, open_signaling_server(ssl_context=server_context)
    )
    try:
        assert server.url.startswith("wss://")
        with anyio.fail_after(TIMEOUT):
            async with (
                open_node(server.url, ssl_context=client_context) as node,
                node.listen(443) as listener,
            ):
                assert listener.address == (node.address, 443)
            # Without the CA (the system's trust store) the TLS handshake fails; the join says so.
            with pytest.raises(SignalingError, match="CERTIFICATE_VERIFY_FAILED"):
                async with open_node(server.url):
                    pass
    finally:
        await anyio.to_thread.run_sync(leave)


async def test_a_url_that_is_not_a_websocket_one_is_refused_at_once() -> None:
    with anyio.fail_after(TIMEOUT), pytest.raises(SignalingError, match="cannot open a WebSocket"):
        async with open_node("http://127.0.0.1:1/"):
            pass
