"""Fixtures for the end-to-end tests on both anyio backends (asyncio and trio).

``anyio_backend`` parametrizes every ``@pytest.mark.anyio`` test: under
``asyncio`` :func:`unisockets.open_node` gives the asyncio driver (aiortc in
the test's loop), under ``trio`` the trio driver. The signaling server runs in
a trio thread of its own (:mod:`tests.aio.trio_thread`), so nothing else runs
in the test's loop.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
