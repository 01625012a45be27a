"""The redis-server fixture itself: it serves coredis under trio, and is gone afterwards."""

from __future__ import annotations

import coredis
import pytest

from tests.redis_server import RedisServer, running_redis


@pytest.mark.trio
async def test_redis_server_answers_coredis_under_trio(redis_server: RedisServer) -> None:
    client = coredis.Redis.from_url(redis_server.url, decode_responses=True)
    async with client:
        await client.set("k", "v")
        assert await client.get("k") == "v"


def test_the_server_is_stopped_on_exit() -> None:
    with running_redis() as server:
        assert server.process.poll() is None
    assert server.process.poll() is not None
