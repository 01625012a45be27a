"""Fixtures for the end-to-end tests on both anyio backends (asyncio and trio).

``anyio_backend`` parametrizes every ``@pytest.mark.anyio`` test: under
``asyncio`` :func:`unisockets.open_node` gives the asyncio driver (aiortc in
the test's loop), under ``trio`` the trio driver. ``node_options``
parametrizes the peer transport: real aiortc on loopback, or each driver's
memory transport. The signaling server runs in a trio thread of its own
(:mod:`tests.aio.trio_thread`), so nothing else runs in the test's loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import unisockets.aio
from unisockets.transport.memory import MemoryNetwork

from ..net.transports import memory_transport
from .trio_thread import TrioThread


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Each test runs on anyio's asyncio backend and on its trio backend."""
    return str(request.param)


@pytest.fixture
def trio_thread() -> Iterator[TrioThread]:
    """A trio loop in a thread, for the server and legacy peers (stopped after the test)."""
    with TrioThread() as thread:
        yield thread


@pytest.fixture(params=["aiortc", "memory"])
def node_options(request: pytest.FixtureRequest, anyio_backend: str) -> dict[str, Any]:
    """``open_node`` options: aiortc on loopback, or the running driver's memory transport.

    One memory network per test: every node of the test is on it.
    """
    if request.param == "aiortc":
        return {"ice_addresses": ["127.0.0.1"]}
    if anyio_backend == "asyncio":
        return {"transport": unisockets.aio.MemoryNetwork()}
    return {"transport": memory_transport(MemoryNetwork())}
