"""Several signaling server instances on one Redis, for the multi-instance tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from tests.cli.processes import Child, child
from unisockets.signaling.server import SignalingServer, open_signaling_server


def instance_process(redis_url: str) -> AbstractContextManager[Child]:
    """``unisockets signaling-server --redis`` as a child process; its URL is its first line."""
    return child("signaling-server", "--host", "127.0.0.1", "--port", "0", "--redis", redis_url)


@asynccontextmanager
async def open_instances(
    redis_url: str, count: int, **kwargs: Any
) -> AsyncIterator[list[SignalingServer]]:
    """``count`` instances on 127.0.0.1 serving one network through ``redis_url``."""
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(open_signaling_server(redis=redis_url, **kwargs))
            for _ in range(count)
        ]
