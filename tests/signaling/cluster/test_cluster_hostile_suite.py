"""The hostile-client suite of one server, run against two instances over Redis.

Every test of :mod:`tests.signaling.test_server_hostile` runs here again, with
its ``open_signaling_server`` replaced by two instances on one real
redis-server behind one object whose ``url`` alternates between them
(``port``, for raw connections and per-instance limits, is the first
one's), so consecutive clients sit on different instances and every
violation is found by a subnet owner that is, for half of the offenders,
another instance. The expectations are unchanged: what one instance does,
two do. (The Hypothesis fuzzer, which starts a server per example, stays
with one instance.)
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest

import tests.signaling.test_server_hostile as hostile
from tests.redis_server import RedisServer
from tests.signaling.test_server_hostile import *  # noqa: F403 - the suite, collected here again
from unisockets.signaling.server import SignalingServer, open_signaling_server

del test_arbitrary_frames_from_a_member_never_hurt_the_server  # noqa: F821 - from the * import


class _Pair:
    """Two instances as the suite sees one server: URLs in turn, counts summed."""

    def __init__(self, servers: list[SignalingServer]) -> None:
        self.servers = servers
        self._turn = itertools.count()

    def _next(self) -> SignalingServer:
        return self.servers[next(self._turn) % len(self.servers)]

    @property
    def url(self) -> str:
        return self._next().url

    @property
    def port(self) -> int:
        """The first instance's: raw connections test per-instance limits (handshakes)."""
        return self.servers[0].port

    @property
    def client_count(self) -> int:
        return sum(server.client_count for server in self.servers)

    @property
    def _handshaking(self) -> int:
        return sum(server._handshaking for server in self.servers)


@pytest.fixture(autouse=True)
def _two_instances(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    @asynccontextmanager
    async def open_pair(*args: Any, **kwargs: Any) -> AsyncIterator[_Pair]:
        async with AsyncExitStack() as stack:
            servers = [
                await stack.enter_async_context(
                    open_signaling_server(*args, redis=redis_server.url, **kwargs)
                )
                for _ in range(2)
            ]
            yield _Pair(servers)

    monkeypatch.setattr(hostile, "open_signaling_server", open_pair)
    yield
