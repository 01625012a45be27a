"""Fixtures for the node tests: a real signaling server on 127.0.0.1 and nodes on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

import unisockets.net as net

from ..cpu_load import cpu_load  # noqa: F401 - a fixture for this folder's tests


@pytest.fixture
async def signaling_url() -> AsyncIterator[str]:
    """The URL of a real signaling server on 127.0.0.1 (a fresh one per test)."""
    from unisockets.signaling.server import open_signaling_server

    async with open_signaling_server(host="127.0.0.1", port=0) as server:
        yield server.url


@pytest.fixture(params=["memory", "webrtc"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each overlay test runs over the in-memory transport and over real WebRTC."""
    return str(request.param)


NodeFactory = Callable[..., AbstractAsyncContextManager[net.Node]]


@pytest.fixture
def node_factory(signaling_url: str, backend: str) -> NodeFactory:
    """``async with node_factory() as node``: a node on the test's server and backend."""
    from unisockets.transport.memory import MemoryNetwork

    from .transports import memory_transport

    network = MemoryNetwork()

    @asynccontextmanager
    async def factory(**options: Any) -> AsyncIterator[net.Node]:
        if backend == "memory":
            options.setdefault("transport", memory_transport(network))
        else:
            options.setdefault("ice_addresses", ["127.0.0.1"])  # tests stay on loopback
        async with net.open_node(signaling_url, "10.0.0", **options) as node:
            yield node

    return factory
