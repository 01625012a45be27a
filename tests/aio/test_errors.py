"""One signaling error class on both drivers: ``except unisockets.SignalingError`` catches both."""

from __future__ import annotations

import socket

import anyio
import pytest

import unisockets
import unisockets.driver.errors
import unisockets.signaling

pytestmark = pytest.mark.anyio


def test_the_drivers_share_the_classes() -> None:
    assert unisockets.driver.errors.SignalingError is unisockets.SignalingError
    assert unisockets.driver.errors.JoinRejectedError is unisockets.signaling.JoinRejectedError
    assert issubclass(unisockets.SignalingError, ConnectionError)


def closed_port() -> int:
    """A port on 127.0.0.1 that nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_server_is_a_signaling_error(anyio_backend: str) -> None:
    url = f"ws://127.0.0.1:{closed_port()}"
    with anyio.fail_after(30):
        with pytest.raises(unisockets.SignalingError) as caught:
            async with unisockets.open_node(url, request_timeout=5):
                pass  # pragma: no cover - it raises first
    # The asyncio driver's (under asyncio) or the trio client's (under trio): one class.
    assert isinstance(caught.value, ConnectionError)
