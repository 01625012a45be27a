"""Fixtures of the multi-instance tests: a real redis-server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_server import RedisServer, running_redis

from ...cpu_load import cpu_load  # noqa: F401 - a fixture for this folder's tests


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh ``redis-server`` on a free 127.0.0.1 port, stopped after the test."""
    with running_redis() as server:
        yield server
