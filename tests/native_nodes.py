"""Rerunning node-level tests with the nodes on the native WebRTC backend (str0m)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import ModuleType
from typing import Any

import pytest

from unisockets.net import open_node
from unisockets.transport.native_rtc import NativeRTCTransport


@contextmanager
def nodes_on_native_backend(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> Iterator[None]:
    """Make ``module``'s ``open_node`` open native-backend nodes; check on exit that it did.

    Args:
        monkeypatch: pytest's, to swap ``module.open_node`` for the test.
        module: a test module that calls ``open_node`` by that global name.

    Raises:
        AssertionError: on exit, no node was opened, or one was not native.
    """
    transports: list[object] = []

    @asynccontextmanager
    async def native_node(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async with open_node(*args, webrtc_backend="native", **kwargs) as node:
            transports.append(node.transport)
            yield node

    monkeypatch.setattr(module, "open_node", native_node)
    yield
    assert transports and all(isinstance(t, NativeRTCTransport) for t in transports)
