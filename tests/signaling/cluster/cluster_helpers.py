"""Several signaling server instances on one Redis, for the multi-instance tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from unisockets.signaling.server import SignalingServer, open_signaling_server


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
